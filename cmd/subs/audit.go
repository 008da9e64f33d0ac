package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/subs-engine/subs/api"
	"github.com/subs-engine/subs/domain/events"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/projections"
)

// The auditors' actions of `subs audit` (DOMAIN §13).
const (
	auditHistory = "history" // a stream's events, human-readable; --as-of (AUD-1, AUD-2)
	auditVerify  = "verify"  // every hash link and stream version (AUD-3)
	auditExport  = "export"  // JSON Lines in position order; --stream
	auditRebuild = "rebuild" // --compare: every projection rebuilt and compared with the live one (AUD-4)
)

// auditArgs checks `subs audit`'s positional arguments: an action, and for
// history the stream.
func auditArgs(args []string) error {
	if len(args) == 0 {
		return errors.New("say history STREAM, verify or export, e.g. `subs audit verify`")
	}
	want := 1
	switch args[0] {
	case auditHistory:
		want = 2
		if len(args) < 2 {
			return errors.New("history needs a stream id, e.g. `subs audit history subscription-0190… --as-of 2027-03-01T00:00:00Z`")
		}
		if err := eventstore.StreamID(args[1]).Validate(); err != nil {
			return err
		}
	case auditVerify, auditExport, auditRebuild:
	default:
		return fmt.Errorf("unknown action %q: say history, verify, export or rebuild --compare", args[0])
	}
	if len(args) > want {
		return fmt.Errorf("unexpected argument %q", args[want])
	}
	return nil
}

// runAudit is `subs audit` without --compare; ParseFlags replaces it with
// one bound to the flag (bindAuditFlags).
func (m *Main) runAudit(ctx context.Context) error { return m.audit(ctx, false) }

// audit is `subs audit history|verify|export|rebuild --compare`: it reads
// the log, never writes it or a read model, and migrates nothing. compare
// is the --compare flag.
func (m *Main) audit(ctx context.Context, compare bool) (err error) {
	defer func() { err = errors.Join(err, m.Close()) }()
	action := m.args[0]
	if compare != (action == auditRebuild) {
		return &usageError{"audit: rebuild goes with --compare, and --compare with rebuild (to rebuild and swap a read model: `subs projections rebuild NAME`)"}
	}
	if !m.Config.AuditAsOf.IsZero() && action != auditHistory {
		return &usageError{"audit: --as-of goes with history only"}
	}
	if m.Config.AuditStream != "" && action != auditExport {
		return &usageError{"audit: --stream goes with export only (history takes the stream as its argument)"}
	}
	db, err := m.openDatabase(ctx)
	if err != nil {
		return err
	}
	store, err := m.openStore(db) // no upcasters: payloads at their stored schema version
	if err != nil {
		return err
	}
	switch action {
	case auditHistory:
		err = m.auditHistory(ctx, store, eventstore.StreamID(m.args[1]))
	case auditVerify:
		err = m.auditVerify(ctx, store)
	case auditRebuild:
		err = m.auditCompare(ctx, store)
	default:
		err = m.auditExport(ctx, store)
	}
	return db.notMigrated(err, "no event log")
}

// auditHistory prints the stream's events, as of Config.AuditAsOf when set
// (AUD-2), with who caused each and why (AUD-1).
func (m *Main) auditHistory(ctx context.Context, store *eventstore.Store, stream eventstore.StreamID) error {
	asOf := m.Config.AuditAsOf
	events, err := store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{AsOf: asOf})
	if err != nil {
		return err
	}
	w := m.Stdout
	when := "now"
	if !asOf.IsZero() {
		when = "as of " + asOf.UTC().Format(time.RFC3339Nano)
	}
	fmt.Fprintf(w, "%s: %d events %s\n", stream, len(events), when)
	for _, e := range events {
		md := e.Metadata
		fmt.Fprintf(w, "\nv%d  %s  %s (schema %d)\n", e.Version, e.RecordedAt.Format(time.RFC3339Nano), e.Type, e.SchemaVersion)
		actor := string(md.ActorKind)
		if md.ActorID != "" {
			actor += " " + md.ActorID
		}
		if md.Reason != "" {
			actor += fmt.Sprintf(", reason %q", md.Reason)
		}
		if md.LogCode != "" {
			actor += ", log code " + md.LogCode
		}
		fmt.Fprintf(w, "    actor:       %s\n", actor)
		fmt.Fprintf(w, "    command:     %s\n", orNone(md.CommandID))
		if md.CausationID != "" || md.CorrelationID != "" {
			fmt.Fprintf(w, "    causation:   %s  correlation: %s\n", orNone(md.CausationID), orNone(md.CorrelationID))
		}
		fmt.Fprintf(w, "    event:       %s  position %d\n", e.ID, e.Position)
		fmt.Fprintf(w, "    data:        %s\n", e.Data)
	}
	if len(events) == 0 {
		fmt.Fprintln(w, "(no event: the stream did not exist then, or does not exist)")
		return nil
	}
	at := asOf
	if at.IsZero() {
		at = systemClock{}.Now()
	}
	// The events are shown whatever their payloads; a state that cannot
	// be folded from them is said so, and is no reason to fail the replay.
	state, err := api.FoldedState(eventTypes(), stream, events, at, policy.Default())
	var b []byte
	if err == nil && state != nil {
		b, err = json.MarshalIndent(state, "    ", "  ")
	}
	switch {
	case err != nil:
		_, err = fmt.Fprintf(w, "\nstate %s: not folded: %v\n", when, err)
	case state != nil:
		_, err = fmt.Fprintf(w, "\nstate %s:\n    %s\n", when, b)
	}
	return err
}

