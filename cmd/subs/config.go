package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/subs-engine/subs/workers/schedule"
)

// Environment variables that override Config's defaults. A flag overrides
// its variable.
const (
	EnvAddr            = "SUBS_ADDR"
	EnvDataDir         = "SUBS_DATA_DIR"
	EnvDatabaseURL     = "DATABASE_URL"
	EnvLogLevel        = "SUBS_LOG_LEVEL"
	EnvLogFormat       = "SUBS_LOG_FORMAT"
	EnvShutdownTimeout = "SUBS_SHUTDOWN_TIMEOUT"
	EnvClock           = "SUBS_CLOCK"
	EnvClockStart      = "SUBS_CLOCK_START"
	EnvNATSURL         = "NATS_URL"
	EnvNATSPort        = "SUBS_NATS_PORT"
	EnvPublisher       = "SUBS_PUBLISHER"
	EnvTailDurable     = "SUBS_TAIL_DURABLE"
	EnvTailSubject     = "SUBS_TAIL_SUBJECT"
	EnvPublicURL       = "SUBS_PUBLIC_URL"
	EnvSMTPURL         = "SMTP_URL"
	EnvGatewayURL      = "SUBS_GATEWAY_URL"
	EnvSecretKey       = "SUBS_SECRET_KEY"
	EnvSchedule        = "SUBS_SCHEDULE"
	EnvSimSchedule     = "SUBS_SIMULATED_SCHEDULE"
)

// Clock kinds accepted by Config.Clock.
const (
	ClockSystem    = "system"
	ClockSimulated = "simulated"
)

// Config is the engine's whole configuration. Each field has a default
// (setDefaults), an environment variable and a flag; the flag wins over the
// variable, the variable over the default.
type Config struct {
	// Addr is the host:port the HTTP server listens on; port 0 picks a free
	// port. Env SUBS_ADDR, flag --addr. Default "127.0.0.1:8080".
	Addr string
	// DataDir holds the engine's local state: the private PostgreSQL cluster
	// (in DataDir/postgres) when DatabaseURL is empty. Env SUBS_DATA_DIR, flag
	// --data-dir. Default "./data".
	DataDir string
	// DatabaseURL names the PostgreSQL database (a postgres:// URL or a
	// keyword/value string). Empty means a private cluster under DataDir.
	// Env DATABASE_URL, flag --database-url. Default empty.
	DatabaseURL string
	// LogLevel is the minimum level logged: debug, info, warn or error.
	// Env SUBS_LOG_LEVEL, flag --log-level. Default "info".
	LogLevel string
	// LogFormat is how log lines are written to stderr: text or json.
	// Env SUBS_LOG_FORMAT, flag --log-format. Default "text".
	LogFormat string
	// ShutdownTimeout bounds how long serve waits for in-flight requests
	// after SIGINT or SIGTERM before closing their connections.
	// Env SUBS_SHUTDOWN_TIMEOUT, flag --shutdown-timeout. Default 15s.
	ShutdownTimeout time.Duration
	// Clock is where the engine reads the time: system (the machine's clock)
	// or simulated (starts at ClockStart and moves only by command).
	// Env SUBS_CLOCK, flag --clock. Default "system".
	Clock string
	// ClockStart is the simulated clock's first instant; zero means the
	// machine's time at start. Ignored for the system clock.
	// Env SUBS_CLOCK_START, flag --clock-start (RFC 3339). Default zero.
	ClockStart time.Time
	// Schedule is the cron spec (with seconds, or a descriptor such as
	// @hourly) of the worker runs on the system clock: renewal notices,
	// charges, retries, trial ends. Env SUBS_SCHEDULE, flag --schedule.
	// Default "0 * * * * *": every minute.
	Schedule string
	// SimulatedSchedule is the cron spec of the runs a simulated clock's
	// advance makes on its way; the due actions between them also run at
	// their own instant. Env SUBS_SIMULATED_SCHEDULE, flag
	// --simulated-schedule. Default "@hourly".
	SimulatedSchedule string
	// NATSURL names the NATS server (with JetStream) events are published
	// to. Empty means serve embeds one, storing in DataDir/nats and
	// listening on 127.0.0.1:NATSPort, and tail connects to that one.
	// Env NATS_URL, flag --nats-url. Default empty.
	NATSURL string
	// NATSPort is the loopback port of the embedded NATS server; when it is
	// taken, serve picks a free one and says so. 0 (flag) or -1 picks a free
	// port. Env SUBS_NATS_PORT, flag --nats-port. Default 4222.
	NATSPort int
	// NoPublisher turns off serve's publisher, so that it can run as a
	// process of its own (several may run: one publishes at a time).
	// Env SUBS_PUBLISHER=false, flag --publisher=false. Default false: serve
	// publishes.
	NoPublisher bool
	// PublicURL is where customers open the links of their e-mails (the
	// password reset page). Env SUBS_PUBLIC_URL, flag --public-url. Default
	// the HTTP server's own URL.
	PublicURL string
	// SMTPURL names the mail server customer e-mails are sent through
	// (smtp://user:pass@host:587, smtps://…). Empty writes them as .eml files
	// to DataDir/mail instead. Env SMTP_URL, flag --smtp-url. Default empty.
	SMTPURL string
	// GatewayURL names the payment gateway (a `subs gateway` sandbox or an
	// adapter speaking its API). Empty runs the sandbox in-process, on the
	// engine's database and clock. Env SUBS_GATEWAY_URL, flag --gateway-url.
	// Default empty.
	GatewayURL string
	// SecretKey is the engine's secret (at least 32 bytes, hex or base64):
	// it derives password-reset tokens and encrypts stored idempotent
	// answers, so every process of one engine needs the same. Env
	// SUBS_SECRET_KEY only, never a flag (it would show in ps). Default
	// empty: the key in DataDir/secret.key, made on first start.
	SecretKey string
	// TailDurable is the name of tail's durable JetStream consumer: a tail
	// started again with the same name resumes where the last one stopped.
	// Env SUBS_TAIL_DURABLE, flag --durable. Default "subs-tail".
	TailDurable string
	// TailSubject filters the events tail prints, e.g.
	// "subs.events.subscription.>". Env SUBS_TAIL_SUBJECT, flag --subject.
	// Default "subs.events.>".
	TailSubject string
	// AuditAsOf, when set, limits `audit history` to the events recorded at
	// or before it (AUD-2). Flag --as-of (RFC 3339) only. Default zero.
	AuditAsOf time.Time
	// AuditStream limits `audit export` to one stream. Flag --stream only.
	// Default empty: the whole log.
	AuditStream string
}

