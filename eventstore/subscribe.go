package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// notifyChannel is the channel appends are notified on (notify.go).
const notifyChannel = "subs_events"

// Handler applies a batch of events inside tx; the subscription saves its
// checkpoint in the same tx, so the batch takes effect exactly once. An
// error rolls both back and stops the subscription. HandledBatch(ctx)
// tells the checkpoints the batch moves the subscription between.
type Handler func(ctx context.Context, tx pgx.Tx, events []RecordedEvent) error

// BatchBounds are the checkpoints a batch moves its subscription between:
// From, where the subscription stood as its transaction began (under the
// lock of its checkpoint), and To, where the batch leaves it once
// committed.
type BatchBounds struct {
	From, To Checkpoint
}

type batchBoundsKey struct{}

// HandledBatch returns the bounds of the batch whose Handler was handed
// ctx, and false for a ctx no subscription handed: a handler that keeps
// what it wrote in memory (a read model's states) can tell from them
// whether the batch before this one was its own, and so whether what it
// keeps is still what its tables hold.
func HandledBatch(ctx context.Context) (BatchBounds, bool) {
	b, ok := ctx.Value(batchBoundsKey{}).(BatchBounds)
	return b, ok
}

// handingBatch is ctx as the handlers of the batch from cp to next get it.
func handingBatch(ctx context.Context, cp, next Checkpoint) context.Context {
	return context.WithValue(ctx, batchBoundsKey{}, BatchBounds{From: cp, To: next})
}

// SubscriptionConfig configures Subscribe.
type SubscriptionConfig struct {
	// Name identifies the subscription's checkpoint. Required.
	Name string
	// BatchSize is the most events handed to one Handler call. Default 500.
	BatchSize int
	// PollInterval is how long to wait for a notification before reading
	// anyway: the floor under LISTEN/NOTIFY. Default 500ms.
	PollInterval time.Duration
	// Logger receives the subscription's warnings. Default slog.Default().
	Logger *slog.Logger
}

func (c *SubscriptionConfig) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.PollInterval == 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config Subscribe cannot run with.
func (c SubscriptionConfig) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("subscription: Name is required")
	case c.BatchSize < 0:
		return errors.New("subscription: BatchSize must not be negative")
	case c.PollInterval < 0:
		return errors.New("subscription: PollInterval must not be negative")
	}
	return nil
}

// Checkpoint returns the saved checkpoint of the named subscription, the
// zero checkpoint if it has none.
func (s *Store) Checkpoint(ctx context.Context, name string) (Checkpoint, error) {
	var cp Checkpoint
	err := s.pool.QueryRow(ctx, `SELECT transaction_id, global_position FROM subscription_checkpoints WHERE name = $1`, name).
		Scan(&cp.TransactionID, &cp.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return Checkpoint{}, nil
	}
	if err != nil {
		return cp, fmt.Errorf("eventstore: checkpoint %s: %w", name, err)
	}
	return cp, nil
}