// eventTypes returns the codec of every event type of the domain.
func eventTypes() *eventstore.EventTypes {
	types := eventstore.NewEventTypes()
	types.Register(1, events.All()...)
	return types
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// auditVerify walks the whole log with Store.Verify (AUD-3), showing its
// progress on a terminal, and prints "N events, M streams verified" or the
// first broken link, which fails the command.
func (m *Main) auditVerify(ctx context.Context, store *eventstore.Store) error {
	var progress eventstore.VerifyProgress
	if isTerminal(m.Stderr) {
		var total int64
		// The count is only for the progress display: a failure costs the
		// percentage, not the verification.
		_ = store.Pool().QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&total)
		start := time.Now()
		progress = func(checked int64) {
			line := fmt.Sprintf("verifying: %d events", checked)
			if total > 0 {
				line = fmt.Sprintf("verifying: %d / %d events (%d%%)", checked, total, min(100, checked*100/total))
			}
			fmt.Fprintf(m.Stderr, "\r%s, %s", line, time.Since(start).Round(time.Second))
		}
		defer fmt.Fprintln(m.Stderr)
	}
	report, err := store.Verify(ctx, progress)
	if err != nil {
		return err
	}
	if report.Broken != nil {
		fmt.Fprintf(m.Stdout, "the log was altered: %d events, %d streams read; first broken link: %s\n",
			report.Events, report.Streams, report.Broken)
		return fmt.Errorf("verification failed at %s", report.Broken)
	}
	_, err = fmt.Fprintf(m.Stdout, "%d events, %d streams verified: every hash link and stream version holds\n", report.Events, report.Streams)
	return err
}

// isTerminal reports whether w is a character device, where a progress line
// redrawn with \r reads well.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// auditExport writes the log, or the stream Config.AuditStream, as JSON
// Lines in position order (Store.Export): every column as stored, personal
// fields encrypted (AUD-5).
func (m *Main) auditExport(ctx context.Context, store *eventstore.Store) error {
	var opts eventstore.ExportOptions
	if s := m.Config.AuditStream; s != "" {
		if err := eventstore.StreamID(s).Validate(); err != nil {
			return &usageError{"audit export --stream: " + err.Error()}
		}
		opts.Stream = eventstore.StreamID(s)
	}
	w := bufio.NewWriterSize(m.Stdout, 64<<10)
	err := store.Export(ctx, opts, func(line []byte) error {
		if _, err := w.Write(line); err != nil {
			return err
		}
		return w.WriteByte('\n')
	})
	if err != nil {
		return err
	}
	return w.Flush()
}

// auditUsage is the usage line of `subs audit`; its flags say which action
// each goes with.
const auditUsage = "history STREAM | verify | export | rebuild --compare"

// bindAuditFlags registers `subs audit`'s own flag, --compare, on fs, which
// newFlagSet built for cmd; when ParseFlags is parsing audit to run it,
// Main's command becomes a copy that runs with the value parsed (as
// bindCommandFlags does for gateway).
func (m *Main) bindAuditFlags(fs *flag.FlagSet, cmd *command) {
	if cmd.name != "audit" {
		return
	}
	compare := fs.Bool("compare", false, "with rebuild: rebuild every projection from the log into shadow tables and compare them row by row with the live ones (AUD-4)")
	if m.command == cmd {
		run := *cmd
		run.run = func(m *Main, ctx context.Context) error { return m.audit(ctx, *compare) }
		m.command = &run
	}
}

// auditCompare rebuilds every projection from the log into shadow tables
// and compares each with its live read model, row by row, at the live
// model's checkpoint (AUD-4; projections.Compare). It prints "N projections
// equal", or each difference, which fails the command.
func (m *Main) auditCompare(ctx context.Context, store *eventstore.Store) error {
	types := eventTypes()
	all := projections.All()
	var differ []string
	w := m.Stdout
	for _, p := range all {
		d, err := projections.Compare(ctx, store, types, p)
		if err != nil {
			return err
		}
		if d.Equal() {
			fmt.Fprintf(w, "%s: equal to its rebuild from %d events, at position %d\n", p.Name(), d.Events, d.Checkpoint.Position)
			continue
		}
		differ = append(differ, p.Name())
		fmt.Fprintf(w, "%s: DIFFERS from its rebuild from %d events, at position %d\n", p.Name(), d.Events, d.Checkpoint.Position)
		for _, t := range d.Tables {
			fmt.Fprintf(w, "  table %s: %d rows only live, %d rows only rebuilt\n", t.Table, t.OnlyLive, t.OnlyRebuilt)
			for _, r := range t.LiveRows {
				fmt.Fprintf(w, "    live:    %s\n", r)
			}
			for _, r := range t.RebuiltRows {
				fmt.Fprintf(w, "    rebuilt: %s\n", r)
			}
		}
	}
	if len(differ) > 0 {
		return fmt.Errorf("%d of %d projections differ from their rebuild from the log: %s", len(differ), len(all), strings.Join(differ, ", "))
	}
	_, err := fmt.Fprintf(w, "%d projections equal\n", len(all))
	return err
}
