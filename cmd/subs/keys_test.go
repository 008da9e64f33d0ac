package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/eventstore/pgtest"
)

// rule KEY-1: a retail batch mints unregistered subscriptions with fresh
// keys and serials, one line per key.
func TestKeysMint_PrintsOneLinePerKeyAndRecordsUnregisteredSubscriptions(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	before := time.Now().UTC()
	m, out := MustParse(t, nil, "keys", "mint", "--product", "NIS", "--term", "annual", "--platform", "mac", "--count", "3", "--database-url", url)
	MustRun(t, m)
	lines := strings.Split(strings.TrimSpace(out.stdout.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("output %q, want 3 lines", out.stdout)
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := eventstore.New(pool, eventstore.Config{})
	seen := map[string]bool{}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("line %q is not KEY SERIAL SUBSCRIPTION_ID", line)
		}
		if _, err := subscription.ParseProductKey(f[0]); err != nil {
			t.Errorf("key %q: %v", f[0], err)
		}
		if _, err := subscription.ParseSerialNumber(f[1]); err != nil {
			t.Errorf("serial %q: %v", f[1], err)
		}
		id := uuid.MustParse(f[2])
		if seen[f[0]] || seen[f[1]] {
			t.Errorf("key or serial repeated: %s", line)
		}
		seen[f[0]], seen[f[1]] = true, true
		owner, found, err := store.ReservationOwner(context.Background(), eventstore.Reservation{Scope: subscription.KeyScope, Key: f[0]})
		if err != nil || !found || string(owner) != subscription.StreamName(id) {
			t.Errorf("key %s reserved by %q (%v, %v), want %s", f[0], owner, found, err, subscription.StreamName(id))
		}
		recs, err := store.ReadStream(context.Background(), owner, eventstore.ReadStreamOptions{})
		if err != nil || len(recs) != 1 || recs[0].Type != "subscription.created" {
			t.Fatalf("stream %s: %v %v", owner, recs, err)
		}
		md := recs[0].Metadata
		if md.ActorKind != eventstore.ActorSystem || md.Reason != "retail batch" || recs[0].RecordedAt.Before(before.Add(-time.Second)) {
			t.Errorf("metadata %+v at %v", md, recs[0].RecordedAt)
		}
		var c subscription.Created
		if err := json.Unmarshal(recs[0].Data, &c); err != nil {
			t.Fatal(err)
		}
		if c.SubscriptionID != id || c.Key.String() != f[0] || c.Serial.String() != f[1] || c.Product != "NIS" || c.Platform != "mac" ||
			c.Term != "annual" || c.Seats != 3 || c.AutoRenew || c.OrderID != uuid.Nil || !c.ExpiresAt.Equal(subscription.TermEnd(catalog.Annual, c.StartsAt, policy.Default())) {
			t.Errorf("created %+v", c)
		}
	}
}

func TestKeysMint_BadCommandLines(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"keys"},
		{"keys", "shred"},
		{"keys", "mint"},
		{"keys", "mint", "--product", "NIS", "--term", "annual"},                                       // no count
		{"keys", "mint", "--product", "XYZ", "--term", "annual", "--count", "1"},                       // unknown product
		{"keys", "mint", "--product", "NU", "--term", "trial", "--count", "1"},                         // term not sold
		{"keys", "mint", "--product", "N360", "--term", "annual", "--platform", "mac", "--count", "1"}, // platform not run on
		{"keys", "mint", "--product", "NIS", "--term", "annual", "--count", "0"},
		{"keys", "mint", "--product", "NIS", "--term", "annual", "--count", "1", "extra"},
		{"keys", "mint", "--colour", "red"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			m, _ := NewMain(t, nil)
			err := m.ParseFlags(context.Background(), args)
			if err == nil || errors.Is(err, flag.ErrHelp) {
				t.Errorf("ParseFlags(%q) = %v, want a usage error", args, err)
			}
		})
	}
}
