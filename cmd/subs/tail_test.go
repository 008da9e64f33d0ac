package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/eventstore/pgtest"
)

// runningTail is `subs tail` running in a goroutine.
type runningTail struct {
	out    output
	cancel context.CancelFunc
	done   chan error
}

func mustStartTail(t *testing.T, args ...string) *runningTail {
	t.Helper()
	m, out := MustParse(t, nil, append([]string{"tail"}, args...)...)
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningTail{out: out, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// waitLines waits until tail printed n lines and returns them.
func (r *runningTail) waitLines(t *testing.T, n int, within time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		out := r.out.stdout.String()
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if out != "" && len(lines) >= n {
			return lines
		}
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("tail ended: %v\nstdout:\n%s\nstderr:\n%s", err, out, r.out.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tail printed %q within %s, want %d lines\nstderr:\n%s", out, within, n, r.out.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop cancels tail, as Ctrl-C does, and requires Run to return nil.
func (r *runningTail) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			t.Errorf("tail after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("tail did not stop within 10s of the cancel")
	}
}

// serve publishes every event to its embedded NATS server, and `subs tail`
// (another system subscribing) prints them as they arrive, filtered by
// subject; a tail started again under the same durable name resumes after
// what it acked. (PUB-1 end to end.)
func TestTail_FollowsWhatServePublishes(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	m, out := MustParse(t, map[string]string{"DATABASE_URL": dbURL},
		"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--nats-port", "0", "--shutdown-timeout", "5s")
	srv := MustStartServe(t, m, out, time.Minute)
	natsURL := m.NATSURL()
	if !strings.HasPrefix(natsURL, "nats://127.0.0.1:") {
		t.Fatalf("NATSURL() = %q, want the embedded server on loopback", natsURL)
	}
	wantBanner := "nats:      " + natsURL + " (embedded, JetStream in "
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.stderr.String(), wantBanner); {
		if time.Now().After(deadline) { // the banner follows readiness closely
			t.Errorf("the banner does not show the NATS URL %s:\n%s", natsURL, out.stderr)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := eventstore.New(pool, eventstore.Config{})
	appendOne := func(stream eventstore.StreamID, typ string, n int) eventstore.AppendResult {
		t.Helper()
		r, err := store.Append(context.Background(), stream, eventstore.Any,
			[]eventstore.EventData{{Type: typ, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}},
			eventstore.AppendOptions{RecordedAt: time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC),
				Metadata: eventstore.Metadata{ActorKind: eventstore.ActorSystem}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	appendOne("subscription-s1", "subscription.started", 1)
	appendOne("order-o1", "order.placed", 2)
	appendOne("subscription-s1", "subscription.renewed", 3)

	all := mustStartTail(t, "--nats-url", natsURL, "--durable", "all")
	subs := mustStartTail(t, "--nats-url", natsURL, "--durable", "subs-only", "--subject", "subs.events.subscription.>")
	lines := all.waitLines(t, 3, 20*time.Second)
	for i, want := range []string{
		"2027-03-01T09:00:00Z  subs.events.subscription.started  subscription-s1 v1  ",
		"2027-03-01T09:00:00Z  subs.events.order.placed  order-o1 v1  ",
		"2027-03-01T09:00:00Z  subs.events.subscription.renewed  subscription-s1 v2  ",
	} {
		if !strings.HasPrefix(lines[i], want) || !strings.HasSuffix(lines[i], fmt.Sprintf(`{"n": %d}`, i+1)) {
			t.Errorf("line %d = %q, want %q…{\"n\": %d}", i, lines[i], want, i+1)
		}
	}
	if got := subs.waitLines(t, 2, 20*time.Second); strings.Contains(strings.Join(got, "\n"), "order") {
		t.Errorf("the subscription-only tail printed an order event:\n%s", strings.Join(got, "\n"))
	}

	// Stopped and started again, the durable consumer resumes: only what
	// came meanwhile is printed.
	all.stop(t)
	appendOne("order-o1", "order.paid", 4)
	again := mustStartTail(t, "--nats-url", natsURL, "--durable", "all")
	again.waitLines(t, 1, 20*time.Second)
	time.Sleep(300 * time.Millisecond) // room for a wrongly repeated event to show
	got := strings.Split(strings.TrimSuffix(again.out.stdout.String(), "\n"), "\n")
	if len(got) != 1 || !strings.Contains(got[0], "subs.events.order.paid  order-o1 v2") {
		t.Errorf("the resumed tail printed %q, want only order-o1 v2", got)
	}

	_, metrics := MustGet(t, srv.base+"/metrics")
	for _, want := range []string{"subs_publisher_active 1", "subs_publisher_published_total 4", "subs_publisher_lag_events 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	again.stop(t)
	subs.stop(t)
	srv.MustStop(t, 10*time.Second)
}

func TestTail_NoServer_SaysWhatToStart(t *testing.T) {
	t.Parallel()
	m, _ := MustParse(t, nil, "tail", "--nats-url", "nats://127.0.0.1:1")
	err := m.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "subs serve") {
		t.Errorf("Run = %v, want an error saying to start subs serve", err)
	}
}
