package main_test

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/eventstore/pgtest"
)

var (
	auditT1 = time.Date(2027, 1, 10, 9, 0, 0, 0, time.UTC)
	auditT2 = time.Date(2027, 3, 10, 9, 0, 0, 0, time.UTC)
)

// auditLog is a database holding a few events: subscription-s1 v1 and v2
// (an agent's, with reason) at auditT1, v3 at auditT2, and order-o1 v1.
type auditLog struct {
	url    string
	store  *eventstore.Store
	events []eventstore.RecordedEvent // in position order
}

func mustAuditLog(t *testing.T) auditLog {
	t.Helper()
	url := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := eventstore.New(pool, eventstore.Config{SecretKey: testSecretKey})
	appendAt := func(stream eventstore.StreamID, at time.Time, md eventstore.Metadata, cmd string, types ...string) {
		t.Helper()
		evs := make([]eventstore.EventData, len(types))
		for i, typ := range types {
			evs[i] = eventstore.EventData{Type: typ, Data: json.RawMessage(fmt.Sprintf(`{"n": %d, "note": "<&>"}`, i))}
		}
		if _, err := s.Append(context.Background(), stream, eventstore.Any, evs,
			eventstore.AppendOptions{RecordedAt: at, Metadata: md, CommandID: cmd}); err != nil {
			t.Fatal(err)
		}
	}
	agent := eventstore.Metadata{ActorKind: eventstore.ActorAgent, ActorID: "agent-7", Reason: "customer called about a double charge",
		CorrelationID: "corr-1"}
	appendAt("subscription-s1", auditT1, agent, "cmd-1", "subscription.started", "subscription.renewed")
	appendAt("order-o1", auditT1, eventstore.Metadata{ActorKind: eventstore.ActorCustomer, ActorID: "cust-1"}, "cmd-2", "order.placed")
	appendAt("subscription-s1", auditT2, eventstore.Metadata{ActorKind: eventstore.ActorSystem}, "cmd-3", "subscription.expired")
	var events []eventstore.RecordedEvent
	for _, st := range []eventstore.StreamID{"subscription-s1", "order-o1"} {
		evs, err := s.ReadStream(context.Background(), st, eventstore.ReadStreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, evs...)
	}
	slices.SortFunc(events, func(a, b eventstore.RecordedEvent) int { return cmp.Compare(a.Position, b.Position) })
	return auditLog{url: url, store: s, events: events}
}

// runAudit runs `subs audit args…` against dbURL and returns its output and
// Run's error.
func runAudit(t *testing.T, dbURL string, args ...string) (stdout string, err error) {
	t.Helper()
	m, out := MustParse(t, dbEnv(dbURL), append([]string{"audit"}, args...)...)
	err = m.Run(context.Background())
	return out.stdout.String(), err
}

// rule AUD-1, AUD-2: history shows who did what, when and why; --as-of
// shows the stream as it stood at an instant.
func TestRule_AUD2_AuditHistory_AsOf(t *testing.T) {
	t.Parallel()
	log := mustAuditLog(t)
	tests := []struct {
		name     string
		args     []string
		want     []string
		wantNone []string
	}{
		{"now", []string{"history", "subscription-s1"},
			[]string{"subscription-s1: 3 events now", "v1  2027-01-10T09:00:00Z  subscription.started (schema 1)",
				"v2  ", "subscription.renewed", "v3  2027-03-10T09:00:00Z  subscription.expired",
				`agent agent-7, reason "customer called about a double charge"`, "command:     cmd-1", "correlation: corr-1",
				"actor:       system", "command:     cmd-3", log.events[0].ID.String(), `{"n": 0, "note": "<&>"}`},
			[]string{"order.placed"}},
		{"as of an instant between", []string{"history", "subscription-s1", "--as-of", "2027-02-01T00:00:00Z"},
			[]string{"subscription-s1: 2 events as of 2027-02-01T00:00:00Z", "subscription.started", "subscription.renewed"},
			[]string{"subscription.expired", "v3"}},
		{"as of before it began", []string{"history", "subscription-s1", "--as-of", "2026-12-31T00:00:00Z"},
			[]string{"0 events", "no event"}, []string{"v1"}},
		{"no such stream", []string{"history", "subscription-nope"}, []string{"subscription-nope: 0 events now"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runAudit(t, log.url, tt.args...)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.wantNone {
				if strings.Contains(out, w) {
					t.Errorf("output shows %q:\n%s", w, out)
				}
			}
		})
	}
}

