package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/api"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/eventstore/pgcluster"
)

// Main is the subs program: ParseFlags chooses a subcommand and builds the
// configuration, Run runs it, Close releases what Run left open. The
// end-to-end tests drive Main in-process, so tests and production start the
// engine the same way.
type Main struct {
	// Config is the configuration ParseFlags built from defaults, environment
	// and flags. Tests may adjust it between ParseFlags and Run.
	Config Config
	// Stdout receives command output (version, migrate's report).
	Stdout io.Writer
	// Stderr receives logs, usage and the banner serve prints at start.
	Stderr io.Writer
	// Getenv reads the environment. Tests replace it so that they need not
	// touch the process environment. Default os.Getenv.
	Getenv func(string) string
	// Logger is the structured logger ParseFlags built from the
	// configuration; every part of the engine logs through it.
	Logger *slog.Logger
	// Clock is the engine's clock, built by Run for serve from Config.Clock.
	Clock clock.Clock

	command  *command
	args     []string // positional arguments after the subcommand's flags
	ready    chan struct{}
	closeErr error

	mu      sync.Mutex
	closed  bool
	server  *api.Server
	pool    *pgxpool.Pool
	cluster *pgcluster.Cluster
	natsURL string // the embedded NATS server's, once serve started it
}

// NewMain returns a Main writing to the process's stdout and stderr and
// reading the process environment.
func NewMain() *Main {
	return &Main{
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Getenv: os.Getenv,
		ready:  make(chan struct{}),
	}
}

// command is one subcommand: its name, what it does, its flags and its body.
type command struct {
	name    string
	usage   string // arguments after the name
	summary string
	flags   int // flag groups, see bindFlags
	run     func(m *Main, ctx context.Context) error
	nargs   func(args []string) error // checks the positional arguments
}

// commands lists the subcommands in the order help shows them. It is set in
// init because help refers back to it.
var commands []*command

func init() {
	commands = []*command{
		{name: "serve", summary: "run the engine: migrate the database, then serve HTTP until SIGINT or SIGTERM",
			flags: flagsServe | flagsDataDir | flagsDatabaseURL | flagsLog | flagsNATS | flagsPublisher | flagsEngine | flagsGateway, run: (*Main).runServe, nargs: noArgs},
		{name: "migrate", summary: "apply the database migrations this binary embeds, print them and exit",
			flags: flagsDataDir | flagsDatabaseURL | flagsLog, run: (*Main).runMigrate, nargs: noArgs},
		{name: "gateway", summary: "run the sandbox payment gateway over HTTP until SIGINT or SIGTERM", flags: flagsDataDir | flagsDatabaseURL | flagsLog, run: (*Main).runGateway, nargs: noArgs},
		{name: "tail", summary: "print every event published on NATS JetStream as it arrives, through a durable consumer",
			flags: flagsNATS | flagsTail | flagsLog, run: (*Main).runTail, nargs: noArgs},
		{name: "audit", usage: auditUsage, summary: "replay a stream's history, verify the whole log's hash chain, or export events as JSON Lines",
			flags: flagsDataDir | flagsDatabaseURL | flagsLog | flagsAuditAsOf | flagsAuditStream, run: (*Main).runAudit, nargs: auditArgs},
		{name: "keys", usage: keysUsage, summary: "mint a retailer's batch of boxed product keys (unregistered subscriptions); prints KEY SERIAL SUBSCRIPTION_ID per key", flags: keysFlags, run: (*Main).runKeys, nargs: keysArgs},
		{name: "accounts", usage: accountsUsage, summary: "erase an account's personal data (crypto-shredding, AUD-5): its history still replays and verifies", flags: accountsFlags, run: (*Main).runAccounts, nargs: accountsArgs},
		{name: "agents", usage: agentsUsage, summary: "add a support agent; prints the agent's credential, shown this once and stored only as a hash", flags: agentsFlags, run: (*Main).runAgents, nargs: agentsArgs},
		{name: "ledger", usage: ledgerUsage, summary: "reconcile the engine's charge ledger with the payment gateway's (ARS-8); exit 0 when they agree, 1 when they differ, 2 on error", flags: ledgerFlags, run: (*Main).runLedger, nargs: ledgerArgs},
		{name: "projections", usage: projectionsUsage, summary: "show each read model's checkpoint and lag, or rebuild one (or all) from the log into shadow tables and swap them in", flags: projectionsFlags, run: (*Main).runProjections, nargs: projectionsArgs},
		{name: "simulate", summary: "move a population of customers through a simulated year with the engine's real workers on a database of its own, and print the report (exit 1 when an invariant fails)",
			flags: simulateFlags, run: (*Main).runSimulate, nargs: noArgs},
		{name: "postgres", usage: "start|stop|status", summary: "manage the private PostgreSQL cluster in <data-dir>/postgres",
			flags: flagsDataDir | flagsLog, run: (*Main).runPostgres, nargs: postgresArgs},
		{name: "version", summary: "print the version and exit", run: func(m *Main, _ context.Context) error { return m.runVersion() }, nargs: noArgs},
		{name: "help", usage: "[command]", summary: "list the commands, or show one command's flags", run: (*Main).runHelp, nargs: helpArgs},
	}
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// usageError is a command line that cannot be run; main exits 2 on it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg + " (run `subs help` for usage)" }

// exitError is an error of Run's that sets main's exit code, for a command
// whose codes say more than success or failure (`subs ledger reconcile`,
// `subs simulate`).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode is main's exit code for Run's error: 0 for nil, the code of the
// command's own exit codes when it set one, 1 otherwise.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := errors.AsType[*exitError](err); ok {
		return e.code
	}
	return 1
}

