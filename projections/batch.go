package projections

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
)

// BatchApplier is a Projection that applies a whole batch at once, with
// the effect of applying its events one by one: a read model that folds
// many events into few rows reads and writes each row once per batch, in a
// few round trips, instead of twice per event.
type BatchApplier interface {
	// ApplyBatch applies events (recs decoded) inside tx, in order.
	ApplyBatch(ctx context.Context, tx pgx.Tx, recs []eventstore.RecordedEvent, events []domain.Event) error
}

// applyAll decodes recs and applies them to p inside tx: as one batch when
// p is a BatchApplier, else one by one. The runner and a rebuild apply
// through it alike.
func applyAll(ctx context.Context, tx pgx.Tx, p Projection, log eventLog, recs []eventstore.RecordedEvent) error {
	events, err := decodeAll(log.types, recs)
	if err != nil {
		return err
	}
	return applyDecoded(ctx, tx, p, log, recs, events)
}

// eventLog is the log a batch comes from, as a projection reads it beyond
// the batch: a projection folding subscription states reads there the
// events a state's snapshot in its table lacks (loadSubscriptionStates).
// applyDecoded hands it to the projection in the context, the one way
// through Projection.Apply and BatchApplier.ApplyBatch.
type eventLog struct {
	store *eventstore.Store
	types *eventstore.EventTypes
}

type eventLogKey struct{}

// logOf returns the log applyDecoded handed down with ctx.
func logOf(ctx context.Context) (eventLog, bool) {
	log, ok := ctx.Value(eventLogKey{}).(eventLog)
	return log, ok
}

func decodeAll(types *eventstore.EventTypes, recs []eventstore.RecordedEvent) ([]domain.Event, error) {
	events := make([]domain.Event, len(recs))
	for i, rec := range recs {
		e, err := types.Decode(rec)
		if err != nil {
			return nil, err
		}
		events[i] = e
	}
	return events, nil
}

// sharedDecoding decodes a batch once for the several projections it is
// handed to in turn (Runner.CatchUp): it keeps the last batch's events,
// known by the batch's slice. Events are values no projection changes.
type sharedDecoding struct {
	types  *eventstore.EventTypes
	mu     sync.Mutex
	recs   []eventstore.RecordedEvent
	events []domain.Event
}

func (d *sharedDecoding) decode(recs []eventstore.RecordedEvent) ([]domain.Event, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(recs) > 0 && len(recs) == len(d.recs) && &recs[0] == &d.recs[0] {
		return d.events, nil
	}
	events, err := decodeAll(d.types, recs)
	if err != nil {
		return nil, err
	}
	d.recs, d.events = recs, events
	return events, nil
}

// applyDecoded applies recs, decoded as events, to p inside tx.
func applyDecoded(ctx context.Context, tx pgx.Tx, p Projection, log eventLog, recs []eventstore.RecordedEvent, events []domain.Event) error {
	ctx = context.WithValue(ctx, eventLogKey{}, log)
	if b, ok := p.(BatchApplier); ok {
		return b.ApplyBatch(ctx, tx, recs, events)
	}
	pipe := pipeline(tx, recs)
	for i, rec := range recs {
		pipe.event = i
		if err := p.Apply(ctx, pipe, rec, events[i]); err != nil {
			return pipe.applyFailed(err)
		}
	}
	return pipe.flush(ctx)
}

// applyOne applies one event as a batch of one: the Apply of a projection
// whose ApplyBatch is its one way of writing.
func applyOne(ctx context.Context, tx pgx.Tx, b BatchApplier, rec eventstore.RecordedEvent, e domain.Event) error {
	return b.ApplyBatch(ctx, tx, []eventstore.RecordedEvent{rec}, []domain.Event{e})
}

// pipeline returns a pipelinedTx on tx for a batch of recs, whose errors
// name the event that queued the failing statement.
func pipeline(tx pgx.Tx, recs []eventstore.RecordedEvent) *pipelinedTx {
	return &pipelinedTx{Tx: tx, failed: func(i int, err error) error {
		rec := recs[i]
		return fmt.Errorf("apply event %s (%s, position %d): %w", rec.ID, rec.Type, rec.Position, err)
	}}
}

// pipelinedTx is a transaction whose Exec statements are queued and sent
// together, in order, before the next read and at the end of the batch: a
// projection that writes a statement or two per event costs a round trip
// per batch rather than per statement, with the same effect. Exec returns
// an empty command tag; a statement's error comes from the flush, naming
// the event whose Apply queued it.
type pipelinedTx struct {
	pgx.Tx
	queue  pgx.Batch
	events []int // the event that queued each statement
	event  int   // the event being applied
	failed func(event int, err error) error
	err    error
}

