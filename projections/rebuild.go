package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/eventstore"
)

// Operational is implemented by a projection whose tables also hold columns
// that something besides Apply writes (a worker's bookkeeping), which no
// replay of the log can derive. OperationalColumns maps each such table to
// those columns. A rebuild keeps each of them from the live row with the
// same primary key wherever the live row has a value (not NULL); Compare
// leaves them out of the comparison.
type Operational interface {
	OperationalColumns() map[string][]string
}

// RebuildReport says what a rebuild or a comparison built.
type RebuildReport struct {
	// Projection is the projection's name.
	Projection string
	// Events is how many events of the log the shadow tables were built from.
	Events int64
	// Checkpoint is the place in the log the rebuilt read model stands at:
	// after Rebuild, the projection's checkpoint.
	Checkpoint eventstore.Checkpoint
	// Duration is how long it took, the shadow's build and the swap.
	Duration time.Duration
}

// rebuildBatch is how many events one transaction of a shadow build applies.
const rebuildBatch = 1000

// checkpointTable is the shadow schema's record of how far the shadow
// tables are built: the shadow's own checkpoint, saved with each batch.
const checkpointTable = "subs_rebuild_checkpoint"

// Rebuild rebuilds p's read model from the whole log without readers ever
// seeing it half built (DESIGN §5): it builds shadow copies of p's tables
// in schema rebuild_<name>, applying every event in batches with
// search_path pointed at them, then, in one transaction holding the lock
// the live runner's batches take (so the runner writes nothing meanwhile),
// applies the events committed meanwhile, then, under an exclusive lock on
// the live tables (so readers wait rather than see anything in between),
// drops the live tables, moves the shadow ones into public with the live tables'
// names, index and constraint names, and sets p's checkpoint to the
// shadow's. Readers waiting on the lock then read the rebuilt tables.
// Columns p declares Operational are kept from the live rows. The rebuilt
// model includes every event committed before Rebuild began, waiting (until
// ctx is done) while a transaction still in flight holds one back.
//
// One rebuild or Compare of a projection runs at a time (a session advisory
// lock); one interrupted leaves its schema behind, which the next drops.
// A table with an identity or sequence-backed column is refused, as a
// replay would not reproduce its values.
func Rebuild(ctx context.Context, store *eventstore.Store, types *eventstore.EventTypes, p Projection) (RebuildReport, error) {
	start := time.Now()
	s, err := openShadow(ctx, store, types, p)
	if err != nil {
		return RebuildReport{}, err
	}
	defer s.close(ctx)
	// Every event committed before the rebuild began, even one that a
	// transaction still in flight (in any database of the cluster: ids are
	// cluster-wide) holds back from readers for now: the rebuilt model is
	// never older than the request for it.
	head, err := store.Head(ctx)
	if err != nil {
		return RebuildReport{}, fmt.Errorf("projections: rebuild %s: read the log's head: %w", p.Name(), err)
	}
	if err := s.build(ctx, nil, head); err != nil {
		return RebuildReport{}, err
	}
	err = pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
		// From here on the live runner writes nothing of p: its
		// checkpoint stands still at live.
		live, err := eventstore.LockSubscription(ctx, tx, p.Name())
		if err != nil {
			return err
		}
		// Catch up before locking the live tables: reading the log takes
		// connections of the store's pool, which readers waiting on those
		// locks would be holding. What commits after this read the live
		// runner applies after the swap, from the shadow's checkpoint.
		if err := s.catchUp(ctx, tx, nil); err != nil {
			return err
		}
		if !s.cp.Reached(live) {
			// The shadow read to the log's end, which the live runner
			// cannot have passed: refuse rather than move its checkpoint back.
			return fmt.Errorf("the rebuilt model stops at position %d, before the live one (%d)", s.cp.Position, live.Position)
		}
		// Readers now wait for the swap, then read the rebuilt tables.
		if _, err := tx.Exec(ctx, `LOCK TABLE `+s.liveList()+` IN ACCESS EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock the live tables: %w", err)
		}
		if err := s.keepOperational(ctx, tx); err != nil {
			return err
		}
		// No CASCADE: a view or foreign key of someone else's on these
		// tables would vanish silently; the swap fails instead.
		if _, err := tx.Exec(ctx, `DROP TABLE `+s.liveList()); err != nil {
			return fmt.Errorf("drop the live tables: %w", err)
		}
		for _, t := range p.Tables() {
			if _, err := tx.Exec(ctx, `ALTER TABLE `+s.shadowTable(t)+` SET SCHEMA public`); err != nil {
				return fmt.Errorf("move the rebuilt %s into public: %w", t, err)
			}
		}
		if err := eventstore.SaveCheckpoint(ctx, tx, p.Name(), s.cp); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DROP SCHEMA `+s.schema+` CASCADE`)
		return err
	})
	if err != nil {
		return RebuildReport{}, fmt.Errorf("projections: rebuild %s: swap: %w", p.Name(), err)
	}
	return RebuildReport{Projection: p.Name(), Events: s.events, Checkpoint: s.cp, Duration: time.Since(start)}, nil
}

