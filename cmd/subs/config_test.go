package main_test

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	main "github.com/subs-engine/subs/cmd/subs"
)

// defaults is the configuration with nothing set.
var defaults = main.Config{
	Addr:              "127.0.0.1:8080",
	DataDir:           "./data",
	LogLevel:          "info",
	LogFormat:         "text",
	ShutdownTimeout:   15 * time.Second,
	Clock:             main.ClockSystem,
	NATSPort:          4222,
	TailDurable:       "subs-tail",
	TailSubject:       "subs.events.>",
	Schedule:          "0 * * * * *",
	SimulatedSchedule: "@hourly",
}

func TestParseFlags_BuildsTheConfig(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 31, 9, 0, 0, 0, time.UTC)
	allEnv := map[string]string{
		"SUBS_ADDR":             "0.0.0.0:9000",
		"SUBS_DATA_DIR":         "/var/lib/subs",
		"DATABASE_URL":          "postgres://env@db/subs",
		"SUBS_LOG_LEVEL":        "debug",
		"SUBS_LOG_FORMAT":       "json",
		"SUBS_SHUTDOWN_TIMEOUT": "30s",
		"SUBS_CLOCK":            "simulated",
		"SUBS_CLOCK_START":      "2026-01-31T09:00:00Z",
		"NATS_URL":              "nats://env:4222",
		"SUBS_NATS_PORT":        "5222",
		"SUBS_PUBLISHER":        "false",
	}
	fromEnv := main.Config{
		Addr:              "0.0.0.0:9000",
		DataDir:           "/var/lib/subs",
		DatabaseURL:       "postgres://env@db/subs",
		LogLevel:          "debug",
		LogFormat:         "json",
		ShutdownTimeout:   30 * time.Second,
		Clock:             main.ClockSimulated,
		ClockStart:        start,
		NATSURL:           "nats://env:4222",
		NATSPort:          5222,
		NoPublisher:       true,
		TailDurable:       "subs-tail",
		TailSubject:       "subs.events.>",
		Schedule:          "0 * * * * *",
		SimulatedSchedule: "@hourly",
	}
	allFlags := []string{
		"--addr", "127.0.0.1:0", "--data-dir", "/srv/subs", "--database-url", "postgres://flag@db/subs",
		"--log-level", "warn", "--log-format", "text", "--shutdown-timeout", "2s",
		"--clock", "system", "--clock-start", "2027-06-01T00:00:00Z",
		"--nats-url", "nats://flag:4222", "--nats-port", "0", "--publisher",
	}
	fromFlags := main.Config{
		Addr:              "127.0.0.1:0",
		DataDir:           "/srv/subs",
		DatabaseURL:       "postgres://flag@db/subs",
		LogLevel:          "warn",
		LogFormat:         "text",
		ShutdownTimeout:   2 * time.Second,
		Clock:             main.ClockSystem,
		ClockStart:        time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC),
		NATSURL:           "nats://flag:4222",
		NATSPort:          0,
		NoPublisher:       false,
		TailDurable:       "subs-tail",
		TailSubject:       "subs.events.>",
		Schedule:          "0 * * * * *",
		SimulatedSchedule: "@hourly",
	}
	with := func(c main.Config, change func(*main.Config)) main.Config {
		change(&c)
		return c
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want main.Config
	}{
		{"defaults", nil, []string{"serve"}, defaults},
		{"every variable overrides its default", allEnv, []string{"serve"}, fromEnv},
		{"every flag overrides its default", nil, append([]string{"serve"}, allFlags...), fromFlags},
		{"every flag overrides its variable", allEnv, append([]string{"serve"}, allFlags...), fromFlags},
		{"one flag overrides its variable, the rest keep theirs", allEnv, []string{"serve", "--addr", "localhost:1"},
			with(fromEnv, func(c *main.Config) { c.Addr = "localhost:1" })},
		{"an empty variable is unset", map[string]string{"SUBS_ADDR": "", "SUBS_LOG_LEVEL": ""}, []string{"serve"}, defaults},
		{"tail takes its variables and flags", map[string]string{"SUBS_TAIL_DURABLE": "env-tail", "SUBS_TAIL_SUBJECT": "subs.events.order.>"},
			[]string{"tail", "--subject", "subs.events.account.>"},
			with(defaults, func(c *main.Config) { c.TailDurable, c.TailSubject = "env-tail", "subs.events.account.>" })},
		{"audit history takes --as-of after its stream", nil,
			[]string{"audit", "history", "subscription-1", "--as-of", "2027-03-01T00:00:00Z"},
			with(defaults, func(c *main.Config) { c.AuditAsOf = time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC) })},
		{"--publisher=false turns the publisher off", nil, []string{"serve", "--publisher=false"},
			with(defaults, func(c *main.Config) { c.NoPublisher = true })},
		{"single-dash flags", nil, []string{"serve", "-addr", "127.0.0.1:0", "-log-level", "error"},
			with(defaults, func(c *main.Config) { c.Addr, c.LogLevel = "127.0.0.1:0", "error" })},
		{"migrate takes the database flags", allEnv, []string{"migrate", "--database-url", "postgres://m@db/x"},
			with(fromEnv, func(c *main.Config) { c.DatabaseURL = "postgres://m@db/x" })},
		{"postgres takes its action before the flags", nil, []string{"postgres", "stop", "--data-dir", ".cache/pgtest"},
			with(defaults, func(c *main.Config) { c.DataDir = ".cache/pgtest" })},
		{"postgres takes its action after the flags", nil, []string{"postgres", "--data-dir", "d", "status"},
			with(defaults, func(c *main.Config) { c.DataDir = "d" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, _ := MustParse(t, tt.env, tt.args...)
			if m.Config != tt.want {
				t.Errorf("Config =\n%+v\nwant\n%+v", m.Config, tt.want)
			}
			if m.Logger == nil {
				t.Error("ParseFlags built no Logger")
			}
		})
	}
}

