package simulation

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/projections"
)

// Report is what a simulation did and whether the engine kept its rules.
// Everything but Elapsed and the throughput figures derives from the seed.
type Report struct {
	Customers, Days int
	Seed            uint64
	// Behaviours counts the customers by what they were drawn to do.
	Behaviours map[string]int
	// Counts are the lifecycle's events and outcomes by name.
	Counts map[string]int
	// Refused counts the customer actions the rules refused, by action.
	Refused map[string]int
	// Emails counts the e-mails sent, by kind.
	Emails map[string]int
	// Statuses counts the subscriptions by status at the end.
	Statuses map[string]int
	// Revenue is the renewal charges, net of refunds, by currency and
	// month ("2027-03"), in minor units.
	Revenue map[string]map[string]int64
	// Checks are the invariants, each passed or failed with a reason.
	Checks []Check
	// Events is how many events the log holds at the end.
	Events int64
	// Elapsed is the run's wall-clock time.
	Elapsed time.Duration
}

// Check is one invariant and its outcome.
type Check struct {
	Name   string
	Passed bool
	Detail string
}

// Passed reports whether every invariant held.
func (r Report) Passed() bool {
	for _, c := range r.Checks {
		if !c.Passed {
			return false
		}
	}
	return true
}

func (s *sim) report(ctx context.Context, end time.Time) (Report, error) {
	r := Report{Customers: s.cfg.Customers, Days: s.cfg.Days, Seed: s.cfg.Seed, Behaviours: map[string]int{}, Counts: map[string]int{},
		Refused: maps.Clone(s.refusals), Emails: map[string]int{}, Statuses: map[string]int{}, Revenue: map[string]map[string]int64{}}
	for _, c := range s.customers {
		r.Behaviours[c.kind]++
	}
	pool := s.store.Pool()
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&r.Events); err != nil {
		return r, err
	}
	if err := s.countEvents(ctx, &r); err != nil {
		return r, err
	}
	sent, err := s.counts(ctx, `SELECT kind, count(*) FROM email_outbox WHERE sent_at IS NOT NULL GROUP BY kind`)
	if err != nil {
		return r, err
	}
	r.Emails = sent
	engineTotals, err := s.revenue(ctx, &r)
	if err != nil {
		return r, err
	}
	gatewayTotals, duplicates, charged, err := s.gatewayLedger(ctx)
	if err != nil {
		return r, err
	}
	r.Checks = append(r.Checks, check("one successful charge per subscription and period (ARS-8)", duplicates == 0,
		fmt.Sprintf("%d periods charged more than once at the gateway", duplicates)))
	lifecycle, err := s.checkLifecycles(ctx, end, charged, &r)
	if err != nil {
		return r, err
	}
	r.Checks = append(r.Checks, lifecycle...)
	noticed, err := s.checkNotices(ctx, charged)
	if err != nil {
		return r, err
	}
	r.Checks = append(r.Checks, noticed)
	emails, err := s.checkEmails(ctx)
	if err != nil {
		return r, err
	}
	r.Checks = append(r.Checks, emails...)
	r.Checks = append(r.Checks, check("gateway ledger = engine ledger = revenue in the report", maps.Equal(engineTotals, gatewayTotals),
		fmt.Sprintf("engine %v, gateway %v", engineTotals, gatewayTotals)))
	return r, nil
}

