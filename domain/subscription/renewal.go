package subscription

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/calendar"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/policy"
)

// The renewal lifecycle (DOMAIN §5, §6, §7). A renewal period is the
// renewal of one expiration date: its pre-billing notice (or trial-ending
// notice), its charge attempts, and either a success that adds one term or
// a lapse. Periods are numbered from 1 and never reused, so that
// "subscription + period + attempt" is an idempotency key the payment
// gateway sees once (ARS-8).

// RenewalNoticeIssued: the pre-billing e-mail is due: Term renews at
// ExpiresAt for Amount, charged at ChargeAt (ARS-2).
type RenewalNoticeIssued struct {
	Period    int         `json:"period"`
	Term      string      `json:"term"`
	ExpiresAt time.Time   `json:"expires_at"`
	ChargeAt  time.Time   `json:"charge_at"`
	Amount    money.Money `json:"amount"`
	At        time.Time   `json:"at"`
}

// TrialEndingNoticeIssued: the trial-ending e-mail is due, with the price of
// the year that follows (TRI-3).
type TrialEndingNoticeIssued struct {
	Period    int         `json:"period"`
	ExpiresAt time.Time   `json:"expires_at"`
	ChargeAt  time.Time   `json:"charge_at"`
	Amount    money.Money `json:"amount"`
	At        time.Time   `json:"at"`
}

// RenewalReminderIssued: automatic renewal is off, and the customer is
// reminded to renew by hand DaysBefore days before ExpiresAt (ARS-3).
type RenewalReminderIssued struct {
	ExpiresAt  time.Time `json:"expires_at"`
	DaysBefore int       `json:"days_before"`
	At         time.Time `json:"at"`
}

// PaymentMethodWarned: the card on file will have expired by the charge
// date, so the customer is asked to update the billing information at
// notice time (ARS-6, TRI-6).
type PaymentMethodWarned struct {
	Period     int       `json:"period"`
	ChargeAt   time.Time `json:"charge_at"`
	CardExpiry string    `json:"card_expiry"` // MM/YYYY
	LastFour   string    `json:"last_four"`
	At         time.Time `json:"at"`
}

// ChargeRequested: attempt Attempt of period Period is to be charged to
// Token under IdempotencyKey (ARS-8). The gateway is called after this is
// recorded; the outcome is recorded next. A crash in between calls the
// gateway again with the same key, which answers the first outcome.
type ChargeRequested struct {
	Period         int         `json:"period"`
	Attempt        int         `json:"attempt"`
	IdempotencyKey string      `json:"idempotency_key"`
	Token          string      `json:"token"`
	Amount         money.Money `json:"amount"`
	Description    string      `json:"description"`
	At             time.Time   `json:"at"`
}

// ChargeSucceeded: the renewal was paid; the subscription now runs on Term
// until ExpiresAt (ARS-1, TRI-4). A receipt e-mail follows (EML-1).
type ChargeSucceeded struct {
	Period    int         `json:"period"`
	Attempt   int         `json:"attempt"`
	ChargeID  string      `json:"charge_id"`
	Amount    money.Money `json:"amount"`
	Term      string      `json:"term"`
	ExpiresAt time.Time   `json:"expires_at"`
	At        time.Time   `json:"at"`
}

// ChargeDeclined: the attempt was declined (or there was no payment method
// to charge); the customer is asked to update the billing information, and
// the charge is retried at NextRetryAt, zero when no retry is left (ARS-6).
type ChargeDeclined struct {
	Period      int       `json:"period"`
	Attempt     int       `json:"attempt"`
	ChargeID    string    `json:"charge_id,omitempty"`
	DeclineCode string    `json:"decline_code"`
	NextRetryAt time.Time `json:"next_retry_at,omitzero"`
	At          time.Time `json:"at"`
}

// RenewalLapsed: period Period will not be charged (its retries ended or
// its grace ran out); the subscription expires at ExpiresAt (ARS-6, TRI-4).
type RenewalLapsed struct {
	Period    int       `json:"period"`
	ExpiresAt time.Time `json:"expires_at"`
	At        time.Time `json:"at"`
}

// RefundRequested: ChargeID is to be refunded Amount under IdempotencyKey:
// a renewal charge (ARS-7, TRI-5), or the initial charge of a monthly plan
// cancelled early (MON-2, Initial).
type RefundRequested struct {
	Period         int         `json:"period"`
	ChargeID       string      `json:"charge_id"`
	Amount         money.Money `json:"amount"`
	IdempotencyKey string      `json:"idempotency_key"`
	Initial        bool        `json:"initial,omitempty"`
	At             time.Time   `json:"at"`
}

// Refunded: the gateway gave the charge back. The subscription now expires
// at ExpiresAt (the renewed term taken back, or at once for a monthly plan
// cancelled early), and automatic renewal is off. A refund confirmation
// e-mail follows (EML-1).
type Refunded struct {
	Period    int         `json:"period"`
	RefundID  string      `json:"refund_id"`
	ChargeID  string      `json:"charge_id"`
	Amount    money.Money `json:"amount"`
	ExpiresAt time.Time   `json:"expires_at"`
	At        time.Time   `json:"at"`
}

// AddOnAdded: an add-on was bought on a monthly base product; it is charged
// with the base product each month from the next renewal (MON-3). Bought
// after that renewal's notice, the notice is given again with the new fee
// and the charge follows it (ARS-2); bought while that renewal's charge is
// under way, or so late in the grace that the charge following a new notice
// would fall past it, it comes with the one after (NextPeriod).
type AddOnAdded struct {
	AddOn string      `json:"add_on"`
	Name  string      `json:"name"`
	Price money.Money `json:"price"`
	// NextPeriod: the add-on is first charged with the next renewal, not
	// the one under way, whose charge is being tried or whose notice given
	// again would put the charge past the grace.
	NextPeriod bool      `json:"next_period,omitempty"`
	At         time.Time `json:"at"`
}

// AddOnCancelled: the add-on is no longer charged nor provided (MON-3).
type AddOnCancelled struct {
	AddOn string    `json:"add_on"`
	At    time.Time `json:"at"`
}

