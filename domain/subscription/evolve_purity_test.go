package subscription_test

import (
	"encoding/json"
	"testing"

	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/subscription"
)

// Evolve is pure: the state it starts from is the same afterwards, so that
// a caller may keep a state and evolve it more than once (HandleFrom, a
// handler's cache of states, a retry after a conflict) without one branch
// showing in another.
func TestEvolveLeavesTheStateItStartsFromUnchanged(t *testing.T) {
	l := newSim(t, bought(t, catalog.Monthly, at(2027, 1, 31)))
	l.advance(at(2027, 7, 15)) // five monthly renewals: Paid has spare capacity
	paid := logged[subscription.ChargeSucceeded](l)
	if len(paid) < 3 {
		t.Fatalf("the year charged %d times; want at least 3", len(paid))
	}
	last := paid[len(paid)-1]
	branches := []domain.Event{
		subscription.Refunded{Period: last.Period, RefundID: "re_1", ChargeID: last.ChargeID, Amount: last.Amount, ExpiresAt: last.ExpiresAt, At: l.now},
		subscription.ChargeSucceeded{Period: last.Period + 1, ChargeID: "ch_branch_a", Amount: last.Amount, Term: last.Term, ExpiresAt: last.ExpiresAt.AddDate(0, 1, 0), At: l.now},
		subscription.ChargeSucceeded{Period: last.Period + 1, ChargeID: "ch_branch_b", Amount: last.Amount, Term: last.Term, ExpiresAt: last.ExpiresAt.AddDate(0, 1, 0), At: l.now},
		subscription.AddOnAdded{AddOn: "storage", Name: "Additional storage", Price: money.New(199, mustCurrency("USD")), At: l.now},
		subscription.AddOnAdded{AddOn: "backup", Name: "Backup", Price: money.New(299, mustCurrency("USD")), At: l.now},
	}
	for _, e := range l.log {
		branches = append(branches, e.e)
	}
	base := l.s
	before := marshal(t, base)
	var results []string
	for _, e := range branches {
		results = append(results, marshal(t, subscription.Decider.Evolve(base, e)))
		if got := marshal(t, base); got != before {
			t.Fatalf("evolving with %T changed the state it started from:\nbefore %s\nafter  %s", e, before, got)
		}
	}
	// Each branch evolved again from base gives what it gave the first time:
	// no branch wrote into another's backing array.
	for i, e := range branches {
		if got := marshal(t, subscription.Decider.Evolve(base, e)); got != results[i] {
			t.Fatalf("evolving with %T twice gave two states:\n%s\n%s", e, results[i], got)
		}
	}
}

func marshal(t *testing.T, s subscription.Subscription) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
