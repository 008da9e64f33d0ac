package publish_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/workers/publish"
)

// rule PUB-1: every event is published in commit order, each stream's events
// in version order, with its id as Nats-Msg-Id and CloudEvents headers.
func TestRule_PUB1_EveryEventPublishedInCommitOrderWithCloudEventsHeaders(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	srv := MustStartNATS(t, t.TempDir(), -1)
	streams := []eventstore.StreamID{"subscription-a", "order-b", "account-c"}
	for round := range 4 {
		for i, st := range streams {
			mustAppend(t, s, st, 1+(round+i)%3)
		}
	}
	want := mustReadAll(t, s, 24, 10*time.Second)

	StartPublisher(t, publish.Config{Store: s, Connect: func() (*nats.Conn, error) { return srv.Connect() }})
	js := mustJetStream(t, srv.ClientURL())
	mustStreamExists(t, js, 10*time.Second)
	got := mustFetch(t, mustDurable(t, js, "pub1"), len(want), 10*time.Second)

	if len(got) != len(want) {
		t.Fatalf("received %d messages, want %d (one per event)", len(got), len(want))
	}
	slices.SortFunc(got, func(a, b received) int { return cmp.Compare(a.seq, b.seq) }) // the stream's order
	for i, e := range want {
		r := got[i]
		wantHeaders := map[string]string{
			nats.MsgIdHdr:                 e.ID.String(),
			publish.HeaderSpecVersion:     "1.0",
			publish.HeaderID:              e.ID.String(),
			publish.HeaderType:            e.Type,
			publish.HeaderSource:          "subs/" + e.StreamID.Category(),
			publish.HeaderTime:            e.RecordedAt.Format(time.RFC3339Nano),
			publish.HeaderSubject:         string(e.StreamID),
			publish.HeaderDataContentType: "application/json",
			publish.HeaderContentType:     "application/json",
			publish.HeaderPosition:        strconv.FormatInt(e.Position, 10),
			publish.HeaderStreamVersion:   strconv.FormatInt(e.Version, 10),
			publish.HeaderSchemaVersion:   "1",
		}
		for k, v := range wantHeaders {
			if g := r.header.Get(k); g != v {
				t.Errorf("message %d (%s v%d): header %s = %q, want %q", i, e.StreamID, e.Version, k, g, v)
			}
		}
		if ts, err := time.Parse(time.RFC3339, r.header.Get(publish.HeaderTime)); err != nil || !ts.Equal(e.RecordedAt) {
			t.Errorf("message %d: ce-time %q is not RFC 3339 for %s (%v)", i, r.header.Get(publish.HeaderTime), e.RecordedAt, err)
		}
		if wantSubject := "subs.events." + e.StreamID.Category() + ".happened"; r.subject != wantSubject {
			t.Errorf("message %d: subject %q, want %q", i, r.subject, wantSubject)
		}
		var gotData, wantData any
		if err := json.Unmarshal(r.data, &gotData); err != nil {
			t.Errorf("message %d: payload is not JSON: %v", i, err)
		}
		_ = json.Unmarshal(e.Data, &wantData)
		if fmt.Sprint(gotData) != fmt.Sprint(wantData) {
			t.Errorf("message %d: payload %s, want %s", i, r.data, e.Data)
		}
	}
	if n := checkStreamOrder(t, got); n != len(want) {
		t.Errorf("%d distinct events, want %d", n, len(want))
	}
}

func TestSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stream, typ, want string
	}{
		{"subscription-0190", "subscription.renewed", "subs.events.subscription.renewed"},
		{"subscription-0190", "charge.requested", "subs.events.subscription.charge.requested"},
		{"account-1", "account.email.changed", "subs.events.account.email.changed"},
		{"order-1", "orders.placed", "subs.events.order.orders.placed"},
		{"we.ird*>-1", "x.y", "subs.events.we_ird__.x.y"},
	}
	for _, tt := range tests {
		t.Run(tt.stream+"/"+tt.typ, func(t *testing.T) {
			e := eventstore.RecordedEvent{StreamID: eventstore.StreamID(tt.stream), Type: tt.typ}
			if got := publish.Subject("subs.events", e); got != tt.want {
				t.Errorf("Subject = %q, want %q", got, tt.want)
			}
		})
	}
}

