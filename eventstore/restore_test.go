package eventstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/subs-engine/subs/eventstore"
)

func TestRepairAfterRestore_ReadersSeeNewEventsAgain(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	mustAppend(t, s, "order-old", eventstore.NoStream, events(3), opts())
	if repaired, err := s.RepairAfterRestore(ctx); err != nil || repaired {
		t.Fatalf("a log written here was repaired (%v, %v)", repaired, err)
	}
	// Pretend the log came from a cluster whose transaction ids ran ahead.
	if _, err := s.Pool().Exec(ctx, `UPDATE events SET transaction_id =
		(pg_snapshot_xmax(pg_current_snapshot())::text::bigint + 1000000 + global_position)::text::xid8`); err != nil {
		t.Fatal(err)
	}
	// A reader had read the whole old log: its checkpoint is the last event.
	var cp eventstore.Checkpoint
	if err := s.Pool().QueryRow(ctx, `SELECT transaction_id, global_position FROM events
		ORDER BY global_position DESC LIMIT 1`).Scan(&cp.TransactionID, &cp.Position); err != nil {
		t.Fatal(err)
	}
	seedCheckpoint(t, s, "reader", cp)

	repaired, err := s.RepairAfterRestore(ctx)
	if err != nil || !repaired {
		t.Fatalf("restored log not repaired (%v, %v)", repaired, err)
	}
	mustAppend(t, s, "order-new", eventstore.NoStream, events(2), opts())
	cp, err = s.Checkpoint(ctx, "reader")
	if err != nil {
		t.Fatal(err)
	}
	got := readFromUntil(t, s, cp, 2, 5*time.Second)
	if len(got) != 2 || got[0].StreamID != "order-new" {
		t.Fatalf("after repair the reader got %d events, want the 2 new ones", len(got))
	}
	all := readAllUntil(t, s, 5, 5*time.Second)
	if len(all) != 5 || all[0].StreamID != "order-old" || all[4].StreamID != "order-new" {
		t.Fatalf("full read after repair: %d events, want 3 old then 2 new", len(all))
	}
}

func seedCheckpoint(t *testing.T, s *eventstore.Store, name string, cp eventstore.Checkpoint) {
	t.Helper()
	tx, err := s.Pool().Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := eventstore.SaveCheckpoint(context.Background(), tx, name, cp); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}
