package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/eventstore"
)

// seen records what a subscription applied, in the subscription's own
// transaction, the way a projection does.
func seenTable(t *testing.T, s *eventstore.Store) {
	t.Helper()
	if _, err := s.Pool().Exec(context.Background(), `CREATE TABLE seen (event_id uuid PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
}

func countSeen(t *testing.T, s *eventstore.Store) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM seen`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func record(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
	for _, e := range evs {
		// A duplicate would violate the primary key and fail the test.
		if _, err := tx.Exec(ctx, `INSERT INTO seen VALUES ($1)`, e.ID); err != nil {
			return err
		}
	}
	return nil
}

// otherPool opens a second pool on s's database, as another process would.
func otherPool(t *testing.T, s *eventstore.Store) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.NewWithConfig(context.Background(), s.Pool().Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSubscribe_CatchesUpThenLive_ResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	seenTable(t, s)
	cfg := eventstore.SubscriptionConfig{Name: "test", BatchSize: 7, PollInterval: time.Minute}
	for i := range 10 {
		mustAppend(t, s, eventstore.StreamID("order-"+string(rune('a'+i))), eventstore.NoStream, events(3), opts())
	}

	run := func() (stop func() error) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Subscribe(ctx, cfg, record) }()
		return func() error { cancel(); return <-done }
	}
	stop := run()
	waitFor(t, "catch-up of 30 events", func() bool { return countSeen(t, s) == 30 })
	// Live: with a one-minute poll interval, only a notification wakes it in
	// time: from this store at once, from another process (a second store
	// on its own pool) through NOTIFY.
	mustAppend(t, s, "order-live", eventstore.NoStream, events(2), opts())
	waitFor(t, "2 live events", func() bool { return countSeen(t, s) == 32 })
	other := eventstore.New(otherPool(t, s), eventstore.Config{})
	mustAppend(t, other, "order-other-process", eventstore.NoStream, events(1), opts())
	waitFor(t, "1 event from another process", func() bool { return countSeen(t, s) == 33 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe returned %v, want context.Canceled", err)
	}

	mustAppend(t, s, "order-while-down", eventstore.NoStream, events(4), opts())
	stop = run()
	waitFor(t, "the 4 events appended while stopped", func() bool { return countSeen(t, s) == 37 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	cp, err := s.Checkpoint(context.Background(), cfg.Name)
	if err != nil || cp.Position == 0 {
		t.Fatalf("checkpoint %+v, %v", cp, err)
	}
}

func TestSubscribe_HandlerError_CheckpointNotMoved(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	seenTable(t, s)
	mustAppend(t, s, "order-1", eventstore.NoStream, events(3), opts())
	boom := errors.New("boom")
	cfg := eventstore.SubscriptionConfig{Name: "failing"}
	err := s.Subscribe(context.Background(), cfg, func(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
		if err := record(ctx, tx, evs); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Subscribe returned %v, want the handler's error", err)
	}
	if n := countSeen(t, s); n != 0 {
		t.Errorf("a failed batch left %d rows", n)
	}
	if cp, _ := s.Checkpoint(context.Background(), cfg.Name); cp != (eventstore.Checkpoint{}) {
		t.Errorf("checkpoint moved to %+v after a failed batch", cp)
	}
}

// Several engine processes may run the same subscription: each event still
// takes effect once.
func TestSubscribe_TwoProcessesSameName_EachEventAppliedOnce(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	seenTable(t, s)
	other := eventstore.New(otherPool(t, s), eventstore.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := eventstore.SubscriptionConfig{Name: "shared", BatchSize: 3, PollInterval: 20 * time.Millisecond}
	done := make(chan error, 2)
	for _, st := range []*eventstore.Store{s, other} {
		go func() { done <- st.Subscribe(ctx, cfg, record) }()
	}
	for i := range 40 {
		mustAppend(t, s, eventstore.StreamID("order-"+string(rune('A'+i))), eventstore.NoStream, events(2), opts())
	}
	waitFor(t, "80 events applied", func() bool { return countSeen(t, s) == 80 })
	time.Sleep(100 * time.Millisecond) // a duplicate would fail the handler and end a subscriber
	cancel()
	for range 2 {
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("a subscriber ended with %v", err)
		}
	}
}

func TestCatchUp_HandlesTheLogUpToTheTargetInBatches_ThenReturns(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	seenTable(t, s)
	cfg := eventstore.SubscriptionConfig{Name: "catch-up", BatchSize: 4}
	var last eventstore.AppendResult
	for i := range 5 {
		last = mustAppend(t, s, eventstore.StreamID("order-"+string(rune('a'+i))), eventstore.NoStream, events(3), opts())
	}
	batches, largest := 0, 0
	count := func(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
		batches, largest = batches+1, max(largest, len(evs))
		return record(ctx, tx, evs)
	}
	if err := s.CatchUp(context.Background(), last.Checkpoint(), eventstore.Subscriber{Config: cfg, Handler: count}); err != nil {
		t.Fatal(err)
	}
	// Four batches of at most 4, or more when a transaction in flight
	// elsewhere on the server (the other tests') held part of one back:
	// the log is read only up to the oldest transaction still running.
	if n := countSeen(t, s); n != 15 || batches < 4 || largest != 4 {
		t.Errorf("%d events in %d batches of up to %d, want 15 in batches of up to 4", n, batches, largest)
	}
	// Up to date already: nothing handled again; then only what is new.
	handled := batches
	if err := s.CatchUp(context.Background(), last.Checkpoint(), eventstore.Subscriber{Config: cfg, Handler: count}); err != nil || batches != handled {
		t.Errorf("a second catch-up to the same target: %v, %d batches more, want none", err, batches-handled)
	}
	more := mustAppend(t, s, "order-more", eventstore.NoStream, events(2), opts())
	if err := s.CatchUp(context.Background(), more.Checkpoint(), eventstore.Subscriber{Config: cfg, Handler: count}); err != nil {
		t.Fatal(err)
	}
	if n := countSeen(t, s); n != 17 {
		t.Errorf("%d events after the second catch-up, want 17", n)
	}
	if cp, err := s.Checkpoint(context.Background(), cfg.Name); err != nil || cp != more.Checkpoint() {
		t.Errorf("checkpoint %+v (%v), want %+v", cp, err, more.Checkpoint())
	}
}

// Subscribers that stand at different checkpoints, caught up by two
// processes at once: each event reaches each subscriber exactly once, and
// a handler's failure leaves every checkpoint of its batch where it was.
func TestCatchUp_SeveralSubscribersTwoProcesses_EachEventOncePerSubscriber(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	other := eventstore.New(otherPool(t, s), eventstore.Config{})
	if _, err := s.Pool().Exec(context.Background(), `CREATE TABLE seen_by (subscriber text, event_id uuid, PRIMARY KEY (subscriber, event_id))`); err != nil {
		t.Fatal(err)
	}
	recordAs := func(name string) eventstore.Handler {
		return func(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
			for _, e := range evs {
				// A duplicate would violate the primary key and fail the catch-up.
				if _, err := tx.Exec(ctx, `INSERT INTO seen_by VALUES ($1, $2)`, name, e.ID); err != nil {
					return err
				}
			}
			return nil
		}
	}
	subscribers := func() []eventstore.Subscriber {
		var subs []eventstore.Subscriber
		for _, name := range []string{"reads", "writes", "mails"} {
			subs = append(subs, eventstore.Subscriber{Config: eventstore.SubscriptionConfig{Name: name, BatchSize: 7}, Handler: recordAs(name)})
		}
		return subs
	}
	first := mustAppend(t, s, "order-first", eventstore.NoStream, events(5), opts())
	// "writes" is ahead of the others as the race begins.
	if err := s.CatchUp(context.Background(), first.Checkpoint(), subscribers()[1]); err != nil {
		t.Fatal(err)
	}
	var last eventstore.AppendResult
	for i := range 10 {
		last = mustAppend(t, s, eventstore.StreamID(fmt.Sprintf("order-%d", i)), eventstore.NoStream, events(3), opts())
	}
	done := make(chan error, 2)
	for _, st := range []*eventstore.Store{s, other} {
		go func() { done <- st.CatchUp(context.Background(), last.Checkpoint(), subscribers()...) }()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	var perSubscriber []int
	rows, err := s.Pool().Query(context.Background(), `SELECT count(*) FROM seen_by GROUP BY subscriber ORDER BY subscriber`)
	if err != nil {
		t.Fatal(err)
	}
	if perSubscriber, err = pgx.CollectRows(rows, pgx.RowTo[int]); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(perSubscriber, []int{35, 35, 35}) {
		t.Errorf("events seen per subscriber %v, want 35 each", perSubscriber)
	}

	// A failing handler rolls back the batch of every subscriber it shared.
	more := mustAppend(t, s, "order-more", eventstore.NoStream, events(2), opts())
	subs := subscribers()
	subs[2].Handler = func(context.Context, pgx.Tx, []eventstore.RecordedEvent) error { return errors.New("mail server down") }
	if err := s.CatchUp(context.Background(), more.Checkpoint(), subs...); err == nil || !strings.Contains(err.Error(), "mails") {
		t.Fatalf("catch-up with a failing handler: %v, want the error naming mails", err)
	}
	for _, name := range []string{"reads", "writes", "mails"} {
		if cp, err := s.Checkpoint(context.Background(), name); err != nil || cp != last.Checkpoint() {
			t.Errorf("%s at %+v (%v) after the failed batch, want %+v", name, cp, err, last.Checkpoint())
		}
	}
}

// ApplyFrom hands a stretch of the log, read once, to subscribers wherever
// they stand: one behind the stretch reads the log up to it, one inside it
// takes only its rest, one past it takes nothing. Each event reaches each
// subscriber once; the stretch's events are the ones handed, not read
// again; Applied hears of each batch once it committed.
func TestApplyFrom_BringsEachSubscriberToTheStretchsEnd_EachEventOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	if _, err := s.Pool().Exec(ctx, `CREATE TABLE seen_by (subscriber text, event_id uuid, PRIMARY KEY (subscriber, event_id))`); err != nil {
		t.Fatal(err)
	}
	var cps []eventstore.Checkpoint // after order-a, -b, -c, -d: 3 events each
	for _, name := range []string{"a", "b", "c", "d"} {
		cps = append(cps, mustAppend(t, s, eventstore.StreamID("order-"+name), eventstore.NoStream, events(3), opts()).Checkpoint())
	}
	// The stretch: order-b's and order-c's events, read once.
	var stretch []eventstore.RecordedEvent
	for deadline := time.Now().Add(10 * time.Second); len(stretch) < 6; time.Sleep(5 * time.Millisecond) {
		var err error
		// Another test's transaction in flight on the server may hold
		// part of the log back for a moment.
		if stretch, err = s.ReadAll(ctx, cps[0], 6); err != nil || time.Now().After(deadline) {
			t.Fatalf("read the stretch: %d events, %v", len(stretch), err)
		}
	}
	handed := func(e *eventstore.RecordedEvent) bool {
		for i := range stretch {
			if &stretch[i] == e {
				return true
			}
		}
		return false
	}
	var read []string // "subscriber: event" of the events not handed from the stretch
	var applied []string
	subscriber := func(name string) eventstore.Subscriber {
		return eventstore.Subscriber{Config: eventstore.SubscriptionConfig{Name: name, BatchSize: 3},
			Handler: func(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
				for i := range evs {
					if !handed(&evs[i]) {
						read = append(read, name+": "+string(evs[i].StreamID))
					}
					// A duplicate would violate the primary key and fail.
					if _, err := tx.Exec(ctx, `INSERT INTO seen_by VALUES ($1, $2)`, name, evs[i].ID); err != nil {
						return err
					}
				}
				return nil
			},
			Applied: func(from eventstore.Checkpoint, evs []eventstore.RecordedEvent) {
				applied = append(applied, fmt.Sprintf("%s: %d after %d", name, len(evs), from.Position))
			}}
	}
	at := map[string]eventstore.Checkpoint{"behind": {}, "at": cps[0], "within": cps[1], "past": cps[3]}
	var subs []eventstore.Subscriber
	for _, name := range []string{"behind", "at", "within", "past"} {
		if err := s.CatchUp(ctx, at[name], subscriber(name)); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, subscriber(name))
	}
	read, applied = nil, nil
	if err := s.ApplyFrom(ctx, cps[0], stretch, subs...); err != nil {
		t.Fatal(err)
	}
	want := map[string]eventstore.Checkpoint{"behind": cps[2], "at": cps[2], "within": cps[2], "past": cps[3]}
	for name, cp := range want {
		if got, err := s.Checkpoint(ctx, name); err != nil || got != cp {
			t.Errorf("%s at %+v (%v), want %+v", name, got, err, cp)
		}
	}
	var seen []string
	rows, err := s.Pool().Query(ctx, `SELECT subscriber || ' ' || count(*) FROM seen_by GROUP BY subscriber ORDER BY subscriber`)
	if err != nil {
		t.Fatal(err)
	}
	if seen, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	// Every event up to the stretch's end, once, the catch-ups before it included.
	if want := []string{"at 9", "behind 9", "past 12", "within 9"}; !slices.Equal(seen, want) {
		t.Errorf("events seen per subscriber %v, want %v", seen, want)
	}
	if want := []string{"behind: order-a", "behind: order-a", "behind: order-a"}; !slices.Equal(read, want) {
		t.Errorf("events not handed from the stretch %v, want only order-a's, read by the subscriber behind", read)
	}
	b, c := cps[0].Position, cps[1].Position
	wantApplied := []string{
		"behind: 3 after 0",
		fmt.Sprintf("behind: 3 after %d", b), fmt.Sprintf("at: 3 after %d", b),
		fmt.Sprintf("behind: 3 after %d", c), fmt.Sprintf("at: 3 after %d", c), fmt.Sprintf("within: 3 after %d", c),
	}
	if !slices.Equal(applied, wantApplied) {
		t.Errorf("batches applied %v, want %v", applied, wantApplied)
	}
}

// A store remembers where its catch-ups left their subscriptions and starts
// the next one from there; when another process moved a subscription on
// meanwhile, the batch from the remembered place is not applied again: the
// catch-up goes on from where the other left it, and each event is handled
// once.
func TestCatchUp_FromTheRememberedCheckpoint_AfterAnotherProcessMovedIt(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	other := eventstore.New(otherPool(t, s), eventstore.Config{})
	if _, err := s.Pool().Exec(context.Background(), `CREATE TABLE handled (event_id uuid PRIMARY KEY, by text)`); err != nil {
		t.Fatal(err)
	}
	sub := func(by string) eventstore.Subscriber {
		return eventstore.Subscriber{Config: eventstore.SubscriptionConfig{Name: "ledger", BatchSize: 4}, Handler: func(ctx context.Context, tx pgx.Tx, evs []eventstore.RecordedEvent) error {
			for _, e := range evs {
				// A second handling would violate the primary key and fail the catch-up.
				if _, err := tx.Exec(ctx, `INSERT INTO handled VALUES ($1, $2)`, e.ID, by); err != nil {
					return err
				}
			}
			return nil
		}}
	}
	catchUp := func(st *eventstore.Store, by string, to eventstore.AppendResult) {
		t.Helper()
		if err := st.CatchUp(context.Background(), to.Checkpoint(), sub(by)); err != nil {
			t.Fatalf("%s catching up: %v", by, err)
		}
	}
	first := mustAppend(t, s, "order-a", eventstore.NoStream, events(5), opts())
	catchUp(s, "this process", first)
	second := mustAppend(t, s, "order-b", eventstore.NoStream, events(6), opts())
	catchUp(other, "another process", second)
	catchUp(s, "this process", first) // remembered at first already: nothing to do
	third := mustAppend(t, s, "order-c", eventstore.NoStream, events(3), opts())
	catchUp(s, "this process", third)

	var byThis, byOther int
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE by = 'this process'), count(*) FILTER (WHERE by = 'another process')
FROM handled`).Scan(&byThis, &byOther); err != nil {
		t.Fatal(err)
	}
	if byThis != 5+3 || byOther != 6 {
		t.Errorf("handled %d events here and %d in the other process, want 8 and 6", byThis, byOther)
	}
	if cp, err := s.Checkpoint(context.Background(), "ledger"); err != nil || cp != third.Checkpoint() {
		t.Errorf("checkpoint %+v (%v), want %+v", cp, err, third.Checkpoint())
	}
}
