package projections

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/eventstore"
)

// diffRows is how many differing rows a TableDiff lists on each side.
const diffRows = 20

// Diff is what Compare found between a projection's live read model and one
// rebuilt from the log up to the same place.
type Diff struct {
	// Projection is the projection's name.
	Projection string
	// Checkpoint is the place in the log both models were compared at: the
	// live projection's checkpoint.
	Checkpoint eventstore.Checkpoint
	// Events is how many events the rebuilt model was built from.
	Events int64
	// Tables lists the tables that differ, in the projection's order; none
	// when the models are equal.
	Tables []TableDiff
}

// Equal reports whether the live read model equals the rebuilt one (AUD-4).
func (d Diff) Equal() bool { return len(d.Tables) == 0 }

// TableDiff is how one table differs. Rows are JSON objects of the compared
// columns (operational columns left out), sorted, at most 20 on each side;
// the counts are complete.
type TableDiff struct {
	// Table is the table's name.
	Table string
	// OnlyLive counts the rows the live table holds and the rebuilt one
	// does not; LiveRows shows the first of them.
	OnlyLive int64
	LiveRows []string
	// OnlyRebuilt counts the rows the rebuilt table holds and the live one
	// does not; RebuiltRows shows the first of them.
	OnlyRebuilt int64
	RebuiltRows []string
}

// Compare rebuilds p's read model from the log into shadow tables, as
// Rebuild does, but up to exactly the live projection's checkpoint and
// without swapping, and compares every table row by row with the live one
// (AUD-4): a row counts as the same only if every compared column is equal,
// and duplicates count. Columns p declares Operational are left out. The
// final catch-up and the comparison run holding the lock of the live
// runner's batches, so the live model stands still at its checkpoint
// meanwhile; the shadow is dropped afterwards, and nothing live changes.
func Compare(ctx context.Context, store *eventstore.Store, types *eventstore.EventTypes, p Projection) (Diff, error) {
	s, err := openShadow(ctx, store, types, p)
	if err != nil {
		return Diff{}, err
	}
	defer s.close(ctx)
	// Most of the work without the lock, up to where the live model stood
	// a moment ago: the live checkpoint only moves forward from there.
	target, err := store.Checkpoint(ctx, p.Name())
	if err != nil {
		return Diff{}, err
	}
	if err := s.build(ctx, &target, eventstore.Checkpoint{}); err != nil {
		return Diff{}, err
	}
	d, err := s.compare(ctx)
	if err != nil {
		return Diff{}, fmt.Errorf("projections: compare %s: %w", p.Name(), err)
	}
	return d, nil
}

func (s *shadow) compare(ctx context.Context) (Diff, error) {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return Diff{}, err
	}
	// Nothing of the comparison is kept: the shadow is dropped next.
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // rolling back a read
	live, err := eventstore.LockSubscription(ctx, tx, s.p.Name())
	if err != nil {
		return Diff{}, err
	}
	if !live.Reached(s.cp) {
		return Diff{}, fmt.Errorf("the live checkpoint went back from position %d to %d meanwhile (a rebuild?): compare again", s.cp.Position, live.Position)
	}
	if err := s.catchUp(ctx, tx, &live); err != nil {
		return Diff{}, err
	}
	d := Diff{Projection: s.p.Name(), Checkpoint: live, Events: s.events}
	var skip map[string][]string
	if op, ok := s.p.(Operational); ok {
		skip = op.OperationalColumns()
	}
	for _, t := range s.p.Tables() {
		td, err := s.compareTable(ctx, tx, t, skip[t])
		if err != nil {
			return Diff{}, fmt.Errorf("table %s: %w", t, err)
		}
		if td.OnlyLive > 0 || td.OnlyRebuilt > 0 {
			d.Tables = append(d.Tables, td)
		}
	}
	return d, nil
}

// compareTable compares live table t with its shadow copy both ways, on
// every column but skip.
func (s *shadow) compareTable(ctx context.Context, tx pgx.Tx, t string, skip []string) (TableDiff, error) {
	live := pgx.Identifier{"public", t}.Sanitize()
	var all []string
	err := queryStrings(ctx, tx, &all, `SELECT attname FROM pg_attribute
WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, live)
	if err != nil {
		return TableDiff{}, err
	}
	var cols []string
	for _, c := range all {
		if !slices.Contains(skip, c) {
			cols = append(cols, pgx.Identifier{c}.Sanitize())
		}
	}
	list := strings.Join(cols, ", ")
	td := TableDiff{Table: t}
	side := func(from, minus string, n *int64, rows *[]string) error {
		r, err := tx.Query(ctx, `SELECT to_jsonb(x)::text, count(*) OVER () FROM (
SELECT `+list+` FROM `+from+` EXCEPT ALL SELECT `+list+` FROM `+minus+`) x ORDER BY 1 LIMIT $1`, diffRows)
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			var row string
			if err := r.Scan(&row, n); err != nil {
				return err
			}
			*rows = append(*rows, row)
		}
		return r.Err()
	}
	if err := side(live, s.shadowTable(t), &td.OnlyLive, &td.LiveRows); err != nil {
		return TableDiff{}, err
	}
	if err := side(s.shadowTable(t), live, &td.OnlyRebuilt, &td.RebuiltRows); err != nil {
		return TableDiff{}, err
	}
	return td, nil
}
