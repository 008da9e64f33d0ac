package subscription_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain/subscription"
)

// rule ARS-8: the gateway key of a charge attempt is read back exactly, for
// reconciliation with the gateway's ledger; anything IdempotencyKey does not
// produce is refused.
func TestRule_ARS8_ParseIdempotencyKeyIsStrict(t *testing.T) {
	id := uuid.MustParse("0190a000-0000-7000-8000-0000000000cc")
	good := subscription.IdempotencyKey(id, 12, 3)
	if gotID, p, a, ok := subscription.ParseIdempotencyKey(good); !ok || gotID != id || p != 12 || a != 3 {
		t.Fatalf("%q: %v %d %d %v", good, gotID, p, a, ok)
	}
	base := "renewal-" + id.String()
	for _, key := range []string{
		"", "renewal-", base, base + "-p12", base + "-p12-a", base + "-p-a3",
		base + "-p012-a3", base + "-p12-a03", base + "-p+12-a3", base + "-p12-a+3", base + "-p-12-a3", base + "-p12-a-3",
		base + "-p0-a3", base + "-p12-a0", base + "-p12-a3 ", base + "-p12-a3x", base + "-p12-a3-a4", base + "-p 12-a3",
		base + "-p12-a99999999999999999999999", "renewal-" + strings.ToUpper(id.String()) + "-p12-a3",
		"renewal-{" + id.String() + "}-p12-a3", "renewal-" + strings.ReplaceAll(id.String(), "-", "") + "-p12-a3",
		"RENEWAL-" + id.String() + "-p12-a3", subscription.RefundKey(id, 12),
	} {
		if _, _, _, ok := subscription.ParseIdempotencyKey(key); ok {
			t.Errorf("%q was accepted", key)
		}
	}
}

// FuzzParseIdempotencyKey: a key IdempotencyKey made parses back to its
// parts; a parsed key formats back to itself; a refund key is never taken
// for a charge key; nothing panics.
func FuzzParseIdempotencyKey(f *testing.F) {
	id := uuid.MustParse("0190a000-0000-7000-8000-0000000000cc")
	f.Add(subscription.IdempotencyKey(id, 1, 1), []byte(id[:]), 1, 1)
	f.Add(subscription.IdempotencyKey(id, 40, 4), []byte(id[:]), 40, 4)
	f.Add(subscription.RefundKey(id, 3), []byte(id[:]), 3, 0)
	f.Add("renewal-"+id.String()+"-p01-a1", []byte{1, 2, 3}, 0, -1)
	f.Add("renewal-"+id.String()+"-p1-a1trailing", []byte{}, 1<<40, 7)
	f.Fuzz(func(t *testing.T, key string, raw []byte, period, attempt int) {
		if gotID, p, a, ok := subscription.ParseIdempotencyKey(key); ok {
			if back := subscription.IdempotencyKey(gotID, p, a); back != key {
				t.Fatalf("%q parsed to %v %d %d, which formats to %q", key, gotID, p, a, back)
			}
			if p < 1 || a < 1 {
				t.Fatalf("%q parsed to period %d, attempt %d", key, p, a)
			}
		}
		var u uuid.UUID
		copy(u[:], raw)
		if period < 1 || attempt < 1 {
			return
		}
		k := subscription.IdempotencyKey(u, period, attempt)
		if gotID, p, a, ok := subscription.ParseIdempotencyKey(k); !ok || gotID != u || p != period || a != attempt {
			t.Fatalf("%q parsed to %v %d %d %v, want %v %d %d", k, gotID, p, a, ok, u, period, attempt)
		}
		if _, _, _, ok := subscription.ParseIdempotencyKey(subscription.RefundKey(u, period)); ok {
			t.Fatalf("refund key %q parsed as a charge key", subscription.RefundKey(u, period))
		}
	})
}