// checkEmails compares three sources of the e-mails: the events that called
// for them (EML-1: each caused by an event), the messages the sender
// delivered, and the records of the sends (*.email_sent events). Every
// subscription of the simulation is in an account, so every lifecycle event
// that calls for an e-mail has one.
func (s *sim) checkEmails(ctx context.Context) ([]Check, error) {
	pool := s.store.Pool()
	byType, err := s.counts(ctx, `SELECT event_type, count(*) FROM events WHERE event_type = ANY($1) GROUP BY 1`,
		slices.Collect(maps.Keys(projections.SubscriptionEmailCauses)))
	if err != nil {
		return nil, err
	}
	calledFor := map[string]int{}
	for typ, n := range byType {
		calledFor[projections.SubscriptionEmailCauses[typ]] += n
	}
	recorded, recordedTwice := map[string]int{}, 0
	rows, err := pool.Query(ctx, `SELECT data->>'kind', count(*) FROM events WHERE event_type LIKE '%.email_sent'
GROUP BY data->>'kind', data->>'cause'`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var kind string
		var n int
		if err := rows.Scan(&kind, &n); err != nil {
			return nil, err
		}
		recorded[kind]++
		if n > 1 {
			recordedTwice++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// The population has no one to drop an e-mail for (no erased account,
	// no disowned order): a dropped e-mail is one not sent.
	var unsent, dropped int
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE dropped_at IS NULL), count(*) FILTER (WHERE dropped_at IS NOT NULL)
FROM email_outbox WHERE sent_at IS NULL`).Scan(&unsent, &dropped); err != nil {
		return nil, err
	}
	delivered, deliveredTwice := s.sends.byKind()
	var mismatched []string
	for _, kind := range slices.Sorted(maps.Keys(delivered)) {
		if recorded[kind] != delivered[kind] {
			mismatched = append(mismatched, fmt.Sprintf("%s: %d delivered, %d recorded", kind, delivered[kind], recorded[kind]))
		}
	}
	for _, kind := range slices.Sorted(maps.Keys(calledFor)) {
		if calledFor[kind] != delivered[kind] || calledFor[kind] != recorded[kind] {
			mismatched = append(mismatched, fmt.Sprintf("%s: %d called for, %d delivered, %d recorded", kind, calledFor[kind], delivered[kind], recorded[kind]))
		}
	}
	return []Check{
		check("no e-mail sent twice for one cause (EML-2)", deliveredTwice == 0 && recordedTwice == 0,
			fmt.Sprintf("%d causes delivered more than once, %d recorded more than once", deliveredTwice, recordedTwice)),
		check("every e-mail called for was sent and recorded (EML-1)", unsent == 0 && dropped == 0 && len(mismatched) == 0,
			fmt.Sprintf("%d left in the outbox, %d dropped with no one to send them to; %v", unsent, dropped, first(mismatched))),
	}, nil
}

// counts runs query, whose rows are a name and a count, and returns the
// counts by name.
func (s *sim) counts(ctx context.Context, query string, args ...any) (map[string]int, error) {
	rows, err := s.store.Pool().Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	var name string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&name, &n}, func() error {
		out[name] += n
		return nil
	})
	return out, err
}

func check(name string, ok bool, detail string) Check {
	if ok {
		detail = ""
	}
	return Check{Name: name, Passed: ok, Detail: detail}
}

// countEvents counts the lifecycle's events and derived outcomes.
func (s *sim) countEvents(ctx context.Context, r *Report) error {
	byType, err := s.counts(ctx, `SELECT event_type, count(*) FROM events WHERE event_type LIKE 'subscription.%' GROUP BY 1`)
	if err != nil {
		return err
	}
	names := map[string]string{
		"subscription.renewal_notice_issued":      "pre-billing notices",
		"subscription.trial_ending_notice_issued": "trial-ending notices",
		"subscription.renewal_reminder_issued":    "manual-renewal reminders",
		"subscription.payment_method_warned":      "expiring-card warnings",
		"subscription.charge_requested":           "charges attempted",
		"subscription.charge_succeeded":           "renewals (charges succeeded)",
		"subscription.charge_declined":            "declines",
		"subscription.renewal_lapsed":             "renewals lapsed",
		"subscription.refunded":                   "refunds",
	}
	for typ, n := range byType {
		if name, ok := names[typ]; ok {
			r.Counts[name] = n
		}
	}
	var retries, recoveries int
	if err := s.store.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE attempt > 1), count(*) FILTER (WHERE attempt > 1 AND status = 'succeeded')
FROM charges`).Scan(&retries, &recoveries); err != nil {
		return err
	}
	r.Counts["retries"], r.Counts["recoveries (a retry succeeded)"] = retries, recoveries
	return nil
}

// revenue fills r.Revenue from the engine's charge ledger and returns its
// totals by currency. Months are UTC's, whatever the session's time zone.
func (s *sim) revenue(ctx context.Context, r *Report) (map[string]int64, error) {
	rows, err := s.store.Pool().Query(ctx, `SELECT currency, to_char(charged_at AT TIME ZONE 'UTC', 'YYYY-MM'), sum(amount_minor - refunded_minor)
FROM charges WHERE status = 'succeeded' GROUP BY 1, 2`)
	if err != nil {
		return nil, err
	}
	totals := map[string]int64{}
	for rows.Next() {
		var cur, month string
		var net int64
		if err := rows.Scan(&cur, &month, &net); err != nil {
			return nil, err
		}
		if r.Revenue[cur] == nil {
			r.Revenue[cur] = map[string]int64{}
		}
		r.Revenue[cur][month] = net
		totals[cur] += net
	}
	return totals, rows.Err()
}