func (RenewalNoticeIssued) EventType() string     { return "subscription.renewal_notice_issued" }
func (TrialEndingNoticeIssued) EventType() string { return "subscription.trial_ending_notice_issued" }
func (RenewalReminderIssued) EventType() string   { return "subscription.renewal_reminder_issued" }
func (PaymentMethodWarned) EventType() string     { return "subscription.payment_method_warned" }
func (ChargeRequested) EventType() string         { return "subscription.charge_requested" }
func (ChargeSucceeded) EventType() string         { return "subscription.charge_succeeded" }
func (ChargeDeclined) EventType() string          { return "subscription.charge_declined" }
func (RenewalLapsed) EventType() string           { return "subscription.renewal_lapsed" }
func (RefundRequested) EventType() string         { return "subscription.refund_requested" }
func (Refunded) EventType() string                { return "subscription.refunded" }
func (AddOnAdded) EventType() string              { return "subscription.add_on_added" }
func (AddOnCancelled) EventType() string          { return "subscription.add_on_cancelled" }

func renewalEvents() []domain.Event {
	return []domain.Event{RenewalNoticeIssued{}, TrialEndingNoticeIssued{}, RenewalReminderIssued{}, PaymentMethodWarned{},
		ChargeRequested{}, ChargeSucceeded{}, ChargeDeclined{}, RenewalLapsed{}, RefundRequested{}, Refunded{},
		AddOnAdded{}, AddOnCancelled{}}
}

// Commands of the renewal lifecycle.
type (
	// RunDue does the one renewal step due at now, if any: a notice, a
	// reminder, a charge request or retry, a lapse (DESIGN §6). Method is
	// the account's billing method at now (zero when it has none); the
	// charge falls back to the order's payment token, as a trial's does
	// when the method is not a card (TRI-1). Workers send it; the
	// aggregate decides, so a stale schedule costs a no-op, never a wrong
	// step.
	RunDue struct{ Method payment.PaymentMethod }

	// RecordChargeOutcome records what the gateway answered for a
	// requested charge. An outcome for another attempt than the pending
	// one is a repeat and changes nothing.
	RecordChargeOutcome struct {
		Period, Attempt int
		Outcome         payment.ChargeOutcome
	}

	// RequestRefund asks for the last automatic-renewal charge back
	// (ARS-7, TRI-5).
	RequestRefund struct{ AccountID uuid.UUID }

	// RecordRefund records the gateway's refund of the pending request.
	RecordRefund struct{ Outcome payment.RefundOutcome }

	// Cancel cancels a monthly plan: automatic renewal off, and within the
	// policy's window after the purchase, a full refund of the initial
	// charge and an end at once (MON-1, MON-2). OnlyWithRefund refuses a
	// cancellation that refunds nothing: an agent's refund on a customer's
	// behalf (AGT-1) of a monthly plan is MON-2's, or none.
	Cancel struct {
		AccountID      uuid.UUID
		OnlyWithRefund bool
	}

	// AddAddOn buys an add-on on a monthly base product at Price per month
	// (MON-3); the caller checked the catalog offers it on the product.
	AddAddOn struct {
		AccountID uuid.UUID
		AddOn     string
		Name      string
		Price     money.Money
	}

	// CancelAddOn cancels an add-on on its own (MON-3).
	CancelAddOn struct {
		AccountID uuid.UUID
		AddOn     string
	}
)

func (RunDue) subscriptionCommand()              {}
func (RecordChargeOutcome) subscriptionCommand() {}
func (RequestRefund) subscriptionCommand()       {}
func (RecordRefund) subscriptionCommand()        {}
func (Cancel) subscriptionCommand()              {}
func (AddAddOn) subscriptionCommand()            {}
func (CancelAddOn) subscriptionCommand()         {}

// Errors of the renewal lifecycle.
var (
	// ErrNothingToRefund: no automatic-renewal charge is left to refund.
	ErrNothingToRefund error = domain.Conflict("this subscription has no automatic-renewal charge to refund")
	// ErrMonthlyNotRefunded: monthly plans are not refunded by the month (MON-2).
	ErrMonthlyNotRefunded error = domain.Conflict("monthly plans are not refunded for partial months (MON-2): cancel the plan " +
		"(within 30 days of the purchase, cancelling refunds the initial charge in full)")
	// ErrNotMonthly: only a monthly plan is cancelled; other terms turn
	// automatic renewal off (MON-1).
	ErrNotMonthly error = domain.Conflict("only a monthly plan is cancelled: turn automatic renewal off instead")
	// ErrConvertedNotRefunded: a refund asked of a key a support-assisted
	// conversion disabled (CNV-4), of a charge whose renewed term goes on
	// in the new subscription, which taking it back here would leave
	// unpaid.
	ErrConvertedNotRefunded error = domain.Conflict("this charge paid for a term that goes on in the subscription this product key was converted into (CNV-4): it is not refunded")
	// ErrEnded: automatic renewal turned on for a subscription that has
	// ended (expired, refunded or disabled): nothing is left to renew, and
	// an opted-out trial stays uncharged (TRI-2).
	ErrEnded error = domain.Conflict("this subscription has ended: automatic renewal cannot renew it; buy it again")
	// ErrNoRenewalPrice: a boxed key enrolled with no price to renew at.
	ErrNoRenewalPrice error = domain.Invalid("on", "no price is known to renew this product key at: renew by buying a new key")
	// ErrRefundPending: a refund is under way; it passes once the refund
	// is made.
	ErrRefundPending error = domain.Passing("a refund of this subscription is under way (ARS-7): ask again once it is made")
	// ErrChargePending: a renewal charge is under way; a refund is asked
	// for once its outcome is recorded (ARS-7, ARS-8).
	ErrChargePending error = domain.Passing("a renewal charge of this subscription is under way (ARS-8): ask again once it is settled")
	// ErrAddOnNotActive: no such add-on on the subscription.
	ErrAddOnNotActive error = domain.NotFound("this add-on is not active on this subscription")
)

// RefundWindowClosedError: the refund window of the charge closed at
// ClosedAt (ARS-7).
type RefundWindowClosedError struct{ ClosedAt time.Time }

func (e *RefundWindowClosedError) Error() string {
	return fmt.Sprintf("the refund window of this charge closed on %s", e.ClosedAt.UTC().Format("2006-01-02"))
}

// Conflict marks the error's kind for the API.
func (e *RefundWindowClosedError) Conflict() bool { return true }

