package eventstore

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// LockSubscription takes, for the rest of tx, the lock every batch of the
// named subscription runs under (Subscribe), and returns the subscription's
// checkpoint as committed. While tx holds it no batch of that subscription
// commits, in any process; a batch waiting for it finds the checkpoint
// tx saves and resumes from there. Projection rebuilds use it to swap a
// read model and its checkpoint without the live runner writing meanwhile.
func LockSubscription(ctx context.Context, tx pgx.Tx, name string) (Checkpoint, error) {
	return lockCheckpoint(ctx, tx, name)
}
