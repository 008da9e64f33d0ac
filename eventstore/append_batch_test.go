package eventstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/subs-engine/subs/eventstore"
)

// AppendBatch lands each append as Append would, the same stream twice
// included (the second after the first), and the hash chains hold.
func TestAppendBatch_AppendsEachAsAppendWould(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	mustAppend(t, s, "subscription-b", eventstore.NoStream, events(2), opts())
	replay := opts()
	replay.CommandID = "cmd-recorded"
	first := mustAppend(t, s, "subscription-c", eventstore.NoStream, events(1), replay)

	results, err := s.AppendBatch(ctx, []eventstore.AppendRequest{
		{Stream: "subscription-a", Expected: eventstore.NoStream, Events: events(3), Options: opts()},
		{Stream: "subscription-b", Expected: 2, Events: events(1), Options: opts()},
		{Stream: "subscription-a", Expected: 3, Events: events(1), Options: opts()},
		{Stream: "subscription-c", Expected: 0, Events: events(1), Options: replay},
		{Stream: "subscription-d", Expected: eventstore.NoStream, Options: opts()},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		first, last int64
		replayed    bool
	}{{1, 3, false}, {3, 3, false}, {4, 4, false}, {1, 1, true}, {0, 0, false}}
	for i, w := range want {
		r := results[i]
		if r.FirstVersion != w.first || r.LastVersion != w.last || r.Replayed != w.replayed {
			t.Errorf("result %d = %+v, want versions %d..%d replayed=%v", i, r, w.first, w.last, w.replayed)
		}
	}
	if results[3].LastPosition != first.LastPosition {
		t.Errorf("replayed result %+v, want the first append's %+v", results[3], first)
	}
	if results[0].TransactionID == 0 || results[0].TransactionID != results[2].TransactionID {
		t.Errorf("transaction ids %d and %d, want the batch's one", results[0].TransactionID, results[2].TransactionID)
	}
	for stream, n := range map[eventstore.StreamID]int{"subscription-a": 4, "subscription-b": 3, "subscription-c": 1, "subscription-d": 0} {
		assertContiguous(t, mustReadStream(t, s, stream), n)
	}
	report, err := s.Verify(ctx, nil)
	if err != nil || report.Broken != nil || report.Events != 8 {
		t.Fatalf("verify after the batch: %+v, %v", report, err)
	}
}

// AppendBatch is all or nothing: one append that fails (a stream moved on,
// a reservation held elsewhere) leaves every stream of the batch as it was,
// and the error is that append's, naming its stream.
func TestAppendBatch_OneFails_NothingIsWritten(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	email := eventstore.Reservation{Scope: "account-email", Key: "ann@example.com"}
	taken := opts()
	taken.Reserve = []eventstore.Reservation{email}
	mustAppend(t, s, "account-ann", eventstore.NoStream, events(1), taken)
	mustAppend(t, s, "subscription-moved", eventstore.NoStream, events(2), opts())

	recorded := opts()
	recorded.CommandID = "cmd-in-a-failed-batch"
	cases := []struct {
		name  string
		bad   eventstore.AppendRequest
		check func(error) bool
	}{
		{"stream moved on", eventstore.AppendRequest{Stream: "subscription-moved", Expected: 1, Events: events(1), Options: opts()},
			func(err error) bool {
				var c *eventstore.ConflictError
				return errors.As(err, &c) && c.Stream == "subscription-moved" && c.Actual == 2
			}},
		{"reservation held", eventstore.AppendRequest{Stream: "account-intruder", Expected: eventstore.NoStream, Events: events(1), Options: taken},
			func(err error) bool {
				var c *eventstore.ReservationConflictError
				return errors.As(err, &c) && c.Owner == "account-ann"
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.AppendBatch(ctx, []eventstore.AppendRequest{
				{Stream: "subscription-first", Expected: eventstore.Any, Events: events(2), Options: recorded},
				c.bad,
				{Stream: "subscription-last", Expected: eventstore.Any, Events: events(1), Options: opts()},
			})
			if !c.check(err) {
				t.Fatalf("err = %v", err)
			}
			for stream, n := range map[eventstore.StreamID]int{"subscription-first": 0, "subscription-last": 0, "subscription-moved": 2,
				"account-intruder": 0} {
				if got := len(mustReadStream(t, s, stream)); got != n {
					t.Errorf("%s has %d events after the failed batch, want %d", stream, got, n)
				}
			}
			if _, ok, err := s.CommandResult(ctx, recorded.CommandID); err != nil || ok {
				t.Errorf("the failed batch recorded a command id (recorded=%v, err=%v)", ok, err)
			}
		})
	}
}

// Two batches naming the same streams in opposite orders, again and again
// at once, both land every time: the streams are locked in one order
// whatever the batch's, so neither waits for the other forever (a deadlock
// would fail one with "deadlock detected").
func TestAppendBatch_SameStreamsInOppositeOrders_NoDeadlock(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	streams := []eventstore.StreamID{"subscription-1", "subscription-2", "subscription-3", "subscription-4"}
	const rounds = 100
	var wg sync.WaitGroup
	for _, reversed := range []bool{false, true} {
		wg.Go(func() {
			for range rounds {
				reqs := make([]eventstore.AppendRequest, len(streams))
				for i, stream := range streams {
					if reversed {
						stream = streams[len(streams)-1-i]
					}
					reqs[i] = eventstore.AppendRequest{Stream: stream, Expected: eventstore.Any, Events: events(1), Options: opts()}
				}
				if _, err := s.AppendBatch(ctx, reqs); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, stream := range streams {
		assertContiguous(t, mustReadStream(t, s, stream), 2*rounds)
	}
	if report, err := s.Verify(ctx, nil); err != nil || report.Broken != nil {
		t.Fatalf("verify: %+v, %v", report, err)
	}
}
