package projections

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/order"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
)

// Email kinds (EML-1), as the outbox and the templates name them.
const (
	EmailPasswordReset     = "password_reset"
	EmailOrderConfirmation = "order_confirmation"
	// An order placed with an account's e-mail address but not saved in
	// it awaits the account's answer ("action required", ORD-2, ORD-3).
	EmailOrderNeedsAction = "order_needs_action"
	// The renewal lifecycle's e-mails, recorded on the subscription.
	EmailRenewalNotice      = "renewal_notice"      // pre-billing notice (ARS-2)
	EmailRenewalReminder    = "renewal_reminder"    // renew by hand (ARS-3)
	EmailTrialEnding        = "trial_ending"        // with the price (TRI-3)
	EmailRenewalReceipt     = "renewal_receipt"     // a renewal was charged (ARS-1, TRI-4)
	EmailChargeDeclined     = "charge_declined"     // update the billing information (ARS-6)
	EmailCardExpiring       = "card_expiring"       // the card will have expired at the charge (ARS-6, TRI-6)
	EmailRefundConfirmation = "refund_confirmation" // a refund was made (ARS-7, MON-2)
)

// OrderEmailKinds are the e-mail kinds about an order, recorded on its
// stream and addressed by it (OrderEmailData).
var OrderEmailKinds = []string{EmailOrderConfirmation, EmailOrderNeedsAction}

// SubscriptionEmailKinds are the e-mail kinds caused by a subscription's
// events and recorded on its stream.
var SubscriptionEmailKinds = []string{EmailRenewalNotice, EmailRenewalReminder, EmailTrialEnding, EmailRenewalReceipt,
	EmailChargeDeclined, EmailCardExpiring, EmailRefundConfirmation}

// EmailOutbox lists the e-mails events call for until each is recorded as
// sent (EML-1): table email_outbox, which workers/outbox drains.
type EmailOutbox struct{}

// Name implements Projection.
func (EmailOutbox) Name() string { return "email_outbox" }

// Tables implements Projection.
func (EmailOutbox) Tables() []string { return []string{"email_outbox", "email_subscription_accounts"} }

// OperationalColumns implements Operational. The outbox is a work queue as
// well as a read model: workers/outbox leases rows (claimed_until), counts
// and explains failed sends (attempts, last_error), and sets sent_at as soon
// as it has recorded the send, before the projection applies that event.
// None of this is in the log, so a rebuild cannot derive it; dropping it
// would re-lease messages a worker is sending and forget retry counts. So a
// rebuild keeps each of these from the live row where the live row has a
// value, and Compare leaves them out. sent_at stays correct without the
// comparison: the projection sets it from the EmailSent event unless the
// worker has set it (whichever marks the send first sets it), and the
// worker never sends twice whatever the row says, because it checks the
// aggregate (which records every send) before sending. What Compare checks
// is the part the log determines: which e-mails exist, for whom, with what
// data and when they were called for.
func (EmailOutbox) OperationalColumns() map[string][]string {
	return map[string][]string{"email_outbox": {"claimed_until", "attempts", "last_error", "sent_at", "dropped_at"}}
}

// PasswordResetData is what the password reset e-mail needs besides the
// account: never the token, which the sender derives from the reset id.
type PasswordResetData struct {
	ResetID   string `json:"reset_id"`
	ExpiresAt string `json:"expires_at"`
}

// OrderEmailData is what an order's e-mails need: the order, whose stream
// gives their recipient and what they state (the confirmation's lines, keys
// and serial numbers: PRD-4). The row names no account: the buyer may have
// none (ORD-2).
type OrderEmailData struct {
	OrderID string `json:"order_id"`
}

// SubscriptionEmailData is what an e-mail of the renewal lifecycle needs
// besides the account: the subscription, whose stream gives the product and
// key, and the event that called for it, whose facts the e-mail states (what
// renews, when, the fee; the decline; the refund). None of these events
// holds a secret.
type SubscriptionEmailData struct {
	SubscriptionID string          `json:"subscription_id"`
	Event          json.RawMessage `json:"event"`
}

// SubscriptionEmailCauses maps the type of each event of the renewal
// lifecycle that calls for an e-mail to the e-mail's kind (EML-1).
var SubscriptionEmailCauses = map[string]string{
	subscription.RenewalNoticeIssued{}.EventType():     EmailRenewalNotice,
	subscription.RenewalReminderIssued{}.EventType():   EmailRenewalReminder,
	subscription.TrialEndingNoticeIssued{}.EventType(): EmailTrialEnding,
	subscription.ChargeSucceeded{}.EventType():         EmailRenewalReceipt,
	subscription.ChargeDeclined{}.EventType():          EmailChargeDeclined,
	subscription.PaymentMethodWarned{}.EventType():     EmailCardExpiring,
	subscription.Refunded{}.EventType():                EmailRefundConfirmation,
}

