package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/subs-engine/subs/eventstore"
)

// appendMany fills the log with n events: streams of perStream events,
// appended in batches, as a busy engine would.
func appendMany(tb testing.TB, s *eventstore.Store, n, perStream int) {
	tb.Helper()
	payload := json.RawMessage(`{"subscription_id":"0190b3c2-7d2e-7a7b-9a51-3c1f0e5d2a10","period":3,"amount":{"amount":4999,"currency":"USD"}}`)
	batch := make([]eventstore.EventData, perStream)
	for i := range batch {
		batch[i] = eventstore.EventData{Type: "subscription.renewed", Data: payload}
	}
	for i := 0; i < n/perStream; i++ {
		o := opts()
		o.RecordedAt = t0.Add(time.Duration(i) * time.Second)
		if _, err := s.Append(context.Background(), eventstore.StreamID(fmt.Sprintf("subscription-%07d", i)), eventstore.NoStream, batch, o); err != nil {
			tb.Fatal(err)
		}
	}
}

// rule AUD-3: one changed byte among 100,000 events is found and named.
func TestRule_AUD3_VerifyFindsOneChangedByteIn100000Events(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	appendMany(t, s, 100_000, 100)
	ctx := context.Background()
	var target eventstore.RecordedEvent
	err := s.Pool().QueryRow(ctx, `SELECT global_position, stream_id, stream_version FROM events ORDER BY global_position OFFSET 73219 LIMIT 1`).
		Scan(&target.Position, &target.StreamID, &target.Version)
	if err != nil {
		t.Fatal(err)
	}
	// One byte: the period 3 becomes 4.
	tag, err := s.Pool().Exec(ctx, `UPDATE events SET data = jsonb_set(data, '{period}', '4') WHERE global_position = $1`, target.Position)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("tamper: %v (%d rows)", err, tag.RowsAffected())
	}
	var checked int64
	report, err := s.Verify(ctx, func(n int64) { checked = n })
	if err != nil {
		t.Fatal(err)
	}
	if report.Events != 100_000 || report.Streams != 1_000 || checked != 100_000 {
		t.Errorf("verified %d events in %d streams (progress said %d), want 100000 in 1000", report.Events, report.Streams, checked)
	}
	b := report.Broken
	if b == nil || b.Position != target.Position || b.Stream != target.StreamID || b.Version != target.Version {
		t.Fatalf("broken link %v, want position %d (%s version %d)", b, target.Position, target.StreamID, target.Version)
	}
}

// BenchmarkVerify1M verifies a log of 1,000,000 events and compares the rate
// with a plain sequential read of the same rows in the same order:
//
//	BENCH verify_1m <events/s> events/s raw=<rows/s read> ratio=<verify/read>
//
// Issue 8 asks for under a minute on this machine: the line also says the
// seconds it took.
func BenchmarkVerify1M(b *testing.B) {
	s := newStore(b)
	appendMany(b, s, 1_000_000, 1000)
	ctx := context.Background()
	if _, err := s.Pool().Exec(ctx, `VACUUM ANALYZE events`); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		report, err := s.Verify(ctx, nil)
		if err != nil || report.Broken != nil || report.Events != 1_000_000 {
			b.Fatalf("verify: %+v, %v", report, err)
		}
		verify := time.Since(start)
		start = time.Now()
		rows, err := s.Pool().Query(ctx, `SELECT global_position, stream_id, stream_version, event_id, event_type,
schema_version, recorded_at, data::text, metadata::text, hash FROM events ORDER BY stream_id, stream_version`)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if rows.Err() != nil || n != 1_000_000 {
			b.Fatalf("read %d rows: %v", n, rows.Err())
		}
		read := time.Since(start)
		rate, raw := 1e6/verify.Seconds(), 1e6/read.Seconds()
		b.ReportMetric(verify.Seconds(), "s/verify")
		fmt.Printf("BENCH verify_1m %.0f events/s raw=%.0f ratio=%.2f (%.1f s for 1,000,000 events)\n", rate, raw, rate/raw, verify.Seconds())
	}
}
