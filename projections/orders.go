package projections

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/order"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
)

// Orders is the order history (ORD-1, ORD-2): tables orders (one row per
// order, with its order and payment status, what was refunded of its
// charge, and the account it is saved in, null while pending), order_items
// (its lines) and order_subscriptions (the subscriptions, keys and serial
// numbers it yielded: PRD-4, PRD-5).
type Orders struct{}

// Name implements Projection.
func (Orders) Name() string { return "orders" }

// Tables returns the tables the projection owns, parents first, for a
// rebuild.
func (Orders) Tables() []string { return []string{"orders", "order_items", "order_subscriptions"} }

// Apply implements Projection.
func (Orders) Apply(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, e domain.Event) error {
	id := string(rec.StreamID)[len("order-"):]
	var err error
	switch e := e.(type) {
	case order.Placed:
		var account, via any
		if e.SavedTo != uuid.Nil {
			account, via = e.SavedTo, "placement"
		}
		_, err = tx.Exec(ctx, `INSERT INTO orders (order_id, number, account_id, buyer_email, storefront, currency, total,
    order_status, payment_status, saved_via, placed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, 'placed', $8, $9, $10)`,
			e.OrderID, e.Number.String(), account, e.BuyerEmail, e.Storefront, e.Total.Currency().Code(), e.Total.Amount(),
			paymentStatus(e), via, e.PlacedAt)
		for i, l := range e.Lines {
			if err != nil {
				break
			}
			_, err = tx.Exec(ctx, `INSERT INTO order_items (order_id, line, product, product_name, term, platform, quantity, unit_price, amount)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, e.OrderID, i, l.Product, l.ProductName, l.Term, l.Platform, l.Quantity, l.UnitPrice.Amount(), l.Amount.Amount())
		}
	case order.Paid:
		_, err = tx.Exec(ctx, `UPDATE orders SET payment_status = 'paid', charge_id = $2 WHERE order_id = $1`, id, e.ChargeID)
	case subscription.Refunded:
		// A refund of the order's own charge (MON-2), not of a renewal's;
		// each refund of the gateway once, however often it is recorded.
		_, err = tx.Exec(ctx, `UPDATE orders o SET refunded = o.refunded + $3, refund_ids = o.refund_ids || $4::text,
    payment_status = CASE WHEN o.refunded + $3 >= o.total THEN 'refunded' ELSE 'partially_refunded' END
FROM order_subscriptions s WHERE s.subscription_id = $1 AND s.order_id = o.order_id AND o.charge_id = $2
    AND NOT $4 = ANY (o.refund_ids)`,
			subscriptionID(rec), e.ChargeID, e.Amount.Amount(), e.RefundID)
	case order.PaymentDeclined:
		_, err = tx.Exec(ctx, `UPDATE orders SET payment_status = 'declined', order_status = 'declined' WHERE order_id = $1`, id)
	case order.Fulfilled:
		_, err = tx.Exec(ctx, `UPDATE orders SET order_status = 'fulfilled' WHERE order_id = $1`, id)
		for _, it := range e.Items {
			if err != nil {
				break
			}
			_, err = tx.Exec(ctx, `INSERT INTO order_subscriptions (order_id, subscription_id, line, product, key, serial, registrable)
VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, it.SubscriptionID, it.Line, it.Product, it.Key.String(), it.Serial.String(), it.Registrable)
		}
	case order.Saved:
		_, err = tx.Exec(ctx, `UPDATE orders SET account_id = $2, saved_via = $3 WHERE order_id = $1`, id, e.AccountID, e.Via)
	case order.Disowned:
		_, err = tx.Exec(ctx, `UPDATE orders SET disowned = true WHERE order_id = $1`, id)
	case account.Erased:
		// AUD-5: the account's orders keep what was bought, not who by.
		_, err = tx.Exec(ctx, `UPDATE orders SET buyer_email = $2 WHERE account_id = $1`, accountID(rec), domain.ErasedText)
	}
	return err
}

// EraseBuyerEmail blanks the buyer's address of the orders placed with email
// and saved in no account (AUD-5), as a replay reads them once the address's
// data key is destroyed: erasing an account erases the address's pending and
// disowned orders too, which the account.erased event cannot name. Call it
// after the key is destroyed and the projection has applied the erasure.
func EraseBuyerEmail(ctx context.Context, pool *pgxpool.Pool, email string) error {
	_, err := pool.Exec(ctx, `UPDATE orders SET buyer_email = $2 WHERE account_id IS NULL AND lower(buyer_email) = lower($1)`, email, domain.ErasedText)
	return err
}

// paymentStatus is a new order's: pending until charged, or paid at once
// for a support agent's free order.
func paymentStatus(e order.Placed) string {
	if e.Free {
		return "paid"
	}
	return "pending"
}