// rowQuerier is what the checkpoint reads need: the pool or a transaction.
type rowQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// checkpoints returns the saved checkpoints of names (zero for one that has
// none), in one query.
func checkpoints(ctx context.Context, q rowQuerier, names []string) ([]Checkpoint, error) {
	rows, err := q.Query(ctx, `SELECT name, transaction_id, global_position FROM subscription_checkpoints WHERE name = ANY($1)`, names)
	if err != nil {
		return nil, fmt.Errorf("eventstore: checkpoints: %w", err)
	}
	saved := map[string]Checkpoint{}
	var name string
	var cp Checkpoint
	_, err = pgx.ForEachRow(rows, []any{&name, &cp.TransactionID, &cp.Position}, func() error {
		saved[name] = cp
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("eventstore: checkpoints: %w", err)
	}
	cps := make([]Checkpoint, len(names))
	for i, n := range names {
		cps[i] = saved[n]
	}
	return cps, nil
}

// lockCheckpoints serializes the batches of the named subscriptions across
// processes for the rest of tx and returns their checkpoints as committed:
// several engine processes may run the same subscription, and only the one
// whose batch starts at the stored checkpoint may apply it. The locks are
// taken in the order of the names' sorting, so that two processes locking
// several never wait for each other in a circle.
func lockCheckpoints(ctx context.Context, tx pgx.Tx, names []string) ([]Checkpoint, error) {
	sorted := slices.Sorted(slices.Values(names))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('subscription:' || n, 0)) FROM unnest($1::text[]) AS n`,
		sorted); err != nil {
		return nil, fmt.Errorf("eventstore: lock subscriptions %v: %w", names, err)
	}
	// A statement of its own: under READ COMMITTED its snapshot is taken
	// after the locks are held, so it sees what their last holder saved.
	return checkpoints(ctx, tx, names)
}

func lockCheckpoint(ctx context.Context, tx pgx.Tx, name string) (Checkpoint, error) {
	cps, err := lockCheckpoints(ctx, tx, []string{name})
	if err != nil {
		return Checkpoint{}, err
	}
	return cps[0], nil
}

// SaveCheckpoint records cp as the named subscription's place, in tx.
func SaveCheckpoint(ctx context.Context, tx pgx.Tx, name string, cp Checkpoint) error {
	return saveCheckpoints(ctx, tx, []string{name}, cp)
}

// saveCheckpoints records cp as the place of each named subscription, in tx
// and one statement.
func saveCheckpoints(ctx context.Context, tx pgx.Tx, names []string, cp Checkpoint) error {
	_, err := tx.Exec(ctx, `INSERT INTO subscription_checkpoints (name, transaction_id, global_position, updated_at)
SELECT n, $2, $3, now() FROM unnest($1::text[]) AS n
ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id,
    global_position = EXCLUDED.global_position, updated_at = now()`, names, cp.TransactionID, cp.Position)
	if err != nil {
		return fmt.Errorf("eventstore: save checkpoints %v: %w", names, err)
	}
	return nil
}

// Subscribe catches up from the subscription's checkpoint, then follows the
// log live (woken by NOTIFY, polling every PollInterval as a floor), handing
// each batch to h in a transaction that also saves the checkpoint. It runs
// until ctx is done (returning ctx's error) or h fails (returning that
// error). Events arrive in commit order, none skipped, each once per
// committed checkpoint.
func (s *Store) Subscribe(ctx context.Context, cfg SubscriptionConfig, h Handler) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("eventstore: invalid config: %w", err)
	}
	cp, err := s.Checkpoint(ctx, cfg.Name)
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop() // ends the listener with the subscription
	wake := s.listen(ctx, cfg.Logger)
	heldBackWait := minHeldBackWait
	for {
		local := s.notifier.wait() // before reading, so no append slips between
		n, err := s.handleBatch(ctx, cfg, &cp, h)
		if err != nil {
			return err
		}
		if n == cfg.BatchSize {
			continue
		}
		// Committed events that a transaction still in flight holds back are
		// worth a quick retry, not a whole poll interval.
		wait := cfg.PollInterval
		held, err := s.heldBack(ctx, cp)
		if err != nil {
			return err
		}
		if held {
			wait = min(heldBackWait, wait)
			heldBackWait = min(2*heldBackWait, maxHeldBackWait)
		} else {
			heldBackWait = minHeldBackWait
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-local:
		case <-time.After(wait):
		}
	}
}

// handleBatch hands the next batch after *cp to h in a transaction that
// saves the checkpoint, and moves *cp on; it returns how many events the
// batch held (0: none to handle; the batch size when another process
// handled the batch meanwhile, so that the caller reads again at once).
func (s *Store) handleBatch(ctx context.Context, cfg SubscriptionConfig, cp *Checkpoint, h Handler) (int, error) {
	events, err := s.ReadAll(ctx, *cp, cfg.BatchSize)
	if err != nil || len(events) == 0 {
		return 0, err
	}
	cps, err := s.applyBatch(ctx, *cp, events, Subscriber{Config: cfg, Handler: h})
	if err != nil {
		return 0, err
	}
	next := cps[0]
	*cp = next
	if next != Of(events[len(events)-1]) {
		return cfg.BatchSize, nil
	}
	return len(events), nil
}

// applyBatch hands events, the batch after cp, to each of subs in one
// transaction that saves their checkpoints after them, and returns each
// one's checkpoint; a subscriber whose checkpoint another process moved
// from cp meanwhile is not handed the batch, and its checkpoint as moved
// is returned. One handler's error rolls back every one's batch.
func (s *Store) applyBatch(ctx context.Context, cp Checkpoint, events []RecordedEvent, subs ...Subscriber) ([]Checkpoint, error) {
	next := Of(events[len(events)-1])
	names := make([]string, len(subs))
	for i, sub := range subs {
		names[i] = sub.Config.Name
	}
	defer s.ended.tell()
	bounds := handingBatch(ctx, cp, next)
	err := pgx.BeginTxFunc(ctx, s.pool, expectingCheckpoints(names, cp, next), func(tx pgx.Tx) error {
		for _, sub := range subs {
			if err := sub.Handler(bounds, tx, events); err != nil {
				return fmt.Errorf("subscription %s: %w", sub.Config.Name, err)
			}
		}
		return nil
	})
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == checkpointMovedCode {
		return s.applyBatchRead(ctx, cp, next, names, events, subs...)
	}
	if err != nil {
		return nil, fmt.Errorf("eventstore: subscriptions %v: %w", names, err)
	}
	cps := make([]Checkpoint, len(subs))
	for i := range cps {
		cps[i] = next
	}
	return cps, nil
}

// checkpointMovedCode is the SQLSTATE subs_expect_checkpoints raises when
// a subscription is not at the checkpoint expected (migration 0024).
const checkpointMovedCode = "SB412"

// expectingCheckpoints is the transaction of a batch that takes the named
// subscriptions from cp to next, in two round trips besides the handlers'
// statements instead of five: BEGIN goes with the checkpoints' locks and
// the check that each is still at cp (it raises checkpointMovedCode
// otherwise: another process applied the batch), and the checkpoints' save
// with COMMIT. On two busy cores each round trip waits to be scheduled at
// both ends, and a catch-up's are on the renewal runs' path
// (workers/simulation). The statements go as the simple protocol's text,
// with their values inlined: a simple query takes no parameters.
func expectingCheckpoints(names []string, cp, next Checkpoint) pgx.TxOptions {
	sorted := slices.Sorted(slices.Values(names))
	return pgx.TxOptions{
		BeginQuery: fmt.Sprintf(`BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('subscription:' || n, 0)) FROM unnest(%s) AS n;