func (t *pipelinedTx) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	t.queue.Queue(sql, args...)
	t.events = append(t.events, t.event)
	return pgconn.CommandTag{}, nil
}

func (t *pipelinedTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.Tx.Query(ctx, sql, args...)
}

func (t *pipelinedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := t.flush(ctx); err != nil {
		return errRow{err}
	}
	return t.Tx.QueryRow(ctx, sql, args...)
}

// SendBatch sends the queue first. When that fails, b fails too (the
// transaction is aborted), and applyAll reports the queue's error.
func (t *pipelinedTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	_ = t.flush(ctx)
	return t.Tx.SendBatch(ctx, b)
}

func (t *pipelinedTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error) {
	if err := t.flush(ctx); err != nil {
		return 0, err
	}
	return t.Tx.CopyFrom(ctx, table, columns, rows)
}

func (t *pipelinedTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.Tx.Begin(ctx)
}

// applyFailed is the error of a projection's Apply of the current event
// that returned err: the queue's first error when a flush failed (it names
// its own event), else err, naming the current event.
func (t *pipelinedTx) applyFailed(err error) error {
	if t.err != nil {
		return t.err
	}
	return t.failed(t.event, err)
}

// errRow carries a failed flush to a caller of QueryRow.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// flush sends the queued statements in one round trip. Its first error
// stays the transaction's (t.err): every later statement fails with it.
func (t *pipelinedTx) flush(ctx context.Context) error {
	n := t.queue.Len()
	if t.err != nil || n == 0 {
		return t.err
	}
	results := t.Tx.SendBatch(ctx, &t.queue)
	for i := range n {
		if _, err := results.Exec(); err != nil {
			results.Close()
			t.err = t.failed(t.events[i], err)
			return t.err
		}
	}
	t.queue, t.events = pgx.Batch{}, t.events[:0]
	return results.Close()
}

// subscriptionStates folds a batch's subscription events into the states a
// table keeps per subscription, and queues the statements that write them
// back, each changed row once, with the statements the projection queues
// itself, in the order they must run.
//
// A row holds the stream version of the last event folded into it
// (version) and a snapshot of its state (state, at state_version), which
// is written only every snapshotEvery versions: the state grows with the
// subscription's history (a monthly plan's every payment: 3 KB within a
// year), and writing it on every event, twice, took a tenth of the
// simulated year's time (workers/simulation). A
// row whose state is not kept in memory at its version is read from its
// snapshot and the events after it in the log. When a snapshot is taken
// depends on the log alone (snapshotDue), never on how it was batched, so a
// rebuild writes the very rows the live projection wrote (AUD-4).
type subscriptionStates struct {
	states   map[string]subscription.Subscription
	stored   map[string]bool   // has a row as the batch begins
	versions map[string]int64  // the version last folded into each row; none for a new row
	changed  []string          // not yet written, in the order first changed
	last     map[string]folded // the last event folded into each changed row
	snaps    map[string]snapshot
	queue    pgx.Batch
	cache    *SubscriptionStates
}

// snapshotEvery is how many stream versions apart a row's state is written
// at most: reading a row whose state is not kept in memory reads at most
// as many events from the log.
const snapshotEvery = 16

// snapshotDue reports whether folding the event at version into a row
// whose last folded version is prev takes a snapshot: the row's first, or
// one that crosses a multiple of snapshotEvery.
func snapshotDue(prev, version int64) bool {
	return prev == 0 || version/snapshotEvery > prev/snapshotEvery
}

// snapshot is a state to write into a row, as JSON, with its version.
type snapshot struct {
	state   []byte
	version int64
}

// keptInState reports whether a subscription event is folded into the
// states the read models keep: a sent e-mail changes nothing they show,
// and would only grow the state every later event reads and writes back.
func keptInState(e domain.Event) bool {
	_, sent := e.(subscription.EmailSent)
	return !sent
}

// SubscriptionStates keeps in memory, by stream version, the subscription
// states a read model wrote last (Products, DueWork), so that a batch
// neither reads a row's state from its table nor decodes it. Each read
// model needs its own.
//
// While the read model's batches follow one another (each starts at the
// checkpoint the one before left: eventstore.HandledBatch), no one else
// wrote its rows in between, and a state kept is its row's: the batch
// does not even ask the table. Otherwise (the first batch, one after a
// failed batch or after another process moved the checkpoint on) it
// starts from none kept and reads every row it needs; and outside a
// subscription's batch (no bounds known) a state kept counts only when
// its row is at the version kept.
type SubscriptionStates struct {
	kept *eventstore.StateCache[subscription.Subscription]

	mu sync.Mutex
	// through is the checkpoint the last batch that kept states takes the
	// read model to once committed; following says whether that batch
	// began where the one before it ended, or from nothing kept, and did
	// not fail.
	through   eventstore.Checkpoint
	following bool
}