// shadow is a copy of one projection's tables in its own schema, built on a
// connection of its own that holds the projection's rebuild lock.
type shadow struct {
	store  *eventstore.Store
	types  *eventstore.EventTypes
	p      Projection
	conn   *pgx.Conn
	schema string // quoted
	cp     eventstore.Checkpoint
	events int64
}

// openShadow takes p's rebuild lock and creates empty shadow copies of p's
// tables, with their constraints and indexes under the live names.
func openShadow(ctx context.Context, store *eventstore.Store, types *eventstore.EventTypes, p Projection) (*shadow, error) {
	tables := p.Tables()
	if len(tables) == 0 {
		return nil, fmt.Errorf("projections: %s lists no table to rebuild", p.Name())
	}
	for i, t := range tables {
		if t == "" || t == checkpointTable || slices.Contains(tables[:i], t) {
			return nil, fmt.Errorf("projections: %s: table name %q cannot be rebuilt", p.Name(), t)
		}
	}
	pooled, err := store.Pool().Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("projections: rebuild %s: %w", p.Name(), err)
	}
	// The rebuild lock is a session lock: it must die with the connection if
	// the process does, so the connection never goes back to the pool.
	s := &shadow{store: store, types: types, p: p, conn: pooled.Hijack(),
		schema: pgx.Identifier{"rebuild_" + p.Name()}.Sanitize()}
	if err := s.create(ctx); err != nil {
		s.close(ctx)
		return nil, fmt.Errorf("projections: rebuild %s: %w", p.Name(), err)
	}
	return s, nil
}

func (s *shadow) create(ctx context.Context) error {
	if _, err := s.conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended('rebuild:' || $1, 0))`, s.p.Name()); err != nil {
		return fmt.Errorf("take the rebuild lock: %w", err)
	}
	if _, err := s.conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+s.schema+` CASCADE`); err != nil {
		return fmt.Errorf("drop the schema an interrupted rebuild left: %w", err)
	}
	return pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
		// Catalog definitions print names relative to search_path: with
		// public alone, a foreign key names its table unqualified, and so
		// points at the shadow copy once search_path starts with the shadow.
		if _, err := tx.Exec(ctx, `SET LOCAL search_path = public`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+s.schema); err != nil {
			return err
		}
		var foreign []string
		for _, t := range s.p.Tables() {
			fks, err := s.copyTable(ctx, tx, t)
			if err != nil {
				return fmt.Errorf("table %s: %w", t, err)
			}
			foreign = append(foreign, fks...)
		}
		if _, err := tx.Exec(ctx, `SET LOCAL search_path = `+s.schema+`, public`); err != nil {
			return err
		}
		for _, fk := range foreign {
			if _, err := tx.Exec(ctx, fk); err != nil {
				return fmt.Errorf("foreign key: %w", err)
			}
		}
		_, err := tx.Exec(ctx, `CREATE TABLE `+s.shadowTable(checkpointTable)+` AS SELECT '0'::xid8 AS transaction_id, 0::bigint AS global_position`)
		return err
	})
}

// copyTable creates the shadow copy of public table t: its columns,
// defaults and checks (LIKE), then its primary key, unique and exclusion
// constraints and indexes under their live names, so that the names stay
// the same after the swap (migrations refer to them). It returns the
// statements adding t's foreign keys, to run once every copy exists.
func (s *shadow) copyTable(ctx context.Context, tx pgx.Tx, t string) ([]string, error) {
	live := pgx.Identifier{"public", t}.Sanitize()
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, live).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, errors.New("no such table in schema public")
	}
	var sequenced []string
	err := queryStrings(ctx, tx, &sequenced, `SELECT a.attname FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
  AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE '%nextval(%')`, live)
	if err != nil {
		return nil, err
	}
	if len(sequenced) > 0 {
		return nil, fmt.Errorf("column %s takes its values from a sequence, which a replay would not reproduce", sequenced[0])
	}
	shadow := s.shadowTable(t)
	if _, err := tx.Exec(ctx, `CREATE TABLE `+shadow+` (LIKE `+live+` INCLUDING ALL EXCLUDING INDEXES)`); err != nil {
		return nil, err
	}
	var constraints, foreign []string
	rows, err := tx.Query(ctx, `SELECT contype = 'f', format('ALTER TABLE %s ADD CONSTRAINT %I %s', $2::text, conname, pg_get_constraintdef(oid))