// setDefaults fills every zero field with its default.
func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.LogFormat == "" {
		c.LogFormat = "text"
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	if c.Clock == "" {
		c.Clock = ClockSystem
	}
	if c.NATSPort == 0 {
		c.NATSPort = 4222
	}
	if c.Schedule == "" {
		c.Schedule = schedule.DefaultSpec
	}
	if c.SimulatedSchedule == "" {
		c.SimulatedSchedule = "@hourly"
	}
	if c.TailDurable == "" {
		c.TailDurable = "subs-tail"
	}
	if c.TailSubject == "" {
		c.TailSubject = "subs.events.>"
	}
}

// Validate reports every invalid field of c, each error naming the field,
// its flag and its environment variable.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("addr (--addr, SUBS_ADDR): empty: give a host:port such as 127.0.0.1:8080"))
	} else if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr (--addr, SUBS_ADDR): %q is not host:port: %v", c.Addr, err))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir (--data-dir, SUBS_DATA_DIR): empty: give a directory such as ./data"))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("log level (--log-level, SUBS_LOG_LEVEL): %w", err))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log format (--log-format, SUBS_LOG_FORMAT): %q: use text or json", c.LogFormat))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shutdown timeout (--shutdown-timeout, SUBS_SHUTDOWN_TIMEOUT): %s: must be positive, e.g. 15s", c.ShutdownTimeout))
	}
	for _, s := range []struct{ name, spec string }{
		{"schedule (--schedule, " + EnvSchedule + ")", c.Schedule},
		{"simulated schedule (--simulated-schedule, " + EnvSimSchedule + ")", c.SimulatedSchedule},
	} {
		if err := schedule.CheckSpec(s.spec); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		}
	}
	if c.Clock != ClockSystem && c.Clock != ClockSimulated {
		errs = append(errs, fmt.Errorf("clock (--clock, SUBS_CLOCK): %q: use system or simulated", c.Clock))
	}
	if c.NATSPort < -1 || c.NATSPort > 65535 {
		errs = append(errs, fmt.Errorf("NATS port (--nats-port, SUBS_NATS_PORT): %d is not a TCP port (0 picks a free one)", c.NATSPort))
	}
	for _, u := range []struct{ name, value string }{
		{"public URL (--public-url, SUBS_PUBLIC_URL)", c.PublicURL},
		{"gateway URL (--gateway-url, SUBS_GATEWAY_URL)", c.GatewayURL},
	} {
		if p, err := url.Parse(u.value); u.value != "" && (err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "") {
			errs = append(errs, fmt.Errorf("%s: %q: give an http:// or https:// URL", u.name, u.value))
		}
	}
	if p, err := url.Parse(c.SMTPURL); c.SMTPURL != "" && (err != nil || (p.Scheme != "smtp" && p.Scheme != "smtps") || p.Host == "") {
		errs = append(errs, fmt.Errorf("SMTP URL (--smtp-url, SMTP_URL): %s: give smtp://host:port or smtps://host:port", redactDatabaseURL(c.SMTPURL)))
	}
	if c.NATSURL != "" && !strings.Contains(c.NATSURL, "://") && !strings.Contains(c.NATSURL, ":") {
		errs = append(errs, fmt.Errorf("NATS URL (--nats-url, NATS_URL): %q: give a URL such as nats://127.0.0.1:4222", c.NATSURL))
	}
	if c.TailDurable == "" || strings.ContainsAny(c.TailDurable, ". *>\t\r\n/\\") {
		errs = append(errs, fmt.Errorf("durable (--durable, SUBS_TAIL_DURABLE): %q: give a name without '.', spaces, wildcards or slashes", c.TailDurable))
	}
	if c.TailSubject == "" || strings.ContainsAny(c.TailSubject, " \t\r\n") {
		errs = append(errs, fmt.Errorf("subject (--subject, SUBS_TAIL_SUBJECT): %q: give a subject such as subs.events.>", c.TailSubject))
	}
	return errors.Join(errs...)
}

