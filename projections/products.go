package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
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
	return applyOne(ctx, tx, pr, rec, e)
}

// ApplyBatch implements BatchApplier: each row's state is read once and
// its columns written once, after the statements of the events that touch
// other columns or the devices, all in one round trip.
func (pr Products) ApplyBatch(ctx context.Context, tx pgx.Tx, recs []eventstore.RecordedEvent, events []domain.Event) (err error) {
	defer func() { pr.States.end(err) }()
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
	var rows productRows
	if err := states.flush(rows.add); err != nil {
		return err
	}
	rows.queue(q)
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

// productRows are the products_view rows a batch changed, each once, with
// the columns their states determine and the snapshots taken, as the
// arrays of one statement: a statement per row cost a Bind, an Execute
// and an encoding of its 21 arguments each (958,372 of them in the
// 100,000-customer year of workers/simulation).
type productRows struct {
	ids                                              []string
	states                                           [][]byte // nil: keep the row's snapshot
	stateVersions                                    []pgtype.Int8
	accounts                                         []pgtype.UUID // invalid: NULL, in no account
	terms, products, productNames, keys              []string
	trials, autoRenews, disabled, renewing, refunded []bool
	registrable, legacy, recoveryTools               []bool
	expiresAt, updatedAt                             []time.Time
	addOns                                           [][]byte // JSON arrays: unnest cannot take ragged text[][]
	seats                                            []int32
	versions                                         []int64
}

// add adds the row of subscription id at state s, the last event folded
// into it and the snapshot taken, if any.
func (r *productRows) add(id string, s subscription.Subscription, last folded, snap *snapshot) error {
	addOns, err := json.Marshal(s.AddOns())
	if err != nil {
		return err
	}
	var state []byte
	var stateVersion pgtype.Int8
	if snap != nil {
		state, stateVersion = snap.state, pgtype.Int8{Int64: snap.version, Valid: true}
	}
	f, c := s.StatusFacts(), s.Facts() // a conversion changes the product and key (CNV-3)
	r.ids = append(r.ids, id)
	r.states, r.stateVersions = append(r.states, state), append(r.stateVersions, stateVersion)
	r.accounts = append(r.accounts, pgtype.UUID{Bytes: s.Account(), Valid: s.Account() != uuid.Nil})
	r.terms, r.trials, r.expiresAt = append(r.terms, s.Term()), append(r.trials, f.Trial), append(r.expiresAt, f.ExpiresAt)
	r.autoRenews, r.disabled = append(r.autoRenews, s.AutoRenew()), append(r.disabled, f.Disabled)
	r.renewing, r.refunded = append(r.renewing, f.Renewing), append(r.refunded, f.Refunded)
	r.addOns, r.updatedAt = append(r.addOns, addOns), append(r.updatedAt, last.rec.RecordedAt)
	r.products, r.productNames = append(r.products, c.Product), append(r.productNames, c.ProductName)
	r.seats, r.keys = append(r.seats, int32(c.Seats)), append(r.keys, c.Key.String())
	r.registrable, r.legacy, r.recoveryTools = append(r.registrable, c.Registrable), append(r.legacy, c.Legacy), append(r.recoveryTools, c.RecoveryTool)
	r.versions = append(r.versions, last.rec.Version)
	return nil
}

// queue queues the update of the rows on q, if there are rows: the
// columns the states determine, and the snapshots where one was taken.
func (r *productRows) queue(q *pgx.Batch) {
	if len(r.ids) == 0 {
		return
	}
	q.Queue(`UPDATE products_view p SET state = coalesce(r.state, p.state), state_version = coalesce(r.state_version, p.state_version),
    account_id = r.account, term = r.term, trial = r.trial, expires_at = r.expires_at, auto_renew = r.auto_renew, disabled = r.disabled,
    renewing = r.renewing, refunded = r.refunded, add_ons = ARRAY(SELECT jsonb_array_elements_text(r.add_ons)), updated_at = r.updated_at,
    product = r.product, product_name = r.product_name, seats = r.seats, product_key = r.product_key, registrable = r.registrable,
    legacy = r.legacy, recovery_tool = r.recovery_tool, version = r.version
FROM unnest($1::uuid[], $2::jsonb[], $3::bigint[], $4::uuid[], $5::text[], $6::boolean[], $7::timestamptz[], $8::boolean[], $9::boolean[],
        $10::boolean[], $11::boolean[], $12::jsonb[], $13::timestamptz[], $14::text[], $15::text[], $16::integer[], $17::text[],
        $18::boolean[], $19::boolean[], $20::boolean[], $21::bigint[])
    AS r(id, state, state_version, account, term, trial, expires_at, auto_renew, disabled, renewing, refunded, add_ons, updated_at,
        product, product_name, seats, product_key, registrable, legacy, recovery_tool, version)
WHERE p.subscription_id = r.id`,
		r.ids, r.states, r.stateVersions, r.accounts, r.terms, r.trials, r.expiresAt, r.autoRenews, r.disabled, r.renewing, r.refunded,
		r.addOns, r.updatedAt, r.products, r.productNames, r.seats, r.keys, r.registrable, r.legacy, r.recoveryTools, r.versions)
	*r = productRows{}
}

// queueRecountSeats queues the update of seats_used from the device rows,
// so that the count can never drift from the list it summarizes.
func queueRecountSeats(q *pgx.Batch, id string) {
	q.Queue(`UPDATE products_view
SET seats_used = (SELECT count(*) FROM subscription_devices WHERE subscription_id = $1)
WHERE subscription_id = $1`, id)
}
