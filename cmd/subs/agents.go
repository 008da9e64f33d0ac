package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/subs-engine/subs/api/agentauth"
)

// agentsUsage is `subs agents`'s usage line after the command name.
const agentsUsage = "add --id ID --name NAME [--role auditor]"

// agentsFlags are the flag groups of Config that `subs agents add` takes
// after the action, besides its own.
const agentsFlags = flagsDataDir | flagsDatabaseURL | flagsLog

// agentOptions are the flags of `subs agents add`.
type agentOptions struct {
	id, name, role string
}

// agentsFlagSet returns the flag set of `subs agents add`: its own flags
// bound to opts and Config's bound to cfg.
func agentsFlagSet(opts *agentOptions, cfg *Config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("subs agents add", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&opts.id, "id", "", "the agent's `id`, recorded with every event the agent causes: lower-case letters, digits, . _ - (required)")
	fs.StringVar(&opts.name, "name", "", "the agent's display `name` (required)")
	fs.StringVar(&opts.role, "role", "", "an extra `role`: auditor (replays and exports histories)")
	cfg.bindFlags(fs, agentsFlags)
	return fs
}

// agent resolves the options into the agent to add.
func (o agentOptions) agent() (agentauth.Agent, error) {
	a := agentauth.Agent{ID: o.id, Name: o.name}
	if o.role != "" {
		a.Roles = []string{o.role}
	}
	if o.id == "" || o.name == "" {
		return a, errors.New("--id and --name are required")
	}
	return a, a.Validate()
}

// agentsArgs checks `subs agents`'s arguments: the action add and its flags.
func agentsArgs(args []string) error {
	if len(args) == 0 || args[0] != "add" {
		return errors.New("say add, e.g. `subs agents add --id ava --name 'Ava Ngo'`")
	}
	var opts agentOptions
	var cfg Config
	cfg.setDefaults()
	fs := agentsFlagSet(&opts, &cfg, io.Discard)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	_, err := opts.agent()
	return err
}

// runAgents is `subs agents add`: it records a support agent (SEC-2) and
// prints its credential once — the only time it is shown; the database
// keeps its SHA-256. It migrates the database first, as serve does.
func (m *Main) runAgents(ctx context.Context) (err error) {
	defer func() { err = errors.Join(err, m.Close()) }()
	var opts agentOptions
	cfg := m.Config
	if err := agentsFlagSet(&opts, &cfg, m.Stderr).Parse(m.args[1:]); err != nil {
		return &usageError{"agents: " + err.Error()}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	m.Config, m.Logger = cfg, newLogger(m.Stderr, cfg)
	a, err := opts.agent()
	if err != nil {
		return &usageError{"agents: " + err.Error()}
	}
	db, err := m.openDatabase(ctx)
	if err != nil {
		return err
	}
	if _, _, err := m.migrateDatabase(ctx, db); err != nil {
		return err
	}
	credential, err := agentauth.New(db.pool).Add(ctx, a, systemClock{}.Now())
	if err != nil {
		return fmt.Errorf("agents: %s: %w", a.ID, err)
	}
	_, err = fmt.Fprintf(m.Stdout, "%s\n", credential)
	return err
}
