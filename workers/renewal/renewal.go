// Package renewal is the renewal worker (DESIGN §6): at each run of the
// schedule it claims the subscriptions the due-work schedule says are due
// (FOR UPDATE SKIP LOCKED, so several workers share the work), and drives
// each one through whatever its lifecycle calls for at that instant: the
// aggregate decides the step (subscription.RunDue), and the worker makes
// the gateway calls of requested charges and refunds, recording their
// outcomes. A charge is requested with its idempotency key before the
// gateway sees it, so a crash in between resumes with the same key, which
// the gateway answers with the first outcome: exactly one successful charge
// per subscription and period (ARS-8).
package renewal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/workers/concurrent"
)

// Defaults of Config.
const (
	DefaultBatchSize   = 200
	DefaultConcurrency = 8
	// DefaultCacheSize is how many subscriptions' states the worker's own
	// command handler keeps in memory (eventstore HandlerConfig.CacheSize):
	// a visit then reads only the events since its last.
	DefaultCacheSize = 10_000
	// maxSteps bounds the steps of one visit: a lifecycle needs at most a
	// notice, a warning, a charge and its outcome at one instant; more
	// means a decider that does not settle.
	maxSteps = 16
)

// Config configures a Worker.
type Config struct {
	// Store is the event store; its pool also holds the schedule. Required.
	Store *eventstore.Store
	// Types decodes the subscription events. Required.
	Types *eventstore.EventTypes
	// Gateway charges and refunds. Required.
	Gateway payment.Gateway
	// Policy gives the lifecycle's values; unset fields take defaults.
	Policy policy.Policy
	// Clock is the engine's clock, which the command handler reads; the
	// runs are given their instant by the schedule. Required.
	Clock interface{ Now() time.Time }
	// BatchSize is how many due rows one claim takes. Default 200.
	BatchSize int
	// Concurrency is how many subscriptions are visited at once. Default 8.
	Concurrency int
	// Logger receives the failures of single visits, which the next run
	// retries. Default: discard.
	Logger *slog.Logger
	// Subscriptions handles the subscription commands, for a process that
	// shares one handler (and its cache of states) among its workers.
	// Default: a handler of the worker's own, keeping DefaultCacheSize
	// states.
	Subscriptions *eventstore.CommandHandler[subscription.Subscription, subscription.Command]
	// Accounts, when set, gives the accounts' payment methods from their
	// states, for a process whose handler keeps every account's state
	// (HandlerConfig.SoleWriter: a load reads nothing). Default: the
	// accounts read model, in one query per batch.
	Accounts *eventstore.CommandHandler[account.Account, account.Command]
}

// Worker runs the renewal lifecycle's due steps.
type Worker struct {
	cfg  Config
	subs *eventstore.CommandHandler[subscription.Subscription, subscription.Command]
}

// New returns a Worker, or an error naming the missing field.
func New(cfg Config) (*Worker, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("renewal: Config.Store is required")
	case cfg.Types == nil:
		return nil, errors.New("renewal: Config.Types is required")
	case cfg.Gateway == nil:
		return nil, errors.New("renewal: Config.Gateway is required")
	case cfg.Clock == nil:
		return nil, errors.New("renewal: Config.Clock is required")
	}
	p, err := policy.New(cfg.Policy)
	if err != nil {
		return nil, err
	}
	cfg.Policy = p
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	subs := cfg.Subscriptions
	if subs == nil {
		if subs, err = eventstore.NewCommandHandler(subscription.Decider, eventstore.HandlerConfig{Store: cfg.Store, Types: cfg.Types,
			Clock: cfg.Clock, Policy: p, CacheSize: DefaultCacheSize}); err != nil {
			return nil, err
		}
	}
	return &Worker{cfg: cfg, subs: subs}, nil
}

// Result sums up a run.
type Result struct {
	// Visited is how many subscriptions the run looked at.
	Visited int
	// Failed is how many visits failed (logged; the next run retries).
	Failed int
	// Last is the checkpoint of the run's last append, for a caller that
	// waits for the read models (read-your-writes); zero when nothing was
	// appended.
	Last eventstore.Checkpoint
	// NextDue is the earliest instant after the run's at which a
	// subscription it moved on falls due next, as its state says; zero
	// when none. Until the due-work schedule has the run's appends, its
	// rows of those subscriptions still say they are due at the run: a
	// caller that stops at the schedule's due instants (NextDue, the
	// function) and brings it up to date later stops here meanwhile.
	NextDue time.Time
}

