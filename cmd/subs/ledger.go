package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/subs-engine/subs/workers/ledger"
)

// ledgerUsage is `subs ledger`'s usage line after the command name.
const ledgerUsage = "reconcile"

// ledgerFlags are the flag groups of Config that `subs ledger reconcile`
// takes, before or after its action: the engine's database and the
// gateway, nothing of the engine's other parts.
const ledgerFlags = flagsDataDir | flagsDatabaseURL | flagsLog | flagsGateway

// Exit codes of `subs ledger reconcile`.
const (
	exitLedgerDiffers = 1 // the ledgers differ
	exitLedgerFailed  = 2 // the reconciliation could not be made
)

// ledgerArgs checks `subs ledger`'s arguments: reconcile, then flags with
// valid values.
func ledgerArgs(args []string) error {
	cfg := Config{}
	cfg.setDefaults()
	if err := parseLedgerArgs(args, &cfg, io.Discard); err != nil {
		return err
	}
	return cfg.Validate()
}

// parseLedgerArgs checks the action and parses the flags after it into cfg.
func parseLedgerArgs(args []string, cfg *Config, out io.Writer) error {
	if len(args) == 0 || args[0] != "reconcile" {
		return errors.New("say reconcile, e.g. `subs ledger reconcile --gateway-url http://127.0.0.1:8090`")
	}
	fs := flag.NewFlagSet("subs ledger reconcile", flag.ContinueOnError)
	fs.SetOutput(out)
	cfg.bindFlags(fs, ledgerFlags)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// runLedger is `subs ledger reconcile`: it reads the engine's charge ledger
// from the database (DATABASE_URL or the private cluster) and the gateway's
// from Config.GatewayURL over HTTP — or, as serve does when it is empty,
// from the sandbox in-process on the engine's database — compares them
// (ARS-8; ledger.Reconcile) and prints the report. It writes nothing but
// the sandbox's schema, which serve would create too. Exit 0: the ledgers
// agree; 1: they differ; 2: the reconciliation failed.
func (m *Main) runLedger(ctx context.Context) error {
	report, err := m.reconcileLedger(ctx)
	switch {
	case err != nil:
		return &exitError{code: exitLedgerFailed, err: err}
	case !report.Clean():
		return &exitError{code: exitLedgerDiffers, err: fmt.Errorf("the charge ledgers differ: %d differences", len(report.Findings))}
	}
	return nil
}

// reconcileLedger reconciles the ledgers and writes the report on Stdout.
func (m *Main) reconcileLedger(ctx context.Context) (report ledger.Report, err error) {
	defer func() { err = errors.Join(err, m.Close()) }()
	cfg := m.Config
	if err := parseLedgerArgs(m.args, &cfg, m.Stderr); err != nil {
		return report, &usageError{"ledger: " + err.Error()}
	}
	if err := cfg.Validate(); err != nil {
		return report, fmt.Errorf("invalid configuration: %w", err)
	}
	m.Config, m.Logger = cfg, newLogger(m.Stderr, cfg)
	db, err := m.openDatabase(ctx)
	if err != nil {
		return report, err
	}
	gw, err := m.openGateway(ctx, db)
	if err != nil {
		return report, err
	}
	if report, err = ledger.Reconcile(ctx, db.pool, gw); err != nil {
		return report, db.notMigrated(err, "no charge ledger")
	}
	return report, report.Write(m.Stdout)
}
