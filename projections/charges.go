package projections

import (
	"context"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
)

// Charges is the charge ledger (ARS-8): table charges, one row per renewal
// charge attempt, from its request to its outcome and refunds. A unique
// index allows one successful charge per subscription and period, so a
// double charge could not even be recorded; `subs ledger reconcile`
// compares the table with the gateway's own ledger.
type Charges struct{}

// Name implements Projection.
func (Charges) Name() string { return "charges" }

// Tables implements Projection.
func (Charges) Tables() []string { return []string{"charges"} }

// Apply implements Projection.
func (Charges) Apply(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, e domain.Event) error {
	id, ok := strings.CutPrefix(string(rec.StreamID), subscription.StreamPrefix)
	if !ok {
		return nil
	}
	var err error
	switch e := e.(type) {
	case subscription.ChargeRequested:
		_, err = tx.Exec(ctx, `INSERT INTO charges (subscription_id, period, attempt, idempotency_key, status, amount_minor, currency, charged_at)
VALUES ($1, $2, $3, $4, 'requested', $5, $6, $7)`,
			id, e.Period, e.Attempt, e.IdempotencyKey, e.Amount.Amount(), e.Amount.Currency().String(), e.At)
	case subscription.ChargeSucceeded:
		_, err = tx.Exec(ctx, `UPDATE charges SET status = $4, charge_id = $5, charged_at = $6
WHERE subscription_id = $1 AND period = $2 AND attempt = $3`, id, e.Period, e.Attempt, payment.Succeeded.String(), e.ChargeID, e.At)
	case subscription.ChargeDeclined:
		err = recordDecline(ctx, tx, id, e)
	case subscription.Refunded:
		_, err = tx.Exec(ctx, `UPDATE charges SET refunded_minor = refunded_minor + $3 WHERE subscription_id = $1 AND charge_id = $2`,
			id, e.ChargeID, e.Amount.Amount())
	}
	return err
}

// recordDecline updates the attempt's row; a decline for want of a payment
// method never reached the gateway, and has a row of its own.
func recordDecline(ctx context.Context, tx pgx.Tx, id string, e subscription.ChargeDeclined) error {
	sid, err := uuid.Parse(id)
	if err != nil {
		return err
	}
	var charged any
	if e.ChargeID != "" {
		charged = e.ChargeID
	}
	_, err = tx.Exec(ctx, `INSERT INTO charges (subscription_id, period, attempt, idempotency_key, status, decline_code, charge_id,
    amount_minor, currency, charged_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, 0, '', $8)
ON CONFLICT (subscription_id, period, attempt) DO UPDATE SET status = $5, decline_code = $6, charge_id = $7, charged_at = $8`,
		sid, e.Period, e.Attempt, subscription.IdempotencyKey(sid, e.Period, e.Attempt), payment.Declined.String(), e.DeclineCode, charged, e.At)
	return err
}