// loadEnv overrides c's fields with the variables getenv reports set.
func (c *Config) loadEnv(getenv func(string) string) error {
	setString := func(dst *string, name string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	setString(&c.Addr, EnvAddr)
	setString(&c.DataDir, EnvDataDir)
	setString(&c.DatabaseURL, EnvDatabaseURL)
	setString(&c.LogLevel, EnvLogLevel)
	setString(&c.LogFormat, EnvLogFormat)
	setString(&c.Clock, EnvClock)
	setString(&c.NATSURL, EnvNATSURL)
	setString(&c.TailDurable, EnvTailDurable)
	setString(&c.TailSubject, EnvTailSubject)
	setString(&c.PublicURL, EnvPublicURL)
	setString(&c.SMTPURL, EnvSMTPURL)
	setString(&c.GatewayURL, EnvGatewayURL)
	setString(&c.SecretKey, EnvSecretKey)
	setString(&c.Schedule, EnvSchedule)
	setString(&c.SimulatedSchedule, EnvSimSchedule)
	var errs []error
	if v := getenv(EnvShutdownTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a duration such as 15s", EnvShutdownTimeout, v))
		}
		c.ShutdownTimeout = d
	}
	if v := getenv(EnvClockStart); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not an RFC 3339 time such as 2026-01-31T09:00:00Z", EnvClockStart, v))
		}
		c.ClockStart = t
	}
	if v := getenv(EnvNATSPort); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a port number such as 4222", EnvNATSPort, v))
		}
		if p == 0 {
			p = -1 // a free port, as 0 is for the flag; setDefaults would take 0 for unset
		}
		c.NATSPort = p
	}
	if v := getenv(EnvPublisher); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q: use true or false", EnvPublisher, v))
		}
		c.NoPublisher = !on
	}
	return errors.Join(errs...)
}

// The groups of flags a subcommand takes.
const (
	flagsDataDir     = 1 << iota // --data-dir
	flagsDatabaseURL             // --database-url
	flagsLog                     // --log-level, --log-format
	flagsServe                   // --addr, --shutdown-timeout, --clock, --clock-start
	flagsNATS                    // --nats-url, --nats-port
	flagsPublisher               // --publisher
	flagsTail                    // --durable, --subject
	flagsAuditAsOf               // --as-of
	flagsAuditStream             // --stream
	flagsEngine                  // --public-url, --smtp-url
	flagsGateway                 // --gateway-url
)

