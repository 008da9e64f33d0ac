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
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the event log on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool      *pgxpool.Pool
	upcasters *Upcasters
	notifier  *notifier
	personal  *personalData
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
	r, err := s.appendWith(ctx, s.pool, stream, expected, events, opts)
	if err == nil && r.LastPosition > 0 && !r.Replayed {
		s.notifier.appended()
	}
	return r, err
}

// AppendTx is Append inside the caller's transaction, for a command that must
// commit other writes atomically with its events. Readers of the global log
// see the events only once tx commits; call Notify after the commit to wake
// live subscribers at once rather than at their next poll.
func (s *Store) AppendTx(ctx context.Context, tx pgx.Tx, stream StreamID, expected ExpectedVersion, events []EventData, opts AppendOptions) (AppendResult, error) {
	return s.appendWith(ctx, tx, stream, expected, events, opts)
}

// Notify wakes live subscribers, in this process and others, to read the
// log. Append does it by itself; see AppendTx.
func (s *Store) Notify() { s.notifier.appended() }

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const appendSQL = `SELECT first_version, last_version, first_position, last_position, coalesce(transaction_id, '0'::xid8), replayed
FROM subs_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`

func (s *Store) appendWith(ctx context.Context, q querier, stream StreamID, expected ExpectedVersion, events []EventData, opts AppendOptions) (AppendResult, error) {
	args, err := s.prepareAppend(ctx, stream, expected, events, opts)
	if err != nil {
		return AppendResult{}, err
	}
	var r AppendResult
	err = scanAppend(q.QueryRow(ctx, appendSQL, args...), &r)
	if err == nil {
		return r, nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "commands_pkey" {
		// The same command id raced on another stream and won: its result
		// stands (only reachable with a tx of our own, so q is the pool).
		if first, ok, rerr := s.commandResult(ctx, opts.CommandID); rerr == nil && ok {
			return first, nil
		}
	}
	return AppendResult{}, appendError(stream, expected, err)
}

// prepareAppend checks an append, seals its personal data and returns
// subs_append's arguments.
func (s *Store) prepareAppend(ctx context.Context, stream StreamID, expected ExpectedVersion, events []EventData, opts AppendOptions) ([]any, error) {
	if err := stream.Validate(); err != nil {
		return nil, err
	}
	events, err := s.personal.seal(ctx, stream, events)
	if err != nil {
		return nil, err
	}
	opts.Reserve, opts.Release = s.personal.reservations(opts.Reserve), s.personal.reservations(opts.Release)
	return appendArgs(stream, expected, events, opts)
}

func scanAppend(row pgx.Row, r *AppendResult) error {
	return row.Scan(&r.FirstVersion, &r.LastVersion, &r.FirstPosition, &r.LastPosition, &r.TransactionID, &r.Replayed)
}

// appendError is subs_append's error as Append returns it: a
// *ConflictError, a *ReservationConflictError, or the error wrapped with
// the stream.
func appendError(stream StreamID, expected ExpectedVersion, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "SB409":
			actual, _ := strconv.ParseInt(pgErr.Detail, 10, 64)
			return &ConflictError{Stream: stream, Expected: expected, Actual: actual}
		case "SB423":
			var d struct{ Scope, Key, Owner string }
			if json.Unmarshal([]byte(pgErr.Detail), &d) == nil {
				return &ReservationConflictError{Scope: d.Scope, Key: d.Key, Owner: StreamID(d.Owner)}
			}
		}
	}
	return fmt.Errorf("eventstore: append to %s: %w", stream, err)
}

// AppendRequest is one stream's append in an AppendBatch.
type AppendRequest struct {
	Stream   StreamID
	Expected ExpectedVersion
	Events   []EventData
	Options  AppendOptions
}

