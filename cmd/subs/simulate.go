package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	catalogdata "github.com/subs-engine/subs/catalog"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/workers/mail"
	"github.com/subs-engine/subs/workers/simulation"
)

// simulateFlags are the flag groups of Config that `subs simulate` takes
// besides its own.
const simulateFlags = flagsDataDir | flagsDatabaseURL | flagsLog

// simulateOptions are the flags of `subs simulate`: the population and its
// behaviour (simulation.Config), and whether to keep the database.
type simulateOptions struct {
	sim  simulation.Config
	keep bool
}

// bind registers simulate's flags on fs; the shares are validated as they
// are parsed, so that a bad one is a usage error.
func (o *simulateOptions) bind(fs *flag.FlagSet, cfg *Config) {
	o.sim.Customers, o.sim.Days = 10_000, 365
	fs.IntVar(&o.sim.Customers, "customers", o.sim.Customers, "how many `customers` (one subscription each)")
	fs.IntVar(&o.sim.Days, "days", o.sim.Days, "how many simulated `days`, from 2027-01-01")
	fs.Uint64Var(&o.sim.Seed, "seed", 1, "`seed` of the population and its behaviour: the same seed, the same report")
	fs.BoolVar(&o.keep, "keep", false, "keep the simulation's database (and its e-mails) and print its name, instead of dropping it")
	fs.Var(secretURLValue{&cfg.SMTPURL}, "smtp-url", "mail server `URL` (smtp:// or smtps://); empty writes .eml files under the data dir's simulations/ ("+EnvSMTPURL+")")
	share := func(dst *float64, name, what string, def float64) {
		fs.Func(name, fmt.Sprintf("`share` (0 to 1) %s (default %g)", what, def), func(s string) error {
			r, err := strconv.ParseFloat(s, 64)
			if err != nil || !(r >= 0 && r <= 1) {
				return fmt.Errorf("%q is not a share from 0 to 1", s)
			}
			if r == 0 {
				r = -1 // none: simulation.Config takes a zero share for its default
			}
			*dst = r
			return nil
		})
	}
	c := &o.sim
	share(&c.MonthlyShare, "monthly-share", "of customers on a monthly plan", 0.3)
	share(&c.TrialShare, "trial-share", "of customers starting with a trial; the rest are annual", 0.2)
	share(&c.OptOutShare, "opt-out-share", "of trials that opt out before the charge", 0.3)
	share(&c.CancelShare, "cancel-share", "of plans cancelled (or renewal turned off) during the year", 0.1)
	share(&c.RefundShare, "refund-share", "of annual renewals whose customer asks for a refund", 0.05)
	share(&c.DeclinedCardShare, "declined-card-share", "of customers whose card is always declined", 0.03)
	share(&c.ExpiringCardShare, "expiring-card-share", "of customers whose card expires during the year", 0.05)
	share(&c.UpdateCardShare, "update-card-share", "of expiring cards updated after the decline e-mail", 0.5)
}

// bindSimulateFlags registers `subs simulate`'s own flags on fs, which
// newFlagSet built for cmd; when ParseFlags is parsing simulate to run it,
// Main's command becomes a copy that runs with the values parsed (as
// bindCommandFlags does for gateway).
func (m *Main) bindSimulateFlags(fs *flag.FlagSet, cmd *command, cfg *Config) {
	if cmd.name != "simulate" {
		return
	}
	opts := &simulateOptions{}
	opts.bind(fs, cfg)
	if m.command == cmd {
		run := *cmd
		run.run = func(m *Main, ctx context.Context) error { return m.simulate(ctx, opts) }
		m.command = &run
	}
}

// runSimulate is `subs simulate` with the default options; ParseFlags
// replaces it with one bound to the flags (bindSimulateFlags).
func (m *Main) runSimulate(ctx context.Context) error {
	opts := &simulateOptions{}
	opts.bind(flag.NewFlagSet("", flag.ContinueOnError), &m.Config)
	return m.simulate(ctx, opts)
}

