package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/subs-engine/subs/eventstore"
)

func TestAppend_ConcurrentWritersSameExpectedVersion_ExactlyOneWins(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	const writers = 50
	stream := eventstore.StreamID("account-race")
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			<-start
			_, errs[i] = s.Append(context.Background(), stream, eventstore.NoStream, events(2), opts())
		})
	}
	close(start)
	wg.Wait()

	wins := 0
	for _, err := range errs {
		var conflict *eventstore.ConflictError
		switch {
		case err == nil:
			wins++
		case errors.As(err, &conflict):
			if conflict.Stream != stream || conflict.Expected != eventstore.NoStream || conflict.Actual != 2 {
				t.Errorf("conflict = %+v, want stream %s expected 0 actual 2", conflict, stream)
			}
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d appends won, want exactly 1", wins)
	}
	assertContiguous(t, mustReadStream(t, s, stream), 2)
}

func TestAppend_ConcurrentWritersRetryingOnConflict_NoGapNoDuplicate(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	const writers = 50
	stream := eventstore.StreamID("account-retry")
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				cur := mustReadStream(t, s, stream)
				_, err := s.Append(context.Background(), stream, eventstore.ExpectedVersion(len(cur)), events(1), opts())
				var conflict *eventstore.ConflictError
				if !errors.As(err, &conflict) {
					if err != nil {
						t.Error(err)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	assertContiguous(t, mustReadStream(t, s, stream), writers)
}

func assertContiguous(t *testing.T, evs []eventstore.RecordedEvent, want int) {
	t.Helper()
	if len(evs) != want {
		t.Fatalf("stream has %d events, want %d", len(evs), want)
	}
	for i, e := range evs {
		if e.Version != int64(i+1) {
			t.Fatalf("event %d has version %d: gap or duplicate", i, e.Version)
		}
	}
}

func TestAppend_WrongExpectedVersion_ConflictNamesBothVersions(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	stream := eventstore.StreamID("order-1")
	mustAppend(t, s, stream, eventstore.NoStream, events(3), opts())
	for _, expected := range []eventstore.ExpectedVersion{eventstore.NoStream, 2, 4} {
		_, err := s.Append(context.Background(), stream, expected, events(1), opts())
		var conflict *eventstore.ConflictError
		if !errors.As(err, &conflict) || conflict.Actual != 3 || conflict.Expected != expected {
			t.Errorf("expected %v: err = %v, want conflict at actual 3", expected, err)
		}
	}
	if r := mustAppend(t, s, stream, eventstore.Any, events(1), opts()); r.FirstVersion != 4 {
		t.Errorf("append with Any landed at version %d, want 4", r.FirstVersion)
	}
}

func TestAppend_NoEvents_WritesNothing(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	stream := eventstore.StreamID("order-empty")
	r := mustAppend(t, s, stream, eventstore.NoStream, nil, opts())
	if r.LastVersion != 0 || r.LastPosition != 0 {
		t.Errorf("result = %+v, want nothing appended", r)
	}
	if n := len(mustReadStream(t, s, stream)); n != 0 {
		t.Errorf("stream has %d events, want none", n)
	}
}

func TestAppend_CommandIDRetried_AppendsOnceAndReturnsFirstResult(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	stream := eventstore.StreamID("subscription-cmd")
	o := opts()
	o.CommandID = "cmd-42"
	first := mustAppend(t, s, stream, eventstore.Any, events(2), o)
	again := mustAppend(t, s, stream, eventstore.Any, events(2), o)
	if first.Replayed || !again.Replayed {
		t.Errorf("replayed flags = %v, %v; want false then true", first.Replayed, again.Replayed)
	}
	again.Replayed = false
	if again != first {
		t.Errorf("retry result %+v, want first result %+v", again, first)
	}
	if n := len(mustReadStream(t, s, stream)); n != 2 {
		t.Errorf("stream has %d events, want 2", n)
	}
}

func TestAppend_CommandIDConcurrent_AppendsOnce(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	const callers = 20
	results := make([]eventstore.AppendResult, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			o := opts()
			o.CommandID = "cmd-concurrent"
			// Half aim at another stream: the command id still wins once.
			stream := eventstore.StreamID("subscription-a")
			if i%2 == 1 {
				stream = "subscription-b"
			}
			results[i], errs[i] = s.Append(context.Background(), stream, eventstore.Any, events(3), o)
		})
	}
	wg.Wait()
	var first *eventstore.AppendResult
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		r := results[i]
		r.Replayed = false
		if first == nil {
			first = &r
		} else if r != *first {
			t.Errorf("caller %d got %+v, want the same result as the others %+v", i, r, *first)
		}
	}
	total := len(mustReadStream(t, s, "subscription-a")) + len(mustReadStream(t, s, "subscription-b"))
	if total != 3 {
		t.Errorf("%d events appended in all, want 3 (one append)", total)
	}
}