// rule AUD-3: verify walks the whole log; after a changed byte it names the
// changed event and fails.
func TestRule_AUD3_AuditVerify_NamesTheChangedEvent(t *testing.T) {
	t.Parallel()
	log := mustAuditLog(t)
	out, err := runAudit(t, log.url, "verify")
	if err != nil {
		t.Fatalf("verify of an intact log: %v\n%s", err, out)
	}
	if want := "4 events, 2 streams verified"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}

	victim := log.events[1] // subscription-s1 v2
	if _, err := log.store.Pool().Exec(context.Background(),
		`UPDATE events SET data = '{"n": 1, "note": "<&!"}' WHERE event_id = $1`, victim.ID); err != nil {
		t.Fatal(err)
	}
	out, err = runAudit(t, log.url, "verify")
	if err == nil {
		t.Fatalf("verify of a changed log succeeded:\n%s", out)
	}
	for _, s := range []string{out, err.Error()} {
		if !strings.Contains(s, victim.ID.String()) || !strings.Contains(s, "subscription-s1 version 2") {
			t.Errorf("%q does not name the changed event %s (subscription-s1 version 2)", s, victim.ID)
		}
	}
}

// export writes every column of every event as JSON Lines in position
// order, data and metadata as the text the hash covers.
func TestAuditExport_JSONLinesInPositionOrder(t *testing.T) {
	t.Parallel()
	log := mustAuditLog(t)
	tests := []struct {
		name string
		args []string
		want []eventstore.RecordedEvent
	}{
		{"whole log", []string{"export"}, log.events},
		{"one stream", []string{"export", "--stream", "order-o1"}, log.events[2:3]},
		{"no such stream", []string{"export", "--stream", "order-nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runAudit(t, log.url, tt.args...)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if out == "" {
				lines = nil
			}
			if len(lines) != len(tt.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tt.want), out)
			}
			for i, line := range lines {
				var got struct {
					Position      int64           `json:"global_position"`
					TransactionID uint64          `json:"transaction_id"`
					StreamID      string          `json:"stream_id"`
					Version       int64           `json:"stream_version"`
					ID            string          `json:"event_id"`
					Type          string          `json:"event_type"`
					SchemaVersion int             `json:"schema_version"`
					Data          json.RawMessage `json:"data"`
					Metadata      eventstore.Metadata
					RecordedAt    time.Time `json:"recorded_at"`
					Hash          string    `json:"hash"`
				}
				if err := json.Unmarshal([]byte(line), &got); err != nil {
					t.Fatalf("line %d is not JSON: %v\n%s", i, err, line)
				}
				e := tt.want[i]
				if got.Position != e.Position || got.TransactionID != e.TransactionID || got.StreamID != string(e.StreamID) ||
					got.Version != e.Version || got.ID != e.ID.String() || got.Type != e.Type || got.SchemaVersion != e.SchemaVersion ||
					!got.RecordedAt.Equal(e.RecordedAt) || got.Hash != hex.EncodeToString(e.Hash) || got.Metadata != e.Metadata {
					t.Errorf("line %d = %s\nwant event %+v", i, line, e)
				}
				if string(got.Data) != string(e.Data) {
					t.Errorf("line %d: data %s, want the stored text %s", i, got.Data, e.Data)
				}
			}
		})
	}
}

func TestAudit_BadCommandLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{"no action", []string{"audit"}},
		{"unknown action", []string{"audit", "shred"}},
		{"history without stream", []string{"audit", "history"}},
		{"history with a bad stream id", []string{"audit", "history", "nodash"}},
		{"verify with an argument", []string{"audit", "verify", "x"}},
		{"bad as-of", []string{"audit", "history", "subscription-1", "--as-of", "yesterday"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := NewMain(t, nil)
			err := m.ParseFlags(context.Background(), tt.args)
			if err == nil || errors.Is(err, flag.ErrHelp) {
				t.Errorf("ParseFlags(%q) = %v, want a usage error", tt.args, err)
			}
		})
	}
	for _, args := range [][]string{{"verify", "--as-of", "2027-01-01T00:00:00Z"}, {"history", "subscription-1", "--stream", "order-1"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, err := runAudit(t, "postgres://nobody@127.0.0.1:1/none", args...)
			if err == nil || !strings.Contains(err.Error(), "goes with") {
				t.Errorf("Run = %v, want an error saying which action the flag goes with", err)
			}
		})
	}
}