func TestParseFlags_RejectsBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantErr  error    // checked with errors.Is when set
		wantText []string // each must appear in the error
	}{
		{"no command", nil, nil, nil, []string{"no command"}},
		{"unknown command", nil, []string{"serv"}, nil, []string{`unknown command "serv"`}},
		{"help flag", nil, []string{"-h"}, flag.ErrHelp, nil},
		{"subcommand help flag", nil, []string{"serve", "-h"}, flag.ErrHelp, nil},
		{"unknown flag", nil, []string{"serve", "--port", "80"}, nil, []string{"serve", "port"}},
		{"flag of another command", nil, []string{"migrate", "--addr", "x:1"}, nil, []string{"migrate", "addr"}},
		{"stray argument", nil, []string{"serve", "now"}, nil, []string{`unexpected argument "now"`}},
		{"postgres without action", nil, []string{"postgres"}, nil, []string{"start, stop or status"}},
		{"postgres unknown action", nil, []string{"postgres", "restart"}, nil, []string{`"restart"`}},
		{"address without port", nil, []string{"serve", "--addr", "localhost"}, nil, []string{"--addr", "SUBS_ADDR"}},
		{"empty data dir", nil, []string{"serve", "--data-dir", ""}, nil, []string{"--data-dir", "SUBS_DATA_DIR"}},
		{"unknown log level", map[string]string{"SUBS_LOG_LEVEL": "loud"}, []string{"serve"}, nil, []string{"--log-level", "SUBS_LOG_LEVEL", `"loud"`}},
		{"unknown log format", nil, []string{"serve", "--log-format", "xml"}, nil, []string{"--log-format", "SUBS_LOG_FORMAT"}},
		{"zero shutdown timeout", nil, []string{"serve", "--shutdown-timeout", "0s"}, nil, []string{"--shutdown-timeout"}},
		{"unparsable publisher variable", map[string]string{"SUBS_PUBLISHER": "maybe"}, []string{"serve"}, nil, []string{"SUBS_PUBLISHER", `"maybe"`}},
		{"unparsable NATS port variable", map[string]string{"SUBS_NATS_PORT": "nats"}, []string{"serve"}, nil, []string{"SUBS_NATS_PORT", `"nats"`}},
		{"unparsable shutdown timeout variable", map[string]string{"SUBS_SHUTDOWN_TIMEOUT": "soon"}, []string{"serve"}, nil, []string{"SUBS_SHUTDOWN_TIMEOUT", `"soon"`}},
		{"unknown clock", nil, []string{"serve", "--clock", "atomic"}, nil, []string{"--clock", "SUBS_CLOCK"}},
		{"unparsable clock start", nil, []string{"serve", "--clock-start", "tomorrow"}, nil, []string{"clock-start", "RFC 3339"}},
		{"unparsable clock start variable", map[string]string{"SUBS_CLOCK_START": "tomorrow"}, []string{"serve"}, nil, []string{"SUBS_CLOCK_START"}},
		{"every invalid field is named", map[string]string{"SUBS_LOG_FORMAT": "xml", "SUBS_CLOCK": "atomic"}, []string{"serve"}, nil, []string{"--log-format", "--clock"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, _ := NewMain(t, tt.env)
			err := m.ParseFlags(context.Background(), tt.args)
			if err == nil {
				t.Fatalf("ParseFlags(%q) = nil, want an error", tt.args)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseFlags(%q) = %v, want %v", tt.args, err, tt.wantErr)
			}
			for _, want := range tt.wantText {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("ParseFlags(%q) = %q, want it to contain %q", tt.args, err, want)
				}
			}
		})
	}
}