// NewSubscriptionStates returns a cache of size states at most.
func NewSubscriptionStates(size int) *SubscriptionStates {
	return &SubscriptionStates{kept: eventstore.NewStateCache[subscription.Subscription](size)}
}

// begin starts a batch handed ctx and reports whether the states kept are
// their rows' (the batch follows the last one); when they may not be, in
// a subscription's batch, it drops them all.
func (c *SubscriptionStates) begin(ctx context.Context) bool {
	b, inBatch := eventstore.HandledBatch(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	follows := inBatch && c.following && c.through == b.From
	if inBatch && !follows {
		c.kept.Clear()
	}
	c.through, c.following = b.To, inBatch
	return follows
}

// end ends a batch that err, when set, failed: its transaction rolls back,
// and what it kept is not to be trusted. A nil c keeps nothing.
func (c *SubscriptionStates) end(err error) {
	if c == nil || err == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.following = false
}

type folded struct {
	rec eventstore.RecordedEvent
	e   domain.Event
}

// loadSubscriptionStates reads the states table keeps for the
// subscriptions whose streams recs belong to: from cache (nil for none)
// those it keeps, without a query when the batch follows the one that
// kept them (SubscriptionStates), else only those kept at the row's
// version; the others, in one query, from the row's snapshot and, when the
// snapshot is older than the row, the events after it from the log (one
// more query for all of them).
func loadSubscriptionStates(ctx context.Context, tx pgx.Tx, table string, cache *SubscriptionStates,
	recs []eventstore.RecordedEvent) (*subscriptionStates, error) {
	s := &subscriptionStates{states: map[string]subscription.Subscription{}, stored: map[string]bool{}, versions: map[string]int64{},
		last: map[string]folded{}, snaps: map[string]snapshot{}, cache: cache}
	trusted := cache != nil && cache.begin(ctx)
	var ids []uuid.UUID
	var keys []string     // each id as states names it
	var versions []*int64 // the version kept of each, if any
	for _, rec := range recs {
		id, ok := strings.CutPrefix(string(rec.StreamID), subscription.StreamPrefix)
		if !ok {
			continue
		}
		if _, seen := s.states[id]; seen {
			continue
		}
		// The state kept, if any, goes straight into states: a row at
		// another version replaces it below, and one without a row resets
		// it (a copy per row in a map of its own was nearly half of what
		// loading the states allocated: a state is 848 bytes).
		var st subscription.Subscription
		var version *int64
		if cache != nil {
			if kept, v, ok := cache.kept.Get(rec.StreamID); ok {
				if trusted { // its row is at v
					s.states[id], s.stored[id], s.versions[id] = kept, true, v
					continue
				}
				st, version = kept, &v
			}
		}
		u, err := uuid.Parse(id)
		if err != nil {
			return nil, fmt.Errorf("%s: stream %s: %w", table, rec.StreamID, err)
		}
		s.states[id] = st
		ids, keys = append(ids, u), append(keys, id)
		versions = append(versions, version)
	}
	if len(ids) == 0 {
		return s, nil
	}
	// LATERAL, so that a cached generic plan looks each row up by its key.
	rows, err := tx.Query(ctx, `SELECT c.id, coalesce(t.version, 0), t.state_version, t.version IS NOT DISTINCT FROM c.v,
    CASE WHEN t.version IS NOT DISTINCT FROM c.v THEN NULL ELSE t.state END
FROM unnest($1::uuid[], $2::bigint[]) AS c(id, v)
CROSS JOIN LATERAL (SELECT version, state_version, state FROM `+table+` WHERE subscription_id = c.id) AS t`, ids, versions)
	if err != nil {
		return nil, fmt.Errorf("%s: states: %w", table, err)
	}
	var (
		id                    uuid.UUID
		version, stateVersion int64
		atKept                bool
		raw                   []byte
		behind                []eventstore.StreamFrom // the rows whose snapshot is older than the row
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &version, &stateVersion, &atKept, &raw}, func() error {
		key := id.String()
		s.stored[key], s.versions[key] = true, version
		if atKept {
			return nil
		}
		var st subscription.Subscription
		// Decoded by the state itself: json.Unmarshal would check the
		// whole text once more first.
		if raw != nil {
			if err := st.UnmarshalJSON(raw); err != nil {
				return fmt.Errorf("subscription %s: %w", key, err)
			}
		}
		s.states[key] = st
		if stateVersion < version {
			behind = append(behind, eventstore.StreamFrom{Stream: eventstore.StreamID(subscription.StreamName(id)), FromVersion: stateVersion + 1})
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("%s: states: %w", table, err)
	}
	for i, key := range keys {
		if versions[i] != nil && !s.stored[key] {
			// Kept, but the row is gone (its batch rolled back): only
			// outside a subscription's batch, whose kept states a
			// discontinuity clears (SubscriptionStates.begin).
			s.states[key] = subscription.Subscription{}
		}
	}
	if err := s.foldFromLog(ctx, tx, table, behind); err != nil {
		return nil, err
	}
	return s, nil
}

// foldFromLog folds into the states of the rows behind (each from the
// version after its snapshot) the events of their streams up to the rows'
// versions, read from the log in tx.
func (s *subscriptionStates) foldFromLog(ctx context.Context, tx pgx.Tx, table string, behind []eventstore.StreamFrom) error {
	if len(behind) == 0 {
		return nil
	}
	log, ok := logOf(ctx)
	if !ok {
		return fmt.Errorf("%s: the state of %s is kept at version %d, older than its row, and no event log is at hand to fold the rest from "+
			"(apply through a Runner or a rebuild)", table, behind[0].Stream, behind[0].FromVersion-1)
	}
	recs, err := log.store.ReadStreamsTx(ctx, tx, behind)
	if err != nil {
		return fmt.Errorf("%s: states: %w", table, err)
	}
	reached := map[string]int64{}
	for _, rec := range recs {
		id := strings.TrimPrefix(string(rec.StreamID), subscription.StreamPrefix)
		if rec.Version > s.versions[id] {
			continue // after the row: the projection has not come so far
		}
		reached[id] = rec.Version
		e, err := log.types.Decode(rec)
		if err != nil {
			return fmt.Errorf("%s: states: %w", table, err)
		}
		if keptInState(e) {
			s.states[id] = subscription.Decider.Evolve(s.states[id], e)
		}
	}
	for _, b := range behind {
		id := strings.TrimPrefix(string(b.Stream), subscription.StreamPrefix)
		if reached[id] != s.versions[id] {
			return fmt.Errorf("%s: subscription %s: its row is at version %d, the log holds it up to %d", table, id, s.versions[id], reached[id])
		}
	}
	return nil
}

// has reports whether the subscription has a row, before the batch or
// created in it.
func (s *subscriptionStates) has(id string) bool { return s.stored[id] }

// created sets the state of a row the batch creates, at rec's version: its
// insert is queued with the state given as its first snapshot.
func (s *subscriptionStates) created(id string, rec eventstore.RecordedEvent, st subscription.Subscription) {
	s.states[id], s.stored[id], s.versions[id] = st, true, rec.Version
	s.keep(rec, st)
}

// keep keeps st, the state written at rec's version, in the cache.
func (s *subscriptionStates) keep(rec eventstore.RecordedEvent, st subscription.Subscription) {
	if s.cache != nil {
		s.cache.kept.Put(rec.StreamID, st, rec.Version)
	}
}

// fold evolves the subscription's state with e, marks it changed, and
// takes the snapshot due at rec's version, if any.
func (s *subscriptionStates) fold(id string, rec eventstore.RecordedEvent, e domain.Event) error {
	if _, pending := s.last[id]; !pending {
		s.changed = append(s.changed, id)
	}
	s.states[id] = subscription.Decider.Evolve(s.states[id], e)
	s.last[id] = folded{rec, e}
	prev := s.versions[id]
	s.versions[id] = rec.Version
	if !snapshotDue(prev, rec.Version) {
		return nil
	}
	state, err := s.states[id].MarshalJSON()
	if err != nil {
		return fmt.Errorf("subscription %s: %w", id, err)
	}
	s.snaps[id] = snapshot{state: state, version: rec.Version}
	return nil
}

// flush hands write each changed state, with the snapshot taken since the
// last flush if any, for the projection to queue its rows' statement after
// the statements queued so far: a statement the projection queues next
// then sees the rows as the events so far left them.
func (s *subscriptionStates) flush(write func(id string, st subscription.Subscription, last folded, snap *snapshot) error) error {
	for _, id := range s.changed {
		last := s.last[id]
		var snap *snapshot
		if sn, ok := s.snaps[id]; ok {
			snap = &sn
		}
		if err := write(id, s.states[id], last, snap); err != nil {
			return fmt.Errorf("subscription %s: %w", id, err)
		}
		s.keep(last.rec, s.states[id])
		delete(s.last, id)
		delete(s.snaps, id)
	}
	s.changed = s.changed[:0]
	return nil
}

// send runs the queued statements in one round trip.
func (s *subscriptionStates) send(ctx context.Context, tx pgx.Tx) error {
	if s.queue.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, &s.queue).Close()
}
