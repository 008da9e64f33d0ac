package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/subs-engine/subs/domain/events"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/projections"
)

// projectionsUsage is `subs projections`'s usage line after the command name.
const projectionsUsage = "status | rebuild NAME|all"

// projectionsFlags are the flag groups of Config that `subs projections`
// takes, before or after its action.
const projectionsFlags = flagsDataDir | flagsDatabaseURL | flagsLog

// projectionsFlagSet returns the flag set of the arguments after the action,
// bound to cfg, so that flags may follow it (`subs projections status
// --database-url …`).
func projectionsFlagSet(cfg *Config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("subs projections", flag.ContinueOnError)
	fs.SetOutput(out)
	cfg.bindFlags(fs, projectionsFlags)
	return fs
}

// projectionsArgs checks `subs projections`'s arguments: status, or
// rebuild and a projection's name or all, then flags.
func projectionsArgs(args []string) error {
	_, _, err := parseProjectionsArgs(args, nil, io.Discard)
	return err
}

// parseProjectionsArgs splits args into the action and the projections it
// acts on, parsing the flags after them into cfg (a throwaway when nil).
func parseProjectionsArgs(args []string, cfg *Config, out io.Writer) (string, []projections.Projection, error) {
	if len(args) == 0 {
		return "", nil, errors.New("say status or rebuild NAME, e.g. `subs projections rebuild accounts`")
	}
	action, rest := args[0], args[1:]
	all := projections.All()
	var chosen []projections.Projection
	switch action {
	case "status":
		chosen = all
	case "rebuild":
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return "", nil, fmt.Errorf("rebuild needs a projection: one of %s, or all", projectionNames(all))
		}
		name := rest[0]
		rest = rest[1:]
		for _, p := range all {
			if name == "all" || p.Name() == name {
				chosen = append(chosen, p)
			}
		}
		if len(chosen) == 0 {
			return "", nil, fmt.Errorf("no projection %q: say one of %s, or all", name, projectionNames(all))
		}
	default:
		return "", nil, fmt.Errorf("unknown action %q: say status or rebuild", action)
	}
	if cfg == nil {
		cfg = &Config{}
		cfg.setDefaults()
	}
	fs := projectionsFlagSet(cfg, out)
	if err := fs.Parse(rest); err != nil {
		return "", nil, err
	}
	if fs.NArg() > 0 {
		return "", nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return action, chosen, nil
}

func projectionNames(ps []projections.Projection) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name()
	}
	return strings.Join(names, ", ")
}

// runProjections is `subs projections status|rebuild`. status reads the
// checkpoints and the log and changes nothing; rebuild migrates the database
// first, as serve does, so that it rebuilds the tables this binary's
// projections write, then rebuilds each projection chosen in turn, while a
// running engine goes on serving (DESIGN §5).
func (m *Main) runProjections(ctx context.Context) (err error) {
	defer func() { err = errors.Join(err, m.Close()) }()
	cfg := m.Config
	action, chosen, err := parseProjectionsArgs(m.args, &cfg, m.Stderr)
	if err != nil {
		return &usageError{"projections: " + err.Error()}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	m.Config, m.Logger = cfg, newLogger(m.Stderr, cfg)
	db, err := m.openDatabase(ctx)
	if err != nil {
		return err
	}
	store, err := m.openStore(db)
	if err != nil {
		return err
	}
	if action == "status" {
		return db.notMigrated(m.projectionsStatus(ctx, store, chosen), "no event log")
	}
	if _, _, err := m.migrateDatabase(ctx, db); err != nil {
		return err
	}
	types := eventstore.NewEventTypes()
	types.Register(1, events.All()...)
	for _, p := range chosen {
		report, err := projections.Rebuild(ctx, store, types, p)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(m.Stdout, "%s rebuilt from %d events in %s: now at position %d\n",
			p.Name(), report.Events, report.Duration.Round(time.Millisecond), report.Checkpoint.Position); err != nil {
			return err
		}
	}
	return nil
}

// projectionsStatus prints one line per projection: its checkpoint, the
// log's head, how many events it has still to apply, and when it last
// applied some.
func (m *Main) projectionsStatus(ctx context.Context, store *eventstore.Store, ps []projections.Projection) error {
	statuses, err := projections.Statuses(ctx, store, ps)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECTION\tTRANSACTION\tPOSITION\tHEAD\tLAG\tUPDATED")
	for _, s := range statuses {
		updated := "never"
		if !s.UpdatedAt.IsZero() {
			updated = s.UpdatedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Checkpoint.TransactionID, s.Checkpoint.Position, s.Head, s.Lag, updated)
	}
	return tw.Flush()
}