// gatewayCharge is a renewal charge the gateway made: when, and whether
// it was refunded.
type gatewayCharge struct {
	period   int
	at       time.Time
	refunded bool
}

// gatewayLedger returns the gateway's renewal charges, net of refunds, by
// currency, how many periods it charged more than once, and each
// subscription's charges.
func (s *sim) gatewayLedger(ctx context.Context) (map[string]int64, int, map[uuid.UUID][]gatewayCharge, error) {
	totals := map[string]int64{}
	periods := map[string]int{}
	charged := map[uuid.UUID][]gatewayCharge{}
	filter := payment.ChargeFilter{Limit: payment.MaxChargeFilterLimit}
	for {
		page, err := s.gateway.Charges(ctx, filter)
		if err != nil {
			return nil, 0, nil, err
		}
		for _, e := range page {
			id, period, _, ok := subscription.ParseIdempotencyKey(e.IdempotencyKey)
			if !ok || e.Status != payment.Succeeded {
				continue
			}
			periods[fmt.Sprintf("%s/%d", id, period)]++
			totals[e.Amount.Currency().String()] += e.Amount.Amount() - e.Refunded.Amount()
			charged[id] = append(charged[id], gatewayCharge{period: period, at: e.CreatedAt, refunded: e.Refunded.Amount() > 0})
		}
		if len(page) < filter.Limit {
			break
		}
		filter.After = page[len(page)-1].ChargeID
	}
	duplicates := 0
	for _, n := range periods {
		if n > 1 {
			duplicates++
		}
	}
	return totals, duplicates, charged, nil
}

// reportChunk is how many subscriptions the report reads in one query.
const reportChunk = 1000

// checkLifecycles folds every subscription and checks it ended as its
// customer's behaviour and the rules say: no due period skipped, every
// expiry explained, and, from the gateway's charges, nothing charged that
// the rules forbid. A card updated only once the renewal had lapsed (the
// retries over) explains the expiry: the update came too late.
func (s *sim) checkLifecycles(ctx context.Context, end time.Time, charged map[uuid.UUID][]gatewayCharge, r *Report) ([]Check, error) {
	lapsed, err := s.lapses(ctx)
	if err != nil {
		return nil, err
	}
	var skipped, unexplained, badCharges, converted, optedOut, late []string
	var loaded []eventstore.Loaded[subscription.Subscription] // of a chunk of reportChunk, from the first
	for i, id := range s.ids {
		if i%reportChunk == 0 {
			streams := make([]eventstore.StreamID, 0, reportChunk)
			for _, id := range s.ids[i:min(i+reportChunk, len(s.ids))] {
				streams = append(streams, eventstore.StreamID(subscription.StreamName(id)))
			}
			if loaded, err = s.finalStates(ctx, streams); err != nil {
				return nil, err
			}
		}
		sub := loaded[i%reportChunk].State
		st := sub.Status(end, s.cfg.Policy)
		r.Statuses[string(st)]++
		c := s.customers[i]
		if c.term == catalog.Trial {
			if sub.Term() == catalog.Annual.String() {
				converted = append(converted, id.String())
			} else if !sub.AutoRenew() {
				optedOut = append(optedOut, id.String())
			}
		}
		// A renewing subscription past its expiry and grace means a period
		// that came due and was neither charged nor lapsed.
		if sub.Renewing() && !end.Before(sub.ExpiresAt().Add(s.cfg.Policy.Grace)) {
			skipped = append(skipped, id.String())
		}
		expired := st == subscription.StatusExpired || st == subscription.StatusRefunded
		switch c.kind {
		case kindRenews, kindUpdatesCard:
			at, ok := lapsed[id]
			switch {
			case expired && c.kind == kindUpdatesCard && ok && !c.cardUpdate.Before(at):
				late = append(late, id.String())
			case expired:
				unexplained = append(unexplained, id.String())
			}
		}
		if why := s.forbiddenCharge(c, charged[id], end); why != "" {
			badCharges = append(badCharges, id.String()+" "+why)
		}
	}
	r.Counts["trials converted"], r.Counts["trials opted out"] = len(converted), len(optedOut)
	r.Counts["expired: card updated after the renewal lapsed"] = len(late)
	return []Check{
		check("no due period skipped (ARS-8)", len(skipped) == 0, fmt.Sprintf("%d renewing past expiry and grace, e.g. %v", len(skipped), first(skipped))),
		check("every expiring subscription renewed, expired or refunded as its rules say", len(unexplained) == 0 && len(badCharges) == 0,
			fmt.Sprintf("%d expired while renewing with a working card, %d charged or refunded against the rules, e.g. %v %v",
				len(unexplained), len(badCharges), first(unexplained), first(badCharges))),
	}, nil
}

