package simulation

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/policy"
)

// Test card numbers of the gateway sandbox (workers/gateway).
const (
	goodCard     = "4242424242424242"
	declinedCard = "4000000000000341" // every charge declined
)

// customer is one simulated customer: an account, its card, one
// subscription, and what the customer will do.
type customer struct {
	n          int
	storefront string
	product    string
	term       catalog.Term
	start      time.Time // the subscription's start (before the year for most)
	card       string
	cardExpiry time.Time // the first instant the card no longer works
	cardUpdate time.Time // when the customer updates the expired card (kindUpdatesCard)
	kind       string    // behaviour, for the report
	actions    []action
}

// action is something a customer does at an instant of the simulated year.
type action struct {
	at       time.Time
	customer int
	kind     actionKind
}

type actionKind int

const (
	actOptOut     actionKind = iota + 1 // a trial turns its automatic charge off (TRI-2)
	actRenewalOff                       // an annual subscription's automatic renewal off (ARS-3)
	actCancel                           // a monthly plan cancelled (MON-1, MON-2)
	actRefund                           // a refund of the renewal charge requested (ARS-7)
	actUpdateCard                       // a fresh card after the decline e-mail (ARS-6)
)

// Behaviours, as the report counts them.
const (
	kindRenews       = "renews"
	kindOptsOut      = "trial opts out"
	kindCancels      = "cancels"
	kindRefunds      = "asks for a refund"
	kindDeclinedCard = "card always declined"
	kindExpiringCard = "card expires, not updated"
	kindUpdatesCard  = "card expires, updated"
)

var (
	storefronts    = []string{"US", "US", "US", "CA", "GB", "DE", "FR", "BR", "AU"}
	annualProducts = []string{"NAV", "NIS", "N360", "N1", "NS-STD", "NS-DLX", "NS-PRM"}
	newProducts    = []string{"NS-STD", "NS-DLX", "NS-PRM"}
)

// population draws cfg.Customers customers from cfg.Seed: the same seed, the
// same population, in the same order.
func population(cfg Config, cat *catalog.Catalog) ([]customer, []action, error) {
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed))
	year := time.Duration(cfg.Days) * policy.Day
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	during := func(from time.Time, span time.Duration) time.Time {
		return from.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Minute)
	}
	customers := make([]customer, cfg.Customers)
	var actions []action
	for i := range customers {
		c := customer{n: i, storefront: pick(storefronts), card: goodCard, kind: kindRenews}
		switch r := rng.Float64(); {
		case r < cfg.TrialShare:
			c.term, c.product = catalog.Trial, pick(newProducts)
			c.start = during(cfg.Start.Add(-policy.Day*29), policy.Day*29)
		case r < cfg.TrialShare+cfg.MonthlyShare:
			c.term, c.product = catalog.Monthly, pick(newProducts)
			c.start = during(cfg.Start.AddDate(0, -1, 1), policy.Day*28)
		default:
			c.term, c.product = catalog.Annual, pick(annualProducts)
			c.start = during(cfg.Start.AddDate(-1, 0, 1), policy.Day*364)
		}
		if _, err := cat.Product(c.product); err != nil {
			return nil, nil, err
		}
		c.cardExpiry = time.Date(2035, 12, 31, 0, 0, 0, 0, time.UTC)
		switch r := rng.Float64(); {
		case r < cfg.DeclinedCardShare:
			c.card, c.kind = declinedCard, kindDeclinedCard
		case r < cfg.DeclinedCardShare+cfg.ExpiringCardShare:
			// A card that stops working during the year.
			exp := during(cfg.Start, year*3/4)
			c.cardExpiry = time.Date(exp.Year(), exp.Month()+1, 1, 0, 0, 0, 0, time.UTC)
			c.kind = kindExpiringCard
			if rng.Float64() < cfg.UpdateCardShare {
				c.kind = kindUpdatesCard
				c.cardUpdate = c.cardExpiry.Add(policy.Day * time.Duration(1+rng.IntN(20)))
				actions = append(actions, action{at: c.cardUpdate, customer: i, kind: actUpdateCard})
			}
		}
		if c.kind == kindRenews {
			c.actions = behaviour(cfg, rng, &c)
			actions = append(actions, c.actions...)
		}
		customers[i] = c
	}
	slices.SortStableFunc(actions, func(a, b action) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.customer - b.customer
	})
	return customers, actions, nil
}

// behaviour draws what a customer with a working card does: a trial may
// opt out, a plan may be cancelled, an annual renewal may be refunded.
func behaviour(cfg Config, rng *rand.Rand, c *customer) []action {
	year := time.Duration(cfg.Days) * policy.Day
	at := func(from time.Time, span time.Duration) time.Time {
		t := from.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Minute)
		if t.Before(cfg.Start) {
			t = cfg.Start
		}
		return t
	}
	switch {
	case c.term == catalog.Trial && rng.Float64() < cfg.OptOutShare:
		c.kind = kindOptsOut
		return []action{{at: at(c.start, cfg.Policy.TrialLength-policy.Day), customer: c.n, kind: actOptOut}}
	case c.term == catalog.Monthly && rng.Float64() < cfg.CancelShare:
		c.kind = kindCancels
		return []action{{at: at(cfg.Start, year), customer: c.n, kind: actCancel}}
	case c.term == catalog.Annual && rng.Float64() < cfg.CancelShare:
		c.kind = kindCancels
		return []action{{at: at(cfg.Start, year), customer: c.n, kind: actRenewalOff}}
	case c.term == catalog.Annual && rng.Float64() < cfg.RefundShare:
		// Some time after the charge (7 days before expiry), some of them
		// after the 60-day window has closed.
		c.kind = kindRefunds
		charged := c.start.AddDate(1, 0, 0).Add(-cfg.Policy.AnnualChargeLead)
		return []action{{at: at(charged.Add(policy.Day), cfg.Policy.RefundWindow+10*policy.Day), customer: c.n, kind: actRefund}}
	}
	return nil
}

func (k actionKind) String() string {
	switch k {
	case actOptOut:
		return "opt out"
	case actRenewalOff:
		return "renewal off"
	case actCancel:
		return "cancel"
	case actRefund:
		return "refund"
	case actUpdateCard:
		return "update card"
	}
	return fmt.Sprintf("action(%d)", int(k))
}
