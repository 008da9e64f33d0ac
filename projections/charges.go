package projections

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
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
func (c Charges) Apply(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, e domain.Event) error {
	return applyOne(ctx, tx, c, rec, e)
}

// ApplyBatch implements BatchApplier: an attempt requested and decided in
// the same batch (a renewal run's two steps) is inserted once, with its
// outcome, and the batch's attempts are written by three statements at
// most (the new ones; the outcomes of earlier ones; the declines that
// never reached the gateway), instead of a statement per event (799,000
// in the 100,000-customer year of workers/simulation). A refund, which is
// rare, writes the attempts so far first, then its own statement.
func (Charges) ApplyBatch(ctx context.Context, tx pgx.Tx, recs []eventstore.RecordedEvent, events []domain.Event) error {
	pipe := pipeline(tx, recs)
	var w chargeWrites
	for i, rec := range recs {
		pipe.event = i
		id, ok := strings.CutPrefix(string(rec.StreamID), subscription.StreamPrefix)
		if !ok {
			continue
		}
		sid, err := uuid.Parse(id)
		if err != nil {
			return pipe.applyFailed(err)
		}
		switch e := events[i].(type) {
		case subscription.ChargeRequested:
			err = w.requested(ctx, pipe, sid, e)
		case subscription.ChargeSucceeded:
			err = w.succeeded(ctx, pipe, sid, e)
		case subscription.ChargeDeclined:
			err = w.declined(ctx, pipe, sid, e)
		case subscription.Refunded:
			if err = w.queue(ctx, pipe); err == nil {
				_, err = pipe.Exec(ctx, `UPDATE charges SET refunded_minor = refunded_minor + $3 WHERE subscription_id = $1 AND charge_id = $2`,
					sid, e.ChargeID, e.Amount.Amount())
			}
		}
		if err != nil {
			return pipe.applyFailed(err)
		}
	}
	if err := w.queue(ctx, pipe); err != nil {
		return pipe.applyFailed(err)
	}
	return pipe.flush(ctx)
}

// attemptKey is a charge attempt: its row's key.
type attemptKey struct {
	subscription    uuid.UUID
	period, attempt int
}

// How a pending attempt's row is written.
const (
	attemptNew       = iota // requested in the stretch: inserted, with its outcome if the stretch has it
	attemptSucceeded        // requested before the stretch: the success updates the request's row
	attemptDeclined         // not requested in the stretch: the decline updates the request's row, or inserts its own when it never reached the gateway (no payment method)
)

// attemptRow is an attempt's row as a batch leaves it.
type attemptRow struct {
	key            attemptKey
	write          int
	idempotencyKey string
	status         string
	declineCode    pgtype.Text // NULL unless declined
	chargeID       pgtype.Text // NULL until the gateway answered
	amountMinor    int64
	currency       string
	chargedAt      time.Time
}

// chargeWrites are the attempts a stretch of a batch writes, each once, in
// the order first met. An event that cannot be folded into its attempt's
// pending row (anything but the outcome of an attempt requested in the
// stretch) writes the stretch first, so that the rows go through the
// events' states in the log's order.
type chargeWrites struct {
	rows  map[attemptKey]*attemptRow
	order []attemptKey
}

func (w *chargeWrites) add(r attemptRow) {
	if w.rows == nil {
		w.rows = map[attemptKey]*attemptRow{}
	}
	w.rows[r.key] = &r
	w.order = append(w.order, r.key)
}

// pending returns the row of fresh's attempt that the stretch requested,
// to fold the outcome into; for any other attempt it adds fresh, after
// writing the stretch first if the attempt has another pending row.
func (w *chargeWrites) pending(ctx context.Context, tx pgx.Tx, fresh attemptRow) (*attemptRow, error) {
	if r, ok := w.rows[fresh.key]; ok {
		if r.write == attemptNew {
			return r, nil
		}
		if err := w.queue(ctx, tx); err != nil {
			return nil, err
		}
	}
	w.add(fresh)
	return w.rows[fresh.key], nil
}

func (w *chargeWrites) requested(ctx context.Context, tx pgx.Tx, sid uuid.UUID, e subscription.ChargeRequested) error {
	key := attemptKey{sid, e.Period, e.Attempt}
	if _, ok := w.rows[key]; ok {
		if err := w.queue(ctx, tx); err != nil { // the insert then meets the row, as it would have
			return err
		}
	}
	w.add(attemptRow{key: key, write: attemptNew, idempotencyKey: e.IdempotencyKey, status: "requested",
		amountMinor: e.Amount.Amount(), currency: e.Amount.Currency().String(), chargedAt: e.At})
	return nil
}