// ParseFlags chooses the subcommand named by args[0] and builds Config from
// the defaults, the environment (Getenv) and the subcommand's flags, in
// increasing precedence, then validates it and builds Logger. args excludes
// the program name. It returns flag.ErrHelp after printing usage when help
// is asked for with -h, and an error naming the problem for a bad command
// line or an invalid configuration.
func (m *Main) ParseFlags(_ context.Context, args []string) error {
	if len(args) == 0 {
		m.printUsage(m.Stderr)
		return &usageError{"no command given"}
	}
	name := args[0]
	if name == "-h" || name == "-help" || name == "--help" {
		m.printUsage(m.Stderr)
		return flag.ErrHelp
	}
	cmd := findCommand(name)
	if cmd == nil {
		return &usageError{fmt.Sprintf("unknown command %q", name)}
	}
	m.command = cmd

	var cfg Config
	if err := cfg.loadEnv(m.getenv); err != nil {
		return fmt.Errorf("invalid environment: %w", err)
	}
	cfg.setDefaults()
	fs := m.newFlagSet(cmd, &cfg)
	rest := args[1:]
	var leading []string // a subcommand action before the flags: `postgres stop --data-dir x`
	if cmd.name == "postgres" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		leading, rest = rest[:1], rest[1:]
	}
	for cmd.name == "audit" && len(leading) < 2 && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		leading, rest = append(leading, rest[0]), rest[1:] // `audit history STREAM --as-of T`
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{fmt.Sprintf("%s: %v", cmd.name, err)}
	}
	m.args = append(leading, fs.Args()...)
	if err := cmd.nargs(m.args); err != nil {
		return &usageError{fmt.Sprintf("%s: %v", cmd.name, err)}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	m.Config = cfg
	m.Logger = newLogger(m.Stderr, cfg)
	return nil
}

func (m *Main) getenv(name string) string {
	if m.Getenv == nil {
		return os.Getenv(name)
	}
	return m.Getenv(name)
}

// newFlagSet returns cmd's flag set, bound to cfg, printing its usage on
// Stderr.
func (m *Main) newFlagSet(cmd *command, cfg *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("subs "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	cfg.bindFlags(fs, cmd.flags)
	m.bindCommandFlags(fs, cmd, cfg)
	m.bindAuditFlags(fs, cmd)
	m.bindSimulateFlags(fs, cmd, cfg)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: subs %s", cmd.name)
		if cmd.usage != "" {
			fmt.Fprintf(out, " %s", cmd.usage)
		}
		if cmd.flags != 0 {
			fmt.Fprint(out, " [flags]")
		}
		fmt.Fprintf(out, "\n\n%s.\n", capitalize(cmd.summary))
		if cmd.flags != 0 {
			fmt.Fprintln(out, "\nFlags (each overrides the environment variable in parentheses):")
			fs.PrintDefaults()
		}
	}
	return fs
}

