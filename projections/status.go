package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/eventstore"
)

// Status is where one projection stands in the log.
type Status struct {
	// Name is the projection's name.
	Name string
	// Checkpoint is the last event the projection applied; zero if none.
	Checkpoint eventstore.Checkpoint
	// Head is the global position of the log's last event; zero if the log
	// is empty.
	Head int64
	// Lag counts the committed events past Checkpoint: those the projection
	// has still to apply. Events an older transaction still in flight holds
	// back count too, since they are in the log already.
	Lag int64
	// UpdatedAt is when the projection last committed a batch (the
	// database's clock); zero if it never did.
	UpdatedAt time.Time
}

// Statuses reports where each of ps stands, all read in one snapshot of the
// database, in the order of ps.
func Statuses(ctx context.Context, store *eventstore.Store, ps []Projection) ([]Status, error) {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name()
	}
	// The lag is a count over the (transaction_id, global_position) index
	// from the checkpoint on: cheap for a projection that keeps up, a scan
	// of the log for one that never ran.
	rows, err := store.Pool().Query(ctx, `SELECT p.name, coalesce(c.transaction_id, '0'::xid8), coalesce(c.global_position, 0), c.updated_at,
    (SELECT coalesce(max(global_position), 0) FROM events),
    (SELECT count(*) FROM events e
     WHERE (e.transaction_id, e.global_position) > (coalesce(c.transaction_id, '0'::xid8), coalesce(c.global_position, 0)))
FROM unnest($1::text[]) WITH ORDINALITY AS p(name, ord)
LEFT JOIN subscription_checkpoints c ON c.name = p.name
ORDER BY p.ord`, names)
	if err != nil {
		return nil, fmt.Errorf("projections: status: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Status, error) {
		var s Status
		var updated *time.Time
		err := r.Scan(&s.Name, &s.Checkpoint.TransactionID, &s.Checkpoint.Position, &updated, &s.Head, &s.Lag)
		if updated != nil {
			s.UpdatedAt = updated.UTC()
		}
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("projections: status: %w", err)
	}
	return out, nil
}