// rule PUB-2: with the publisher stopped and restarted at random points
// while 10,000 events are appended, and the NATS server restarted once, a
// durable consumer receives every event id, and after dropping duplicates
// each stream's events in version order.
func TestRule_PUB2_PublisherKilledAndNATSRestarted_NothingLostStreamOrderKept(t *testing.T) {
	t.Parallel()
	const (
		writers   = 8
		perWriter = 1250 // events
		total     = writers * perWriter
	)
	s := newStore(t)
	dir := t.TempDir()
	srv := MustStartNATS(t, dir, -1)
	port, url := srv.Port(), srv.ClientURL()
	cfg := publish.Config{Store: s, Connect: tcpConnect(url), BatchSize: 200, PublishTimeout: time.Second}

	// The durable consumer exists from the start, so it too must survive the
	// server's restart.
	_, stop := StartPublisher(t, cfg)
	js := mustJetStream(t, url)
	mustStreamExists(t, js, 10*time.Second)
	mustDurable(t, js, "pub2")

	var appended atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			for n := 0; n < perWriter; {
				k := min(1+rng.IntN(5), perWriter-n)
				stream := eventstore.StreamID(fmt.Sprintf("subscription-w%d-%d", w, rng.IntN(4)))
				if _, err := appendEvents(context.Background(), s, stream, k); err != nil {
					t.Errorf("append: %v", err)
					return
				}
				n += k
				appended.Add(int64(k))
			}
		})
	}
	appendsDone := make(chan struct{})
	go func() { wg.Wait(); close(appendsDone) }()

	// Chaos: stop the publisher at random moments and start a new one; restart
	// the NATS server once, half-way through.
	rng := rand.New(rand.NewPCG(42, 7))
	restarted, restarts := false, 0
chaos:
	for {
		select {
		case <-appendsDone:
			break chaos
		case <-time.After(time.Duration(20+rng.IntN(200)) * time.Millisecond):
		}
		if !restarted && appended.Load() > total/2 {
			// Under the running publisher's feet: its publishes fail until
			// it reconnects.
			srv.Shutdown()
			srv = MustStartNATS(t, dir, port)
			restarted = true
			continue
		}
		stop()
		restarts++
		_, stop = StartPublisher(t, cfg)
	}
	if !restarted {
		t.Fatal("the NATS server was never restarted: the appends finished too soon")
	}
	t.Logf("%d events appended; publisher restarted %d times; NATS restarted once", appended.Load(), restarts)

	js = mustJetStream(t, srv.ClientURL())
	got := mustFetch(t, mustDurable(t, js, "pub2"), total, 60*time.Second)
	redelivered := 0
	for _, r := range got {
		if r.deliveries > 1 {
			redelivered++
		}
	}
	t.Logf("consumer received %d messages, %d of them redeliveries", len(got), redelivered)
	if n := checkStreamOrder(t, got); n != total {
		t.Errorf("%d distinct events received, want %d", n, total)
	}
	ids := map[string]bool{}
	for _, r := range got {
		ids[r.eventID] = true
	}
	for _, e := range mustReadAll(t, s, total, 10*time.Second) {
		if !ids[e.ID.String()] {
			t.Errorf("event %s (%s v%d) never received", e.ID, e.StreamID, e.Version)
		}
	}
	if n := streamMsgs(t, js); n != total {
		t.Errorf("stream holds %d messages, want %d: JetStream let duplicates in", n, total)
	}
}

