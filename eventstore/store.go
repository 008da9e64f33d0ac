package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the event log on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool      *pgxpool.Pool
	upcasters *Upcasters
	notifier  *notifier
	personal  *personalData
	// ended is told when a transaction of the store's that may hold the
	// log's readers back ends (an append, a batch of subscriptions): a
	// catch-up held back by it reads again at once (advance).
	ended broadcast
	// reached remembers where the subscriptions this store moved stand
	// (advance).
	reached checkpointMemory
}

// Config configures a Store.
type Config struct {
	// Upcasters rewrite old payload versions as events are read (never in
	// the log). Nil means none.
	Upcasters *Upcasters
	// SecretKey is the engine's secret (32 random bytes or more): the key
	// that wraps the data keys of personal fields and the key of personal
	// reservations' hashes (AUD-5) derive from it. It must stay the same
	// across restarts and processes. Empty only in tests.
	SecretKey []byte
}

// New returns a store on pool. The schema must be migrated (Migrate).
func New(pool *pgxpool.Pool, cfg Config) *Store {
	if cfg.Upcasters == nil {
		cfg.Upcasters = NewUpcasters()
	}
	return &Store{pool: pool, upcasters: cfg.Upcasters, notifier: newNotifier(pool), personal: newPersonalData(pool, cfg.SecretKey)}
}

// Pool returns the store's connection pool, for read models that live in the
// same database.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Reservation is a value unique across streams within its scope, such as an
// e-mail address in scope "account-email" (ACC-1).
type Reservation struct {
	Scope string
	Key   string
	// Personal marks a key that is personal data: the store keeps only its
	// keyed hash (HMAC-SHA-256 under Config.SecretKey), never the key itself
	// (AUD-5). Lookups of such a key must say so too.
	Personal bool
}

// Checkpoint returns the checkpoint of the append's last event: a reader
// whose checkpoint is at or past it has seen every event of the append.
func (r AppendResult) Checkpoint() Checkpoint {
	return Checkpoint{TransactionID: r.TransactionID, Position: r.LastPosition}
}

// ReservationOwner returns the stream holding a reservation, and false if
// none holds it. It reads committed state directly: no projection lag.
func (s *Store) ReservationOwner(ctx context.Context, r Reservation) (StreamID, bool, error) {
	r = s.personal.reservation(r)
	var owner string
	err := s.pool.QueryRow(ctx, `SELECT stream_id FROM reservations WHERE scope = $1 AND key = $2`, r.Scope, r.Key).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("eventstore: reservation %s %q: %w", r.Scope, r.Key, err)
	}
	return StreamID(owner), true, nil
}

// AppendOptions are the parts of an append besides its events.
type AppendOptions struct {
	// CommandID makes the append idempotent: an append with a command id
	// already recorded appends nothing and returns the first result.
	CommandID string
	// Metadata is recorded with every event; an event's own non-empty
	// metadata fields win over it.
	Metadata Metadata
	// RecordedAt is the engine clock's time of the command (TIM-1). Required.
	RecordedAt time.Time
	// Reserve takes these reservations for the stream, in the same
	// transaction; one already held by another stream refuses the append
	// with a *ReservationConflictError. One held by this stream is kept.
	Reserve []Reservation
	// Release gives up these reservations if this stream holds them.
	Release []Reservation
}

// AppendResult says where an append's events landed.
type AppendResult struct {
	// FirstVersion and LastVersion are the stream versions of the first and
	// last event appended; with no event, both are the stream's version.
	FirstVersion, LastVersion int64
	// FirstPosition and LastPosition are the global positions of the first
	// and last event appended (zero with no event). Positions of one append
	// need not be contiguous.
	FirstPosition, LastPosition int64
	// TransactionID is the id of the transaction that appended the events
	// (zero with no event): with LastPosition, the checkpoint a reader has
	// passed once it has seen them (Reached).
	TransactionID uint64
	// Replayed is true when the command id had been recorded already: this
	// is the first append's result and nothing new was written.
	Replayed bool
}

var eventTypePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