// subscriptionEmail is the e-mail kind an event of the renewal lifecycle
// calls for, if any (EML-1).
func subscriptionEmail(e domain.Event) (string, bool) {
	kind, ok := SubscriptionEmailCauses[e.EventType()]
	return kind, ok
}

// Apply implements Projection.
func (o EmailOutbox) Apply(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, e domain.Event) error {
	return applyOne(ctx, tx, o, rec, e)
}

// ApplyBatch implements BatchApplier: the e-mails the batch's subscription
// events call for are added in one statement, and the sends its events
// record marked in one, instead of a statement per event (829,169 of each
// in the 100,000-customer year of workers/simulation); the statements of
// the other events run in between, in the log's order. Adding before
// marking is the log's order too: a send is recorded after the event that
// called for it, on the same stream.
func (EmailOutbox) ApplyBatch(ctx context.Context, tx pgx.Tx, recs []eventstore.RecordedEvent, events []domain.Event) error {
	pipe := pipeline(tx, recs)
	var w outboxWrites
	for i, rec := range recs {
		pipe.event = i
		switch e := events[i].(type) {
		case account.EmailSent:
			w.sent(e.Cause, e.Kind, rec)
			continue
		case subscription.EmailSent:
			w.sent(e.Cause, e.Kind, rec)
			continue
		case order.EmailSent:
			w.sent(e.Cause, e.Kind, rec)
			continue
		}
		if kind, ok := subscriptionEmail(events[i]); ok {
			if err := w.enqueue(rec, kind, events[i]); err != nil {
				return pipe.applyFailed(err)
			}
			continue
		}
		if err := applyToOutbox(ctx, afterWrites{pipe, &w}, rec, events[i]); err != nil {
			return pipe.applyFailed(err)
		}
	}
	if err := w.queue(ctx, pipe); err != nil {
		return pipe.applyFailed(err)
	}
	return pipe.flush(ctx)
}

// afterWrites is a transaction whose statements run after those of what w
// holds: its Exec queues w's first. So only an event that writes something
// of its own (applyToOutbox, which only calls Exec) cuts a batch's
// set-based statements short, not every event of the batch.
type afterWrites struct {
	pgx.Tx
	w *outboxWrites
}

func (t afterWrites) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := t.w.queue(ctx, t.Tx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return t.Tx.Exec(ctx, sql, args...)
}