func TestAppend_ReservationConflict_RollsBackWholeAppend(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	email := eventstore.Reservation{Scope: "account-email", Key: "ann@example.com"}
	owner := eventstore.StreamID("account-ann")
	o := opts()
	o.Reserve = []eventstore.Reservation{email}
	mustAppend(t, s, owner, eventstore.NoStream, events(1), o)
	// The owner reserving again keeps its reservation.
	mustAppend(t, s, owner, eventstore.Any, events(1), o)

	intruder := eventstore.StreamID("account-intruder")
	o.CommandID = "signup-intruder"
	_, err := s.Append(context.Background(), intruder, eventstore.NoStream, events(2), o)
	var conflict *eventstore.ReservationConflictError
	if !errors.As(err, &conflict) || conflict.Owner != owner || conflict.Key != email.Key || conflict.Scope != email.Scope {
		t.Fatalf("err = %v, want reservation conflict naming %s", err, owner)
	}
	if n := len(mustReadStream(t, s, intruder)); n != 0 {
		t.Errorf("refused append left %d events", n)
	}
	if _, recorded, err := s.CommandResult(context.Background(), o.CommandID); err != nil || recorded {
		t.Errorf("refused append recorded its command id (recorded=%v, err=%v)", recorded, err)
	}

	// Once released, the same command goes through.
	release := opts()
	release.Release = []eventstore.Reservation{email}
	mustAppend(t, s, owner, eventstore.Any, events(1), release)
	if r := mustAppend(t, s, intruder, eventstore.NoStream, events(2), o); r.Replayed || r.LastVersion != 2 {
		t.Errorf("append after release = %+v", r)
	}
}

func TestAppend_ReservationConcurrent_OneStreamGetsIt(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	const callers = 20
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			o := opts()
			o.Reserve = []eventstore.Reservation{{Scope: "product-key", Key: "ABCDE-FGHJK"}}
			_, errs[i] = s.Append(context.Background(), eventstore.StreamID("account-"+string(rune('a'+i))), eventstore.NoStream, events(1), o)
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		var conflict *eventstore.ReservationConflictError
		if err == nil {
			wins++
		} else if !errors.As(err, &conflict) {
			t.Errorf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d streams took the reservation, want 1", wins)
	}
}

// rule AUD-1: every event records its actor, command id, causation and
// correlation ids, the clock time and its schema version.
func TestRule_AUD1_EventRecordsActorCommandCausationClockAndSchema(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	o := opts()
	o.CommandID = "cmd-aud1"
	o.Metadata = eventstore.Metadata{ActorKind: eventstore.ActorAgent, ActorID: "agent-7", Reason: "customer called",
		LogCode: "Modify Subscription / Adjust Days", CausationID: "evt-1", CorrelationID: "corr-1"}
	mustAppend(t, s, "subscription-aud1", eventstore.NoStream, []eventstore.EventData{
		{Type: "subscription.days_adjusted", SchemaVersion: 2, Data: json.RawMessage(`{"days":3}`)},
	}, o)
	e := mustReadStream(t, s, "subscription-aud1")[0]
	want := eventstore.Metadata{ActorKind: eventstore.ActorAgent, ActorID: "agent-7", Reason: "customer called",
		LogCode: "Modify Subscription / Adjust Days", CommandID: "cmd-aud1", CausationID: "evt-1", CorrelationID: "corr-1"}
	if e.Metadata != want {
		t.Errorf("metadata = %+v, want %+v", e.Metadata, want)
	}
	if !e.RecordedAt.Equal(t0) || e.SchemaVersion != 2 {
		t.Errorf("recorded at %v schema %d, want %v schema 2", e.RecordedAt, e.SchemaVersion, t0)
	}
}