// Append appends events to stream if the stream is at expected, in one
// transaction. It returns a *ConflictError when the stream is at another
// version, a *ReservationConflictError when a reservation is held by another
// stream; either way nothing is written. An append of no event writes nothing
// (but still checks expected and the command id).
func (s *Store) Append(ctx context.Context, stream StreamID, expected ExpectedVersion, events []EventData, opts AppendOptions) (AppendResult, error) {
	req := []AppendRequest{{Stream: stream, Expected: expected, Events: events, Options: opts}}
	results, err := s.appendAll(ctx, s.pool, req)
	if err == nil {
		return results[0], nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "commands_pkey" {
		// The same command id raced on another stream and won: its result
		// stands.
		if first, ok, rerr := s.commandResult(ctx, opts.CommandID); rerr == nil && ok {
			return first, nil
		}
	}
	return AppendResult{}, err
}

// AppendTx is Append inside the caller's transaction, for a command that must
// commit other writes atomically with its events. Readers of the global log
// see the events only once tx commits; call Notify after the commit to wake
// live subscribers at once rather than at their next poll.
func (s *Store) AppendTx(ctx context.Context, tx pgx.Tx, stream StreamID, expected ExpectedVersion, events []EventData, opts AppendOptions) (AppendResult, error) {
	results, err := s.appendAll(ctx, tx, []AppendRequest{{Stream: stream, Expected: expected, Events: events, Options: opts}})
	if err != nil {
		return AppendResult{}, err
	}
	return results[0], nil
}

// Notify wakes live subscribers, in this process and others, to read the
// log. Append does it by itself; see AppendTx.
func (s *Store) Notify() { s.notifier.appended() }

// AppendRequest is one stream's append in an AppendBatch.
type AppendRequest struct {
	Stream   StreamID
	Expected ExpectedVersion
	Events   []EventData
	Options  AppendOptions
}

// AppendBatch makes several appends, each as Append would, in one
// transaction and one statement: for a worker that decides a batch of
// aggregates at once. A stream may be named more than once: its appends
// follow one another in the requests' order. It is all or nothing: when
// one append fails (its stream moved on, a reservation is held, its command
// id was recorded by another stream's append meanwhile), nothing is written
// and the error is that append's, as Append returns it, naming its stream.
// The results are in the requests' order.
func (s *Store) AppendBatch(ctx context.Context, reqs []AppendRequest) ([]AppendResult, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	return s.appendAll(ctx, s.pool, reqs)
}

// Querier runs a query: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const (
	// appendSQL makes one append (migrations/0002_append.sql, 0013).
	appendSQL = `SELECT first_version, last_version, first_position, last_position, coalesce(transaction_id, '0'::xid8), replayed
FROM subs_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`
	// appendBatchSQL makes several (migrations/0015_append_batch.sql).
	appendBatchSQL = `SELECT first_version, last_version, first_position, last_position, coalesce(transaction_id, '0'::xid8), replayed
FROM subs_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`
)

// appendAll makes reqs in one statement on q, and wakes the live
// subscribers when q is the pool and something was appended. One append
// goes through subs_append, whose fixed cost is lower; several through
// subs_append_batch, whose every step is one statement for all of them.
func (s *Store) appendAll(ctx context.Context, q Querier, reqs []AppendRequest) ([]AppendResult, error) {
	var subjects []string
	for _, r := range reqs {
		if err := r.Stream.Validate(); err != nil {
			return nil, err
		}
		subjects = s.personal.subjects(subjects, r.Stream, r.Events)
	}
	keys, err := s.personal.dataKeys(ctx, subjects)
	if err != nil {
		return nil, err
	}
	var b appendBatch
	for i, r := range reqs {
		events, err := s.personal.seal(r.Stream, r.Events, keys)
		if err != nil {
			return nil, err
		}
		r.Options.Reserve, r.Options.Release = s.personal.reservations(r.Options.Reserve), s.personal.reservations(r.Options.Release)
		if err := b.add(int32(i+1), r.Stream, r.Expected, events, r.Options); err != nil {
			return nil, err
		}
	}
	if _, own := q.(*pgxpool.Pool); own {
		defer s.ended.tell()
	}
	var rows pgx.Rows
	if len(reqs) == 1 {
		rows, err = q.Query(ctx, appendSQL, b.singleArgs()...)
	} else {
		rows, err = q.Query(ctx, appendBatchSQL, b.args()...)
	}
	if err != nil {
		return nil, appendError(reqs, err)
	}
	results, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AppendResult, error) {
		var r AppendResult
		err := row.Scan(&r.FirstVersion, &r.LastVersion, &r.FirstPosition, &r.LastPosition, &r.TransactionID, &r.Replayed)
		return r, err
	})
	if err != nil {
		return nil, appendError(reqs, err)
	}
	if len(results) != len(reqs) {
		return nil, fmt.Errorf("eventstore: append batch: %d results for %d appends", len(results), len(reqs))
	}
	if _, own := q.(*pgxpool.Pool); own {
		for _, r := range results {
			if r.LastPosition > 0 && !r.Replayed {
				s.notifier.appended()
				break
			}
		}
	}
	return results, nil
}