// applyToOutbox applies an event that neither calls for a renewal
// lifecycle's e-mail nor records a send.
func applyToOutbox(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, e domain.Event) error {
	switch e := e.(type) {
	case account.PasswordResetRequested:
		data, err := json.Marshal(PasswordResetData{ResetID: e.ResetID.String(), ExpiresAt: e.ExpiresAt.Format("2006-01-02T15:04:05Z07:00")})
		if err != nil {
			return err
		}
		return enqueue(ctx, tx, rec, EmailPasswordReset, data)
	case account.Erased:
		// AUD-5: nothing more goes to an erased account.
		if _, err := tx.Exec(ctx, `DELETE FROM email_subscription_accounts WHERE account_id = $1`, accountID(rec)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM email_outbox WHERE account_id = $1`, accountID(rec))
		return err
	case subscription.Created:
		if e.OrderID == uuid.Nil {
			return nil // a boxed key has no one to write to until it is registered
		}
		// In no account yet: its e-mails go through its order (ORD-2).
		_, err := tx.Exec(ctx, `INSERT INTO email_subscription_accounts (subscription_id, account_id) VALUES ($1, NULL)
ON CONFLICT (subscription_id) DO NOTHING`, subscriptionID(rec))
		return err
	case subscription.Registered:
		return setSubscriptionAccount(ctx, tx, rec, e.AccountID)
	case subscription.SavedWithOrder:
		return setSubscriptionAccount(ctx, tx, rec, e.AccountID)
	case order.Placed:
		if e.SavedTo != uuid.Nil || e.Free {
			return nil
		}
		return enqueueOrder(ctx, tx, rec, EmailOrderNeedsAction)
	case order.Fulfilled:
		return enqueueOrder(ctx, tx, rec, EmailOrderConfirmation)
	}
	return nil
}

// outboxWrites are the e-mails of the renewal lifecycle a stretch of a
// batch calls for, and the sends it records, as the arrays of a statement
// each.
type outboxWrites struct {
	causes        []uuid.UUID
	kinds         []string
	subscriptions []string
	data          [][]byte
	createdAt     []time.Time
	sentCauses    []uuid.UUID
	sentKinds     []string
	sentAt        []time.Time
}

// enqueue adds the e-mail of kind that e, an event of rec's subscription's
// renewal lifecycle, calls for.
func (w *outboxWrites) enqueue(rec eventstore.RecordedEvent, kind string, e domain.Event) error {
	data, err := subscriptionEmailData(rec, e)
	if err != nil {
		return err
	}
	w.causes, w.kinds, w.subscriptions = append(w.causes, rec.ID), append(w.kinds, kind), append(w.subscriptions, subscriptionID(rec))
	w.data, w.createdAt = append(w.data, data), append(w.createdAt, rec.RecordedAt)
	return nil
}

// sent adds the record, rec, that the e-mail of kind caused by cause went
// out.
func (w *outboxWrites) sent(cause uuid.UUID, kind string, rec eventstore.RecordedEvent) {
	w.sentCauses, w.sentKinds, w.sentAt = append(w.sentCauses, cause), append(w.sentKinds, kind), append(w.sentAt, rec.RecordedAt)
}

// queue queues on tx the statements of what w holds, if anything, and
// starts over. Each e-mail is addressed to the account that owns its
// subscription (subscription.Owner) or, with no account (NULL), to its
// order's buyer; a boxed key in no account, or one whose account was
// erased (AUD-5), gets none. The LATERAL lookup with a LIMIT is not
// flattened into a join: each row is found by its key, whatever the plan.
// A send marked by the outbox worker already (as a rule: it marks what it
// has recorded before this event comes by) is left as it is: no new row
// version.
func (w *outboxWrites) queue(ctx context.Context, tx pgx.Tx) error {
	defer func() { *w = outboxWrites{} }()
	if len(w.causes) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO email_outbox (cause, kind, account_id, data, created_at)
SELECT u.cause, u.kind, a.account_id, u.data, u.created_at
FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::jsonb[], $5::timestamptz[]) WITH ORDINALITY AS u(cause, kind, subscription_id, data, created_at, n)
CROSS JOIN LATERAL (SELECT account_id FROM email_subscription_accounts s WHERE s.subscription_id = u.subscription_id LIMIT 1) AS a
ORDER BY u.n`, w.causes, w.kinds, w.subscriptions, w.data, w.createdAt); err != nil {
			return err
		}
	}
	if len(w.sentCauses) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE email_outbox o SET sent_at = u.at
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS u(cause, kind, at)
WHERE o.cause = u.cause AND o.kind = u.kind AND o.sent_at IS NULL`, w.sentCauses, w.sentKinds, w.sentAt); err != nil {
			return err
		}
	}
	return nil
}

// subscriptionID is the id in a subscription stream's name.
func subscriptionID(rec eventstore.RecordedEvent) string {
	return string(rec.StreamID)[len(subscription.StreamPrefix):]
}

// setSubscriptionAccount addresses the e-mails of rec's subscription to
// account: the one its key was registered in, or its order saved in.
func setSubscriptionAccount(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, account uuid.UUID) error {
	_, err := tx.Exec(ctx, `INSERT INTO email_subscription_accounts (subscription_id, account_id) VALUES ($1, $2)
ON CONFLICT (subscription_id) DO UPDATE SET account_id = excluded.account_id`, subscriptionID(rec), account)
	return err
}

// subscriptionEmailData is the data of the e-mail that e, an event of
// rec's subscription's renewal lifecycle, calls for.
func subscriptionEmailData(rec eventstore.RecordedEvent, e domain.Event) ([]byte, error) {
	event, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return json.Marshal(SubscriptionEmailData{SubscriptionID: subscriptionID(rec), Event: event})
}

// enqueueOrder adds the e-mail of kind about the order of rec's stream,
// addressed by the order itself (OrderEmailData).
func enqueueOrder(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, kind string) error {
	data, err := json.Marshal(OrderEmailData{OrderID: string(rec.StreamID)[len("order-"):]})
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO email_outbox (cause, kind, account_id, data, created_at) VALUES ($1, $2, NULL, $3, $4)`,
		rec.ID, kind, data, rec.RecordedAt)
	return err
}

func enqueue(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, kind string, data []byte) error {
	_, err := tx.Exec(ctx, `INSERT INTO email_outbox (cause, kind, account_id, data, created_at) VALUES ($1, $2, $3, $4, $5)`,
		rec.ID, kind, accountID(rec), data, rec.RecordedAt)
	return err
}