// renewalState is the lifecycle's part of the state.
type renewalState struct {
	// ExpiresAt is the current expiration date; Term the current term
	// (a billed trial runs on annual terms).
	ExpiresAt time.Time `json:"expires_at"`
	Term      string    `json:"term"`
	// Anchor and Terms: ExpiresAt is Anchor plus Terms terms, counted from
	// the anchor so that no day is lost or gained (ARS-1).
	Anchor time.Time `json:"anchor"`
	Terms  int       `json:"terms"`
	// Price is what one more term costs before add-ons (Created.Price, or
	// the price a boxed key was enrolled at).
	Price money.Money `json:"price,omitzero"`
	// Period is the number of the renewal period under way.
	Period int          `json:"period"`
	Cycle  cycle        `json:"cycle"`
	AddOns []addOn      `json:"add_ons,omitempty"`
	Paid   []paidCharge `json:"paid,omitempty"`
	// PendingRefund is a refund requested and not yet made.
	PendingRefund *RefundRequested `json:"pending_refund,omitempty"`
	// Refunded: the last change of the expiration date was a refund.
	Refunded bool `json:"refunded,omitempty"`
	// EndedAt: a monthly plan cancelled within the initial window ended
	// at once then (MON-2); every renewal it had been charged for is
	// refunded too (paidCharge.PlanEnded), since it delivers none of them.
	EndedAt time.Time `json:"ended_at,omitzero"`
}

// cycle is what happened in the period under way.
type cycle struct {
	NoticedAt time.Time `json:"noticed_at,omitzero"`
	// NoticedAmount is the fee the notice stated: the period is never
	// charged more (ARS-2), whatever changed since (a conversion during the
	// retries).
	NoticedAmount  money.Money      `json:"noticed_amount,omitzero"`
	ChargeAt       time.Time        `json:"charge_at,omitzero"`
	ReminderDays   int              `json:"reminder_days,omitempty"` // the smallest lead reminded (ARS-3)
	Attempts       int              `json:"attempts,omitempty"`
	Pending        *ChargeRequested `json:"pending,omitempty"`
	FirstDeclineAt time.Time        `json:"first_decline_at,omitzero"`
	NextRetryAt    time.Time        `json:"next_retry_at,omitzero"`
	DeclinedToken  string           `json:"declined_token,omitempty"`
	Lapsed         bool             `json:"lapsed,omitempty"`
	// PriorAttempts are the period's attempts made before it started over
	// (days adjusted after a decline, AGT-2): Attempts numbers on from
	// them, so that each attempt keeps its own idempotency key (ARS-8).
	PriorAttempts int `json:"prior_attempts,omitempty"`
}

// tries is how many charges this cycle has attempted.
func (c cycle) tries() int { return c.Attempts - c.PriorAttempts }

// startedOver is the cycle of a period that starts over after a declined
// charge (its notice given again): its attempts number on from those made,
// so that each keeps its own idempotency key (ARS-8).
func (c cycle) startedOver() cycle { return cycle{Attempts: c.Attempts, PriorAttempts: c.Attempts} }

// unbilled reports whether no charge of the period has been tried and the
// period has not lapsed: its notice may still be given again, announcing
// what changed since (ARS-2).
func (c cycle) unbilled() bool { return c.tries() == 0 && c.Pending == nil && !c.Lapsed }

// forgetNotice makes the period's notice due again, with the charge date it
// will set.
func (c *cycle) forgetNotice() {
	c.NoticedAt, c.NoticedAmount, c.ChargeAt = time.Time{}, money.Money{}, time.Time{}
}

// noticeLowerFee has the notice given again, for a fee that went down, at
// the charge date it stated: the customer was told of a higher fee, and the
// lower one needs no more notice than that (ARS-2).
func (c *cycle) noticeLowerFee() { c.NoticedAt, c.NoticedAmount = time.Time{}, money.Money{} }

// noticed reports whether the period's notice was given, perhaps to be
// given again for a lower fee.
func (c cycle) noticed() bool { return !c.NoticedAt.IsZero() || !c.ChargeAt.IsZero() }

type addOn struct {
	Code  string      `json:"code"`
	Name  string      `json:"name"`
	Price money.Money `json:"price"`
	// From is the first renewal period that charges it: the period it was
	// bought in, or the next one when that period's charge was under way.
	From int `json:"from,omitempty"`
}

// paidCharge is a succeeded renewal charge and what the term was before it,
// so that a refund can take the term back (ARS-7).
type paidCharge struct {
	Period     int         `json:"period"`
	ChargeID   string      `json:"charge_id"`
	Amount     money.Money `json:"amount"`
	At         time.Time   `json:"at"`
	PrevExpiry time.Time   `json:"prev_expiry"`
	PrevTerm   string      `json:"prev_term"`
	PrevAnchor time.Time   `json:"prev_anchor"`
	PrevTerms  int         `json:"prev_terms"`
	Refunded   bool        `json:"refunded,omitempty"`
	// KeyDisabled: the charge succeeded after the key was disabled (it
	// was pending then, and had to be settled: ARS-8). It buys a term of a
	// key that does not work, so it is refunded.
	KeyDisabled bool `json:"key_disabled,omitempty"`
	// PlanEnded: the monthly plan ended early after the charge (MON-2): it
	// is refunded, the end staying where it is. A charge made after an
	// agent gave the plan days again is not.
	PlanEnded bool `json:"plan_ended,omitempty"`
}

// unwanted reports whether the charge is refunded without being asked.
func (pc paidCharge) unwanted() bool { return pc.KeyDisabled || pc.PlanEnded }

func newRenewal(c Created) renewalState {
	terms := 1
	if c.Term == catalog.Trial.String() {
		terms = 0 // a trial's end is the anchor of its first paid year
	}
	anchor := c.StartsAt
	if terms == 0 {
		anchor = c.ExpiresAt
	}
	return renewalState{ExpiresAt: c.ExpiresAt, Term: c.Term, Anchor: anchor, Terms: terms, Price: c.Price, Period: 1}
}

// ExpiresAt returns the current expiration date.
func (s Subscription) ExpiresAt() time.Time { return s.st.Renewal.ExpiresAt }

// Term returns the current term: annual, monthly, or trial until it is
// billed.
func (s Subscription) Term() string { return s.st.Renewal.Term }

// RenewalPrice returns what one more term costs before add-ons: the price
// the subscription was bought or enrolled at, or converted to; zero for a
// boxed key not enrolled.
func (s Subscription) RenewalPrice() money.Money { return s.st.Renewal.Price }

// AddOns returns the codes of the active add-ons (MON-3).
func (s Subscription) AddOns() []string {
	codes := make([]string, len(s.st.Renewal.AddOns))
	for i, a := range s.st.Renewal.AddOns {
		codes[i] = a.Code
	}
	return codes
}