// appendError is subs_append's or subs_append_batch's error as Append
// returns it: a *ConflictError or a *ReservationConflictError naming the
// append's stream, or the error wrapped with the stream (with the batch's
// size when there are several).
func appendError(reqs []AppendRequest, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "SB409" || pgErr.Code == "SB423") {
		// subs_append_batch names the append in its detail; subs_append
		// makes one, and its conflict's detail is the actual version alone.
		var d struct {
			Append            int
			Actual            int64
			Scope, Key, Owner string
		}
		if actual, perr := strconv.ParseInt(pgErr.Detail, 10, 64); perr == nil {
			d.Actual = actual
		} else {
			_ = json.Unmarshal([]byte(pgErr.Detail), &d)
		}
		if len(reqs) == 1 {
			d.Append = 1
		}
		if d.Append >= 1 && d.Append <= len(reqs) {
			r := reqs[d.Append-1]
			if pgErr.Code == "SB409" {
				return &ConflictError{Stream: r.Stream, Expected: r.Expected, Actual: d.Actual}
			}
			return &ReservationConflictError{Scope: d.Scope, Key: d.Key, Owner: StreamID(d.Owner)}
		}
	}
	if len(reqs) == 1 {
		return fmt.Errorf("eventstore: append to %s: %w", reqs[0].Stream, err)
	}
	return fmt.Errorf("eventstore: append batch of %d (%s first): %w", len(reqs), reqs[0].Stream, err)
}

func (s *Store) commandResult(ctx context.Context, commandID string) (AppendResult, bool, error) {
	r := AppendResult{Replayed: true}
	err := s.pool.QueryRow(ctx, `SELECT c.first_version, c.last_version, c.first_position, c.last_position, coalesce(e.transaction_id, '0'::xid8)
FROM commands c LEFT JOIN events e ON e.global_position = c.last_position WHERE c.command_id = $1`, commandID).
		Scan(&r.FirstVersion, &r.LastVersion, &r.FirstPosition, &r.LastPosition, &r.TransactionID)
	if errors.Is(err, pgx.ErrNoRows) {
		return AppendResult{}, false, nil
	}
	if err != nil {
		return AppendResult{}, false, fmt.Errorf("eventstore: command %s: %w", commandID, err)
	}
	return r, true, nil
}

// CommandResult returns the result of the append recorded for commandID, and
// false if none was.
func (s *Store) CommandResult(ctx context.Context, commandID string) (AppendResult, bool, error) {
	return s.commandResult(ctx, commandID)
}

// appendBatch is subs_append_batch's arguments, built one append at a time.
type appendBatch struct {
	streams      []string
	expected     []int64
	commandIDs   []*string
	recordedAt   []time.Time
	micros       []int64
	eventAppends []int32
	ids          []pgtype.UUID // not uuid.UUID, whose driver.Valuer goes through text on a pool without ConfigurePool
	types        []string
	versions     []int32
	data         []json.RawMessage
	meta         []json.RawMessage
	reserve      reservationArgs
	release      reservationArgs
}

// reservationArgs are reservations of a batch, each with its append's index.
type reservationArgs struct {
	appends      []int32
	scopes, keys []string
}

