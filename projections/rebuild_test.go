package projections_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/projections"
)

func TestStatus_LagWhileStoppedAndNoneOnceCaughtUp(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	w.customers(t, ctx, 0, 5, 2)
	head := w.head(t)

	before, err := projections.Statuses(ctx, w.store, projections.All())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(before), len(projections.All()); got != want {
		t.Fatalf("%d statuses, want %d", got, want)
	}
	for _, s := range before {
		if got, want := s.Lag, int64(5*eventsPerCustomer); got != want {
			t.Errorf("%s: lag %d before the runner ran, want %d", s.Name, got, want)
		}
		if s.Head != head.Position || s.Checkpoint != (eventstore.Checkpoint{}) || !s.UpdatedAt.IsZero() {
			t.Errorf("%s before the runner ran: %+v, want head %d, zero checkpoint and update time", s.Name, s, head.Position)
		}
	}

	w.catchUp(t)
	after, err := projections.Statuses(ctx, w.store, projections.All())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range after {
		if s.Lag != 0 || s.Checkpoint != head || s.Head != head.Position || s.UpdatedAt.IsZero() {
			t.Errorf("%s once caught up: %+v, want lag 0 at checkpoint %+v with an update time", s.Name, s, head)
		}
	}
}

// rule AUD-4: a read model altered behind the projections' back differs
// from its rebuild, row by row, until it is rebuilt.
func TestRule_AUD4_CompareFindsAnAlteredRowAndRebuildRepairsIt(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	w.customers(t, ctx, 0, 20, 4)
	w.catchUp(t)
	w.mustEqualRebuild(t)

	var victim string
	if err := w.store.Pool().QueryRow(ctx, `UPDATE accounts SET name = 'x'
WHERE account_id = (SELECT account_id FROM accounts ORDER BY account_id LIMIT 1) RETURNING account_id::text`).Scan(&victim); err != nil {
		t.Fatal(err)
	}
	// The outbox worker's bookkeeping is not the log's: no difference.
	if _, err := w.store.Pool().Exec(ctx, `UPDATE email_outbox SET attempts = 7, last_error = 'timeout', claimed_until = now()`); err != nil {
		t.Fatal(err)
	}

	d, err := projections.Compare(ctx, w.store, w.types, projections.Accounts{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Equal() || len(d.Tables) != 1 {
		t.Fatalf("compare after altering a row: %+v, want a difference in accounts", d)
	}
	td := d.Tables[0]
	if td.Table != "accounts" || td.OnlyLive != 1 || td.OnlyRebuilt != 1 || len(td.LiveRows) != 1 || len(td.RebuiltRows) != 1 {
		t.Fatalf("difference %+v, want one row only live and one only rebuilt", td)
	}
	if !strings.Contains(td.LiveRows[0], victim) || !strings.Contains(td.LiveRows[0], `"name": "x"`) {
		t.Errorf("live row %s, want account %s named x", td.LiveRows[0], victim)
	}
	if !strings.Contains(td.RebuiltRows[0], victim) || strings.Contains(td.RebuiltRows[0], `"name": "x"`) {
		t.Errorf("rebuilt row %s, want account %s with its own name", td.RebuiltRows[0], victim)
	}
	if d.Checkpoint != w.head(t) || d.Events != 20*eventsPerCustomer {
		t.Errorf("compared at %+v from %d events, want %+v from %d", d.Checkpoint, d.Events, w.head(t), 20*eventsPerCustomer)
	}
	if d, err := projections.Compare(ctx, w.store, w.types, projections.EmailOutbox{}); err != nil || !d.Equal() {
		t.Fatalf("outbox compare with worker bookkeeping changed: %+v, %v; want equal", d, err)
	}

	if _, err := projections.Rebuild(ctx, w.store, w.types, projections.Accounts{}); err != nil {
		t.Fatal(err)
	}
	w.mustEqualRebuild(t)
	var schemas int
	if err := w.store.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild\_%'`).Scan(&schemas); err != nil {
		t.Fatal(err)
	}
	if schemas != 0 {
		t.Errorf("%d rebuild schemas left behind", schemas)
	}
}

// A rebuild swaps the whole read model in at once: readers see the old
// model or the new one, complete, never one half built nor an error; the
// tables keep their index and constraint names; the outbox keeps the
// worker's bookkeeping.
func TestRebuild_ReadersSeeTheOldOrTheNewModelWhole(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	const customers = 300
	w.customers(t, ctx, 0, customers, 8)
	w.catchUp(t)
	names := func() []string {
		var out []string
		rows, err := w.store.Pool().Query(ctx, `SELECT c.relname || ' ' || c.relkind::text FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
UNION ALL SELECT conrelid::regclass::text || ' ' || conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace
ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	before := names()

	// The live model lost rows: readers count 200 until the swap, then 300.
	if _, err := w.store.Pool().Exec(ctx, `DELETE FROM accounts WHERE account_id IN (SELECT account_id FROM accounts ORDER BY account_id LIMIT 100)`); err != nil {
		t.Fatal(err)
	}
	var cause string
	if err := w.store.Pool().QueryRow(ctx, `UPDATE email_outbox SET attempts = 3, last_error = 'refused', claimed_until = '2030-01-01Z'
WHERE cause = (SELECT min(cause::text)::uuid FROM email_outbox) RETURNING cause::text`).Scan(&cause); err != nil {
		t.Fatal(err)
	}

	readCtx, stopReading := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int]int{}
	var readErrs []error
	for range 4 {
		wg.Go(func() {
			for readCtx.Err() == nil {
				var n int
				err := w.store.Pool().QueryRow(readCtx, `SELECT count(*) FROM accounts`).Scan(&n)
				mu.Lock()
				if err != nil && readCtx.Err() == nil {
					readErrs = append(readErrs, err)
				} else if err == nil {
					seen[n]++
				}
				mu.Unlock()
			}
		})
	}
	for _, p := range projections.All() {
		if _, err := projections.Rebuild(ctx, w.store, w.types, p); err != nil {
			t.Fatal(err)
		}
	}
	// A few more reads after the swap, then stop.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := seen[customers]
		mu.Unlock()
		if n >= 10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond) // polling the readers' progress
	}
	stopReading()
	wg.Wait()

	if len(readErrs) > 0 {
		t.Errorf("readers failed during the rebuild: %v", readErrs)
	}
	for n, times := range seen {
		if n != customers-100 && n != customers {
			t.Errorf("a reader counted %d accounts (%d times), want %d or %d", n, times, customers-100, customers)
		}
	}
	if seen[customers-100] == 0 || seen[customers] < 10 {
		t.Errorf("readers saw %v: want the old count before the swap and the new one after", seen)
	}
	if got := count(t, w, "accounts"); got != customers {
		t.Errorf("%d accounts after the rebuild, want %d", got, customers)
	}
	if after := names(); !slices.Equal(before, after) {
		t.Errorf("relations and constraints in public changed:\nbefore %v\nafter  %v", before, after)
	}
	var attempts int
	var lastError string
	var claimed time.Time
	if err := w.store.Pool().QueryRow(ctx, `SELECT attempts, last_error, claimed_until FROM email_outbox WHERE cause = $1`, cause).
		Scan(&attempts, &lastError, &claimed); err != nil {
		t.Fatal(err)
	}
	if attempts != 3 || lastError != "refused" || claimed.Year() != 2030 {
		t.Errorf("outbox bookkeeping after the rebuild: attempts %d, last error %q, claimed until %v; want 3, refused, 2030", attempts, lastError, claimed)
	}
	w.mustEqualRebuild(t)
}

// A rebuild while the live runner runs and customers keep coming hands the
// model over at a checkpoint: the runner goes on from there and the model
// equals a rebuild once it has caught up.
func TestRebuild_WhileTheRunnerRunsAndEventsArrive(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	w.customers(t, ctx, 0, 100, 4)
	r, stop := w.runner(t, projections.All())
	more := make(chan error, 1)
	go func() { more <- w.play(ctx, 100, 100, 4) }()
	for _, p := range projections.All() {
		if _, err := projections.Rebuild(ctx, w.store, w.types, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-more; err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := r.WaitFor(wait, w.head(t)); err != nil {
		t.Fatal(err)
	}
	stop()
	if got := count(t, w, "accounts"); got != 200 {
		t.Errorf("%d accounts, want 200", got)
	}
	w.mustEqualRebuild(t)
}