FROM pg_constraint WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'x', 'f') ORDER BY conname`, live, shadow)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var fk bool
		var stmt string
		if err := rows.Scan(&fk, &stmt); err != nil {
			rows.Close()
			return nil, err
		}
		if fk {
			foreign = append(foreign, stmt)
		} else {
			constraints = append(constraints, stmt)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// pg_get_indexdef names the table as schema.table, each part quoted
	// only where needed (format's %I): swap that for the shadow's.
	var indexes []string
	err = queryStrings(ctx, tx, &indexes, `SELECT coalesce(CASE WHEN strpos(def, on_live) > 0 THEN replace(def, on_live, on_shadow) END, '')
FROM (SELECT pg_get_indexdef(i.indexrelid) AS def,
             format(' ON %I.%I ', 'public', $2::text) AS on_live,
             format(' ON %I.%I ', $3::text, $2::text) AS on_shadow
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = $1::regclass
        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
      ORDER BY c.relname) x`, live, t, "rebuild_"+s.p.Name())
	if err != nil {
		return nil, err
	}
	for _, stmt := range slices.Concat(constraints, indexes) {
		if stmt == "" {
			return nil, errors.New("an index definition names its table in an unexpected way")
		}
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return nil, fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return foreign, nil
}

// build applies the log to the shadow tables from the shadow's checkpoint,
// one transaction per batch, up to the log's end, or up to and including
// the event at *limit when limit is set; and at least up to the event at
// atLeast, waiting for it while older transactions hold it back.
func (s *shadow) build(ctx context.Context, limit *eventstore.Checkpoint, atLeast eventstore.Checkpoint) error {
	wait := 5 * time.Millisecond
	for {
		var more bool
		err := pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
			var err error
			more, err = s.applyBatch(ctx, tx, limit)
			return err
		})
		if err != nil {
			return fmt.Errorf("projections: rebuild %s: %w", s.p.Name(), err)
		}
		if more {
			continue
		}
		if s.cp.Reached(atLeast) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("projections: rebuild %s: waiting for position %d, which a transaction still in flight holds back: %w",
				s.p.Name(), atLeast.Position, ctx.Err())
		case <-time.After(wait):
			wait = min(2*wait, 200*time.Millisecond)
		}
	}
}

// catchUp applies, in tx, every event past the shadow's checkpoint up to
// the log's end, or up to and including the event at *limit.
func (s *shadow) catchUp(ctx context.Context, tx pgx.Tx, limit *eventstore.Checkpoint) error {
	for {
		more, err := s.applyBatch(ctx, tx, limit)
		if err != nil || !more {
			return err
		}
	}
}

// applyBatch applies the next batch of events to the shadow in tx, with
// search_path pointed at the shadow schema so that the projection's
// unqualified SQL writes the copies, and saves the shadow's checkpoint in
// tx. It reports whether the log may hold more events to apply.
func (s *shadow) applyBatch(ctx context.Context, tx pgx.Tx, limit *eventstore.Checkpoint) (bool, error) {
	if _, err := tx.Exec(ctx, `SET LOCAL search_path = `+s.schema+`, public`); err != nil {
		return false, err
	}
	// The checkpoint as committed: a transaction that failed left it.
	if err := tx.QueryRow(ctx, `SELECT transaction_id, global_position FROM `+s.shadowTable(checkpointTable)).
		Scan(&s.cp.TransactionID, &s.cp.Position); err != nil {
		return false, fmt.Errorf("read the shadow's checkpoint: %w", err)
	}
	events, err := s.store.ReadAll(ctx, s.cp, rebuildBatch)
	if err != nil {
		return false, err
	}
	more := len(events) == rebuildBatch
	for i, rec := range events {
		if limit != nil && !limit.Reached(eventstore.Of(rec)) {
			events, more = events[:i], false
			break
		}
	}
	if len(events) == 0 {
		return false, nil
	}
	if err := applyAll(ctx, tx, s.p, eventLog{store: s.store, types: s.types}, events); err != nil {
		return false, err
	}
	cp, applied := eventstore.Of(events[len(events)-1]), int64(len(events))
	if _, err := tx.Exec(ctx, `UPDATE `+s.shadowTable(checkpointTable)+` SET transaction_id = $1, global_position = $2`,
		cp.TransactionID, cp.Position); err != nil {
		return false, fmt.Errorf("save the shadow's checkpoint: %w", err)
	}
	// Counted as they commit, since a failed batch aborts the whole run.
	s.cp = cp
	s.events += applied
	return more, nil
}

// keepOperational copies the columns p declares Operational from the live
// rows into the shadow rows with the same primary key, where the live row
// has a value.
func (s *shadow) keepOperational(ctx context.Context, tx pgx.Tx) error {
	op, ok := s.p.(Operational)
	if !ok {
		return nil
	}
	for t, cols := range op.OperationalColumns() {
		if len(cols) == 0 {
			continue
		}
		if !slices.Contains(s.p.Tables(), t) {
			return fmt.Errorf("operational columns of %s, which the projection does not list", t)
		}
		var key []string
		err := queryStrings(ctx, tx, &key, `SELECT a.attname FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY a.attnum`, pgx.Identifier{"public", t}.Sanitize())
		if err != nil {
			return err
		}
		if len(key) == 0 {
			return fmt.Errorf("table %s has operational columns but no primary key to match rows by", t)
		}
		set := make([]string, len(cols))
		for i, c := range cols {
			q := pgx.Identifier{c}.Sanitize()
			set[i] = fmt.Sprintf("%s = coalesce(l.%s, s.%s)", q, q, q)
		}
		match := make([]string, len(key))
		for i, c := range key {
			q := pgx.Identifier{c}.Sanitize()
			match[i] = fmt.Sprintf("s.%s = l.%s", q, q)
		}
		_, err = tx.Exec(ctx, `UPDATE `+s.shadowTable(t)+` AS s SET `+strings.Join(set, ", ")+
			` FROM `+pgx.Identifier{"public", t}.Sanitize()+` AS l WHERE `+strings.Join(match, " AND "))
		if err != nil {
			return fmt.Errorf("keep the operational columns of %s: %w", t, err)
		}
	}
	return nil
}

// close drops the shadow schema if it is still there and ends the
// connection, which releases the rebuild lock.
func (s *shadow) close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if !s.conn.IsClosed() {
		_, _ = s.conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+s.schema+` CASCADE`) // the next rebuild drops it otherwise
	}
	_ = s.conn.Close(ctx) // the lock goes with the session either way
}

func (s *shadow) shadowTable(t string) string {
	return pgx.Identifier{"rebuild_" + s.p.Name(), t}.Sanitize()
}

// liveList is the live tables, qualified, comma-separated.
func (s *shadow) liveList() string {
	names := make([]string, len(s.p.Tables()))
	for i, t := range s.p.Tables() {
		names[i] = pgx.Identifier{"public", t}.Sanitize()
	}
	return strings.Join(names, ", ")
}

// queryStrings collects the first column of the rows sql returns into out.
func queryStrings(ctx context.Context, tx pgx.Tx, out *[]string, sql string, args ...any) error {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	*out = got
	return err
}
