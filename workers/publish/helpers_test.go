package publish_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/eventstore/pgtest"
	"github.com/subs-engine/subs/workers/natsserver"
	"github.com/subs-engine/subs/workers/publish"
)

var t0 = time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)

func newStore(tb testing.TB) *eventstore.Store {
	tb.Helper()
	return eventstore.New(pgtest.NewPool(tb), eventstore.Config{})
}

// MustStartNATS starts an embedded NATS server with JetStream storing in dir
// on port (-1: any free port) and shuts it down when the test ends.
func MustStartNATS(tb testing.TB, dir string, port int) *natsserver.Server {
	tb.Helper()
	srv, err := natsserver.Start(natsserver.Config{StoreDir: dir, Port: port, MaxMemory: 64 << 20, MaxStore: 1 << 30})
	if err != nil {
		tb.Fatalf("start NATS: %v", err)
	}
	tb.Cleanup(srv.Shutdown)
	return srv
}

// tcpConnect dials url over TCP, reconnecting for as long as it takes: the
// way a publisher reaches a NATS server that may restart.
func tcpConnect(url string) func() (*nats.Conn, error) {
	return func() (*nats.Conn, error) {
		return nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	}
}

// mustAppend appends n events of type "<category>.happened" to stream, each
// carrying its index, and fails the test on error.
func mustAppend(tb testing.TB, s *eventstore.Store, stream eventstore.StreamID, n int) eventstore.AppendResult {
	tb.Helper()
	r, err := appendEvents(context.Background(), s, stream, n)
	if err != nil {
		tb.Fatalf("append to %s: %v", stream, err)
	}
	return r
}

func appendEvents(ctx context.Context, s *eventstore.Store, stream eventstore.StreamID, n int) (eventstore.AppendResult, error) {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = eventstore.EventData{
			Type: stream.Category() + ".happened",
			Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)),
		}
	}
	return s.Append(ctx, stream, eventstore.Any, evs, eventstore.AppendOptions{
		RecordedAt: t0,
		Metadata:   eventstore.Metadata{ActorKind: eventstore.ActorSystem},
	})
}

// StartPublisher runs a publisher with cfg until the returned stop is
// called (or the test ends); stop waits until Run has returned and fails the
// test if Run returned an error.
func StartPublisher(tb testing.TB, cfg publish.Config) (p *publish.Publisher, stop func()) {
	tb.Helper()
	if cfg.StandbyInterval == 0 {
		cfg.StandbyInterval = 50 * time.Millisecond
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 10 * time.Millisecond
	}
	p, err := publish.New(cfg, nil)
	if err != nil {
		tb.Fatalf("publish.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("Run: %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return p, stop
}

// received is one message a consumer got.
type received struct {
	subject string
	header  nats.Header
	data    []byte
	eventID string
	stream  string
	version int64
	// seq is the message's sequence in the JetStream stream: the order the
	// stream holds messages in, which a redelivery does not follow.
	seq        uint64
	deliveries uint64
}

// mustJetStream returns a JetStream handle on a new connection to url,
// closed when the test ends.
func mustJetStream(tb testing.TB, url string) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatalf("connect to %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// mustDurable creates (or finds) the durable pull consumer name on stream
// SUBS_EVENTS, with explicit acks, from the first message.
func mustDurable(tb testing.TB, js jetstream.JetStream, name string) jetstream.Consumer {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.CreateOrUpdateConsumer(ctx, "SUBS_EVENTS", jetstream.ConsumerConfig{
		Durable:       name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		tb.Fatalf("create consumer %s: %v", name, err)
	}
	return c
}

// mustStreamExists waits until the publisher has created SUBS_EVENTS.
func mustStreamExists(tb testing.TB, js jetstream.JetStream, within time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.Stream(ctx, "SUBS_EVENTS")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("stream SUBS_EVENTS not created within %s: %v", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mustFetch reads messages from c, acking each, until it has distinct
// event ids or within passes; it returns every message received, duplicates
// and redeliveries included, in delivery order.
func mustFetch(tb testing.TB, c jetstream.Consumer, distinct int, within time.Duration) []received {
	tb.Helper()
	it, err := c.Messages()
	if err != nil {
		tb.Fatalf("consume: %v", err)
	}
	defer it.Stop()
	var got []received
	seen := map[string]bool{}
	deadline := time.Now().Add(within)
	for len(seen) < distinct && time.Now().Before(deadline) {
		msg, err := it.Next(jetstream.NextMaxWait(time.Until(deadline)))
		if errors.Is(err, nats.ErrTimeout) {
			break
		}
		if err != nil {
			tb.Fatalf("next message: %v", err)
		}
		h := msg.Headers()
		v, _ := strconv.ParseInt(h.Get(publish.HeaderStreamVersion), 10, 64)
		r := received{subject: msg.Subject(), header: h, data: msg.Data(),
			eventID: h.Get(nats.MsgIdHdr), stream: h.Get(publish.HeaderSubject), version: v}
		if md, err := msg.Metadata(); err == nil {
			r.seq, r.deliveries = md.Sequence.Stream, md.NumDelivered
		}
		got = append(got, r)
		seen[r.eventID] = true
		if err := msg.Ack(); err != nil {
			tb.Fatalf("ack: %v", err)
		}
	}
	if len(seen) < distinct {
		tb.Fatalf("received %d distinct events within %s, want %d", len(seen), within, distinct)
	}
	return got
}

// streamMsgs returns how many messages stream SUBS_EVENTS holds.
func streamMsgs(tb testing.TB, js jetstream.JetStream) uint64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "SUBS_EVENTS")
	if err != nil {
		tb.Fatalf("stream SUBS_EVENTS: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		tb.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

// waitFor polls cond every 10ms until it holds or within passes.
func waitFor(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mustReadAll returns the whole global log in commit order.
func mustReadAll(tb testing.TB, s *eventstore.Store, want int, within time.Duration) []eventstore.RecordedEvent {
	tb.Helper()
	var out []eventstore.RecordedEvent
	var cp eventstore.Checkpoint
	deadline := time.Now().Add(within)
	for len(out) < want {
		batch, err := s.ReadAll(context.Background(), cp, 1000)
		if err != nil {
			tb.Fatal(err)
		}
		if len(batch) == 0 {
			if time.Now().After(deadline) {
				tb.Fatalf("read %d events of the log within %s, want %d", len(out), within, want)
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		out = append(out, batch...)
		cp = eventstore.Of(batch[len(batch)-1])
	}
	return out
}

// checkStreamOrder fails the test unless the messages, in the stream's
// order (a redelivered message arrives after its successors, so delivery
// order is no proof) and without repeated event ids, hold each stream's
// events in version order from 1 without gap. It returns how many distinct
// events it saw.
func checkStreamOrder(tb testing.TB, got []received) (distinct int) {
	tb.Helper()
	bySeq := slices.Clone(got)
	slices.SortStableFunc(bySeq, func(a, b received) int { return cmp.Compare(a.seq, b.seq) })
	seen := map[string]bool{}
	last := map[string]int64{}
	for _, r := range bySeq {
		if seen[r.eventID] {
			continue
		}
		seen[r.eventID] = true
		if r.version != last[r.stream]+1 {
			tb.Errorf("stream %s: version %d follows version %d (stream sequence %d)", r.stream, r.version, last[r.stream], r.seq)
		}
		last[r.stream] = r.version
	}
	return len(seen)
}