// Run visits every subscription due at now, claiming batches until one
// comes back short of a full batch: none was left then that this run had
// not visited (a row another worker holds is that worker's to visit; one
// that falls due meanwhile, the next run's). Each row is visited at most
// once per instant: a visit that cannot finish (the gateway is
// unavailable) is retried by the next run. A failed visit is logged and
// counted, not returned; Run returns an error only when it cannot claim.
func (w *Worker) Run(ctx context.Context, now time.Time) (Result, error) {
	var res Result
	for {
		ids, err := w.claim(ctx, now)
		if err != nil {
			return res, err
		}
		if len(ids) > 0 {
			w.visitAll(ctx, ids, now, &res)
		}
		if len(ids) < w.cfg.BatchSize {
			return res, ctx.Err()
		}
	}
}

// claim marks the earliest due of the rows due at now and not yet visited
// at now, up to BatchSize, as visited at now, and returns their
// subscriptions in no particular order (a batch's visits move on together).
// The claim commits at once: it holds no lock while the visits run, so it
// never holds the log's readers back.
func (w *Worker) claim(ctx context.Context, now time.Time) ([]uuid.UUID, error) {
	// A function (migration 0016), so that its statement keeps one
	// generic plan instead of being planned at every call.
	rows, err := w.cfg.Store.Pool().Query(ctx, `SELECT * FROM subs_claim_due($1, $2)`, now, w.cfg.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("renewal: claim due work: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// visitAll visits the claimed subscriptions together (drive), after
// reading their states and their accounts' payment methods for all of them
// at once (two round trips per batch instead of two per visit). When those
// reads fail, each subscription is visited on its own: one that cannot be
// read (a stored payment method that does not decode) fails alone, and the
// others of its batch, the same at every run, are not held back past their
// notices (ARS-8: no due period skipped).
func (w *Worker) visitAll(ctx context.Context, ids []uuid.UUID, now time.Time, res *Result) {
	visits, err := w.load(ctx, ids)
	if err != nil && len(ids) > 1 && ctx.Err() == nil {
		for _, id := range ids {
			w.visitAll(ctx, []uuid.UUID{id}, now, res)
		}
		return
	}
	if err != nil {
		res.Visited += len(ids)
		res.Failed += len(ids)
		w.cfg.Logger.Warn("renewal batch not loaded; the next run retries", "subscriptions", len(ids), "err", err)
		return
	}
	w.drive(ctx, visits, now)
	w.putBack(ctx, visits, now)
	for _, v := range visits {
		res.Visited++
		if v.err != nil {
			res.Failed++
			w.cfg.Logger.Warn("renewal visit failed; the next run retries", "subscription", v.id, "err", v.err)
		}
		if !res.Last.Reached(v.last) {
			res.Last = v.last
		}
		if v.err != nil || v.last == (eventstore.Checkpoint{}) {
			continue
		}
		if at, ok := v.state.NextDue(w.cfg.Policy); ok && at.After(now) && (res.NextDue.IsZero() || at.Before(res.NextDue)) {
			res.NextDue = at
		}
	}
}

// putBack puts the rows of the visits that found nothing due back at the
// instant their subscriptions next need a visit. A billing update brings an
// account's rows awaiting a retry forward (ARS-6); one that changes nothing
// for a subscription (a direct debit, for a trial charged to a card only)
// left its row due at the update, and the retry's own instant was lost to
// the schedule: the test clock's advance no longer stopped there (TIM-2),
// and every run visited the row again until then. A row the projection has
// rewritten since (another version) is left to it.
func (w *Worker) putBack(ctx context.Context, visits []*visit, now time.Time) {
	var ids []uuid.UUID
	var ats []time.Time
	var versions []int64
	for _, v := range visits {
		if v.err != nil || v.last != (eventstore.Checkpoint{}) {
			continue
		}
		if at, ok := v.state.NextDue(w.cfg.Policy); ok && at.After(now) {
			ids, ats, versions = append(ids, v.id), append(ats, at), append(versions, v.version)
		}
	}
	if len(ids) == 0 {
		return
	}
	if _, err := w.cfg.Store.Pool().Exec(ctx, `UPDATE due_work d SET due_at = u.at
FROM unnest($1::uuid[], $2::timestamptz[], $3::bigint[]) AS u(id, at, version)
WHERE d.subscription_id = u.id AND d.version = u.version AND d.due_at < u.at`, ids, ats, versions); err != nil {
		w.cfg.Logger.Warn("renewal: rows found with nothing due not put back; they are visited again", "rows", len(ids), "err", err)
	}
}

// visit is one subscription driven through what is due at an instant.
type visit struct {
	id     uuid.UUID
	stream eventstore.StreamID
	// state at version: the stream is read once, and each step decides on
	// the state the last one left; it is read again only after a conflict
	// (a step another worker took), by the handler that decides it again.
	state   subscription.Subscription
	version int64
	method  payment.PaymentMethod
	cmd     subscription.Command // the next step's; nil when the visit is over
	// cause is whose the next step's record is, when not the worker's: the
	// author of the refund whose outcome it records (a customer, or an
	// agent on their behalf: AGT-1), whichever process makes the call.
	cause eventstore.Metadata
	last  eventstore.Checkpoint
	err   error
	done  bool
}

// load reads the subscriptions' states and their accounts' payment
// methods.
func (w *Worker) load(ctx context.Context, ids []uuid.UUID) ([]*visit, error) {
	streams := make([]eventstore.StreamID, len(ids))
	for i, id := range ids {
		streams[i] = eventstore.StreamID(subscription.StreamName(id))
	}
	loaded, err := w.subs.LoadMany(ctx, streams)
	if err != nil {
		return nil, err
	}
	accounts := make([]uuid.UUID, 0, len(loaded))
	for _, l := range loaded {
		accounts = append(accounts, l.State.Owner())
	}
	methods, err := w.billingMethods(ctx, accounts)
	if err != nil {
		return nil, err
	}
	visits := make([]*visit, len(ids))
	for i, id := range ids {
		visits[i] = &visit{id: id, stream: streams[i], state: loaded[i].State, version: loaded[i].Version, method: methods[loaded[i].State.Owner()]}
	}
	return visits, nil
}

// Settle does what the subscription's lifecycle needs at the clock's
// instant (a pending refund or charge made with the gateway and recorded,
// a due step), as a run would; the API calls it after a command that asks
// for a refund. It returns the checkpoint of its last append.
func (w *Worker) Settle(ctx context.Context, id uuid.UUID) (eventstore.Checkpoint, error) {
	visits, err := w.load(ctx, []uuid.UUID{id})
	if err != nil {
		return eventstore.Checkpoint{}, err
	}
	w.drive(ctx, visits, w.cfg.Clock.Now())
	return visits[0].last, visits[0].err
}

// drive moves each visit's subscription on until nothing more is due at
// now, all of them a step at a time: each step's gateway calls are made
// Concurrency at once, and its records appended in one round trip
// (HandleBatch). A pending refund or charge is made with the gateway
// (again, with the same key, after a crash) and its outcome recorded;
// otherwise the aggregate is asked for the step due (RunDue). An
// unavailable gateway leaves the request pending for the next visit. The
// record of a refund's outcome is its request's author's (refundCause).
func (w *Worker) drive(ctx context.Context, visits []*visit, now time.Time) {
	for range maxSteps {
		w.nextCommands(ctx, visits, now)
		var batch []eventstore.BatchCommand[subscription.Subscription, subscription.Command]
		var moving []*visit
		for _, v := range visits {
			if v.done {
				continue
			}
			batch = append(batch, eventstore.BatchCommand[subscription.Subscription, subscription.Command]{Stream: v.stream,
				From: eventstore.Loaded[subscription.Subscription]{State: v.state, Version: v.version}, Cmd: v.cmd,
				Meta: commandMeta(v.id, v.version, v.cmd, v.cause)})
			moving = append(moving, v)
		}
		if len(moving) == 0 {
			return
		}
		for i, out := range w.subs.HandleBatch(ctx, batch) {
			v := moving[i]
			switch {
			case out.Err != nil:
				v.err, v.done = out.Err, true
			case len(out.Events) == 0:
				v.done = true
			default:
				v.last, v.state, v.version = out.Append.Checkpoint(), out.State, out.Append.LastVersion
			}
		}
	}
	for _, v := range visits {
		if !v.done {
			v.err, v.done = fmt.Errorf("renewal: subscription %s did not settle in %d steps", v.id, maxSteps), true
		}
	}
}

// nextCommands sets the next step of each visit not done, Concurrency at
// once (a step may be a gateway call), and ends the visits with nothing
// more due.
func (w *Worker) nextCommands(ctx context.Context, visits []*visit, now time.Time) {
	charged := w.chargeTogether(ctx, visits)
	concurrent.Each(len(visits), w.cfg.Concurrency, func(i int) {
		v := visits[i]
		if v.done {
			return
		}
		var res *payment.ChargeResult
		if r, ok := charged[i]; ok {
			res = &r
		}
		cmd, err := w.nextCommand(ctx, v.state, v.method, now, res)
		v.cause = eventstore.Metadata{}
		if _, refund := cmd.(subscription.RecordRefund); refund && err == nil {
			v.cause, err = w.refundCause(ctx, v.stream)
		}
		switch {
		case err != nil:
			v.err, v.done = err, true
		case cmd == nil || w.nothingDue(v.state, cmd):
			v.done = true
		default:
			v.cmd = cmd
		}
	})
}

// chargeTogether makes the pending charges of the visits not done in one
// call when the gateway takes batches (payment.BatchCharger), and returns
// each one's result by its visit's index; none otherwise, and each visit
// then makes its own call.
func (w *Worker) chargeTogether(ctx context.Context, visits []*visit) map[int]payment.ChargeResult {
	batcher, ok := w.cfg.Gateway.(payment.BatchCharger)
	if !ok {
		return nil
	}
	var index []int
	var reqs []payment.ChargeRequest
	for i, v := range visits {
		if v.done || !v.state.Exists() {
			continue
		}
		if _, refund := v.state.PendingRefund(); refund {
			continue
		}
		if c, ok := v.state.PendingCharge(); ok {
			index, reqs = append(index, i), append(reqs, chargeRequest(c))
		}
	}
	if len(reqs) == 0 {
		return nil
	}
	results := make(map[int]payment.ChargeResult, len(reqs))
	for j, r := range batcher.ChargeBatch(ctx, reqs) {
		results[index[j]] = r
	}
	return results
}

// chargeRequest is the gateway's request of a pending charge.
func chargeRequest(c subscription.ChargeRequested) payment.ChargeRequest {
	return payment.ChargeRequest{IdempotencyKey: c.IdempotencyKey, Token: c.Token, Amount: c.Amount, Description: c.Description}
}

// nothingDue reports whether cmd is a RunDue that decides nothing on s at
// the clock's instant, as the handler would decide it: the visit ends
// without a round trip to the store.
func (w *Worker) nothingDue(s subscription.Subscription, cmd subscription.Command) bool {
	if _, ok := cmd.(subscription.RunDue); !ok {
		return false
	}
	events, err := subscription.Decider.Decide(s, cmd, w.cfg.Clock.Now(), w.cfg.Policy)
	return err == nil && len(events) == 0
}

// nextCommand is the command that moves s on at now: the outcome of a
// pending refund or charge (after the gateway call, unless charged is the
// charge's result already), or RunDue with the account's payment method.
// It returns nil when the gateway cannot answer now.
func (w *Worker) nextCommand(ctx context.Context, s subscription.Subscription, method payment.PaymentMethod, now time.Time, charged *payment.ChargeResult) (subscription.Command, error) {
	if !s.Exists() {
		return nil, nil
	}
	if r, ok := s.PendingRefund(); ok {
		out, err := w.cfg.Gateway.Refund(ctx, payment.RefundRequest{IdempotencyKey: r.IdempotencyKey, ChargeID: r.ChargeID, Amount: r.Amount})
		if errors.Is(err, payment.ErrUnavailable) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("renewal: refund %s: %w", r.IdempotencyKey, err)
		}
		return subscription.RecordRefund{Outcome: out}, nil
	}
	if c, ok := s.PendingCharge(); ok {
		if charged == nil {
			out, err := w.cfg.Gateway.Charge(ctx, chargeRequest(c))
			charged = &payment.ChargeResult{Outcome: out, Err: err}
		}
		out, err := charged.Outcome, charged.Err
		switch {
		case errors.Is(err, payment.ErrUnavailable):
			return nil, nil
		case errors.Is(err, payment.ErrUnknownToken):
			// The method was deleted at the gateway: a decline the
			// customer can cure by updating the billing information.
			out = payment.ChargeOutcome{Status: payment.Declined, DeclineCode: payment.CodeCardDeclined, Amount: c.Amount, IdempotencyKey: c.IdempotencyKey}
		case err != nil:
			return nil, fmt.Errorf("renewal: charge %s: %w", c.IdempotencyKey, err)
		}
		return subscription.RecordChargeOutcome{Period: c.Period, Attempt: c.Attempt, Outcome: out}, nil
	}
	return subscription.RunDue{Method: method}, nil
}

// refundCause is whose the outcome of the stream's pending refund is: the
// author of its request (a customer, or an agent on their behalf: AGT-1),
// with the request as its cause, whichever process makes the gateway call.
func (w *Worker) refundCause(ctx context.Context, stream eventstore.StreamID) (eventstore.Metadata, error) {
	req, ok, err := w.cfg.Store.LastOfType(ctx, stream, subscription.RefundRequested{}.EventType())
	if err != nil || !ok {
		return eventstore.Metadata{}, err
	}
	cause := req.Metadata
	if cause.CommandID == "" {
		cause.CommandID = req.ID.String()
	}
	return cause, nil
}

// billingMethods returns the payment methods of accounts from their states
// (Config.Accounts) or their read model, in one query. An account without
// billing information, or none (uuid.Nil), is missing from the map: its
// zero method has the decider fall back on the order's payment token.
func (w *Worker) billingMethods(ctx context.Context, accounts []uuid.UUID) (map[uuid.UUID]payment.PaymentMethod, error) {
	if w.cfg.Accounts != nil {
		return w.statesMethods(ctx, accounts)
	}
	rows, err := w.cfg.Store.Pool().Query(ctx, `SELECT account_id, billing_method FROM accounts
WHERE account_id = ANY($1) AND billing_method IS NOT NULL`, accounts)
	if err != nil {
		return nil, fmt.Errorf("renewal: billing methods: %w", err)
	}
	methods := make(map[uuid.UUID]payment.PaymentMethod, len(accounts))
	var account uuid.UUID
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&account, &raw}, func() error {
		var m payment.PaymentMethod
		if err := m.UnmarshalJSON(raw); err != nil {
			return fmt.Errorf("renewal: billing method of %s: %w", account, err)
		}
		methods[account] = m
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("renewal: billing methods: %w", err)
	}
	return methods, nil
}

// statesMethods returns the payment methods of accounts from their states.
func (w *Worker) statesMethods(ctx context.Context, accounts []uuid.UUID) (map[uuid.UUID]payment.PaymentMethod, error) {
	var streams []eventstore.StreamID
	seen := make(map[uuid.UUID]bool, len(accounts))
	for _, a := range accounts {
		if a != uuid.Nil && !seen[a] {
			seen[a] = true
			streams = append(streams, eventstore.StreamID(account.StreamName(a)))
		}
	}
	loaded, err := w.cfg.Accounts.LoadMany(ctx, streams)
	if err != nil {
		return nil, fmt.Errorf("renewal: billing methods: %w", err)
	}
	methods := make(map[uuid.UUID]payment.PaymentMethod, len(streams))
	for _, l := range loaded {
		if _, m, ok := l.State.Billing(); ok {
			methods[l.State.ID()] = m
		}
	}
	return methods, nil
}

// commandMeta is the metadata of the worker's commands: the worker's own,
// or, for the record of a gateway's outcome, cause's when it is set (a
// refund's request). Its command id names the step from the stream version
// it was decided on (AUD-1), in the events' metadata but not as the
// append's: the append expects that version, so of two workers deciding
// the same step the second conflicts and decides again on the stream as it
// then is, where the step is taken (RunDue decides what is due next; an
// outcome recorded already decides nothing). The commands table need not
// keep a row per step (1.2 million in a 100,000-customer year).
func commandMeta(id uuid.UUID, version int64, cmd subscription.Command, cause eventstore.Metadata) eventstore.CommandMeta {
	kind, outcome := "run-due", true
	switch cmd.(type) {
	case subscription.RecordChargeOutcome:
		kind = "charge-outcome"
	case subscription.RecordRefund:
		kind = "refund-outcome"
	default:
		outcome = false
	}
	md := eventstore.Metadata{ActorKind: eventstore.ActorSystem, ActorID: "renewal-worker"}
	if outcome && cause.ActorKind != "" {
		md = cause
		md.CausationID = cause.CommandID
	}
	md.CommandID = "renewal/" + id.String() + "/" + strconv.FormatInt(version, 10) + "/" + kind
	return eventstore.CommandMeta{Metadata: md}
}

// DueNow reports whether a row of the due-work schedule is due at now and
// not yet visited at now (what a run at now would claim): the test clock's
// advance then runs the workers at its start (workers/schedule
// Config.DueNow).
func DueNow(ctx context.Context, pool *pgxpool.Pool, now time.Time) (bool, error) {
	var due bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM due_work
WHERE due_at <= $1 AND (checked_at IS NULL OR checked_at < $1))`, now).Scan(&due); err != nil {
		return false, fmt.Errorf("renewal: work due now: %w", err)
	}
	return due, nil
}

// NextDue returns the earliest instant after after at which the due-work
// schedule has work, and false when it has none: the stops of a simulated
// advance between its ticks (workers/schedule Config.DueAt).
func NextDue(ctx context.Context, pool *pgxpool.Pool, after time.Time) (time.Time, bool, error) {
	var at *time.Time
	if err := pool.QueryRow(ctx, `SELECT min(due_at) FROM due_work WHERE due_at > $1`, after).Scan(&at); err != nil {
		return time.Time{}, false, fmt.Errorf("renewal: next due instant: %w", err)
	}
	if at == nil {
		return time.Time{}, false, nil
	}
	return at.UTC(), true, nil
}