// AppendBatch makes several appends, each as Append would, in one
// transaction and one round trip: for a worker that decides a batch of
// aggregates at once. It is all or nothing: when one append fails (its
// stream moved on, a reservation is held, its command id was recorded by
// another stream's append meanwhile), nothing is written and the error is
// that append's, as Append returns it, naming its stream. The results are
// in the requests' order.
func (s *Store) AppendBatch(ctx context.Context, reqs []AppendRequest) ([]AppendResult, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	batch := &pgx.Batch{}
	for _, r := range reqs {
		args, err := s.prepareAppend(ctx, r.Stream, r.Expected, r.Events, r.Options)
		if err != nil {
			return nil, err
		}
		batch.Queue(appendSQL, args...)
	}
	// The statements of one batch run in one implicit transaction, which
	// the server closes at the batch's end: the first that fails rolls
	// back those before it and skips the rest.
	br := s.pool.SendBatch(ctx, batch)
	results := make([]AppendResult, len(reqs))
	for i, r := range reqs {
		if err := scanAppend(br.QueryRow(), &results[i]); err != nil {
			_ = br.Close() // the error is the one above
			return nil, appendError(r.Stream, r.Expected, err)
		}
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("eventstore: append batch: %w", err)
	}
	for _, r := range results {
		if r.LastPosition > 0 && !r.Replayed {
			s.notifier.appended()
			break
		}
	}
	return results, nil
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

// appendArgs checks an append and returns subs_append's arguments; the
// stream id is checked already.
func appendArgs(stream StreamID, expected ExpectedVersion, events []EventData, opts AppendOptions) ([]any, error) {
	if expected < Any {
		return nil, fmt.Errorf("eventstore: append to %s: expected version %d is invalid", stream, int64(expected))
	}
	if opts.RecordedAt.IsZero() {
		return nil, fmt.Errorf("eventstore: append to %s: RecordedAt is required (the engine clock's time)", stream)
	}
	at := opts.RecordedAt.UTC().Truncate(time.Microsecond)
	base := opts.Metadata
	if base.CommandID == "" {
		base.CommandID = opts.CommandID
	}
	n := len(events)
	ids := make([]uuid.UUID, n)
	types := make([]string, n)
	versions := make([]int32, n)
	data := make([]json.RawMessage, n)
	meta := make([]json.RawMessage, n)
	for i, e := range events {
		if !eventTypePattern.MatchString(e.Type) {
			return nil, fmt.Errorf("eventstore: append to %s: event %d: type %q is not a dotted lower-case name", stream, i, e.Type)
		}
		if !json.Valid(e.Data) {
			return nil, fmt.Errorf("eventstore: append to %s: event %d (%s): data is not valid JSON", stream, i, e.Type)
		}
		ids[i] = e.ID
		if ids[i] == uuid.Nil {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, fmt.Errorf("eventstore: event id: %w", err)
			}
			ids[i] = id
		}
		types[i] = e.Type
		versions[i] = int32(max(e.SchemaVersion, 1))
		data[i] = e.Data
		if e.Metadata == (Metadata{}) && i > 0 && events[0].Metadata == (Metadata{}) {
			meta[i] = meta[0] // the common case: one command, one metadata
			continue
		}
		md := mergeMetadata(base, e.Metadata)
		if err := md.validate(); err != nil {
			return nil, fmt.Errorf("eventstore: append to %s: event %d (%s): %w", stream, i, e.Type, err)
		}
		m, err := json.Marshal(md)
		if err != nil {
			return nil, err
		}
		meta[i] = m
	}
	var commandID *string
	if opts.CommandID != "" {
		commandID = &opts.CommandID
	}
	reserveScopes, reserveKeys := splitReservations(opts.Reserve)
	releaseScopes, releaseKeys := splitReservations(opts.Release)
	return []any{string(stream), int64(expected), commandID, ids, types, versions, data, meta,
		at, at.UnixMicro(), reserveScopes, reserveKeys, releaseScopes, releaseKeys}, nil
}

func splitReservations(rs []Reservation) (scopes, keys []string) {
	if len(rs) == 0 {
		return nil, nil
	}
	for _, r := range rs {
		scopes = append(scopes, r.Scope)
		keys = append(keys, r.Key)
	}
	return scopes, keys
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