SELECT subs_expect_checkpoints(%s, '%d'::xid8, %d)`, textArray(sorted), textArray(names), cp.TransactionID, cp.Position),
		CommitQuery: fmt.Sprintf(`INSERT INTO subscription_checkpoints (name, transaction_id, global_position, updated_at)
SELECT n, '%d'::xid8, %d, now() FROM unnest(%s) AS n
ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id,
    global_position = EXCLUDED.global_position, updated_at = now();
COMMIT`, next.TransactionID, next.Position, textArray(names)),
	}
}

// textArray is an SQL array literal of texts (standard_conforming_strings,
// PostgreSQL's default: only a quote is escaped, by doubling it).
func textArray(texts []string) string {
	quoted := make([]string, len(texts))
	for i, t := range texts {
		quoted[i] = "'" + strings.ReplaceAll(t, "'", "''") + "'"
	}
	return "ARRAY[" + strings.Join(quoted, ", ") + "]::text[]"
}

// applyBatchRead is applyBatch when a subscription was not at cp as the
// batch began: it reads the checkpoints under their locks and applies the
// batch to the subscribers still at cp, the others having been moved on by
// another process.
func (s *Store) applyBatchRead(ctx context.Context, cp, next Checkpoint, names []string, events []RecordedEvent, subs ...Subscriber) ([]Checkpoint, error) {
	var cps []Checkpoint
	bounds := handingBatch(ctx, cp, next)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		stored, err := lockCheckpoints(ctx, tx, names)
		if err != nil {
			return err
		}
		var handled []string
		for i, sub := range subs {
			if stored[i] != cp { // another process applied this batch meanwhile
				continue
			}
			if err := sub.Handler(bounds, tx, events); err != nil {
				return fmt.Errorf("subscription %s: %w", sub.Config.Name, err)
			}
			stored[i] = next
			handled = append(handled, sub.Config.Name)
		}
		cps = stored
		if len(handled) == 0 {
			return nil
		}
		return saveCheckpoints(ctx, tx, handled, next)
	})
	if err != nil {
		return nil, fmt.Errorf("eventstore: subscriptions %v: %w", names, err)
	}
	return cps, nil
}

// Subscriber is one subscription CatchUp brings up to date: its
// configuration (Name, BatchSize) and its handler.
type Subscriber struct {
	Config  SubscriptionConfig
	Handler Handler
	// Applied, when set, is called after each batch Handler applied has
	// committed, with the checkpoint before the batch and its events (the
	// slice Handler was handed, not to be changed): a process hands them on
	// to subscriptions of its own that trail behind (ApplyFrom), which
	// then do not read them again. Called on CatchUp's goroutine.
	Applied func(from Checkpoint, events []RecordedEvent)
}

// CatchUp hands every event after each subscriber's checkpoint to its
// handler, in batches as Subscribe does, until every one has handled the
// log up to at least target, and returns. It is Subscribe without the
// following: for a process that decides itself when its read models must
// be up to date (a simulation between the runs of its workers), so that a
// catch-up is a few large batches rather than one batch per append. The
// subscribers that stand at one checkpoint share each batch: it is read
// once, and handed to each in turn in one transaction, which saves all
// their checkpoints (a few round trips per batch rather than a few per
// subscriber and batch). The batch size is the smallest of the subscribers'.
func (s *Store) CatchUp(ctx context.Context, target Checkpoint, subs ...Subscriber) error {
	return s.advance(ctx, target, subs, s.ReadAll)
}

// ApplyFrom brings every subscriber to the end of events, a stretch of the
// log after from as ReadAll returned it (a batch another subscription was
// handed, see Subscriber.Applied): a subscriber behind from reads the log
// up to it first, as CatchUp does; each is then handed the stretch's events
// after its checkpoint, those at one checkpoint together in one
// transaction; one at or past the stretch's end is left as it is.
func (s *Store) ApplyFrom(ctx context.Context, from Checkpoint, events []RecordedEvent, subs ...Subscriber) error {
	if len(events) == 0 {
		return nil
	}
	end := Of(events[len(events)-1])
	return s.advance(ctx, end, subs, func(ctx context.Context, at Checkpoint, limit int) ([]RecordedEvent, error) {
		if !at.Reached(from) {
			return s.ReadAll(ctx, at, limit)
		}
		// The events after at: the stretch is in ReadAll's order.
		next, _ := slices.BinarySearchFunc(events, at, func(e RecordedEvent, at Checkpoint) int {
			if at.Reached(Of(e)) {
				return -1
			}
			return 1
		})
		return events[next:min(len(events), next+limit)], nil
	})
}

// advance hands the subscribers the events read returns after their
// checkpoints until every one has reached target, as CatchUp describes.
func (s *Store) advance(ctx context.Context, target Checkpoint, subs []Subscriber,
	read func(ctx context.Context, from Checkpoint, limit int) ([]RecordedEvent, error)) error {
	subs = slices.Clone(subs)
	names := make([]string, len(subs))
	size := 0
	for i := range subs {
		cfg := &subs[i].Config
		cfg.setDefaults()
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("eventstore: invalid config: %w", err)
		}
		if size == 0 || cfg.BatchSize < size {
			size = cfg.BatchSize
		}
		names[i] = cfg.Name
	}
	cps, known := s.reached.get(names)
	if !known {
		var err error
		if cps, err = checkpoints(ctx, s.pool, names); err != nil {
			return err
		}
	}
	wait := minHeldBackWait
	for {
		// The earliest checkpoint short of target: its subscribers take
		// the next batch; those further on wait for them.
		var from *Checkpoint
		for i := range cps {
			if !cps[i].Reached(target) && (from == nil || !cps[i].Reached(*from)) {
				from = &cps[i]
			}
		}
		if from == nil {
			return nil
		}
		at := *from
		ended := s.ended.wait()
		events, err := read(ctx, at, size)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			// target is committed, yet not readable: an older transaction
			// still in flight holds it back. When it is one of this
			// store's, its end is heard at once; another process's is
			// waited for.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-ended:
			case <-time.After(wait):
				wait = min(2*wait, maxHeldBackWait)
			}
			continue
		}
		wait = minHeldBackWait
		var group []Subscriber
		var members []int
		for i := range subs {
			if cps[i] == at {
				group, members = append(group, subs[i]), append(members, i)
			}
		}
		moved, err := s.applyBatch(ctx, at, events, group...)
		if err != nil {
			return err
		}
		handled := Of(events[len(events)-1])
		for j, i := range members {
			cps[i] = moved[j]
			s.reached.put(names[i], moved[j])
			if moved[j] == handled && subs[i].Applied != nil {
				subs[i].Applied(at, events)
			}
		}
	}
}

// checkpointMemory is where the subscriptions a store's catch-ups moved
// stand, as their transactions committed them: a catch-up starts from
// there instead of reading the checkpoints in a round trip of their own
// (the renewal runs' path, workers/simulation, catches up after every run).
// A checkpoint only moves on (a rebuild refuses to move one back), so one
// remembered is at most the stored one: a catch-up that finds it already
// at its target is done; one whose batch another process applied meanwhile
// learns the stored checkpoint as its batch begins (applyBatch) and goes
// on from there.
type checkpointMemory struct {
	mu sync.Mutex
	at map[string]Checkpoint
}

// get returns the checkpoints of names, and false unless every one is
// remembered.
func (m *checkpointMemory) get(names []string) ([]Checkpoint, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cps := make([]Checkpoint, len(names))
	for i, n := range names {
		cp, ok := m.at[n]
		if !ok {
			return nil, false
		}
		cps[i] = cp
	}
	return cps, true
}

// put remembers that the named subscription stands at cp, unless it is
// known to stand further on.
func (m *checkpointMemory) put(name string, cp Checkpoint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.at == nil {
		m.at = map[string]Checkpoint{}
	}
	if known, ok := m.at[name]; !ok || !known.Reached(cp) {
		m.at[name] = cp
	}
}

// The retry delays while committed events are held back.
const (
	minHeldBackWait = 5 * time.Millisecond
	maxHeldBackWait = 200 * time.Millisecond
)

// heldBack reports whether committed events past cp exist that ReadAll does
// not return yet, because an older transaction is still in flight.
func (s *Store) heldBack(ctx context.Context, cp Checkpoint) (bool, error) {
	var held bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events
WHERE (transaction_id, global_position) > ($1::xid8, $2))`, cp.TransactionID, cp.Position).Scan(&held)
	if err != nil {
		return false, fmt.Errorf("eventstore: read: %w", err)
	}
	return held, nil
}

// listen returns a channel that receives a value after each NOTIFY on
// notifyChannel (appends of other processes), until ctx is done. It holds one pooled connection; when
// that connection fails it retries, and the subscription falls back on
// polling meanwhile.
func (s *Store) listen(ctx context.Context, log *slog.Logger) <-chan struct{} {
	wake := make(chan struct{}, 1)
	go func() {
		for ctx.Err() == nil {
			err := s.waitNotifications(ctx, wake)
			if err != nil && ctx.Err() == nil {
				log.Warn("eventstore: LISTEN connection lost; polling until it is back", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	}()
	return wake
}

func (s *Store) waitNotifications(ctx context.Context, wake chan<- struct{}) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A connection left listening must not go back to the pool.
	pgConn := conn.Hijack()
	defer pgConn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // closing a connection we give up
	if _, err := pgConn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	for {
		if _, err := pgConn.WaitForNotification(ctx); err != nil {
			return err
		}
		select {
		case wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}