// A republish after a restart, inside the duplicate window, adds nothing to
// the stream: Nats-Msg-Id is the event id.
func TestRepublishAfterRestart_JetStreamDropsDuplicates(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	dir := t.TempDir()
	srv := MustStartNATS(t, dir, -1)
	port := srv.Port()
	const n = 300
	for i := range 3 {
		mustAppend(t, s, eventstore.StreamID(fmt.Sprintf("order-%d", i)), n/3)
	}
	p, stop := StartPublisher(t, publish.Config{Store: s, Connect: tcpConnect(srv.ClientURL())})
	waitFor(t, 20*time.Second, "first publication", func() bool { return p.Published() >= n })
	stop()

	// A crash before the checkpoint moved: the next publisher starts over.
	if _, err := s.Pool().Exec(context.Background(), `DELETE FROM subscription_checkpoints WHERE name = 'publisher'`); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	srv = MustStartNATS(t, dir, port)
	p, _ = StartPublisher(t, publish.Config{Store: s, Connect: tcpConnect(srv.ClientURL())})
	waitFor(t, 20*time.Second, "republication", func() bool { return p.Published() >= n })

	js := mustJetStream(t, srv.ClientURL())
	if got := streamMsgs(t, js); got != n {
		t.Errorf("stream holds %d messages after republishing %d events, want %d", got, p.Published(), n)
	}
}

// Two publishers on one database: one publishes, the other stands by; when
// the first stops, the second takes over from its checkpoint.
func TestTwoPublishers_OneActive_SecondTakesOver(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	srv := MustStartNATS(t, t.TempDir(), -1)
	connect := func() (*nats.Conn, error) { return srv.Connect() }
	p1, stop1 := StartPublisher(t, publish.Config{Store: s, Connect: connect})
	waitFor(t, 10*time.Second, "first publisher active", p1.Active)
	p2, _ := StartPublisher(t, publish.Config{Store: s, Connect: connect})

	mustAppend(t, s, "subscription-x", 50)
	waitFor(t, 10*time.Second, "first publisher publishes", func() bool { return p1.Published() == 50 })
	time.Sleep(200 * time.Millisecond) // several standby intervals
	if p2.Active() || p2.Published() != 0 {
		t.Fatalf("second publisher: active %v, published %d; want standing by", p2.Active(), p2.Published())
	}

	stop1()
	waitFor(t, 10*time.Second, "second publisher takes over", p2.Active)
	mustAppend(t, s, "subscription-x", 30)
	waitFor(t, 10*time.Second, "second publisher publishes", func() bool { return p2.Published() == 30 })
	time.Sleep(100 * time.Millisecond)
	if got := p2.Published(); got != 30 {
		t.Errorf("second publisher published %d events, want only the 30 new ones (it resumes from the checkpoint)", got)
	}
	js := mustJetStream(t, srv.ClientURL())
	if got := streamMsgs(t, js); got != 80 {
		t.Errorf("stream holds %d messages, want 80", got)
	}
}

func TestNew_InvalidConfig(t *testing.T) {
	t.Parallel()
	s := eventstore.New(nil, eventstore.Config{})
	connect := func() (*nats.Conn, error) { return nil, nil }
	tests := []struct {
		name string
		cfg  publish.Config
	}{
		{"no store", publish.Config{Connect: connect}},
		{"no connect", publish.Config{Store: s}},
		{"negative batch", publish.Config{Store: s, Connect: connect, BatchSize: -1}},
		{"dotted stream name", publish.Config{Store: s, Connect: connect, Stream: publish.StreamConfig{Name: "subs.events"}}},
		{"wildcard prefix", publish.Config{Store: s, Connect: connect, Stream: publish.StreamConfig{SubjectPrefix: "subs.*"}}},
		{"too many replicas", publish.Config{Store: s, Connect: connect, Stream: publish.StreamConfig{Replicas: 7}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := publish.New(tt.cfg, nil); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}