func TestAppend_RefusesIncompleteInput(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	good := events(1)
	cases := []struct {
		name   string
		stream eventstore.StreamID
		evs    []eventstore.EventData
		mutate func(*eventstore.AppendOptions)
	}{
		{"no actor", "order-x", good, func(o *eventstore.AppendOptions) { o.Metadata = eventstore.Metadata{} }},
		{"agent without reason", "order-x", good, func(o *eventstore.AppendOptions) {
			o.Metadata = eventstore.Metadata{ActorKind: eventstore.ActorAgent, ActorID: "a1"}
		}},
		{"no clock time", "order-x", good, func(o *eventstore.AppendOptions) { o.RecordedAt = time.Time{} }},
		{"bad stream id", "nodash", good, nil},
		{"bad event type", "order-x", []eventstore.EventData{{Type: "Happened", Data: json.RawMessage(`{}`)}}, nil},
		{"bad json", "order-x", []eventstore.EventData{{Type: "order.placed", Data: json.RawMessage(`{`)}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := opts()
			if c.mutate != nil {
				c.mutate(&o)
			}
			if _, err := s.Append(context.Background(), c.stream, eventstore.Any, c.evs, o); err == nil {
				t.Fatal("append accepted it")
			}
		})
	}
	if n := len(mustReadStream(t, s, "order-x")); n != 0 {
		t.Errorf("refused appends left %d events", n)
	}
}

func TestAppendResult_CheckpointIsReachedByReaderOfTheAppend(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	mustAppend(t, s, "order-before", eventstore.NoStream, events(2), opts())
	r := mustAppend(t, s, "order-target", eventstore.NoStream, events(3), opts())
	got := readAllUntil(t, s, 5, 5*time.Second)
	last := got[len(got)-1]
	if last.TransactionID != r.TransactionID || last.Position != r.LastPosition {
		t.Fatalf("append result %+v, last event read (%d, %d)", r, last.TransactionID, last.Position)
	}
	for i, e := range got {
		if reached := eventstore.Of(e).Reached(r.Checkpoint()); reached != (i == len(got)-1) {
			t.Errorf("reader after event %d: reached = %v", i, reached)
		}
	}
	o := opts()
	o.CommandID = "cmd-cp"
	first := mustAppend(t, s, "order-cp", eventstore.NoStream, events(1), o)
	if again := mustAppend(t, s, "order-cp", eventstore.Any, events(1), o); again.Checkpoint() != first.Checkpoint() {
		t.Errorf("replayed checkpoint %+v, want %+v", again.Checkpoint(), first.Checkpoint())
	}
}

func TestReservationOwner_FindsTheHoldingStream(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	email := eventstore.Reservation{Scope: "account-email", Key: "bob@example.com"}
	if _, found, err := s.ReservationOwner(context.Background(), email); err != nil || found {
		t.Fatalf("unreserved: found=%v err=%v", found, err)
	}
	o := opts()
	o.Reserve = []eventstore.Reservation{email}
	mustAppend(t, s, "account-bob", eventstore.NoStream, events(1), o)
	owner, found, err := s.ReservationOwner(context.Background(), email)
	if err != nil || !found || owner != "account-bob" {
		t.Fatalf("owner %q found=%v err=%v, want account-bob", owner, found, err)
	}
}
