package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/eventstore"
)

// A reader that only trusts "position > last seen" skips events whose
// transaction took a position early and committed late. Writers here hold
// their transaction open after appending while others commit past them.
func TestReadAll_LateCommits_EveryEventOnceInStreamOrder(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	const (
		writers   = 20
		perWriter = 15
	)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			own := eventstore.StreamID(fmt.Sprintf("order-w%d", w))
			for i := range perWriter {
				// Every writer also appends to one contended stream, so stream
				// order is tested where transactions interleave most.
				stream := own
				if i%3 == 0 {
					stream = "order-shared"
				}
				if w%4 == 0 {
					err := pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
						if _, err := s.AppendTx(ctx, tx, stream, eventstore.Any, events(1), opts()); err != nil {
							return err
						}
						time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond) // commit late
						return nil
					})
					if err != nil {
						t.Error(err)
					}
					continue
				}
				if _, err := s.Append(ctx, stream, eventstore.Any, events(1), opts()); err != nil {
					t.Error(err)
				}
			}
		})
	}

	// Read while the writers run, as a live subscriber would.
	const total = writers * perWriter
	got := readAllUntil(t, s, total, 60*time.Second)
	wg.Wait()
	got = append(got, readAllUntil(t, s, 0, 0)...)

	seen := map[string]bool{}
	lastVersion := map[eventstore.StreamID]int64{}
	for _, e := range got {
		if seen[e.ID.String()] {
			t.Fatalf("event %s delivered twice", e.ID)
		}
		seen[e.ID.String()] = true
		if e.Version != lastVersion[e.StreamID]+1 {
			t.Fatalf("%s: version %d delivered after version %d", e.StreamID, e.Version, lastVersion[e.StreamID])
		}
		lastVersion[e.StreamID] = e.Version
	}
	if len(seen) != total {
		t.Fatalf("reader saw %d events, want %d: some were skipped", len(seen), total)
	}
}

func TestReadAll_WaitsForOpenTransaction(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	if _, err := s.AppendTx(ctx, tx, "order-early", eventstore.NoStream, events(1), opts()); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "order-late", eventstore.NoStream, events(1), opts())
	if got, _ := s.ReadAll(ctx, eventstore.Checkpoint{}, 10); len(got) != 0 {
		t.Fatalf("reader returned %d events past a transaction still open: it could skip it", len(got))
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := readAllUntil(t, s, 2, 5*time.Second)
	if len(got) != 2 || got[0].StreamID != "order-early" {
		t.Fatalf("got %d events (first %v), want both, the early transaction's first", len(got), got)
	}
}

// rule AUD-2: a stream replayed as of an instant shows only what was
// recorded by then.
func TestRule_AUD2_ReadStreamAsOfInstant(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	stream := eventstore.StreamID("subscription-asof")
	for day := range 5 {
		o := opts()
		o.RecordedAt = t0.AddDate(0, 0, day)
		mustAppend(t, s, stream, eventstore.Any, events(1), o)
	}
	cases := []struct {
		asOf time.Time
		want int
	}{
		{t0.Add(-time.Second), 0},
		{t0, 1},
		{t0.AddDate(0, 0, 2).Add(time.Hour), 3},
		{t0.AddDate(1, 0, 0), 5},
		{time.Time{}, 5},
	}
	for _, c := range cases {
		got, err := s.ReadStream(context.Background(), stream, eventstore.ReadStreamOptions{AsOf: c.asOf})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != c.want {
			t.Errorf("as of %v: %d events, want %d", c.asOf, len(got), c.want)
		}
	}
	from, err := s.ReadStream(context.Background(), stream, eventstore.ReadStreamOptions{FromVersion: 4})
	if err != nil || len(from) != 2 || from[0].Version != 4 {
		t.Errorf("from version 4: %d events (%v)", len(from), err)
	}
}

func TestUpcasters_OldSchemaReadAsCurrent_LogUntouched(t *testing.T) {
	t.Parallel()
	pool := newStore(t).Pool()
	up := eventstore.NewUpcasters()
	// v1 had "name"; v2 splits it; v3 adds a default country.
	up.Register("account.opened", 1, func(d json.RawMessage) (json.RawMessage, error) {
		var v1 struct{ Name string }
		if err := json.Unmarshal(d, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(map[string]string{"full_name": v1.Name})
	})
	up.Register("account.opened", 2, func(d json.RawMessage) (json.RawMessage, error) {
		var v2 map[string]string
		if err := json.Unmarshal(d, &v2); err != nil {
			return nil, err
		}
		v2["country"] = "US"
		return json.Marshal(v2)
	})
	s := eventstore.New(pool, eventstore.Config{Upcasters: up})
	mustAppend(t, s, "account-up", eventstore.NoStream, []eventstore.EventData{
		{Type: "account.opened", SchemaVersion: 1, Data: json.RawMessage(`{"Name":"Ann"}`)},
	}, opts())
	e := mustReadStream(t, s, "account-up")[0]
	if e.SchemaVersion != 3 || string(e.Data) != `{"country":"US","full_name":"Ann"}` {
		t.Errorf("read v%d %s, want v3 with both fields", e.SchemaVersion, e.Data)
	}
	var stored int
	if err := pool.QueryRow(context.Background(), `SELECT schema_version FROM events`).Scan(&stored); err != nil || stored != 1 {
		t.Errorf("stored schema version %d (%v), want 1: the log must not be rewritten", stored, err)
	}
	if r, err := s.Verify(context.Background(), nil); err != nil || r.Broken != nil {
		t.Errorf("verify after upcast read: %+v, %v", r, err)
	}
}