// forbiddenCharge says what is wrong with the gateway's charges of customer
// c's subscription, given what the customer did, or "": an always-declined
// card never pays; a card is never charged once expired unless replaced; an
// opted-out trial is never charged (TRI-2); nothing is charged once renewal
// was turned off or the plan cancelled (ARS-3, MON-1); a refund asked for
// is made if and only if it came within the window of the last charge
// (ARS-7). An action the year ended before did not happen.
func (s *sim) forbiddenCharge(c customer, charges []gatewayCharge, end time.Time) string {
	var action time.Time
	if len(c.actions) > 0 {
		action = c.actions[0].at
	}
	if !action.IsZero() && !action.Before(end) {
		return "" // the year ended before the customer acted
	}
	switch c.kind {
	case kindDeclinedCard, kindOptsOut:
		if len(charges) > 0 {
			return fmt.Sprintf("(%s) charged %d times", c.kind, len(charges))
		}
	case kindExpiringCard:
		for _, ch := range charges {
			if !ch.at.Before(c.cardExpiry) {
				return fmt.Sprintf("charged on %s, after the card expired", ch.at.Format(time.DateOnly))
			}
		}
	case kindCancels:
		for _, ch := range charges {
			if ch.at.After(action) { // work due at the action's instant runs before it (TIM-2)
				return fmt.Sprintf("charged on %s, after renewal was turned off", ch.at.Format(time.DateOnly))
			}
		}
	case kindRefunds:
		var last *gatewayCharge
		for i := range charges {
			if !charges[i].at.After(action) && (last == nil || charges[i].at.After(last.at)) {
				last = &charges[i]
			}
		}
		if last != nil && last.refunded != !action.After(last.at.Add(s.cfg.Policy.RefundWindow)) {
			return fmt.Sprintf("refund asked %s after the charge: refunded %v", action.Sub(last.at), last.refunded)
		}
	}
	return ""
}

// checkNotices checks every renewal charge the gateway made against the
// notices of its period: the last one before the charge came at least the
// policy's least time before it (ARS-2: 7 days for an annual term, 3 for a
// monthly one; TRI-3: 3 days for a trial's end).
func (s *sim) checkNotices(ctx context.Context, charged map[uuid.UUID][]gatewayCharge) (Check, error) {
	notices := map[string][]notice{} // by subscription/period
	rows, err := s.store.Pool().Query(ctx, `SELECT stream_id, event_type, (data->>'period')::int, coalesce(data->>'term', ''), (data->>'at')::timestamptz
FROM events WHERE event_type IN ('subscription.renewal_notice_issued', 'subscription.trial_ending_notice_issued')`)
	if err != nil {
		return Check{}, err
	}
	p := s.cfg.Policy
	for rows.Next() {
		var stream, typ, term string
		var period int
		var at time.Time
		if err := rows.Scan(&stream, &typ, &period, &term, &at); err != nil {
			return Check{}, err
		}
		gap := p.AnnualMinNoticeToCharge
		switch {
		case typ == "subscription.trial_ending_notice_issued":
			gap = p.TrialEndingNotice
		case term == catalog.Monthly.String():
			gap = p.MonthlyMinNoticeToCharge
		}
		key := strings.TrimPrefix(stream, subscription.StreamPrefix) + "/" + strconv.Itoa(period)
		notices[key] = append(notices[key], notice{at: at, gap: gap})
	}
	if err := rows.Err(); err != nil {
		return Check{}, err
	}
	early := earlyCharges(notices, charged)
	return check("every charge came after its notice, by the policy's least time (ARS-2, TRI-3)", len(early) == 0,
		fmt.Sprintf("%d charges without a notice long enough before them, e.g. %v", len(early), first(early))), nil
}

// notice is a pre-billing or trial-ending notice: when, and the least time
// its period's charge must wait after it.
type notice struct {
	at  time.Time
	gap time.Duration
}

