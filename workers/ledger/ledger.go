// Package ledger reconciles the engine's charge ledger (the charges read
// model, projections.Charges) with the payment gateway's own ledger
// (payment.Gateway's Charges): ARS-8 says exactly one successful charge per
// subscription and renewal period, and no period that was due skipped. The
// two ledgers are joined by idempotency key (subscription.IdempotencyKey);
// a gateway charge whose key is not a renewal key (an initial order's, for
// instance) is counted as other, never as a difference.
package ledger

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/subscription"
)

// Querier reads the engine's database: a *pgxpool.Pool, a *pgx.Conn or a
// pgx.Tx.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Gateway is the part of a payment gateway reconciliation reads: its
// ledger. Every payment.Gateway is one (the in-process sandbox, the HTTP
// client of `subs gateway`).
type Gateway interface {
	Charges(ctx context.Context, filter payment.ChargeFilter) ([]payment.LedgerEntry, error)
}

// Charge is one row of the engine's ledger: one attempt of one renewal
// period, from its request to its outcome and refunds.
type Charge struct {
	Subscription   uuid.UUID
	Period         int
	Attempt        int
	IdempotencyKey string
	// Status is requested (the gateway's answer is not recorded yet),
	// succeeded or declined.
	Status   string
	ChargeID string // "" when the gateway never saw the attempt
	// AmountMinor and Currency are what was asked for.
	AmountMinor   int64
	Currency      string
	RefundedMinor int64
}

func (c Charge) succeeded() bool { return c.Status == payment.Succeeded.String() }

