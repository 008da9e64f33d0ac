package eventstore_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/eventstore"
)

// benchWindow is how long each side of a comparison runs.
const benchWindow = 3 * time.Second

// The append benchmarks compare the store with the raw rate of inserting the
// same rows with plain pgx into a bare table (no index, no constraint, no
// hash chain), in the same run on the same database, and print one line per
// figure:
//
//	BENCH <name> <value> <unit> raw=<raw value> ratio=<value/raw>
//
// Run them with `make bench` (-benchtime=1x: each runs its own window).
func BenchmarkAppendSingle1(b *testing.B)  { benchAppend(b, "append_single_1", 1, 1, 1) }
func BenchmarkAppendSingle16(b *testing.B) { benchAppend(b, "append_single_16", 16, 1, 1) }
func BenchmarkAppendBatch100(b *testing.B) { benchAppend(b, "append_batch_100", 1, 1, 100) }

// BenchmarkAppendStreams200 is a worker's step: one AppendBatch of 200
// appends of one event each, to 200 streams.
func BenchmarkAppendStreams200(b *testing.B) { benchAppend(b, "append_streams_200", 1, 200, 1) }

// benchAppend measures writers appending perStream events to each of
// streams new streams at a time (one Append for one stream, one AppendBatch
// for several), against rawInsert writing the same rows.
func benchAppend(b *testing.B, name string, writers, streams, perStream int) {
	s := newStore(b)
	pool := s.Pool()
	if _, err := pool.Exec(context.Background(), `CREATE TABLE raw_events (LIKE events INCLUDING DEFAULTS INCLUDING IDENTITY)`); err != nil {
		b.Fatal(err)
	}
	payload := json.RawMessage(`{"subscription_id":"0190b3c2-7d2e-7a7b-9a51-3c1f0e5d2a10","period":3,"amount":{"amount":4999,"currency":"USD"}}`)
	rows := streams * perStream
	b.ResetTimer()
	for range b.N {
		store := rate(b, writers, rows, func(w, i int) error {
			reqs := make([]eventstore.AppendRequest, streams)
			for k := range reqs {
				evs := make([]eventstore.EventData, perStream)
				for j := range evs {
					evs[j] = eventstore.EventData{Type: "subscription.renewed", Data: payload}
				}
				reqs[k] = eventstore.AppendRequest{Stream: eventstore.StreamID(benchStream(w, i, k)), Expected: eventstore.NoStream, Events: evs, Options: opts()}
			}
			if streams == 1 {
				_, err := s.Append(context.Background(), reqs[0].Stream, reqs[0].Expected, reqs[0].Events, reqs[0].Options)
				return err
			}
			_, err := s.AppendBatch(context.Background(), reqs)
			return err
		})
		raw := rate(b, writers, rows, func(w, i int) error { return rawInsert(pool, w, i, streams, perStream, payload) })
		b.ReportMetric(store, "events/s")
		b.ReportMetric(raw, "raw_events/s")
		b.ReportMetric(store/raw, "ratio")
		fmt.Printf("BENCH %s %.0f events/s raw=%.0f ratio=%.2f\n", name, store, raw, store/raw)
	}
}

// benchStream names stream k of writer w's append number i.
func benchStream(w, i, k int) string { return fmt.Sprintf("subscription-%d-%d-%d", w, i, k) }

// rawInsert writes the same rows the store writes, each with its own
// values, in one statement and one round trip.
func rawInsert(pool *pgxpool.Pool, w, i, streams, perStream int, payload json.RawMessage) error {
	meta, _ := json.Marshal(eventstore.Metadata{ActorKind: eventstore.ActorSystem})
	n := streams * perStream
	names := make([]string, n)
	ids := make([]uuid.UUID, n)
	versions := make([]int64, n)
	types := make([]string, n)
	data := make([]json.RawMessage, n)
	metas := make([]json.RawMessage, n)
	hashes := make([][]byte, n)
	for j := range n {
		names[j], versions[j] = benchStream(w, i, j/perStream), int64(j%perStream+1)
		ids[j], types[j], data[j], metas[j] = uuid.Must(uuid.NewV7()), "subscription.renewed", payload, meta
		hashes[j] = make([]byte, 32)
		rand.Read(hashes[j])
	}
	_, err := pool.Exec(context.Background(), `INSERT INTO raw_events
(stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at, hash)
SELECT s, v, id, typ, 1, d, m, $1, h FROM unnest($2::text[], $3::bigint[], $4::uuid[], $5::text[], $6::jsonb[], $7::jsonb[], $8::bytea[]) AS u(s, v, id, typ, d, m, h)`,
		t0, names, versions, ids, types, data, metas, hashes)
	return err
}

// rate runs op from writers goroutines for benchWindow and returns the
// events per second it achieved.
func rate(b *testing.B, writers, batch int, op func(writer, i int) error) float64 {
	var done atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(benchWindow)
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				if err := op(w, i); err != nil {
					b.Error(err)
					return
				}
				done.Add(int64(batch))
			}
		})
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds()
}

// BenchmarkAppendReserving appends, one after the other, 20,000 events
// that each reserve two keys of their own, as every new subscription does
// (its product key and serial number), to an empty store: the
// reservations table grows under the append's cached plans, as it does in
// production, and an append's work must not grow with it (migration 0013;
// without it: 935 events/s against 2,044, falling as the table grows).
//
//	BENCH append_reserving_20k <events/s> events/s
func BenchmarkAppendReserving(b *testing.B) {
	const appends = 20_000
	for n := range b.N {
		s := newStore(b)
		start := time.Now()
		for i := range appends {
			o := opts()
			o.Reserve = []eventstore.Reservation{
				{Scope: "bench-key", Key: fmt.Sprintf("key-%d-%d", n, i)},
				{Scope: "bench-serial", Key: fmt.Sprintf("serial-%d-%d", n, i)},
			}
			if _, err := s.Append(context.Background(), eventstore.StreamID(fmt.Sprintf("subscription-%d-%d", n, i)), eventstore.NoStream, events(1), o); err != nil {
				b.Fatal(err)
			}
		}
		perSecond := appends / time.Since(start).Seconds()
		b.ReportMetric(perSecond, "events/s")
		fmt.Printf("BENCH append_reserving_20k %.0f events/s\n", perSecond)
	}
}
