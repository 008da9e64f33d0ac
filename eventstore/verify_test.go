package eventstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/subs-engine/subs/eventstore"
)

// rule AUD-3: each event's hash covers its content and the previous hash in
// its stream; verification walks the whole log and names the first broken
// link.
func TestRule_AUD3_VerifyNamesTheTamperedEvent(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		tamper string // SQL run against the event at position $1
		reason string
	}{
		{"data changed", `UPDATE events SET data = jsonb_set(data, '{i}', '99') WHERE global_position = $1`, "content"},
		{"metadata changed", `UPDATE events SET metadata = jsonb_set(metadata, '{actor_id}', '"mallory"') WHERE global_position = $1`, "content"},
		{"time changed", `UPDATE events SET recorded_at = recorded_at + interval '1 day' WHERE global_position = $1`, "content"},
		{"type changed", `UPDATE events SET event_type = 'test.refunded' WHERE global_position = $1`, "content"},
		{"hash replaced", `UPDATE events SET hash = sha256('forged') WHERE global_position = $1`, "content"},
		{"event deleted", `DELETE FROM events WHERE global_position = $1`, "missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			ctx := context.Background()
			var target eventstore.RecordedEvent
			for i := range 5 {
				stream := eventstore.StreamID(fmt.Sprintf("order-%d", i))
				mustAppend(t, s, stream, eventstore.NoStream, events(4), opts())
				if i == 2 {
					target = mustReadStream(t, s, stream)[1]
				}
			}
			report, err := s.Verify(ctx, nil)
			if err != nil || report.Broken != nil || report.Events != 20 || report.Streams != 5 {
				t.Fatalf("untouched log: %+v, %v; want 20 events, 5 streams, nothing broken", report, err)
			}
			if _, err := s.Pool().Exec(ctx, c.tamper, target.Position); err != nil {
				t.Fatal(err)
			}
			report, err = s.Verify(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			b := report.Broken
			if b == nil {
				t.Fatal("verify found nothing")
			}
			wantPos, wantVer := target.Position, target.Version
			if c.reason == "missing" { // the gap shows at the next version
				wantPos, wantVer = target.Position+1, target.Version+1
			}
			if b.Stream != target.StreamID || b.Version != wantVer || b.Position != wantPos {
				t.Errorf("broken link %v, want %s version %d (position %d)", b, target.StreamID, wantVer, wantPos)
			}
		})
	}
}
