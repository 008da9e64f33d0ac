package projections

import (
	"context"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
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
func (d DueWork) ApplyBatch(ctx context.Context, tx pgx.Tx, recs []eventstore.RecordedEvent, events []domain.Event) (err error) {
	defer func() { d.States.end(err) }()
	p, err := policy.New(d.Policy)
	if err != nil {
		return err
	}
	states, err := loadSubscriptionStates(ctx, tx, "due_work", d.States, recs)
	if err != nil {
		return err
	}
	var rows dueRows
	write := func(id string, s subscription.Subscription, last folded, snap *snapshot) error {
		rows.add(id, s, p, last.rec.Version, snap)
		return nil
	}
	flush := func() error {
		if err := states.flush(write); err != nil {
			return err
		}
		rows.queue(&states.queue)
		return nil
	}
	for i, rec := range recs {
		if _, ok := events[i].(account.BillingUpdated); ok {
			id, ok := strings.CutPrefix(string(rec.StreamID), account.StreamPrefix)
			if !ok {
				continue
			}
			if err := flush(); err != nil {
				return err
			}
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
	if err := flush(); err != nil {
		return err
	}
	return states.send(ctx, tx)
}

// dueRows are due_work rows to write, each subscription's once, as the
// arrays of one statement: a statement per row cost a Bind and an Execute
// each, and the process an encoding each, on the renewal runs' path (the
// server's execution is the rows', about the same either way).
type dueRows struct {
	ids           []string
	accounts      []pgtype.UUID        // invalid: NULL, no owner
	dueAts        []pgtype.Timestamptz // invalid: NULL, nothing ahead
	retrying      []bool
	versions      []int64
	states        [][]byte // nil: keep the row's snapshot (state_versions' entry unused)
	stateVersions []int64
}

func (r *dueRows) add(id string, s subscription.Subscription, p policy.Policy, version int64, snap *snapshot) {
	var dueAt pgtype.Timestamptz
	if at, ok := s.NextDue(p); ok {
		dueAt = pgtype.Timestamptz{Time: at, Valid: true}
	}
	owner := s.Owner()
	var state []byte
	var stateVersion int64
	if snap != nil {
		state, stateVersion = snap.state, snap.version
	}
	r.ids = append(r.ids, id)
	r.accounts = append(r.accounts, pgtype.UUID{Bytes: owner, Valid: owner != uuid.Nil})
	r.dueAts = append(r.dueAts, dueAt)
	r.retrying = append(r.retrying, s.AwaitingRetry())
	r.versions = append(r.versions, version)
	r.states = append(r.states, state)
	r.stateVersions = append(r.stateVersions, stateVersion)
}

// queue queues the rows' statement on q, if there are rows, and starts
// over. A row visited at or after its new due instant is due again
// (checked_at cleared).
func (r *dueRows) queue(q *pgx.Batch) {
	if len(r.ids) == 0 {
		return
	}
	q.Queue(`INSERT INTO due_work (subscription_id, account_id, due_at, awaiting_retry, version, state, state_version)
SELECT r.id::uuid, r.account, r.due, r.retrying, r.version, r.state, CASE WHEN r.state IS NULL THEN 0 ELSE r.state_version END
FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::boolean[], $5::bigint[], $6::jsonb[], $7::bigint[])
    AS r(id, account, due, retrying, version, state, state_version)
ON CONFLICT (subscription_id) DO UPDATE SET account_id = excluded.account_id, due_at = excluded.due_at,
    awaiting_retry = excluded.awaiting_retry, version = excluded.version,
    state = coalesce(excluded.state, due_work.state),
    state_version = CASE WHEN excluded.state IS NULL THEN due_work.state_version ELSE excluded.state_version END,
    checked_at = CASE WHEN excluded.due_at <= due_work.checked_at THEN NULL ELSE due_work.checked_at END`,
		r.ids, r.accounts, r.dueAts, r.retrying, r.versions, r.states, r.stateVersions)
	*r = dueRows{}
}