func (w *chargeWrites) succeeded(ctx context.Context, tx pgx.Tx, sid uuid.UUID, e subscription.ChargeSucceeded) error {
	r, err := w.pending(ctx, tx, attemptRow{key: attemptKey{sid, e.Period, e.Attempt}, write: attemptSucceeded})
	if err != nil {
		return err
	}
	r.status, r.chargeID, r.chargedAt = payment.Succeeded.String(), pgtype.Text{String: e.ChargeID, Valid: true}, e.At
	return nil
}

// declined updates the attempt's row; a decline for want of a payment
// method never reached the gateway, and has a row of its own.
func (w *chargeWrites) declined(ctx context.Context, tx pgx.Tx, sid uuid.UUID, e subscription.ChargeDeclined) error {
	r, err := w.pending(ctx, tx, attemptRow{key: attemptKey{sid, e.Period, e.Attempt}, write: attemptDeclined,
		idempotencyKey: subscription.IdempotencyKey(sid, e.Period, e.Attempt)})
	if err != nil {
		return err
	}
	r.status, r.declineCode, r.chargedAt = payment.Declined.String(), pgtype.Text{String: e.DeclineCode, Valid: true}, e.At
	r.chargeID = pgtype.Text{String: e.ChargeID, Valid: e.ChargeID != ""}
	return nil
}

// queue queues on tx the statements writing the pending rows, each kind in
// one statement, and starts over.
func (w *chargeWrites) queue(ctx context.Context, tx pgx.Tx) error {
	defer func() { *w = chargeWrites{} }()
	var cols [attemptDeclined + 1]attemptColumns
	for _, k := range w.order {
		r := w.rows[k]
		cols[r.write].add(r)
	}
	statements := [...]string{
		attemptNew: `INSERT INTO charges (subscription_id, period, attempt, idempotency_key, status, decline_code, charge_id, amount_minor, currency, charged_at)
SELECT * FROM unnest($1::uuid[], $2::integer[], $3::integer[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[], $10::timestamptz[])`,
		attemptSucceeded: `UPDATE charges c SET status = u.status, charge_id = u.charge_id, charged_at = u.charged_at
FROM unnest($1::uuid[], $2::integer[], $3::integer[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[], $10::timestamptz[])
    AS u(subscription_id, period, attempt, idempotency_key, status, decline_code, charge_id, amount_minor, currency, charged_at)
WHERE c.subscription_id = u.subscription_id AND c.period = u.period AND c.attempt = u.attempt`,
		attemptDeclined: `INSERT INTO charges (subscription_id, period, attempt, idempotency_key, status, decline_code, charge_id, amount_minor, currency, charged_at)
SELECT * FROM unnest($1::uuid[], $2::integer[], $3::integer[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[], $10::timestamptz[])
ON CONFLICT (subscription_id, period, attempt) DO UPDATE SET status = excluded.status, decline_code = excluded.decline_code,
    charge_id = excluded.charge_id, charged_at = excluded.charged_at`,
	}
	for write, c := range cols {
		if len(c.subscriptions) == 0 {
			continue
		}
		if _, err := tx.Exec(ctx, statements[write], c.subscriptions, c.periods, c.attempts, c.idempotencyKeys, c.statuses, c.declineCodes,
			c.chargeIDs, c.amounts, c.currencies, c.chargedAt); err != nil {
			return err
		}
	}
	return nil
}

// attemptColumns are attempt rows as the arrays of a statement.
type attemptColumns struct {
	subscriptions           []uuid.UUID
	periods, attempts       []int32
	idempotencyKeys         []string
	statuses, currencies    []string
	declineCodes, chargeIDs []pgtype.Text
	amounts                 []int64
	chargedAt               []time.Time
}

func (c *attemptColumns) add(r *attemptRow) {
	c.subscriptions = append(c.subscriptions, r.key.subscription)
	c.periods, c.attempts = append(c.periods, int32(r.key.period)), append(c.attempts, int32(r.key.attempt))
	c.idempotencyKeys, c.statuses = append(c.idempotencyKeys, r.idempotencyKey), append(c.statuses, r.status)
	c.declineCodes, c.chargeIDs = append(c.declineCodes, r.declineCode), append(c.chargeIDs, r.chargeID)
	c.amounts, c.currencies, c.chargedAt = append(c.amounts, r.amountMinor), append(c.currencies, r.currency), append(c.chargedAt, r.chargedAt)
}