// simulate is `subs simulate` (TIM-2): it creates a database of its own on
// the server (DATABASE_URL's, or the private cluster's), migrates it, moves
// a population through the simulated year with the engine's real workers,
// prints the report, the elapsed time and the throughput, and drops the
// database unless --keep. It fails with exit status 1 when an invariant
// failed, 2 on any other error.
func (m *Main) simulate(ctx context.Context, opts *simulateOptions) (err error) {
	defer func() {
		err = errors.Join(err, m.Close())
		if err != nil {
			if _, ok := errors.AsType[*exitError](err); !ok {
				err = &exitError{code: 2, err: err}
			}
		}
	}()
	if opts.sim.Customers < 1 || opts.sim.Days < 1 {
		return &usageError{"simulate: --customers and --days must be at least 1"}
	}
	began := time.Now()
	db, err := m.openDatabase(ctx)
	if err != nil {
		return err
	}
	name := "subs_sim_" + randomHex(6)
	if _, err := db.pool.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create the simulation's database %s on %s: %w", name, db.shown, err)
	}
	mailDir := filepath.Join(m.Config.DataDir, "simulations", name)
	defer func() {
		if opts.keep {
			fmt.Fprintf(m.Stdout, "kept the database %s on %s", name, db.shown)
			if m.Config.SMTPURL == "" {
				fmt.Fprintf(m.Stdout, " and its e-mails in %s", filepath.Join(mailDir, "mail", "new"))
			}
			fmt.Fprintln(m.Stdout)
			return
		}
		// The context may be canceled (SIGINT): the cleanup still runs.
		dropCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, derr := db.pool.Exec(dropCtx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); derr != nil {
			err = errors.Join(err, fmt.Errorf("drop the simulation's database %s: %w", name, derr))
		}
		err = errors.Join(err, os.RemoveAll(mailDir))
	}()
	pool, err := simulationPool(ctx, db.pool, name)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := eventstore.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("migrate the simulation's database %s: %w", name, err)
	}
	sender, err := simulationSender(m.Config.SMTPURL, mailDir)
	if err != nil {
		return err
	}
	cat, err := catalogdata.Load()
	if err != nil {
		return err
	}
	cfg := opts.sim
	cfg.Pool, cfg.Catalog, cfg.Mail, cfg.Logger = pool, cat, sender, m.logger()
	progress := m.simulateProgress()
	cfg.Progress = progress.day
	m.logger().Info("simulating", "customers", cfg.Customers, "days", cfg.Days, "database", name)
	r, err := simulation.Run(ctx, cfg)
	progress.done()
	if err != nil {
		return err
	}
	if err := r.Write(m.Stdout); err != nil {
		return err
	}
	secs := r.Elapsed.Seconds()
	years := float64(r.Customers) * float64(r.Days) / 365
	fmt.Fprintf(m.Stdout, "\nElapsed %s (%s simulating); %.0f customer-years, %d events: %.0f customer-years/s, %.0f events/s\n",
		time.Since(began).Round(100*time.Millisecond), r.Elapsed.Round(100*time.Millisecond), years, r.Events, years/secs, float64(r.Events)/secs)
	if !r.Passed() {
		var failed []string
		for _, c := range r.Checks {
			if !c.Passed {
				failed = append(failed, c.Name)
			}
		}
		return &exitError{code: 1, err: fmt.Errorf("%d invariants failed: %s", len(failed), strings.Join(failed, "; "))}
	}
	return nil
}

// simulationPool opens a pool on the database name of the server admin is
// connected to, with room for the simulation's concurrent workers. Its
// commits do not wait for the disk (synchronous_commit off): a crash would
// lose the simulation, which is thrown away anyway, and the year goes
// faster.
func simulationPool(ctx context.Context, admin *pgxpool.Pool, name string) (*pgxpool.Pool, error) {
	cfg := admin.Config().Copy()
	cfg.ConnConfig.Database = name
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	cfg.MaxConns = max(cfg.MaxConns, 16)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open the simulation's database %s: %w", name, err)
	}
	return pool, nil
}

// simulationSender is the engine's sender (mail.NewSender), except that a
// maildir of the simulation's own does not wait for the disk: it is thrown
// away with the simulation's database, whose commits do not wait either.
func simulationSender(smtpURL, dir string) (mail.Sender, error) {
	s, err := mail.NewSender(smtpURL, dir, "")
	if md, ok := s.(*mail.Maildir); ok {
		return md.Unsynced(), nil
	}
	return s, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// simProgress shows the simulated day: a bar redrawn on a terminal,
// a plain line every few seconds otherwise (a log, a CI job).
type simProgress struct {
	m        *Main
	terminal bool
	start    time.Time
	last     time.Time
	drawn    bool
}

// simulateProgress starts the progress display on Stderr.
func (m *Main) simulateProgress() *simProgress {
	now := time.Now()
	return &simProgress{m: m, terminal: isTerminal(m.Stderr), start: now, last: now}
}

// progressEvery is how often the plain progress lines come.
const progressEvery = 10 * time.Second

func (p *simProgress) day(day, days int) {
	now := time.Now()
	elapsed := now.Sub(p.start).Round(time.Second)
	if p.terminal {
		const width = 30
		filled := width * day / days
		fmt.Fprintf(p.m.Stderr, "\rday %d/%d [%s%s] %3d%%, %s elapsed ", day, days,
			strings.Repeat("=", filled), strings.Repeat(" ", width-filled), day*100/days, elapsed)
		p.drawn = true
		return
	}
	if now.Sub(p.last) >= progressEvery || day == days {
		p.last = now
		fmt.Fprintf(p.m.Stderr, "simulate: day %d/%d, %s elapsed\n", day, days, elapsed)
	}
}

// done ends the bar's line.
func (p *simProgress) done() {
	if p.drawn {
		fmt.Fprintln(p.m.Stderr)
	}
}