// ReadEngine reads the engine's whole charge ledger.
func ReadEngine(ctx context.Context, db Querier) ([]Charge, error) {
	rows, err := db.Query(ctx, `
		SELECT subscription_id, period, attempt, idempotency_key, status, coalesce(charge_id, ''), amount_minor, currency, refunded_minor
		FROM charges ORDER BY subscription_id, period, attempt`)
	if err != nil {
		return nil, fmt.Errorf("ledger: read the engine's charges: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Charge, error) {
		var c Charge
		err := r.Scan(&c.Subscription, &c.Period, &c.Attempt, &c.IdempotencyKey, &c.Status, &c.ChargeID, &c.AmountMinor, &c.Currency, &c.RefundedMinor)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: read the engine's charges: %w", err)
	}
	return out, nil
}

// ReadGateway reads g's whole ledger, page after page, in the order the
// charges were made.
func ReadGateway(ctx context.Context, g Gateway) ([]payment.LedgerEntry, error) {
	var out []payment.LedgerEntry
	filter := payment.ChargeFilter{Limit: payment.MaxChargeFilterLimit}
	for {
		page, err := g.Charges(ctx, filter)
		if err != nil {
			return nil, fmt.Errorf("ledger: read the gateway's charges: %w", err)
		}
		out = append(out, page...)
		if len(page) < filter.Limit {
			return out, nil
		}
		filter.After = page[len(page)-1].ChargeID
	}
}

// Reconcile reads the engine's ledger from db and the gateway's from g, and
// compares them (Compare).
func Reconcile(ctx context.Context, db Querier, g Gateway) (Report, error) {
	// The gateway is read second: a charge made in between shows as made
	// by the gateway and not yet recorded by the engine, never the reverse.
	engine, err := ReadEngine(ctx, db)
	if err != nil {
		return Report{}, err
	}
	gateway, err := ReadGateway(ctx, g)
	if err != nil {
		return Report{}, err
	}
	return Compare(engine, gateway), nil
}

// Kind is a kind of difference between the ledgers.
type Kind string

// The kinds of Finding.
const (
	// Duplicate: more than one successful charge for one subscription and
	// period, on one side (ARS-8).
	Duplicate Kind = "duplicate"
	// Gap: a successful charge on one side that the other lacks, or a
	// period that was due (a later one followed) and has no successful
	// charge on either side (ARS-8).
	Gap Kind = "gap"
	// Mismatch: both sides have the charge, with another charge id, amount
	// or currency.
	Mismatch Kind = "mismatch"
	// Refund: the sides disagree on how much of a charge was refunded.
	Refund Kind = "refund"
)

// Finding is one difference.
type Finding struct {
	Kind         Kind
	Subscription uuid.UUID
	Period       int
	// Detail says what differs, for people.
	Detail string
}

// Report is the outcome of a reconciliation: what was compared, and every
// difference found.
type Report struct {
	// EngineCharges counts the engine's charge attempts, EngineSucceeded
	// those that succeeded.
	EngineCharges, EngineSucceeded int
	// GatewayCharges counts the gateway's renewal charges, GatewaySucceeded
	// those that succeeded, GatewayOther its charges whose key is not a
	// renewal key (not compared).
	GatewayCharges, GatewaySucceeded, GatewayOther int
	// Subscriptions and Periods count the subscriptions and the (subscription,
	// period) pairs seen on either side.
	Subscriptions, Periods int
	// Findings are the differences, by subscription, period and kind.
	Findings []Finding
}

// Clean reports whether the ledgers agree.
func (r Report) Clean() bool { return len(r.Findings) == 0 }

// Count returns how many findings are of kind k.
func (r Report) Count(k Kind) int {
	n := 0
	for _, f := range r.Findings {
		if f.Kind == k {
			n++
		}
	}
	return n
}

// Write writes the report for people: the counts, then each difference on
// a line of its own, then the verdict.
func (r Report) Write(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("engine ledger:  %d charge attempts, %d succeeded\n", r.EngineCharges, r.EngineSucceeded)
	ew.printf("gateway ledger: %d renewal charges, %d succeeded; %d other charges (not renewals, not compared)\n",
		r.GatewayCharges, r.GatewaySucceeded, r.GatewayOther)
	ew.printf("compared: %d renewal periods of %d subscriptions\n", r.Periods, r.Subscriptions)
	if r.Clean() {
		ew.printf("clean: exactly one successful charge per subscription and period, none skipped, both ledgers agree (ARS-8)\n")
		return ew.err
	}
	ew.printf("\n")
	for _, f := range r.Findings {
		ew.printf("%-9s subscription %s period %d: %s\n", f.Kind, f.Subscription, f.Period, f.Detail)
	}
	ew.printf("\n%d differences: %d duplicates, %d gaps, %d mismatches, %d refunds\n",
		len(r.Findings), r.Count(Duplicate), r.Count(Gap), r.Count(Mismatch), r.Count(Refund))
	return ew.err
}

// errWriter keeps the first write error, so that Write checks it once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

// period is one (subscription, period) pair as both sides have it.
type period struct {
	sub    uuid.UUID
	number int
}

// compare orders periods by subscription, then number.
func (p period) compare(o period) int {
	return cmp.Or(slices.Compare(p.sub[:], o.sub[:]), cmp.Compare(p.number, o.number))
}

// side is what one ledger holds of one period.
type side struct {
	engine  []Charge
	gateway []payment.LedgerEntry
}

// Compare compares the engine's ledger with the gateway's:
//
//   - a period with more than one successful charge on one side is a
//     Duplicate;
//   - a successful charge on one side whose key the other side does not
//     show as succeeded is a Gap (a charge the gateway made and the engine
//     has not recorded yet is one too: run again once the workers caught
//     up);
//   - a period below the subscription's latest with no successful charge on
//     either side is a Gap: periods are numbered in turn and a new one opens
//     only when the last was paid or refunded, so it was due and skipped.
//     The period after a refunded one is the exception: the refund closes
//     it (subscription.Refunded);
//   - a charge both sides show as succeeded with another charge id, amount
//     or currency is a Mismatch, with other refunded amounts a Refund.
//
// Attempts that the engine records as requested or declined and the gateway
// does not show as succeeded are not differences: a charge under way, a
// decline, or a decline for want of a payment method that never reached
// the gateway.
func Compare(engine []Charge, gateway []payment.LedgerEntry) Report {
	var r Report
	periods := map[period]*side{}
	at := func(sub uuid.UUID, n int) *side {
		p := period{sub, n}
		if periods[p] == nil {
			periods[p] = &side{}
		}
		return periods[p]
	}
	engineByKey := map[string]Charge{}
	for _, c := range engine {
		r.EngineCharges++
		if c.succeeded() {
			r.EngineSucceeded++
		}
		engineByKey[c.IdempotencyKey] = c
		s := at(c.Subscription, c.Period)
		s.engine = append(s.engine, c)
	}
	gatewayByKey := map[string]payment.LedgerEntry{}
	for _, e := range gateway {
		sub, n, _, ok := subscription.ParseIdempotencyKey(e.IdempotencyKey)
		if !ok {
			r.GatewayOther++
			continue
		}
		r.GatewayCharges++
		if e.Status == payment.Succeeded {
			r.GatewaySucceeded++
		}
		gatewayByKey[e.IdempotencyKey] = e
		s := at(sub, n)
		s.gateway = append(s.gateway, e)
	}

	keys := make([]period, 0, len(periods))
	latest := map[uuid.UUID]int{}
	for p := range periods {
		keys = append(keys, p)
		latest[p.sub] = max(latest[p.sub], p.number)
	}
	slices.SortFunc(keys, period.compare)
	r.Subscriptions, r.Periods = len(latest), len(keys)
	add := func(k Kind, p period, format string, args ...any) {
		r.Findings = append(r.Findings, Finding{Kind: k, Subscription: p.sub, Period: p.number, Detail: fmt.Sprintf(format, args...)})
	}
	for _, p := range keys {
		s := periods[p]
		engineOK := slices.DeleteFunc(slices.Clone(s.engine), func(c Charge) bool { return !c.succeeded() })
		gatewayOK := slices.DeleteFunc(slices.Clone(s.gateway), func(e payment.LedgerEntry) bool { return e.Status != payment.Succeeded })
		if len(engineOK) > 1 {
			add(Duplicate, p, "the engine records %d successful charges: %s", len(engineOK),
				list(engineOK, func(c Charge) string { return fmt.Sprintf("%s (attempt %d)", c.ChargeID, c.Attempt) }))
		}
		if len(gatewayOK) > 1 {
			add(Duplicate, p, "the gateway made %d successful charges: %s", len(gatewayOK),
				list(gatewayOK, func(e payment.LedgerEntry) string { return fmt.Sprintf("%s (%s)", e.ChargeID, e.IdempotencyKey) }))
		}
		for _, c := range engineOK {
			e, ok := gatewayByKey[c.IdempotencyKey]
			switch {
			case !ok:
				add(Gap, p, "the engine records charge %s (%s) succeeded; the gateway has no charge under that key", c.ChargeID, c.IdempotencyKey)
			case e.Status != payment.Succeeded:
				add(Gap, p, "the engine records charge %s (%s) succeeded; the gateway has it %s", c.ChargeID, c.IdempotencyKey, e.Status)
			default:
				compareCharge(c, e, func(k Kind, format string, args ...any) { add(k, p, format, args...) })
			}
		}
		for _, e := range gatewayOK {
			c, ok := engineByKey[e.IdempotencyKey]
			switch {
			case !ok:
				add(Gap, p, "the gateway made charge %s of %s (%s); the engine has no record of it", e.ChargeID, e.Amount, e.IdempotencyKey)
			case !c.succeeded():
				add(Gap, p, "the gateway made charge %s of %s (%s); the engine records the attempt as %s", e.ChargeID, e.Amount, e.IdempotencyKey, c.Status)
			}
		}
	}
	for sub, last := range latest {
		for n := 1; n < last; n++ {
			if !paid(periods[period{sub, n}]) && !refunded(periods[period{sub, n - 1}]) {
				add(Gap, period{sub, n}, "no successful charge, yet period %d followed: this period was due and skipped", last)
			}
		}
	}
	slices.SortStableFunc(r.Findings, func(a, b Finding) int {
		return period{a.Subscription, a.Period}.compare(period{b.Subscription, b.Period})
	})
	return r
}

// paid reports whether a period has a successful charge, on either side.
func paid(s *side) bool {
	return s != nil && (slices.ContainsFunc(s.engine, Charge.succeeded) ||
		slices.ContainsFunc(s.gateway, func(e payment.LedgerEntry) bool { return e.Status == payment.Succeeded }))
}

// compareCharge reports how a charge both sides show as succeeded differs.
func compareCharge(c Charge, e payment.LedgerEntry, add func(k Kind, format string, args ...any)) {
	if c.ChargeID != e.ChargeID {
		add(Mismatch, "under key %s the engine records charge %s, the gateway made charge %s", c.IdempotencyKey, c.ChargeID, e.ChargeID)
	}
	if c.AmountMinor != e.Amount.Amount() || c.Currency != e.Amount.Currency().Code() {
		add(Mismatch, "charge %s: the engine records %d %s (minor units), the gateway charged %s",
			c.ChargeID, c.AmountMinor, c.Currency, e.Amount)
	}
	if c.RefundedMinor != e.Refunded.Amount() {
		add(Refund, "charge %s: the engine records %d %s (minor units) refunded, the gateway %s",
			c.ChargeID, c.RefundedMinor, c.Currency, e.Refunded)
	}
}

// refunded reports whether a period's successful charge was refunded, on
// either side.
func refunded(s *side) bool {
	return s != nil && (slices.ContainsFunc(s.engine, func(c Charge) bool { return c.succeeded() && c.RefundedMinor > 0 }) ||
		slices.ContainsFunc(s.gateway, func(e payment.LedgerEntry) bool { return e.Status == payment.Succeeded && e.Refunded.Amount() > 0 }))
}

// list names each of xs, comma-separated.
func list[T any](xs []T, name func(T) string) string {
	names := make([]string, len(xs))
	for i, x := range xs {
		names[i] = name(x)
	}
	return strings.Join(names, ", ")
}