// printUsage lists the subcommands.
func (m *Main) printUsage(w io.Writer) {
	fmt.Fprintln(w, "subs runs the subscription lifecycle engine.")
	fmt.Fprintln(w, "\nUsage: subs <command> [flags]")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-28s %s\n", strings.TrimSpace(c.name+" "+c.usage), c.summary)
	}
	fmt.Fprintln(w, "\nRun `subs help <command>` or `subs <command> -h` for a command's flags.")
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// Run runs the subcommand ParseFlags chose. For serve it blocks until ctx is
// canceled (SIGINT, SIGTERM), then shuts down gracefully and returns nil.
// Whatever Run opens it closes before returning. Call Run at most once per
// Main.
func (m *Main) Run(ctx context.Context) error {
	if m.command == nil {
		return errors.New("Run called before a successful ParseFlags")
	}
	return m.command.run(m, ctx)
}

// Ready returns a channel closed once serve accepts HTTP connections, so
// that HTTPAddr is valid. It stays open when Run fails before that, so wait
// on it together with Run's result.
func (m *Main) Ready() <-chan struct{} {
	return m.ready
}

// HTTPAddr returns the address (host:port) serve's HTTP server is bound to,
// or "" before it listens. With --addr 127.0.0.1:0 it reports the port the
// system chose.
func (m *Main) HTTPAddr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.server == nil {
		return ""
	}
	return m.server.Addr()
}

// Close releases whatever Run left open: it stops the HTTP server, closes
// the database pool and stops the private PostgreSQL cluster if Run started
// it. It is safe to call more than once and without Run.
func (m *Main) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return m.closeErr
	}
	m.closed = true
	server, pool, cluster := m.server, m.pool, m.cluster
	m.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout+stopClusterTimeout)
	defer cancel()
	var errs []error
	if server != nil {
		errs = append(errs, server.Shutdown(ctx))
	}
	if pool != nil {
		pool.Close()
	}
	if cluster != nil {
		if err := cluster.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop the private PostgreSQL cluster: %w", err))
		} else {
			m.logger().Info("stopped the private PostgreSQL cluster")
		}
	}
	m.closeErr = errors.Join(errs...)
	return m.closeErr
}

// logger returns Logger, or a discarding one before ParseFlags built it.
func (m *Main) logger() *slog.Logger {
	if m.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return m.Logger
}

// newLogger builds the structured logger cfg asks for, writing to w.
func newLogger(w io.Writer, cfg Config) *slog.Logger {
	level, _ := parseLevel(cfg.LogLevel) // validated
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// runHelp prints the command list, or one command's usage.
func (m *Main) runHelp(context.Context) error {
	if len(m.args) == 0 {
		m.printUsage(m.Stdout)
		return nil
	}
	cmd := findCommand(m.args[0])
	if cmd == nil {
		return &usageError{fmt.Sprintf("help: unknown command %q", m.args[0])}
	}
	var cfg Config
	cfg.setDefaults()
	fs := m.newFlagSet(cmd, &cfg)
	fs.SetOutput(m.Stdout)
	fs.Usage()
	return nil
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q", args[0])
	}
	return nil
}

func helpArgs(args []string) error {
	if len(args) > 1 {
		return fmt.Errorf("unexpected argument %q", args[1])
	}
	return nil
}

func postgresArgs(args []string) error {
	if len(args) != 1 {
		return errors.New("say start, stop or status, e.g. `subs postgres stop --data-dir ./data`")
	}
	switch args[0] {
	case "start", "stop", "status":
		return nil
	}
	return fmt.Errorf("unknown action %q: say start, stop or status", args[0])
}
