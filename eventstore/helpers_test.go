package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/eventstore/pgtest"
)

var t0 = time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)

func newStore(t testing.TB) *eventstore.Store {
	t.Helper()
	return eventstore.New(pgtest.NewPool(t), eventstore.Config{})
}

// events makes n events of type test.happened whose data carries i.
func events(n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = eventstore.EventData{Type: "test.happened", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}
	}
	return out
}

func opts() eventstore.AppendOptions {
	return eventstore.AppendOptions{
		RecordedAt: t0,
		Metadata:   eventstore.Metadata{ActorKind: eventstore.ActorSystem},
	}
}

func mustAppend(t testing.TB, s *eventstore.Store, stream eventstore.StreamID, expected eventstore.ExpectedVersion, evs []eventstore.EventData, o eventstore.AppendOptions) eventstore.AppendResult {
	t.Helper()
	r, err := s.Append(context.Background(), stream, expected, evs, o)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return r
}

func mustReadStream(t testing.TB, s *eventstore.Store, stream eventstore.StreamID) []eventstore.RecordedEvent {
	t.Helper()
	evs, err := s.ReadStream(context.Background(), stream, eventstore.ReadStreamOptions{})
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	return evs
}

// readAllUntil reads the global log from the start until it holds want
// events or the deadline passes.
func readAllUntil(t testing.TB, s *eventstore.Store, want int, deadline time.Duration) []eventstore.RecordedEvent {
	t.Helper()
	return readFromUntil(t, s, eventstore.Checkpoint{}, want, deadline)
}

// readFromUntil reads the global log from cp until it holds want events or
// the deadline passes. Transactions in flight anywhere in the cluster hold
// readers back for a moment, hence the polling.
func readFromUntil(t testing.TB, s *eventstore.Store, cp eventstore.Checkpoint, want int, deadline time.Duration) []eventstore.RecordedEvent {
	t.Helper()
	var got []eventstore.RecordedEvent
	stop := time.Now().Add(deadline)
	for len(got) < want && time.Now().Before(stop) {
		batch, err := s.ReadAll(context.Background(), cp, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		got = append(got, batch...)
		cp = eventstore.Of(batch[len(batch)-1])
	}
	return got
}
