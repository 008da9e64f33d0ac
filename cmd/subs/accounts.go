package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/api"
	"github.com/subs-engine/subs/eventstore"
)

// accountsUsage is `subs accounts`'s usage line after the command name.
const accountsUsage = "erase ACCOUNT_ID --reason TEXT [--agent ID]"

// accountsFlags are the flag groups of Config that `subs accounts erase`
// takes after the action, besides its own.
const accountsFlags = flagsDataDir | flagsDatabaseURL | flagsLog

// eraseOptions are the flags of `subs accounts erase`.
type eraseOptions struct {
	reason, agent string
}

// accountsFlagSet returns the flag set of `subs accounts erase`: its own
// flags bound to opts and Config's bound to cfg, so that they may come after
// the action and the account id.
func accountsFlagSet(opts *eraseOptions, cfg *Config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("subs accounts erase", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&opts.reason, "reason", "", "why the account is erased, e.g. the customer's request and its ticket (required, recorded: AGT-1)")
	fs.StringVar(&opts.agent, "agent", "", "the support agent `id` who erases it; default the system")
	cfg.bindFlags(fs, accountsFlags)
	return fs
}

// accountsArgs checks `subs accounts`'s arguments: erase, an account id and
// the flags, which ParseFlags leaves to the action because they follow it.
func accountsArgs(args []string) error {
	if len(args) < 2 || args[0] != "erase" {
		return errors.New("say erase and an account id, e.g. `subs accounts erase 0190… --reason \"customer request #42\"`")
	}
	_, _, err := parseErase(args, io.Discard, &Config{})
	return err
}

// parseErase parses `erase ID flags…` into the account id and options, and
// Config's flags into cfg.
func parseErase(args []string, out io.Writer, cfg *Config) (uuid.UUID, eraseOptions, error) {
	var opts eraseOptions
	id, err := uuid.Parse(args[1])
	if err != nil {
		return uuid.Nil, opts, fmt.Errorf("%q is not an account id (a UUID)", args[1])
	}
	fs := accountsFlagSet(&opts, cfg, out)
	if err := fs.Parse(args[2:]); err != nil {
		return uuid.Nil, opts, err
	}
	switch {
	case fs.NArg() > 0:
		return uuid.Nil, opts, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case opts.reason == "":
		return uuid.Nil, opts, errors.New("--reason is required: it is recorded with the erasure")
	}
	return id, opts, nil
}

// runAccounts is `subs accounts erase ID --reason TEXT`: it erases the
// account's personal data (AUD-5; api.EraseAccount) — records account.erased
// by the agent or the system with the reason, destroys the data keys of the
// account and of its e-mail address, deletes its sessions and blanks its
// address in the orders saved in no account — and prints what it did. The
// read models of a running engine drop the account's rows as they apply
// account.erased. Erasing again changes nothing. It reads Main.Clock, the
// system clock unless a test set another.
func (m *Main) runAccounts(ctx context.Context) (err error) {
	defer func() { err = errors.Join(err, m.Close()) }()
	cfg := m.Config
	id, opts, err := parseErase(m.args, m.Stderr, &cfg)
	if err != nil {
		return &usageError{"accounts: " + err.Error()}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	m.Config, m.Logger = cfg, newLogger(m.Stderr, cfg)
	db, err := m.openDatabase(ctx)
	if err != nil {
		return err
	}
	if _, _, err := m.migrateDatabase(ctx, db); err != nil {
		return err
	}
	store, err := m.openStore(db)
	if err != nil {
		return err
	}
	meta := eventstore.Metadata{ActorKind: eventstore.ActorSystem, ActorID: "subs accounts erase", Reason: opts.reason}
	if opts.agent != "" {
		meta = eventstore.Metadata{ActorKind: eventstore.ActorAgent, ActorID: opts.agent, Reason: opts.reason}
	}
	clk := m.Clock
	if clk == nil {
		clk = systemClock{}
	}
	n, err := api.EraseAccount(ctx, api.Engine{Store: store, Types: eventTypes()}, clk, id, meta)
	if err != nil {
		return fmt.Errorf("erase account %s: %w", id, err)
	}
	_, err = fmt.Fprintf(m.Stdout, "account %s erased: %d data keys destroyed; its personal data reads as erased from now on\n", id, n)
	return err
}