// bindFlags registers on fs the flags of the given groups, with c's current
// values as their defaults, so that parsing fs overrides c.
func (c *Config) bindFlags(fs *flag.FlagSet, groups int) {
	if groups&flagsServe != 0 {
		fs.StringVar(&c.Addr, "addr", c.Addr, "HTTP listen `host:port` ("+EnvAddr+")")
		fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "time in-flight requests get to finish on shutdown ("+EnvShutdownTimeout+")")
		fs.StringVar(&c.Clock, "clock", c.Clock, "clock `kind`: system or simulated ("+EnvClock+")")
		fs.Func("clock-start", "first `instant` of the simulated clock, RFC 3339; default now ("+EnvClockStart+")", func(s string) error {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return fmt.Errorf("%q is not an RFC 3339 time such as 2026-01-31T09:00:00Z", s)
			}
			c.ClockStart = t
			return nil
		})
		fs.StringVar(&c.Schedule, "schedule", c.Schedule, "cron `spec` of the worker runs, with seconds ("+EnvSchedule+")")
		fs.StringVar(&c.SimulatedSchedule, "simulated-schedule", c.SimulatedSchedule,
			"cron `spec` of the runs of a simulated clock's advance ("+EnvSimSchedule+")")
	}
	if groups&flagsDataDir != 0 {
		fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "`directory` for local state; the private PostgreSQL cluster lives in its postgres/ ("+EnvDataDir+")")
	}
	if groups&flagsDatabaseURL != 0 {
		fs.Var(secretURLValue{&c.DatabaseURL}, "database-url", "PostgreSQL `URL`; empty starts a private cluster under the data dir ("+EnvDatabaseURL+")")
	}
	if groups&flagsLog != 0 {
		fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "minimum log `level`: debug, info, warn or error ("+EnvLogLevel+")")
		fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log `format`: text or json ("+EnvLogFormat+")")
	}
	if groups&flagsNATS != 0 {
		fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "NATS `URL` (JetStream); empty: the embedded server on 127.0.0.1:--nats-port ("+EnvNATSURL+")")
		fs.IntVar(&c.NATSPort, "nats-port", c.NATSPort, "loopback `port` of the embedded NATS server, 0 for a free one ("+EnvNATSPort+")")
	}
	if groups&flagsPublisher != 0 {
		fs.Var(invertedBool{&c.NoPublisher}, "publisher", "publish every event on NATS JetStream; false to run the publisher elsewhere ("+EnvPublisher+")")
	}
	if groups&flagsEngine != 0 {
		fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "`URL` customers open e-mailed links at; default the server's ("+EnvPublicURL+")")
		fs.Var(secretURLValue{&c.SMTPURL}, "smtp-url", "mail server `URL` (smtp:// or smtps://); empty writes .eml files to the data dir's mail/ ("+EnvSMTPURL+")")
	}
	if groups&flagsGateway != 0 {
		fs.StringVar(&c.GatewayURL, "gateway-url", c.GatewayURL, "payment gateway `URL` (subs gateway); empty: the sandbox in-process, on the engine's database ("+EnvGatewayURL+")")
	}
	if groups&flagsTail != 0 {
		fs.StringVar(&c.TailDurable, "durable", c.TailDurable, "durable consumer `name`: a tail with the same name resumes where the last stopped ("+EnvTailDurable+")")
		fs.StringVar(&c.TailSubject, "subject", c.TailSubject, "print only events on this `subject`, wildcards allowed ("+EnvTailSubject+")")
	}
	if groups&flagsAuditAsOf != 0 {
		fs.Func("as-of", "history: show the stream as it stood at this `instant`, RFC 3339 (AUD-2)", func(s string) error {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return fmt.Errorf("%q is not an RFC 3339 time such as 2027-03-01T00:00:00Z", s)
			}
			c.AuditAsOf = t
			return nil
		})
	}
	if groups&flagsAuditStream != 0 {
		fs.StringVar(&c.AuditStream, "stream", c.AuditStream, "export: only this `stream` (e.g. subscription-0190…); default the whole log")
	}
}

// invertedBool is a boolean flag that sets the negation of *p, for a
// setting on by default whose Config field says "off".
type invertedBool struct{ p *bool }

func (v invertedBool) String() string {
	if v.p == nil {
		return "" // the flag package's zero value, so that usage shows "default true"
	}
	return strconv.FormatBool(!*v.p)
}

func (v invertedBool) Set(s string) error {
	on, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("use true or false")
	}
	*v.p = !on
	return nil
}

// IsBoolFlag lets --publisher stand alone for --publisher=true.
func (v invertedBool) IsBoolFlag() bool { return true }

// parseLevel maps a level name to its slog level.
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil || s == "" {
		return 0, fmt.Errorf("%q: use debug, info, warn or error", s)
	}
	return l, nil
}

// secretURLValue is a flag.Value for a database URL whose password never
// shows in usage output.
type secretURLValue struct{ p *string }

func (v secretURLValue) String() string {
	if v.p == nil {
		return ""
	}
	return redactDatabaseURL(*v.p)
}

func (v secretURLValue) Set(s string) error {
	*v.p = s
	return nil
}
