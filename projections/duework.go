package projections

import (
	"context"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
)

// DueWork is the due-work schedule (DESIGN §6): table due_work, one row
// per subscription with the instant a worker should next look at it
// (subscription.NextDue), which workers/renewal claims with FOR UPDATE SKIP
// LOCKED. Each row keeps the subscription's folded state (a snapshot of it,
// see subscriptionStates), so the next instant comes from the aggregate's
// own rules. An update of an account's billing information brings forward
// the retry of its declined renewals (ARS-6). The schedule only says where
// to look: the aggregate decides, so a stale row costs a no-op visit, never
// a wrong step.
type DueWork struct {
	// Policy gives the lifecycle's leads and offsets; its unset fields
	// take their defaults.
	Policy policy.Policy
	// States, when set, keeps the states the rows hold, so that a batch
	// decodes a row's state only when it is not the one kept.
	States *SubscriptionStates
}

// Name implements Projection.
func (DueWork) Name() string { return "due_work" }

// Tables implements Projection.
func (DueWork) Tables() []string { return []string{"due_work"} }

// OperationalColumns implements Operational: checked_at is the instant of
// the workers' last visit, which no event records. The projection clears
// it when an event makes the row due at or before that visit (a command at
// the instant a run visited, say a billing update after a decline): the
// visit did not see that work, and a run at that same instant (the test
// clock's advance, TIM-2) must still do it.
func (DueWork) OperationalColumns() map[string][]string {
	return map[string][]string{"due_work": {"checked_at"}}
}

// Apply implements Projection.
func (d DueWork) Apply(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, e domain.Event) error {
	return d.ApplyBatch(ctx, tx, []eventstore.RecordedEvent{rec}, []domain.Event{e})
}

// ApplyBatch implements BatchApplier: each subscription's row is read and
// written once; a billing update's statement runs after the rows as the
// events before it left them.
func (d DueWork) ApplyBatch(ctx context.Context, tx pgx.Tx, recs []eventstore.RecordedEvent, events []domain.Event) error {
	p, err := policy.New(d.Policy)
	if err != nil {
		return err
	}
	states, err := loadSubscriptionStates(ctx, tx, "due_work", d.States, recs)
	if err != nil {
		return err
	}
	write := func(q *pgx.Batch, id string, s subscription.Subscription, last folded, snap *snapshot) {
		var dueAt any
		if at, ok := s.NextDue(p); ok {
			dueAt = at
		}
		var accountID any
		if s.Owner() != uuid.Nil {
			accountID = s.Owner()
		}
		state, stateVersion := snap.args()
		q.Queue(`INSERT INTO due_work (subscription_id, account_id, due_at, awaiting_retry, version, state, state_version)
VALUES ($1, $2, $3, $4, $5, $6, coalesce($7::bigint, 0))
ON CONFLICT (subscription_id) DO UPDATE SET account_id = $2, due_at = $3, awaiting_retry = $4, version = $5,
    state = coalesce($6, due_work.state), state_version = coalesce($7, due_work.state_version),
    checked_at = CASE WHEN $3 <= due_work.checked_at THEN NULL ELSE due_work.checked_at END`,
			id, accountID, dueAt, s.AwaitingRetry(), last.rec.Version, state, stateVersion)
	}
	for i, rec := range recs {
		if _, ok := events[i].(account.BillingUpdated); ok {
			id, ok := strings.CutPrefix(string(rec.StreamID), account.StreamPrefix)
			if !ok {
				continue
			}
			states.flush(write)
			states.queue.Queue(`UPDATE due_work SET due_at = LEAST(due_at, $2),
    checked_at = CASE WHEN LEAST(due_at, $2) <= checked_at THEN NULL ELSE checked_at END
WHERE account_id = $1 AND awaiting_retry`, id, rec.RecordedAt)
			continue
		}
		id, ok := strings.CutPrefix(string(rec.StreamID), subscription.StreamPrefix)
		if !ok || !keptInState(events[i]) {
			continue
		}
		if err := states.fold(id, rec, events[i]); err != nil {
			return err
		}
	}
	states.flush(write)
	return states.send(ctx, tx)
}
