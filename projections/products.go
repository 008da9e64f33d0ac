package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
)

// Products is the products view (PRD-1 … PRD-4): table products_view, one
// row per subscription with the facts it was created with, the account it
// is registered in (null until then), its seats in use, its term,
// expiration, automatic-renewal setting and add-ons; and table
// subscription_devices, the computers each one is activated on (KEY-3,
// KEY-5). Each row keeps the subscription's folded state (a snapshot of
// it, see subscriptionStates), and its columns are read from that state
// after every event, so the view shows what the aggregate knows. The
// status is left to the reader, who computes it from the row and the clock
// (subscription.StatusAt). The SQL names its tables
// without a schema, so a rebuild can build them elsewhere on the
// search_path.
type Products struct {
	// States, when set, keeps the states the rows hold, so that a batch
	// decodes a row's state only when it is not the one kept.
	States *SubscriptionStates
}

// Name implements Projection.
func (Products) Name() string { return "products" }

// Tables returns the tables the projection owns, for a rebuild.
func (Products) Tables() []string { return []string{"products_view", "subscription_devices"} }

// Apply implements Projection.
func (pr Products) Apply(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, e domain.Event) error {
	return pr.ApplyBatch(ctx, tx, []eventstore.RecordedEvent{rec}, []domain.Event{e})
}

// ApplyBatch implements BatchApplier: each row's state is read once and
// its columns written once, after the statements of the events that touch
// other columns or the devices, all in one round trip.
func (pr Products) ApplyBatch(ctx context.Context, tx pgx.Tx, recs []eventstore.RecordedEvent, events []domain.Event) error {
	states, err := loadSubscriptionStates(ctx, tx, "products_view", pr.States, recs)
	if err != nil {
		return err
	}
	q := &states.queue
	for i, rec := range recs {
		id, ok := strings.CutPrefix(string(rec.StreamID), subscription.StreamPrefix)
		if !ok {
			continue
		}
		if !keptInState(events[i]) {
			continue
		}
		switch e := events[i].(type) {
		case subscription.Created:
			if err := queueProductRow(q, rec, e); err != nil {
				return err
			}
			states.created(id, rec, subscription.Decider.Fold(e))
			continue
		case subscription.Registered:
			q.Queue(`UPDATE products_view SET registered_at = $2 WHERE subscription_id = $1`, id, e.At)
		case subscription.Activated:
			// The decider records a device once until it is deactivated, so
			// the insert never meets its key; seats_used follows the rows.
			q.Queue(`INSERT INTO subscription_devices (subscription_id, device_id, activated_at) VALUES ($1, $2, $3)`,
				id, e.Device.String(), e.At)
			queueRecountSeats(q, id)
		case subscription.Deactivated:
			q.Queue(`DELETE FROM subscription_devices WHERE subscription_id = $1 AND device_id = $2`, id, e.Device.String())
			queueRecountSeats(q, id)
		case subscription.Converted:
			// The old key's computers are released with it (CNV-3).
			q.Queue(`DELETE FROM subscription_devices WHERE subscription_id = $1`, id)
			queueRecountSeats(q, id)
		}
		if !states.has(id) {
			return fmt.Errorf("products: %s (position %d) is about subscription %s, which has no row", rec.Type, rec.Position, id)
		}
		if err := states.fold(id, rec, events[i]); err != nil {
			return err
		}
	}
	states.flush(queueProductUpdate)
	return states.send(ctx, tx)
}

// queueProductRow queues the insert of a created subscription's row, with
// its state as the row's first snapshot.
func queueProductRow(q *pgx.Batch, rec eventstore.RecordedEvent, e subscription.Created) error {
	var orderID any
	if e.OrderID != uuid.Nil {
		orderID = e.OrderID
	}
	state, err := json.Marshal(subscription.Decider.Fold(e))
	if err != nil {
		return err
	}
	q.Queue(`INSERT INTO products_view (subscription_id, product, product_name, platform, term, trial, seats,
    starts_at, expires_at, product_key, serial, auto_renew, storefront, asian_store, order_id, registrable, legacy,
    recovery_tool, created_at, updated_at, state, version, state_version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $19, $20, $21, $21)`,
		e.SubscriptionID, e.Product, e.ProductName, e.Platform, e.Term, e.Term == catalog.Trial.String(), e.Seats,
		e.StartsAt, e.ExpiresAt, e.Key.String(), e.Serial.String(), e.AutoRenew, e.Storefront, e.AsianStore, orderID,
		e.Registrable, e.Legacy, e.RecoveryTool, rec.RecordedAt, state, rec.Version)
	return nil
}

// queueProductUpdate queues the update of the columns that the state
// determines, and of the state's snapshot when one was taken.
func queueProductUpdate(q *pgx.Batch, id string, s subscription.Subscription, last folded, snap *snapshot) {
	var account any
	if s.Account() != uuid.Nil {
		account = s.Account()
	}
	f, c := s.StatusFacts(), s.Facts() // a conversion changes the product and key (CNV-3)
	state, stateVersion := snap.args()
	q.Queue(`UPDATE products_view SET state = coalesce($2, state), state_version = coalesce($21, state_version), account_id = $3,
    term = $4, trial = $5, expires_at = $6, auto_renew = $7, disabled = $8, renewing = $9, refunded = $10, add_ons = $11, updated_at = $12, product = $13,
    product_name = $14, seats = $15, product_key = $16, registrable = $17, legacy = $18, recovery_tool = $19, version = $20
WHERE subscription_id = $1`, id, state, account, s.Term(), f.Trial, f.ExpiresAt, s.AutoRenew(), f.Disabled, f.Renewing, f.Refunded,
		s.AddOns(), last.rec.RecordedAt, c.Product, c.ProductName, c.Seats, c.Key.String(), c.Registrable, c.Legacy, c.RecoveryTool,
		last.rec.Version, stateVersion)
}

// queueRecountSeats queues the update of seats_used from the device rows,
// so that the count can never drift from the list it summarizes.
func queueRecountSeats(q *pgx.Batch, id string) {
	q.Queue(`UPDATE products_view
SET seats_used = (SELECT count(*) FROM subscription_devices WHERE subscription_id = $1)
WHERE subscription_id = $1`, id)
}
