package publish_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/workers/publish"
)

// benchEvents is how many events each side of BenchmarkPublish publishes.
const benchEvents = 20000

// BenchmarkPublish compares the publisher (read the log, publish each event
// and wait for its ack, save the checkpoint every batch) with publishing the
// same messages straight through a Watermill JetStream publisher configured
// alike, without the store, on the same embedded server, and prints
//
//	BENCH publish_events <events/s> events/s raw=<raw events/s> ratio=<publisher/raw>
func BenchmarkPublish(b *testing.B) {
	s := newStore(b)
	srv := MustStartNATS(b, b.TempDir(), -1)
	for i := range benchEvents / 100 {
		mustAppend(b, s, eventstore.StreamID(fmt.Sprintf("subscription-%d", i%50)), 100)
	}
	events := mustReadAll(b, s, benchEvents, time.Minute)
	b.ResetTimer()
	for run := range b.N {
		// The publisher, from the start of the log under a fresh name.
		start := time.Now()
		p, stop := StartPublisher(b, publish.Config{Store: s, Name: fmt.Sprintf("bench-%d", run),
			Connect: func() (*nats.Conn, error) { return srv.Connect() },
			Stream:  publish.StreamConfig{Name: fmt.Sprintf("BENCH_%d", run), SubjectPrefix: fmt.Sprintf("bench%d.events", run)}})
		waitFor(b, 5*time.Minute, "publisher catches up", func() bool { return p.Published() >= benchEvents })
		store := benchEvents / time.Since(start).Seconds()
		stop()

		raw := rawPublishRate(b, srv.Connect, events, fmt.Sprintf("RAW_%d", run), fmt.Sprintf("raw%d.events", run))
		b.ReportMetric(store, "events/s")
		b.ReportMetric(raw, "raw_events/s")
		b.ReportMetric(store/raw, "ratio")
		fmt.Printf("BENCH publish_events %.0f events/s raw=%.0f ratio=%.2f\n", store, raw, store/raw)
	}
}

// rawPublishRate publishes events' messages one by one through a Watermill
// JetStream publisher (ack awaited, Nats-Msg-Id set, no auto-provisioning)
// into a stream of their own, and returns the events per second.
func rawPublishRate(b *testing.B, connect func(...nats.Option) (*nats.Conn, error), events []eventstore.RecordedEvent, stream, prefix string) float64 {
	b.Helper()
	nc, err := connect()
	if err != nil {
		b.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{prefix + ".>"},
		Duplicates: 10 * time.Minute}); err != nil {
		b.Fatal(err)
	}
	pub, err := wmnats.NewPublisherWithNatsConn(nc, wmnats.PublisherPublishConfig{
		Marshaler:         &wmnats.NATSMarshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream:         wmnats.JetStreamConfig{TrackMsgId: true},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	subjects := make([]string, len(events))
	for i, e := range events {
		subjects[i] = publish.Subject(prefix, e)
	}
	start := time.Now()
	for i, e := range events {
		if err := pub.Publish(subjects[i], publish.NewMessage(e)); err != nil {
			b.Fatal(err)
		}
	}
	return float64(len(events)) / time.Since(start).Seconds()
}