// Renewing reports whether the current expiration date is being renewed
// automatically: renewal on, a price to charge, and its period not lapsed.
func (s Subscription) Renewing() bool {
	return s.st.AutoRenew && !s.st.Renewal.Price.IsZero() && !s.st.Renewal.Cycle.Lapsed && !s.st.Disabled
}

// StatusFacts are what the status is computed from; read models keep them
// and compute the status at read time (expiry happens with the passing of
// time, not with an event).
type StatusFacts struct {
	Disabled  bool
	Trial     bool
	ExpiresAt time.Time
	// Renewing: a renewal charge may still come, so the subscription stays
	// current in grace after ExpiresAt (ARS-2).
	Renewing bool
	Refunded bool
}

// StatusFacts returns the facts of s's status.
func (s Subscription) StatusFacts() StatusFacts {
	r := s.st.Renewal
	return StatusFacts{Disabled: s.st.Disabled, Trial: r.Term == catalog.Trial.String(), ExpiresAt: r.ExpiresAt,
		Renewing: s.Renewing(), Refunded: r.Refunded}
}

// Status returns where the subscription stands at now.
func (s Subscription) Status(now time.Time, p policy.Policy) Status {
	return StatusAt(s.StatusFacts(), now, p)
}

// StatusAt is where a subscription with facts f stands at now: disabled
// before anything; before its expiry trial or active; after it, grace while
// a renewal may still be charged (up to the policy's Grace, even after a
// refund when renewal was turned on again), refunded when a refund ended
// it, else expired (PRD-1, PRD-2, ARS-2, ARS-7).
func StatusAt(f StatusFacts, now time.Time, p policy.Policy) Status {
	switch {
	case f.Disabled:
		return StatusDisabled
	case now.Before(f.ExpiresAt) && f.Trial:
		return StatusTrial
	case now.Before(f.ExpiresAt):
		return StatusActive
	case f.Renewing && now.Before(f.ExpiresAt.Add(p.Grace)):
		return StatusGrace
	case f.Refunded:
		return StatusRefunded
	}
	return StatusExpired
}

// step is the next renewal action and when it is due.
type step int

const (
	stepNone step = iota
	stepNotice
	stepReminder
	stepCharge
	stepLapse
	stepPendingCharge // a requested charge awaits the gateway's answer
	stepPendingRefund // a requested refund awaits the gateway
	stepRefundRenewal // a plan that ended early refunds a renewal it was charged for (MON-2)
)

// next returns the next step of the lifecycle and the instant it is due. A
// requested charge or refund is due until its outcome is recorded, whatever
// changed since (ARS-8).
func (s Subscription) next(p policy.Policy) (step, time.Time) {
	r := s.st.Renewal
	refundAt, refundDue := s.renewalRefundDue()
	switch {
	case !s.st.Exists:
		return stepNone, time.Time{}
	case r.PendingRefund != nil:
		return stepPendingRefund, r.PendingRefund.At
	case r.Cycle.Pending != nil:
		return stepPendingCharge, r.Cycle.Pending.At
	case refundDue:
		return stepRefundRenewal, refundAt
	case s.st.Disabled:
		return stepNone, time.Time{}
	case s.Renewing():
		return s.nextRenewal(p)
	}
	return s.nextReminder(p)
}

func (s Subscription) nextRenewal(p policy.Policy) (step, time.Time) {
	r := s.st.Renewal
	graceEnd := r.ExpiresAt.Add(p.Grace)
	switch {
	case r.Cycle.NoticedAt.IsZero():
		return stepNotice, r.ExpiresAt.Add(-s.noticeLead(p))
	case r.Cycle.tries() == 0 && r.Cycle.ChargeAt.Before(graceEnd):
		return stepCharge, r.Cycle.ChargeAt
	case r.Cycle.tries() == 0, r.Cycle.NextRetryAt.IsZero():
		return stepLapse, graceEnd
	}
	return stepCharge, r.Cycle.NextRetryAt
}

// nextReminder is the next manual-renewal reminder (ARS-3): with automatic
// renewal off, an annual term is reminded at each of the policy's leads
// before expiry. A monthly plan with renewal off is cancelled (MON-1) and a
// trial opted out of (TRI-2): they just end. A key in no account and from
// no order has no one to remind. A lapsed period is reminded no more: it
// lapsed when its retries ended (ARS-6), or when its expiry came before a
// reminder was sent.
func (s Subscription) nextReminder(p policy.Policy) (step, time.Time) {
	r := s.st.Renewal
	if r.Term != catalog.Annual.String() || r.Refunded || r.Cycle.Lapsed || (s.st.Account == uuid.Nil && s.st.Created.OrderID == uuid.Nil) {
		return stepNone, time.Time{}
	}
	for _, lead := range p.ManualRenewalReminders { // earliest first
		days := int(lead / policy.Day)
		if r.Cycle.ReminderDays == 0 || days < r.Cycle.ReminderDays {
			return stepReminder, r.ExpiresAt.Add(-lead)
		}
	}
	return stepNone, time.Time{}
}

// NextDue returns when the lifecycle next needs a worker (RunDue, or the
// gateway call of a pending charge or refund), and false when nothing will
// ever be due without another command. The due-work schedule keeps it.
func (s Subscription) NextDue(p policy.Policy) (time.Time, bool) {
	st, at := s.next(p)
	return at, st != stepNone
}

// PendingCharge returns the charge requested and not yet answered.
func (s Subscription) PendingCharge() (ChargeRequested, bool) {
	if c := s.st.Renewal.Cycle.Pending; c != nil {
		return *c, true
	}
	return ChargeRequested{}, false
}

// PendingRefund returns the refund requested and not yet made.
func (s Subscription) PendingRefund() (RefundRequested, bool) {
	if r := s.st.Renewal.PendingRefund; r != nil {
		return *r, true
	}
	return RefundRequested{}, false
}

// AwaitingRetry reports whether a declined renewal waits for a retry, which
// an update of the billing information brings forward (ARS-6).
func (s Subscription) AwaitingRetry() bool {
	c := s.st.Renewal.Cycle
	return s.Renewing() && c.Pending == nil && !c.NextRetryAt.IsZero()
}

func (s Subscription) noticeLead(p policy.Policy) time.Duration {
	switch s.st.Renewal.Term {
	case catalog.Trial.String():
		return p.TrialEndingNotice
	case catalog.Monthly.String():
		return p.MonthlyNoticeLead
	}
	return p.AnnualNoticeLead
}

