package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/subs-engine/subs/workers/gateway"
)

// defaultGatewayAddr is where `subs gateway` listens unless told otherwise:
// next to serve's 8080, so both run on one machine with their defaults.
const defaultGatewayAddr = "127.0.0.1:8090"

// gatewayOptions are the settings of `subs gateway` that are not the
// engine's: they configure the simulated payment service, not subs.
type gatewayOptions struct {
	addr             string
	latency          time.Duration
	failureRate      float64
	lostResponseRate float64
	seed             int64
}

// bind registers the gateway's flags on fs, validating each value as it is
// parsed so that a bad one is a usage error.
func (o *gatewayOptions) bind(fs *flag.FlagSet, cfg *Config) {
	fs.StringVar(&o.addr, "addr", o.addr, "HTTP listen `host:port` of the sandbox gateway")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "time in-flight requests get to finish on shutdown ("+EnvShutdownTimeout+")")
	fs.Func("latency", "`duration` added to every gateway call, e.g. 250ms (default 0s)", func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return fmt.Errorf("%q is not a non-negative duration such as 250ms", s)
		}
		o.latency = d
		return nil
	})
	rate := func(dst *float64) func(string) error {
		return func(s string) error {
			r, err := strconv.ParseFloat(s, 64)
			if err != nil || !(r >= 0 && r <= 1) {
				return fmt.Errorf("%q is not a probability from 0 to 1", s)
			}
			*dst = r
			return nil
		}
	}
	fs.Func("failure-rate", "`probability` (0 to 1) that a call fails as unavailable before doing anything (default 0)", rate(&o.failureRate))
	fs.Func("lost-response-rate", "`probability` (0 to 1) that a charge or refund is made but answered as unavailable (default 0)", rate(&o.lostResponseRate))
	fs.Int64Var(&o.seed, "seed", o.seed, "`seed` of the failure draws, to repeat a run")
}

// bindCommandFlags registers the flags of subcommands whose settings are not
// part of Config (only gateway's so far) on fs, which newFlagSet built for
// cmd. When ParseFlags is parsing cmd to run it, Main's command becomes a
// copy of cmd that runs with the values parsed; help binds them only to
// print them.
func (m *Main) bindCommandFlags(fs *flag.FlagSet, cmd *command, cfg *Config) {
	if cmd.name != "gateway" {
		return
	}
	opts := &gatewayOptions{addr: defaultGatewayAddr}
	opts.bind(fs, cfg)
	if m.command == cmd {
		run := *cmd
		run.run = func(m *Main, ctx context.Context) error { return m.serveGateway(ctx, opts) }
		m.command = &run
	}
}

// runGateway is `subs gateway` with the default options; ParseFlags
// replaces it with one bound to the flags (bindCommandFlags).
func (m *Main) runGateway(ctx context.Context) error {
	return m.serveGateway(ctx, &gatewayOptions{addr: defaultGatewayAddr})
}

// serveGateway runs the sandbox payment gateway over HTTP (DESIGN §6): it
// opens the database as serve does (DATABASE_URL or the private cluster),
// creates the sandbox's own schema there, serves the gateway's API until
// ctx is canceled (SIGINT, SIGTERM), then drains in-flight requests within
// Config.ShutdownTimeout and closes what it opened. The engine's
// migrations are not applied: the sandbox stands for an outside service.
func (m *Main) serveGateway(ctx context.Context, opts *gatewayOptions) (err error) {
	defer func() { err = errors.Join(err, m.Close()) }()
	log := m.logger()
	m.Clock = newClock(m.Config)

	db, err := m.openDatabase(ctx)
	if err != nil {
		return err
	}
	sandbox, err := gateway.NewSandbox(ctx, db.pool, gateway.SandboxConfig{
		Clock:            m.Clock,
		Latency:          opts.latency,
		FailureRate:      opts.failureRate,
		LostResponseRate: opts.lostResponseRate,
		Seed:             opts.seed,
	})
	if err != nil {
		return err
	}
	// The gateway has its own HTTP server rather than the engine's
	// api.Server: it stands for an outside service and must not depend on
	// the engine's middleware (sessions, idempotency tables, password
	// hashing) or schema.
	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return fmt.Errorf("gateway: listen on %s: %w (choose another address with --addr)", opts.addr, err)
	}
	server := &http.Server{
		Handler:           gateway.NewHandler(sandbox, log),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() {
		if err := server.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- fmt.Errorf("gateway: serve: %w", err)
		}
	}()
	defer server.Close() // after a graceful Shutdown this is a no-op

	url := "http://" + ln.Addr().String()
	log.Info("sandbox gateway serving", slog.String("url", url), slog.String("database", db.shown),
		slog.Duration("latency", opts.latency), slog.Float64("failure_rate", opts.failureRate),
		slog.Float64("lost_response_rate", opts.lostResponseRate), slog.Int64("seed", opts.seed))
	// The test card numbers are documented in package workers/gateway, not
	// printed: SEC-3 tests grep logs for every card number used.
	fmt.Fprintf(m.Stderr, `
subs %s sandbox payment gateway is serving at %s
  POST %s/v1/tokens/cards, /v1/tokens/direct-debits, /v1/charges, /v1/refunds; GET /v1/charges
  test cards and IBANs: Stripe's, listed in package workers/gateway (go doc ./workers/gateway)
  latency %s, failure rate %g, lost-response rate %g, seed %d
  database: %s
Stop with Ctrl-C (SIGINT) or SIGTERM.

`, Version(), url, url, opts.latency, opts.failureRate, opts.lostResponseRate, opts.seed, db.shown)
	close(m.ready) // after the banner, which tells tests the address

	select {
	case <-ctx.Done():
		log.Info("shutting down: no new connections; waiting for in-flight requests",
			slog.Duration("timeout", m.Config.ShutdownTimeout))
	case err := <-serveErr:
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.Config.ShutdownTimeout)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("gateway: shutdown: in-flight requests did not finish in time: %w", err)
	}
	log.Info("sandbox gateway stopped")
	return nil
}
