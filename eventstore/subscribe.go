package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// notifyChannel is the channel appends are notified on (notify.go).
const notifyChannel = "subs_events"

// Handler applies a batch of events inside tx; the subscription saves its
// checkpoint in the same tx, so the batch takes effect exactly once. An
// error rolls both back and stops the subscription.
type Handler func(ctx context.Context, tx pgx.Tx, events []RecordedEvent) error

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

// checkpoints sets cps[i] to the saved checkpoint of names[i] (zero if it
// has none), in one query.
func (s *Store) checkpoints(ctx context.Context, names []string, cps []Checkpoint) error {
	rows, err := s.pool.Query(ctx, `SELECT name, transaction_id, global_position FROM subscription_checkpoints WHERE name = ANY($1)`, names)
	if err != nil {
		return fmt.Errorf("eventstore: checkpoints: %w", err)
	}
	saved := map[string]Checkpoint{}
	var name string
	var cp Checkpoint
	_, err = pgx.ForEachRow(rows, []any{&name, &cp.TransactionID, &cp.Position}, func() error {
		saved[name] = cp
		return nil
	})
	if err != nil {
		return fmt.Errorf("eventstore: checkpoints: %w", err)
	}
	for i, n := range names {
		cps[i] = saved[n]
	}
	return nil
}

// lockCheckpoint serializes the batches of one subscription across processes
// for the rest of tx and returns the checkpoint as committed: several engine
// processes may run the same subscription, and only the one whose batch
// starts at the stored checkpoint may apply it.
func lockCheckpoint(ctx context.Context, tx pgx.Tx, name string) (Checkpoint, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('subscription:' || $1, 0))`, name); err != nil {
		return Checkpoint{}, fmt.Errorf("eventstore: lock subscription %s: %w", name, err)
	}
	var cp Checkpoint
	err := tx.QueryRow(ctx, `SELECT transaction_id, global_position FROM subscription_checkpoints WHERE name = $1`, name).
		Scan(&cp.TransactionID, &cp.Position)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return cp, fmt.Errorf("eventstore: checkpoint %s: %w", name, err)
	}
	return cp, nil
}

// SaveCheckpoint records cp as the named subscription's place, in tx.
func SaveCheckpoint(ctx context.Context, tx pgx.Tx, name string, cp Checkpoint) error {
	_, err := tx.Exec(ctx, `INSERT INTO subscription_checkpoints (name, transaction_id, global_position, updated_at)
VALUES ($1, $2, $3, now())
ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id,
    global_position = EXCLUDED.global_position, updated_at = now()`, name, cp.TransactionID, cp.Position)
	if err != nil {
		return fmt.Errorf("eventstore: save checkpoint %s: %w", name, err)
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
	next, err := s.applyBatch(ctx, cfg.Name, *cp, events, h)
	if err != nil {
		return 0, err
	}
	*cp = next
	if next != Of(events[len(events)-1]) {
		return cfg.BatchSize, nil
	}
	return len(events), nil
}

// applyBatch hands events, the batch after cp, to h in a transaction that
// saves the checkpoint after them, and returns it; when another process
// moved the subscription's checkpoint from cp meanwhile, h is not called
// and that checkpoint is returned.
func (s *Store) applyBatch(ctx context.Context, name string, cp Checkpoint, events []RecordedEvent, h Handler) (Checkpoint, error) {
	next := Of(events[len(events)-1])
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		stored, err := lockCheckpoint(ctx, tx, name)
		if err != nil {
			return err
		}
		if stored != cp { // another process applied this batch meanwhile
			next = stored
			return nil
		}
		if err := h(ctx, tx, events); err != nil {
			return err
		}
		return SaveCheckpoint(ctx, tx, name, next)
	})
	if err != nil {
		return cp, fmt.Errorf("eventstore: subscription %s: %w", name, err)
	}
	return next, nil
}

// Subscriber is one subscription CatchUp brings up to date: its
// configuration (Name, BatchSize) and its handler.
type Subscriber struct {
	Config  SubscriptionConfig
	Handler Handler
}

// CatchUp hands every event after each subscriber's checkpoint to its
// handler, in batches as Subscribe does, until every one has handled the
// log up to at least target, and returns. It is Subscribe without the
// following: for a process that decides itself when its read models must
// be up to date (a simulation between the runs of its workers), so that a
// catch-up is a few large batches rather than one batch per append. The
// subscribers that stand at one checkpoint share each batch: it is read
// once, and handed to each in its own transaction, all at once. The batch
// size is the smallest of the subscribers'.
func (s *Store) CatchUp(ctx context.Context, target Checkpoint, subs ...Subscriber) error {
	subs = slices.Clone(subs)
	cps := make([]Checkpoint, len(subs))
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
	if err := s.checkpoints(ctx, names, cps); err != nil {
		return err
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
		events, err := s.ReadAll(ctx, at, size)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			// target is committed, yet not readable: an older transaction
			// still in flight holds it back.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
				wait = min(2*wait, maxHeldBackWait)
			}
			continue
		}
		wait = minHeldBackWait
		errs := make([]error, len(subs))
		var wg sync.WaitGroup
		for i := range subs {
			if cps[i] == at {
				wg.Go(func() { cps[i], errs[i] = s.applyBatch(ctx, subs[i].Config.Name, at, events, subs[i].Handler) })
			}
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
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