func TestConfigValidate_NamesTheField(t *testing.T) {
	t.Parallel()
	if err := defaults.Validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	tests := []struct {
		name   string
		change func(*main.Config)
		want   string
	}{
		{"empty addr", func(c *main.Config) { c.Addr = "" }, "addr (--addr, SUBS_ADDR)"},
		{"addr without port", func(c *main.Config) { c.Addr = "localhost" }, "addr (--addr, SUBS_ADDR)"},
		{"empty data dir", func(c *main.Config) { c.DataDir = "" }, "data dir (--data-dir, SUBS_DATA_DIR)"},
		{"empty log level", func(c *main.Config) { c.LogLevel = "" }, "log level (--log-level, SUBS_LOG_LEVEL)"},
		{"unknown log format", func(c *main.Config) { c.LogFormat = "logfmt" }, "log format (--log-format, SUBS_LOG_FORMAT)"},
		{"negative shutdown timeout", func(c *main.Config) { c.ShutdownTimeout = -time.Second }, "shutdown timeout (--shutdown-timeout, SUBS_SHUTDOWN_TIMEOUT)"},
		{"unknown clock", func(c *main.Config) { c.Clock = "wall" }, "clock (--clock, SUBS_CLOCK)"},
		{"NATS port out of range", func(c *main.Config) { c.NATSPort = 70000 }, "NATS port (--nats-port, SUBS_NATS_PORT)"},
		{"NATS URL without host", func(c *main.Config) { c.NATSURL = "localhost" }, "NATS URL (--nats-url, NATS_URL)"},
		{"dotted durable", func(c *main.Config) { c.TailDurable = "a.b" }, "durable (--durable, SUBS_TAIL_DURABLE)"},
		{"empty subject", func(c *main.Config) { c.TailSubject = "" }, "subject (--subject, SUBS_TAIL_SUBJECT)"},
		{"schedule without seconds", func(c *main.Config) { c.Schedule = "*/5 * * * *" }, "schedule (--schedule, SUBS_SCHEDULE)"},
		{"simulated schedule that never fires", func(c *main.Config) { c.SimulatedSchedule = "0 0 0 30 2 *" },
			"simulated schedule (--simulated-schedule, SUBS_SIMULATED_SCHEDULE)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := defaults
			tt.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"serve", "migrate", "postgres start|stop|status", "version", "help"}},
		{[]string{"help", "serve"}, []string{"-addr", "SUBS_ADDR", "-data-dir", "-database-url", "DATABASE_URL", "-log-level", "-log-format", "-shutdown-timeout", "-clock"}},
		{[]string{"help", "postgres"}, []string{"subs postgres start|stop|status", "-data-dir"}},
		{[]string{"version"}, []string{"subs ", "go1."}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			m, out := MustParse(t, nil, tt.args...)
			MustRun(t, m)
			for _, want := range tt.want {
				if !strings.Contains(out.stdout.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.stdout)
				}
			}
		})
	}
}

func TestServeHelp_NeverShowsTheDatabasePassword(t *testing.T) {
	t.Parallel()
	m, out := NewMain(t, map[string]string{"DATABASE_URL": "postgres://subs:hunter2@db.internal/subs"})
	if err := m.ParseFlags(context.Background(), []string{"serve", "-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("ParseFlags = %v, want flag.ErrHelp", err)
	}
	if got := out.stderr.String(); strings.Contains(got, "hunter2") || !strings.Contains(got, "db.internal") {
		t.Errorf("usage shows the password, or not the database:\n%s", got)
	}
}