// earlyCharges lists the charges that came without a notice of their period
// at least its least time before them; notices are by subscription/period.
func earlyCharges(notices map[string][]notice, charged map[uuid.UUID][]gatewayCharge) []string {
	var early []string
	for id, charges := range charged {
		for _, c := range charges {
			var last *notice
			period := notices[id.String()+"/"+strconv.Itoa(c.period)]
			for i, n := range period {
				if !n.at.After(c.at) && (last == nil || n.at.After(last.at)) {
					last = &period[i]
				}
			}
			if last == nil || c.at.Before(last.at.Add(last.gap)) {
				early = append(early, fmt.Sprintf("%s period %d charged %s", id, c.period, c.at.Format(time.RFC3339)))
			}
		}
	}
	slices.Sort(early)
	return early
}

// lapses returns the instant of each subscription's first lapsed renewal.
func (s *sim) lapses(ctx context.Context) (map[uuid.UUID]time.Time, error) {
	rows, err := s.store.Pool().Query(ctx, `SELECT stream_id, min(recorded_at) FROM events
WHERE event_type = 'subscription.renewal_lapsed' GROUP BY stream_id`)
	if err != nil {
		return nil, err
	}
	out := map[uuid.UUID]time.Time{}
	for rows.Next() {
		var stream string
		var at time.Time
		if err := rows.Scan(&stream, &at); err != nil {
			return nil, err
		}
		id, err := uuid.Parse(strings.TrimPrefix(stream, subscription.StreamPrefix))
		if err != nil {
			return nil, err
		}
		out[id] = at
	}
	return out, rows.Err()
}

// finalStates returns the states of streams at the end of the year: those
// the subscription handler keeps, the sole writer of every subscription
// stream (SoleWriter), each checked to be at its stream's last version in
// the log, so that the report reads the log's states, not a memory that
// missed an event.
func (s *sim) finalStates(ctx context.Context, streams []eventstore.StreamID) ([]eventstore.Loaded[subscription.Subscription], error) {
	loaded, err := s.subs.LoadMany(ctx, streams)
	if err != nil {
		return nil, err
	}
	rows, err := s.store.Pool().Query(ctx, `SELECT coalesce((SELECT max(stream_version) FROM events WHERE stream_id = s), 0)
FROM unnest($1::text[]) WITH ORDINALITY AS u(s, n) ORDER BY n`, streams)
	if err != nil {
		return nil, err
	}
	heads, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	for i, head := range heads {
		if loaded[i].Version != head {
			return nil, fmt.Errorf("simulation: %s is kept at version %d, its stream is at %d: an event was appended past the handler", streams[i], loaded[i].Version, head)
		}
	}
	return loaded, nil
}

func first(xs []string) []string { return xs[:min(len(xs), 3)] }

// Write prints the report for people.
func (r Report) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Simulation: %d customers, %d days, seed %d\n\n", r.Customers, r.Days, r.Seed)
	section := func(title string, m map[string]int) {
		fmt.Fprintf(tw, "%s\n", title)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			fmt.Fprintf(tw, "  %s\t%d\n", k, m[k])
		}
		fmt.Fprintln(tw)
	}
	section("Customers by behaviour", r.Behaviours)
	section("Lifecycle", r.Counts)
	if len(r.Refused) > 0 {
		section("Customer actions refused by the rules", r.Refused)
	}
	section("E-mails sent by kind", r.Emails)
	section("Subscriptions by status at the end", r.Statuses)
	fmt.Fprintf(tw, "Revenue, net of refunds, by currency and month\n")
	for _, cur := range slices.Sorted(maps.Keys(r.Revenue)) {
		c, _ := money.ParseCurrency(cur)
		var total int64
		var months []string
		for _, m := range slices.Sorted(maps.Keys(r.Revenue[cur])) {
			total += r.Revenue[cur][m]
			months = append(months, fmt.Sprintf("%s %s", m, money.New(r.Revenue[cur][m], c).Decimal()))
		}
		fmt.Fprintf(tw, "  %s\t%s\t(%s)\n", cur, money.New(total, c).Decimal(), strings.Join(months, ", "))
	}
	fmt.Fprintf(tw, "\nInvariants\n")
	for _, c := range r.Checks {
		verdict := "PASS"
		if !c.Passed {
			verdict = "FAIL: " + c.Detail
		}
		fmt.Fprintf(tw, "  %s\t%s\n", c.Name, verdict)
	}
	return tw.Flush()
}