// chargeAt is when the period is charged, given a notice at noticedAt
// (ARS-2): the term's lead before expiry, and never sooner than the term's
// least gap after the notice. A trial is charged when it ends (TRI-4), and
// never sooner than the trial-ending notice's lead after that e-mail: the
// customer always has the days TRI-3 promises to opt out.
func (s Subscription) chargeAt(noticedAt time.Time, p policy.Policy) time.Time {
	r := s.st.Renewal
	lead, gap := p.AnnualChargeLead, p.AnnualMinNoticeToCharge
	switch r.Term {
	case catalog.Trial.String():
		lead, gap = 0, p.TrialEndingNotice
	case catalog.Monthly.String():
		lead, gap = p.MonthlyChargeLead, p.MonthlyMinNoticeToCharge
	}
	return later(r.ExpiresAt.Add(-lead), noticedAt.Add(gap))
}

// noticeChargeAt is the charge date of the notice given at now: chargeAt,
// or the date the last notice stated when it is given again for a lower
// fee (MON-3).
func (s Subscription) noticeChargeAt(now time.Time, p policy.Policy) time.Time {
	if c := s.st.Renewal.Cycle; c.NoticedAt.IsZero() && !c.ChargeAt.IsZero() {
		return c.ChargeAt
	}
	return s.chargeAt(now, p)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// monthsPerTerm is how many months one paid term lasts after a renewal: a
// billed trial renews for a year (TRI-4).
func monthsPerTerm(term string) int {
	if term == catalog.Monthly.String() {
		return 1
	}
	return 12
}

// amount is what one more term costs: the price and, on a monthly plan,
// every active add-on charged from the period under way (MON-3).
func (s Subscription) amount() money.Money {
	total := s.st.Renewal.Price
	for _, a := range s.st.Renewal.AddOns {
		if a.From > s.st.Renewal.Period {
			continue // bought after this period's notice
		}
		if sum, err := total.Add(a.Price); err == nil {
			total = sum
		}
	}
	return total
}

// IdempotencyKey is the gateway key of attempt attempt of period period of
// subscription id (ARS-8).
func IdempotencyKey(id uuid.UUID, period, attempt int) string {
	return fmt.Sprintf("renewal-%s-p%d-a%d", id, period, attempt)
}

// RefundKey is the gateway key of the refund of period period (0 for the
// initial charge) of subscription id.
func RefundKey(id uuid.UUID, period int) string {
	return fmt.Sprintf("refund-%s-p%d", id, period)
}

// ParseIdempotencyKey reads the subscription, period and attempt back from
// an IdempotencyKey, for reconciliation with the gateway's ledger. It
// accepts exactly what IdempotencyKey produces: no other spelling of the id,
// no sign, leading zero or zero number, nothing after the attempt.
func ParseIdempotencyKey(key string) (id uuid.UUID, period, attempt int, ok bool) {
	rest, found := strings.CutPrefix(key, "renewal-")
	if !found || len(rest) < 36 {
		return uuid.Nil, 0, 0, false
	}
	id, err := uuid.Parse(rest[:36])
	if err != nil {
		return uuid.Nil, 0, 0, false
	}
	rest, found = strings.CutPrefix(rest[36:], "-p")
	p, a, cut := strings.Cut(rest, "-a")
	period, pok := positive(p)
	attempt, aok := positive(a)
	if !found || !cut || !pok || !aok || IdempotencyKey(id, period, attempt) != key {
		return uuid.Nil, 0, 0, false
	}
	return id, period, attempt, true
}

// positive reads a decimal number of at least 1 written without sign or
// leading zero.
func positive(s string) (int, bool) {
	if s == "" || s[0] < '1' || s[0] > '9' {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// decideRenewal decides the commands of the renewal lifecycle; handled is
// false for the other commands.
func decideRenewal(s Subscription, cmd Command, now time.Time, p policy.Policy) (events []domain.Event, handled bool, err error) {
	switch c := cmd.(type) {
	case RunDue:
		events, err = s.runDue(c, now, p)
	case RecordChargeOutcome:
		events, err = s.recordCharge(c, now, p)
	case RequestRefund:
		events, err = s.requestRefund(c, now, p)
	case RecordRefund:
		events, err = s.recordRefund(c, now)
	case Cancel:
		events, err = s.cancel(c, now, p)
	case AddAddOn:
		events, err = s.addAddOn(c, now, p)
	case CancelAddOn:
		events, err = s.cancelAddOn(c, now)
	default:
		return nil, false, nil
	}
	return events, true, err
}

func (s Subscription) runDue(c RunDue, now time.Time, p policy.Policy) ([]domain.Event, error) {
	r := s.st.Renewal
	c.Method = s.billable(c.Method, p)
	st, at := s.next(p)
	if st == stepCharge && s.billingChanged(c.Method) {
		at = now // a new payment method brings the retry forward (ARS-6)
	}
	if st == stepNone || st == stepPendingCharge || st == stepPendingRefund || now.Before(at) {
		return nil, nil
	}
	graceEnd := r.ExpiresAt.Add(p.Grace)
	switch st {
	case stepRefundRenewal:
		pc, _ := s.renewalToRefund()
		return []domain.Event{RefundRequested{Period: pc.Period, ChargeID: pc.ChargeID, Amount: pc.Amount,
			IdempotencyKey: RefundKey(s.st.Created.SubscriptionID, pc.Period), At: now}}, nil
	case stepNotice:
		if !now.Before(graceEnd) || !s.noticeChargeAt(now, p).Before(graceEnd) {
			// Too late: the charge a notice would announce cannot come
			// before the grace ends (ARS-2).
			return []domain.Event{RenewalLapsed{Period: r.Period, ExpiresAt: r.ExpiresAt, At: now}}, nil
		}
		return s.notice(c.Method, now, p), nil
	case stepReminder:
		if !now.Before(r.ExpiresAt) { // expired: too late to remind (ARS-3)
			return []domain.Event{RenewalLapsed{Period: r.Period, ExpiresAt: r.ExpiresAt, At: now}}, nil
		}
		days := 0
		for _, lead := range p.ManualRenewalReminders { // the most urgent lead passed
			if !now.Before(r.ExpiresAt.Add(-lead)) {
				days = int(lead / policy.Day)
			}
		}
		return []domain.Event{RenewalReminderIssued{ExpiresAt: r.ExpiresAt, DaysBefore: days, At: now}}, nil
	case stepCharge:
		if !now.Before(graceEnd) {
			return []domain.Event{RenewalLapsed{Period: r.Period, ExpiresAt: r.ExpiresAt, At: now}}, nil
		}
		return s.charge(c.Method, now, p), nil
	}
	return []domain.Event{RenewalLapsed{Period: r.Period, ExpiresAt: r.ExpiresAt, At: now}}, nil
}

// renewalToRefund is the first renewal charge to refund without being
// asked: one of a monthly plan that ended early, or one settled after the
// key was disabled, not refunded yet.
func (s Subscription) renewalToRefund() (paidCharge, bool) {
	for _, pc := range s.st.Renewal.Paid {
		if !pc.Refunded && pc.unwanted() {
			return pc, true
		}
	}
	return paidCharge{}, false
}

// renewalRefundDue returns when the renewal to refund without being asked
// is due: since its end for a monthly plan that ended early, since the
// charge otherwise.
func (s Subscription) renewalRefundDue() (time.Time, bool) {
	pc, ok := s.renewalToRefund()
	switch {
	case !ok:
		return time.Time{}, false
	case pc.PlanEnded:
		return s.st.Renewal.EndedAt, true
	}
	return pc.At, true
}

// billable is the account's billing method m as this period may be
// charged to it: a trial's charge goes to a card only (TRI-1, TRI-4), and a
// direct debit only for a subscription of a store of a country that offers
// it (ACC-8: a German account's direct debit does not pay a Japanese
// store's yen). Another method leaves the charge on the card the
// subscription was ordered with, as no method at all does.
func (s Subscription) billable(m payment.PaymentMethod, p policy.Policy) payment.PaymentMethod {
	switch {
	case s.st.Renewal.Term == catalog.Trial.String() && m.Kind() != payment.KindCard,
		m.Kind() == payment.KindDirectDebit && !slices.Contains(p.DirectDebitCountries, s.st.Created.Storefront):
		return payment.PaymentMethod{}
	}
	return m
}

// billingChanged reports whether a declined period now has another payment
// method to try.
func (s Subscription) billingChanged(m payment.PaymentMethod) bool {
	c := s.st.Renewal.Cycle
	return c.tries() > 0 && !c.NextRetryAt.IsZero() && !m.IsZero() && m.Token() != c.DeclinedToken
}

func (s Subscription) notice(m payment.PaymentMethod, now time.Time, p policy.Policy) []domain.Event {
	r := s.st.Renewal
	chargeAt := s.noticeChargeAt(now, p)
	var out []domain.Event
	if r.Term == catalog.Trial.String() {
		out = append(out, TrialEndingNoticeIssued{Period: r.Period, ExpiresAt: r.ExpiresAt, ChargeAt: chargeAt, Amount: s.amount(), At: now})
	} else {
		out = append(out, RenewalNoticeIssued{Period: r.Period, Term: r.Term, ExpiresAt: r.ExpiresAt, ChargeAt: chargeAt, Amount: s.amount(), At: now})
	}
	if card, ok := s.cardCharged(m); ok && card.ExpiredAt(chargeAt) {
		out = append(out, PaymentMethodWarned{Period: r.Period, ChargeAt: chargeAt, CardExpiry: card.String(), LastFour: card.LastFour, At: now})
	}
	return out
}

// cardCharged is the expiry of the card a charge with the billable method
// m goes to: m's, or, with none, the card the subscription was ordered
// with (charge falls back to its token); false when that is no card.
func (s Subscription) cardCharged(m payment.PaymentMethod) (payment.CardExpiry, bool) {
	if !m.IsZero() {
		return m.CardExpiry()
	}
	if c := s.st.Created.PaymentCard; c != nil && s.st.Created.PaymentToken != "" {
		return *c, true
	}
	return payment.CardExpiry{}, false
}

func (s Subscription) charge(m payment.PaymentMethod, now time.Time, p policy.Policy) []domain.Event {
	r := s.st.Renewal
	attempt := r.Cycle.Attempts + 1
	token := s.st.Created.PaymentToken
	if !m.IsZero() {
		token = m.Token()
	}
	if token == "" {
		return s.declined(attempt, "", payment.CodeNoPaymentMethod, now, p)
	}
	id := s.st.Created.SubscriptionID
	return []domain.Event{ChargeRequested{Period: r.Period, Attempt: attempt, IdempotencyKey: IdempotencyKey(id, r.Period, attempt),
		Token: token, Amount: s.chargedAmount(), At: now,
		Description: fmt.Sprintf("%s, %s renewal from %s", s.st.Created.ProductName, renewedTerm(r.Term), r.ExpiresAt.Format("2006-01-02"))}}
}

// chargedAmount is what the period's charge takes: what one more term costs
// now, but never more than its notice stated (ARS-2): a price raised during
// the retries (a conversion) applies from the next period.
func (s Subscription) chargedAmount() money.Money {
	now, noticed := s.amount(), s.st.Renewal.Cycle.NoticedAmount
	if noticed.IsZero() || noticed.Currency() != now.Currency() || noticed.Amount() >= now.Amount() {
		return now
	}
	return noticed
}

func renewedTerm(term string) string {
	if term == catalog.Trial.String() {
		return catalog.Annual.String()
	}
	return term
}

// declined records a declined attempt and schedules its retry, or lapses
// the period when no retry is left before the grace ends (ARS-6).
func (s Subscription) declined(attempt int, chargeID, code string, now time.Time, p policy.Policy) []domain.Event {
	r := s.st.Renewal
	first := r.Cycle.FirstDeclineAt
	if first.IsZero() {
		first = now
	}
	// The next of the retries counted from the first decline that is still
	// ahead: a retry brought forward by a billing update (ARS-6) is one
	// more, not one of them.
	var retry time.Time
	for _, offset := range p.RetryOffsets {
		if at := first.Add(offset); at.After(now) {
			if at.Before(r.ExpiresAt.Add(p.Grace)) {
				retry = at
			}
			break
		}
	}
	out := []domain.Event{ChargeDeclined{Period: r.Period, Attempt: attempt, ChargeID: chargeID, DeclineCode: code, NextRetryAt: retry, At: now}}
	if retry.IsZero() {
		out = append(out, RenewalLapsed{Period: r.Period, ExpiresAt: r.ExpiresAt, At: now})
	}
	return out
}

func (s Subscription) recordCharge(c RecordChargeOutcome, now time.Time, p policy.Policy) ([]domain.Event, error) {
	pending := s.st.Renewal.Cycle.Pending
	if pending == nil || pending.Period != c.Period || pending.Attempt != c.Attempt {
		return nil, nil // answered already
	}
	o := c.Outcome
	if o.Status != payment.Succeeded {
		return s.declined(c.Attempt, o.ChargeID, o.DeclineCode, now, p), nil
	}
	r := s.st.Renewal
	term := renewedTerm(r.Term)
	anchor, terms := r.Anchor, r.Terms+1
	if r.Term != term { // a billed trial starts its years at its end (TRI-4)
		anchor, terms = r.ExpiresAt, 1
	}
	out := []domain.Event{ChargeSucceeded{Period: c.Period, Attempt: c.Attempt, ChargeID: o.ChargeID, Amount: pending.Amount,
		Term: term, ExpiresAt: calendar.PeriodEnd(anchor, monthsPerTerm(term), terms), At: now}}
	if !s.st.AutoRenew {
		// Renewal was turned off while the charge was in flight (a monthly
		// plan cancelled, MON-1; a trial opted out of, TRI-2; ARS-3): the
		// customer said no before it was made, so it is refunded at once
		// and its term taken back.
		out = append(out, RefundRequested{Period: c.Period, ChargeID: o.ChargeID, Amount: pending.Amount,
			IdempotencyKey: RefundKey(s.st.Created.SubscriptionID, c.Period), At: now})
	}
	return out, nil
}

// ownedBy checks that account owns the subscription; uuid.Nil owns one in
// no account (a guest's order), which a support agent acts on (AGT-1).
func (s Subscription) ownedBy(account uuid.UUID) error {
	if s.Owner() != account {
		return ErrNotFound
	}
	return nil
}

func (s Subscription) requestRefund(c RequestRefund, now time.Time, p policy.Policy) ([]domain.Event, error) {
	if err := s.ownedBy(c.AccountID); err != nil {
		return nil, err
	}
	r := s.st.Renewal
	switch {
	case r.PendingRefund != nil:
		return nil, ErrRefundPending
	case r.Cycle.Pending != nil:
		return nil, ErrChargePending
	case r.Term == catalog.Monthly.String():
		return nil, ErrMonthlyNotRefunded
	case len(r.Paid) == 0 || r.Paid[len(r.Paid)-1].Refunded:
		return nil, ErrNothingToRefund
	}
	last := r.Paid[len(r.Paid)-1]
	if s.st.ReplacedBy != uuid.Nil && last.PrevExpiry.Before(s.st.ReplacedThrough) {
		return nil, ErrConvertedNotRefunded // the term it bought goes on in the new subscription
	}
	if closes := last.At.Add(p.RefundWindow); now.After(closes) {
		return nil, &RefundWindowClosedError{ClosedAt: closes}
	}
	return []domain.Event{RefundRequested{Period: last.Period, ChargeID: last.ChargeID, Amount: last.Amount,
		IdempotencyKey: RefundKey(s.st.Created.SubscriptionID, last.Period), At: now}}, nil
}

func (s Subscription) recordRefund(c RecordRefund, now time.Time) ([]domain.Event, error) {
	req := s.st.Renewal.PendingRefund
	if req == nil || c.Outcome.ChargeID != req.ChargeID {
		return nil, nil // made already
	}
	expires := req.At // a monthly plan cancelled early ends at once (MON-2)
	if !req.Initial {
		for _, pc := range s.st.Renewal.Paid {
			switch {
			case pc.ChargeID != req.ChargeID:
			case pc.PlanEnded:
				expires = s.st.Renewal.ExpiresAt // it ended already: the end stays where it is
			default:
				expires = pc.PrevExpiry // the renewed term is taken back (ARS-7)
			}
		}
	}
	return []domain.Event{Refunded{Period: req.Period, RefundID: c.Outcome.RefundID, ChargeID: req.ChargeID, Amount: c.Outcome.Amount,
		ExpiresAt: expires, At: now}}, nil
}

func (s Subscription) cancel(c Cancel, now time.Time, p policy.Policy) ([]domain.Event, error) {
	if err := s.ownedBy(c.AccountID); err != nil {
		return nil, err
	}
	r := s.st.Renewal
	switch {
	case r.Term != catalog.Monthly.String():
		return nil, ErrNotMonthly
	case s.st.Created.AsianStore:
		return nil, &AsianStoreError{Storefront: s.st.Created.Storefront}
	case r.PendingRefund != nil:
		return nil, ErrRefundPending
	}
	var out []domain.Event
	if s.st.AutoRenew {
		out = append(out, AutoRenewalChanged{On: false, At: now})
	}
	early := !now.After(s.st.Created.StartsAt.Add(p.MonthlyInitialRefundWindow)) // day 30 included
	refundable := early && s.st.Created.InitialChargeID != "" && !s.st.Created.InitialCharge.IsZero() && r.EndedAt.IsZero()
	if refundable && r.Cycle.Pending != nil {
		// Ending the plan at once while its next month is being charged
		// would leave that charge's outcome to renew a refunded plan.
		return nil, ErrChargePending
	}
	switch {
	case refundable && s.Status(now, p).Current(): // in grace too: a declined renewal awaiting its retry
		out = append(out, RefundRequested{Period: 0, ChargeID: s.st.Created.InitialChargeID, Amount: s.st.Created.InitialCharge,
			IdempotencyKey: RefundKey(s.st.Created.SubscriptionID, 0), Initial: true, At: now})
	case c.OnlyWithRefund:
		return nil, ErrMonthlyNotRefunded
	}
	return out, nil
}

func (s Subscription) addAddOn(c AddAddOn, now time.Time, p policy.Policy) ([]domain.Event, error) {
	if err := s.ownedBy(c.AccountID); err != nil {
		return nil, err
	}
	if s.st.Created.AsianStore { // what renews is managed on that store (ARS-5)
		return nil, &AsianStoreError{Storefront: s.st.Created.Storefront}
	}
	if s.st.Renewal.Term != catalog.Monthly.String() {
		return nil, domain.Invalid("add_on", "add-ons are bought on a monthly plan only")
	}
	if st := s.Status(now, p); !st.Current() {
		return nil, &NotCurrentError{Status: st}
	}
	if c.Price.Currency() != s.st.Renewal.Price.Currency() || c.Price.Amount() <= 0 {
		return nil, domain.Invalid("price", "the add-on's price must be positive, in the plan's currency")
	}
	for _, a := range s.st.Renewal.AddOns {
		if a.Code == c.AddOn {
			return nil, nil // bought already
		}
	}
	// Bought after the renewal's notice, the add-on comes with that renewal,
	// noticed again, unless its charge is being tried already or the new
	// notice would put it past the grace (the plan would lapse).
	r := s.st.Renewal
	next := r.Cycle.noticed() && (!r.Cycle.unbilled() || !s.chargeAt(now, p).Before(r.ExpiresAt.Add(p.Grace)))
	return []domain.Event{AddOnAdded{AddOn: c.AddOn, Name: c.Name, Price: c.Price, NextPeriod: next, At: now}}, nil
}

func (s Subscription) cancelAddOn(c CancelAddOn, now time.Time) ([]domain.Event, error) {
	if err := s.ownedBy(c.AccountID); err != nil {
		return nil, err
	}
	if s.st.Created.AsianStore {
		return nil, &AsianStoreError{Storefront: s.st.Created.Storefront}
	}
	for _, a := range s.st.Renewal.AddOns {
		if a.Code == c.AddOn {
			return []domain.Event{AddOnCancelled{AddOn: c.AddOn, At: now}}, nil
		}
	}
	return nil, ErrAddOnNotActive
}

// payerChanged gives the period's notice again when its key was registered
// into another owner's account at at (KEY-2), whose billing information its
// charges now take: the notice went to the order's address, and the new
// owner is told before being charged (ARS-2). A period awaiting the retry
// of a declined charge starts over the same way, its attempts numbered on
// (ARS-8); one whose retries ended stays lapsed. A charge in flight is left
// to its outcome, and so is a period past its expiry: in grace, a notice
// given again could not charge before the grace ends. The reminders of a
// renewal turned off go on at their leads (ARS-3).
func (s Subscription) payerChanged(before uuid.UUID, at time.Time) Subscription {
	r := &s.st.Renewal
	switch {
	case s.Owner() == before, r.Cycle.Pending != nil, !at.Before(r.ExpiresAt):
	case r.Cycle.unbilled():
		r.Cycle.forgetNotice()
	case r.Cycle.tries() > 0 && !r.Cycle.Lapsed:
		r.Cycle = r.Cycle.startedOver()
	}
	return s
}

// evolveRenewal applies the lifecycle's events; handled is false for the
// others.
func evolveRenewal(s Subscription, e domain.Event) (Subscription, bool) {
	r := &s.st.Renewal
	switch e := e.(type) {
	case RenewalNoticeIssued:
		r.Cycle.NoticedAt, r.Cycle.NoticedAmount, r.Cycle.ChargeAt = e.At, e.Amount, e.ChargeAt
	case TrialEndingNoticeIssued:
		r.Cycle.NoticedAt, r.Cycle.NoticedAmount, r.Cycle.ChargeAt = e.At, e.Amount, e.ChargeAt
	case RenewalReminderIssued:
		r.Cycle.ReminderDays = e.DaysBefore
	case PaymentMethodWarned:
	case ChargeRequested:
		r.Cycle.Pending, r.Cycle.Attempts = &e, e.Attempt
	case ChargeDeclined:
		token := ""
		if r.Cycle.Pending != nil {
			token = r.Cycle.Pending.Token
		}
		r.Cycle.Pending, r.Cycle.Attempts, r.Cycle.DeclinedToken, r.Cycle.NextRetryAt = nil, e.Attempt, token, e.NextRetryAt
		if r.Cycle.FirstDeclineAt.IsZero() {
			r.Cycle.FirstDeclineAt = e.At
		}
	case ChargeSucceeded:
		r.Paid = append(slices.Clip(r.Paid), paidCharge{Period: e.Period, ChargeID: e.ChargeID, Amount: e.Amount, At: e.At,
			PrevExpiry: r.ExpiresAt, PrevTerm: r.Term, PrevAnchor: r.Anchor, PrevTerms: r.Terms, KeyDisabled: s.st.Disabled})
		if r.Term != e.Term {
			r.Anchor, r.Terms = r.ExpiresAt, 1
		} else {
			r.Terms++
		}
		r.ExpiresAt, r.Term, r.Period, r.Cycle, r.Refunded = e.ExpiresAt, e.Term, r.Period+1, cycle{}, false
	case RenewalLapsed:
		r.Cycle.Lapsed, r.Cycle.NextRetryAt = true, time.Time{}
	case RefundRequested:
		r.PendingRefund = &e
	case Refunded:
		ended := r.PendingRefund != nil && r.PendingRefund.Initial
		if ended {
			r.EndedAt = e.ExpiresAt
		}
		r.Paid = slices.Clone(r.Paid) // the state evolved from keeps its own
		for i := range r.Paid {
			pc := &r.Paid[i]
			if ended && !pc.Refunded {
				pc.PlanEnded = true
			}
			if pc.ChargeID == e.ChargeID {
				pc.Refunded = true
				r.Term, r.Anchor, r.Terms = pc.PrevTerm, pc.PrevAnchor, pc.PrevTerms
			}
		}
		r.ExpiresAt, r.PendingRefund, r.Refunded = e.ExpiresAt, nil, true
		r.Period, r.Cycle = r.Period+1, cycle{Lapsed: true}
		s.st.AutoRenew = false
	case AddOnAdded:
		from := r.Period
		switch {
		case e.NextPeriod:
			from++
		case r.Cycle.noticed():
			// The notice stated the fee without the add-on: it is given
			// again with it, and the charge follows it (ARS-2, MON-3).
			r.Cycle.forgetNotice()
		}
		r.AddOns = append(slices.Clip(r.AddOns), addOn{Code: e.AddOn, Name: e.Name, Price: e.Price, From: from})
	case AddOnCancelled:
		kept := r.AddOns[:0:0]
		for _, a := range r.AddOns {
			if a.Code != e.AddOn {
				kept = append(kept, a)
			} else if a.From <= r.Period && r.Cycle.unbilled() && !r.Cycle.NoticedAt.IsZero() {
				// The notice stated the fee with the add-on (MON-3).
				r.Cycle.noticeLowerFee()
			}
		}
		r.AddOns = kept
	case AutoRenewalChanged:
		s.st.AutoRenew = e.On
		if !e.Price.IsZero() {
			r.Price = e.Price
		}
		if e.On && e.At.Before(r.ExpiresAt) {
			r.Cycle.Lapsed = false
			if r.Cycle.tries() > 0 && r.Cycle.NextRetryAt.IsZero() && r.Cycle.Pending == nil {
				r.Cycle.NextRetryAt = e.At // turned back on after the retries ended: try again
			}
		}
	default:
		return s, false
	}
	return s, true
}
