package eventstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// restoredTransactionID is what RepairAfterRestore gives every event of a
// restored log: below any transaction id the new cluster hands out, so the
// restored events read first, in position order, as they were committed.
const restoredTransactionID = 3

// RepairAfterRestore detects a log restored into another cluster, whose
// stored transaction ids are ahead of the ones the cluster now hands out
// (DESIGN §4): new events would sort before the old ones and readers past
// them would never see new events. It then renumbers the old events'
// transaction ids below every new one and re-seeds every checkpoint from its
// position, keeping the order. It returns whether it repaired anything.
// Run it at start, before readers; writers wait for it.
func (s *Store) RepairAfterRestore(ctx context.Context) (bool, error) {
	repaired := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT coalesce(max(transaction_id) >= pg_snapshot_xmax(pg_current_snapshot()), false) FROM events`).Scan(&repaired)
		if err != nil || !repaired {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE events SET transaction_id = $1`, uint64(restoredTransactionID)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE subscription_checkpoints SET transaction_id = $1, updated_at = now()`, uint64(restoredTransactionID))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("eventstore: repair after restore: %w", err)
	}
	return repaired, nil
}