func (r *reservationArgs) add(i int32, rs []Reservation) {
	for _, x := range rs {
		r.appends = append(r.appends, i)
		r.scopes = append(r.scopes, x.Scope)
		r.keys = append(r.keys, x.Key)
	}
}

// singleArgs are subs_append's arguments for a batch of one append.
func (b *appendBatch) singleArgs() []any {
	return []any{b.streams[0], b.expected[0], b.commandIDs[0], b.ids, b.types, b.versions, b.data, b.meta,
		b.recordedAt[0], b.micros[0], b.reserve.scopes, b.reserve.keys, b.release.scopes, b.release.keys}
}

func (b *appendBatch) args() []any {
	return []any{b.streams, b.expected, b.commandIDs, b.recordedAt, b.micros, b.eventAppends, b.ids, b.types, b.versions, b.data, b.meta,
		b.reserve.appends, b.reserve.scopes, b.reserve.keys, b.release.appends, b.release.scopes, b.release.keys}
}

// add checks append number i (from 1) and adds it; the stream id is checked
// already.
func (b *appendBatch) add(i int32, stream StreamID, expected ExpectedVersion, events []EventData, opts AppendOptions) error {
	if expected < Any {
		return fmt.Errorf("eventstore: append to %s: expected version %d is invalid", stream, int64(expected))
	}
	if opts.RecordedAt.IsZero() {
		return fmt.Errorf("eventstore: append to %s: RecordedAt is required (the engine clock's time)", stream)
	}
	at := opts.RecordedAt.UTC().Truncate(time.Microsecond)
	base := opts.Metadata
	if base.CommandID == "" {
		base.CommandID = opts.CommandID
	}
	var first json.RawMessage // the first event's metadata
	for j, e := range events {
		if !eventTypePattern.MatchString(e.Type) {
			return fmt.Errorf("eventstore: append to %s: event %d: type %q is not a dotted lower-case name", stream, j, e.Type)
		}
		if !json.Valid(e.Data) {
			return fmt.Errorf("eventstore: append to %s: event %d (%s): data is not valid JSON", stream, j, e.Type)
		}
		id := e.ID
		if id == uuid.Nil {
			var err error
			if id, err = uuid.NewV7(); err != nil {
				return fmt.Errorf("eventstore: event id: %w", err)
			}
		}
		meta := first
		if e.Metadata != (Metadata{}) || j == 0 || events[0].Metadata != (Metadata{}) {
			md := mergeMetadata(base, e.Metadata)
			if err := md.validate(); err != nil {
				return fmt.Errorf("eventstore: append to %s: event %d (%s): %w", stream, j, e.Type, err)
			}
			m, err := json.Marshal(md)
			if err != nil {
				return err
			}
			meta = m
		}
		if j == 0 {
			first = meta // the common case: one command, one metadata
		}
		b.eventAppends = append(b.eventAppends, i)
		b.ids = append(b.ids, pgtype.UUID{Bytes: id, Valid: true})
		b.types = append(b.types, e.Type)
		b.versions = append(b.versions, int32(max(e.SchemaVersion, 1)))
		b.data = append(b.data, e.Data)
		b.meta = append(b.meta, meta)
	}
	var commandID *string
	if opts.CommandID != "" {
		commandID = &opts.CommandID
	}
	b.streams = append(b.streams, string(stream))
	b.expected = append(b.expected, int64(expected))
	b.commandIDs = append(b.commandIDs, commandID)
	b.recordedAt = append(b.recordedAt, at)
	b.micros = append(b.micros, at.UnixMicro())
	b.reserve.add(i, opts.Reserve)
	b.release.add(i, opts.Release)
	return nil
}

func mergeMetadata(base, own Metadata) Metadata {
	pick := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	return Metadata{
		ActorKind:     ActorKind(pick(string(own.ActorKind), string(base.ActorKind))),
		ActorID:       pick(own.ActorID, base.ActorID),
		Reason:        pick(own.Reason, base.Reason),
		LogCode:       pick(own.LogCode, base.LogCode),
		CommandID:     pick(own.CommandID, base.CommandID),
		CausationID:   pick(own.CausationID, base.CausationID),
		CorrelationID: pick(own.CorrelationID, base.CorrelationID),
	}
}
