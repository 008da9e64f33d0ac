package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

const eventColumns = `global_position, transaction_id, stream_id, stream_version, event_id, event_type,
schema_version, data, metadata, recorded_at, hash`

func scanEvent(row pgx.Row) (RecordedEvent, error) {
	var e RecordedEvent
	// The id and the data are scanned as pgx's own types: uuid.UUID would
	// go through text on a pool without ConfigurePool (the store takes any
	// pool), and a json.RawMessage through a JSON parse that only checks
	// what the server's jsonb already holds valid.
	var id pgtype.UUID
	var data, meta []byte
	var stream string
	err := row.Scan(&e.Position, &e.TransactionID, &stream, &e.Version, &id, &e.Type,
		&e.SchemaVersion, &data, &meta, &e.RecordedAt, &e.Hash)
	if err != nil {
		return e, err
	}
	e.StreamID, e.ID, e.Data = StreamID(stream), id.Bytes, data
	e.RecordedAt = e.RecordedAt.UTC()
	if err := json.Unmarshal(meta, &e.Metadata); err != nil {
		return e, fmt.Errorf("eventstore: event %d: metadata: %w", e.Position, err)
	}
	return e, nil
}

// ReadStreamOptions narrow a stream read.
type ReadStreamOptions struct {
	// FromVersion is the first version to return; 0 or 1 means from the start.
	FromVersion int64
	// AsOf, when set, stops at the last event recorded at or before it
	// (AUD-2: the stream as it stood at that instant).
	AsOf time.Time
}

// ReadStream returns the stream's events in version order, upcast to their
// current schema. A stream with no event yields none and no error.
func (s *Store) ReadStream(ctx context.Context, stream StreamID, opts ReadStreamOptions) ([]RecordedEvent, error) {
	sql := `SELECT ` + eventColumns + ` FROM events WHERE stream_id = $1 AND stream_version >= $2`
	args := []any{string(stream), max(opts.FromVersion, 1)}
	if !opts.AsOf.IsZero() {
		sql += ` AND recorded_at <= $3`
		args = append(args, opts.AsOf)
	}
	sql += ` ORDER BY stream_version`
	return s.query(ctx, sql, args...)
}

// LastOfType returns the last event of type typ in the stream, and false
// when it has none: the command behind a step still pending (the request
// of a refund whose outcome a worker records, AGT-1).
func (s *Store) LastOfType(ctx context.Context, stream StreamID, typ string) (RecordedEvent, bool, error) {
	events, err := s.query(ctx, `SELECT `+eventColumns+` FROM events WHERE stream_id = $1 AND event_type = $2
ORDER BY stream_version DESC LIMIT 1`, string(stream), typ)
	if err != nil || len(events) == 0 {
		return RecordedEvent{}, false, err
	}
	return events[0], true, nil
}

// StreamFrom names a stream and the first version of it to read.
type StreamFrom struct {
	Stream      StreamID
	FromVersion int64 // 0 or 1 means from the start
}

// ReadStreams returns the events of several streams, each from its
// FromVersion, in one query: ordered by stream in the order given, then by
// version. A stream named twice is read once, from the first FromVersion.
func (s *Store) ReadStreams(ctx context.Context, streams []StreamFrom) ([]RecordedEvent, error) {
	return s.ReadStreamsTx(ctx, s.pool, streams)
}

// ReadStreamsTx is ReadStreams inside the caller's transaction (any
// pgx.Tx): a reader that holds a connection in a transaction reads on it,
// rather than waiting for a second one from a pool its peers may hold.
func (s *Store) ReadStreamsTx(ctx context.Context, tx Querier, streams []StreamFrom) ([]RecordedEvent, error) {
	ids := make([]string, 0, len(streams))
	from := make([]int64, 0, len(streams))
	seen := make(map[StreamID]bool, len(streams))
	for _, sf := range streams {
		if seen[sf.Stream] {
			continue
		}
		seen[sf.Stream] = true
		ids, from = append(ids, string(sf.Stream)), append(from, max(sf.FromVersion, 1))
	}
	// A function (migration 0016), so that its statement keeps one
	// generic plan instead of being planned at every call.
	return s.queryOn(ctx, tx, `SELECT `+eventColumns+` FROM subs_read_streams($1::text[], $2::bigint[]) WITH ORDINALITY ORDER BY ordinality`,
		ids, from)
}

// ReadAll returns up to limit events of the global log after from, in commit
// order: ordered by (transaction id, position) and only from transactions
// older than every transaction still in flight. An event whose transaction
// commits late is therefore returned late, never skipped (the gap a
// "position > last seen" reader falls into). Pass the checkpoint of the last
// event returned (Of) to continue.
func (s *Store) ReadAll(ctx context.Context, from Checkpoint, limit int) ([]RecordedEvent, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("eventstore: read all: limit %d must be positive", limit)
	}
	// A function (migration 0016), so that its statement keeps one
	// generic plan instead of being planned at every call.
	return s.query(ctx, `SELECT `+eventColumns+` FROM subs_read_all($1::xid8, $2, $3) WITH ORDINALITY ORDER BY ordinality`,
		from.TransactionID, from.Position, limit)
}

// Head returns the checkpoint of the last event committed so far in ReadAll's
// order (the zero Checkpoint for an empty log): a reader that has reached
// it has seen every event appended before Head was called.
func (s *Store) Head(ctx context.Context) (Checkpoint, error) {
	var cp Checkpoint
	// The columns are qualified: a bare transaction_id in ORDER BY would
	// name the bigint output column, which no index orders, and the query
	// would sort the whole log.
	err := s.pool.QueryRow(ctx, `SELECT e.transaction_id::text::bigint, e.global_position FROM events e
ORDER BY e.transaction_id DESC, e.global_position DESC LIMIT 1`).Scan(&cp.TransactionID, &cp.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return Checkpoint{}, nil
	}
	if err != nil {
		return cp, fmt.Errorf("eventstore: head of the log: %w", err)
	}
	return cp, nil
}

func (s *Store) query(ctx context.Context, sql string, args ...any) ([]RecordedEvent, error) {
	return s.queryOn(ctx, s.pool, sql, args...)
}

// queryOn reads events on q, and their personal data's keys too.
func (s *Store) queryOn(ctx context.Context, q Querier, sql string, args ...any) ([]RecordedEvent, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("eventstore: read: %w", err)
	}
	defer rows.Close()
	var out []RecordedEvent
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("eventstore: read: %w", err)
	}
	if err := s.personal.reveal(ctx, q, out); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i], err = s.upcasters.Upcast(out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
