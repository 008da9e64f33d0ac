package projections

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
)

// Products is the products view (PRD-1 … PRD-4): table products_view, one
// row per subscription with the facts it was created with, the account it
// is registered in (null until then), its seats in use, whether it is
// disabled and its automatic-renewal setting; and table
// subscription_devices, the computers each one is activated on (KEY-3,
// KEY-5). The status is left to the reader, who computes it from the row
// and the clock (subscription.StatusAt). The SQL names its tables without
// a schema, so a rebuild can build them elsewhere on the search_path.
type Products struct{}

// Name implements Projection.
func (Products) Name() string { return "products" }

// Tables returns the tables the projection owns, for a rebuild.
func (Products) Tables() []string { return []string{"products_view", "subscription_devices"} }

// Apply implements Projection.
func (Products) Apply(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, e domain.Event) error {
	id := string(rec.StreamID)[len(subscription.StreamPrefix):]
	var err error
	switch e := e.(type) {
	case subscription.Created:
		var orderID any
		if e.OrderID != uuid.Nil {
			orderID = e.OrderID
		}
		_, err = tx.Exec(ctx, `INSERT INTO products_view (subscription_id, product, product_name, platform, term, trial, seats,
    starts_at, expires_at, product_key, serial, auto_renew, storefront, asian_store, order_id, registrable, legacy,
    recovery_tool, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $19)`,
			e.SubscriptionID, e.Product, e.ProductName, e.Platform, e.Term, e.Term == catalog.Trial.String(), e.Seats,
			e.StartsAt, e.ExpiresAt, e.Key.String(), e.Serial.String(), e.AutoRenew, e.Storefront, e.AsianStore, orderID,
			e.Registrable, e.Legacy, e.RecoveryTool, rec.RecordedAt)
	case subscription.Registered:
		_, err = tx.Exec(ctx, `UPDATE products_view SET account_id = $2, registered_at = $3, updated_at = $4 WHERE subscription_id = $1`,
			id, e.AccountID, e.At, rec.RecordedAt)
	case subscription.Activated:
		// The decider records a device once until it is deactivated, so
		// the insert never meets its key; seats_used follows the rows.
		if _, err = tx.Exec(ctx, `INSERT INTO subscription_devices (subscription_id, device_id, activated_at) VALUES ($1, $2, $3)`,
			id, e.Device.String(), e.At); err == nil {
			err = recountSeats(ctx, tx, id, rec)
		}
	case subscription.Deactivated:
		if _, err = tx.Exec(ctx, `DELETE FROM subscription_devices WHERE subscription_id = $1 AND device_id = $2`,
			id, e.Device.String()); err == nil {
			err = recountSeats(ctx, tx, id, rec)
		}
	case subscription.Disabled:
		_, err = tx.Exec(ctx, `UPDATE products_view SET disabled = true, updated_at = $2 WHERE subscription_id = $1`, id, rec.RecordedAt)
	case subscription.AutoRenewalChanged:
		_, err = tx.Exec(ctx, `UPDATE products_view SET auto_renew = $2, updated_at = $3 WHERE subscription_id = $1`, id, e.On, rec.RecordedAt)
	}
	return err
}

// recountSeats sets seats_used from the device rows, so that the count can
// never drift from the list it summarizes.
func recountSeats(ctx context.Context, tx pgx.Tx, id string, rec eventstore.RecordedEvent) error {
	_, err := tx.Exec(ctx, `UPDATE products_view
SET seats_used = (SELECT count(*) FROM subscription_devices WHERE subscription_id = $1), updated_at = $2
WHERE subscription_id = $1`, id, rec.RecordedAt)
	return err
}
