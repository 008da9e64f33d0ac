package projections_test

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	catalogdata "github.com/subs-engine/subs/catalog"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/agentlog"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/events"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/eventstore/pgtest"
	"github.com/subs-engine/subs/projections"
)

// world is an event log in a database of the test's own, with the real
// command handlers to fill it.
type world struct {
	store    *eventstore.Store
	types    *eventstore.EventTypes
	clock    *clock.Simulated
	accounts *eventstore.CommandHandler[account.Account, account.Command]
	subs     *eventstore.CommandHandler[subscription.Subscription, subscription.Command]
	product  catalog.Product // registrable, annual, legacy, at least two seats
	catalog  *catalog.Catalog
}

func newWorld(t *testing.T) *world {
	t.Helper()
	store := eventstore.New(pgtest.NewPool(t), eventstore.Config{})
	types := eventstore.NewEventTypes()
	types.Register(1, events.All()...)
	c := clock.NewSimulated(time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC))
	cfg := eventstore.HandlerConfig{Store: store, Types: types, Clock: c, Policy: policy.Default()}
	accounts, err := eventstore.NewCommandHandler(account.Decider, cfg)
	if err != nil {
		t.Fatal(err)
	}
	subs, err := eventstore.NewCommandHandler(subscription.Decider, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalogdata.Load()
	if err != nil {
		t.Fatal(err)
	}
	w := &world{store: store, types: types, clock: c, accounts: accounts, subs: subs, catalog: cat}
	for _, p := range cat.Products() {
		if p.Registrable() && p.Seats() >= 2 && p.Sells(catalog.Annual) && p.Legacy() {
			w.product = p
			break
		}
	}
	if w.product.Code() == "" {
		t.Fatal("the catalog has no registrable annual legacy product with two seats")
	}
	return w
}

// customer plays one customer's story through the command handlers: sign
// up, update the profile, ask for a password reset and have its e-mail
// recorded as sent, buy a key at the online store, register it, activate two computers
// and deactivate one, turn renewal on. That is ten events of eight types
// over the accounts, outbox and products projections. It returns the
// checkpoint of its last append.
func (w *world) customer(ctx context.Context, n int) (eventstore.Checkpoint, error) {
	var last eventstore.Checkpoint
	id := uuid.New()
	stream := eventstore.StreamID("account-" + id.String())
	meta := eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorCustomer, ActorID: id.String()}}
	email, err := account.ParseEmail(fmt.Sprintf("c%d-%s@example.com", n, id.String()[:8]))
	if err != nil {
		return last, err
	}
	name, _ := account.ParseName(fmt.Sprintf("Customer %d", n))
	country, _ := account.ParseCountry("US")
	lang, _ := account.ParseLanguage("en")
	resetID := uuid.New()
	subID := uuid.New()
	subStream := eventstore.StreamID(subscription.StreamName(subID))
	key, err := subscription.NewProductKey(crand.Reader)
	if err != nil {
		return last, err
	}
	serial, err := subscription.NewSerialNumber(crand.Reader)
	if err != nil {
		return last, err
	}
	created, err := subscription.NewCreated(subID, w.product, catalog.Annual, catalog.Platform{}, key, serial, w.clock.Now(), policy.Default(),
		subscription.Origin{Price: money.New(4999, money.USD)})
	if err != nil {
		return last, err
	}
	pc1, _ := subscription.ParseDeviceID("pc-1")
	pc2, _ := subscription.ParseDeviceID("pc-2")
	steps := []struct {
		stream eventstore.StreamID
		acct   account.Command
		sub    subscription.Command
	}{
		{stream: stream, acct: account.Register{AccountID: id, Email: email, Name: name, Country: country, PasswordHash: "h"}},
		{stream: stream, acct: account.UpdateProfile{Name: name, Country: country, Language: lang, Address: account.Address{City: fmt.Sprintf("Town %d", n%7)}}},
		{stream: stream, acct: account.RequestPasswordReset{ResetID: resetID, TokenHash: account.HashResetToken(resetID.String())}},
		{stream: subStream, sub: subscription.Create{Created: created}},
		{stream: subStream, sub: subscription.Register{AccountID: id}},
		{stream: subStream, sub: subscription.Activate{AccountID: id, Device: pc1}},
		{stream: subStream, sub: subscription.Activate{AccountID: id, Device: pc2}},
		{stream: subStream, sub: subscription.Deactivate{AccountID: id, Device: pc1}},
		{stream: subStream, sub: subscription.SetAutoRenewal{AccountID: id, On: true}},
	}
	for _, s := range steps {
		var res eventstore.AppendResult
		if s.acct != nil {
			out, err := w.accounts.Handle(ctx, s.stream, s.acct, meta)
			if err != nil {
				return last, fmt.Errorf("customer %d: %T: %w", n, s.acct, err)
			}
			res = out.Append
		} else {
			out, err := w.subs.Handle(ctx, s.stream, s.sub, meta)
			if err != nil {
				return last, fmt.Errorf("customer %d: %T: %w", n, s.sub, err)
			}
			res = out.Append
		}
		last = res.Checkpoint()
	}
	if err := w.convert(ctx, n, id, subStream, meta); err != nil {
		return last, err
	}
	// The reset e-mail's send, recorded as the outbox worker records it.
	var events []eventstore.RecordedEvent
	if events, err = w.store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{FromVersion: 3}); err != nil {
		return last, err
	}
	out, err := w.accounts.Handle(ctx, stream, account.RecordEmailSent{Kind: projections.EmailPasswordReset, Cause: events[0].ID, MessageID: "m"}, meta)
	if err != nil {
		return last, fmt.Errorf("customer %d: record the e-mail: %w", n, err)
	}
	return out.Append.Checkpoint(), nil
}

// convert has an agent add days to the customer's subscription (AGT-2) and
// the customer convert it (CNV-3), so that the read models' rebuild covers
// both.
func (w *world) convert(ctx context.Context, n int, id uuid.UUID, stream eventstore.StreamID, meta eventstore.CommandMeta) error {
	agent := eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorAgent, ActorID: "ava", Reason: "fixture",
		LogCode: agentlog.AdjustDays}}
	out, err := w.subs.Handle(ctx, stream, subscription.AdjustDays{Days: 1 + n%5}, agent)
	if err != nil {
		return err
	}
	plan, err := subscription.PlanConversion(w.catalog, out.State, "", nil, w.clock.Now(), policy.Default())
	if err != nil {
		return err
	}
	key, err := subscription.NewProductKey(crand.Reader)
	if err != nil {
		return err
	}
	_, err = w.subs.Handle(ctx, stream, subscription.Convert{AccountID: id, Plan: plan, Key: key}, meta)
	return err
}

// eventsPerCustomer is how many events customer appends.
const eventsPerCustomer = 12

// customers plays n customers' stories, numbered from first, on workers
// goroutines, and fails the test on any error.
func (w *world) customers(t *testing.T, ctx context.Context, first, n, workers int) {
	t.Helper()
	if err := w.play(ctx, first, n, workers); err != nil {
		t.Fatal(err)
	}
}

// play plays n customers' stories, numbered from first, on workers
// goroutines, and returns the first error.
func (w *world) play(ctx context.Context, first, n, workers int) error {
	next := make(chan int)
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for i := range next {
				if _, err := w.customer(ctx, i); err != nil {
					errs <- err
					for range next {
					}
					return
				}
			}
			errs <- nil
		}()
	}
	for i := first; i < first+n; i++ {
		next <- i
	}
	close(next)
	var firstErr error
	for range workers {
		if err := <-errs; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// head returns the checkpoint of the log's last event in commit order.
func (w *world) head(t *testing.T) eventstore.Checkpoint {
	t.Helper()
	var cp eventstore.Checkpoint
	err := w.store.Pool().QueryRow(context.Background(), `SELECT transaction_id, global_position FROM events
ORDER BY transaction_id DESC, global_position DESC LIMIT 1`).Scan(&cp.TransactionID, &cp.Position)
	if err != nil && err != pgx.ErrNoRows {
		t.Fatal(err)
	}
	return cp
}

// runner starts a runner of ps and returns it with a function that stops
// it and waits until it has stopped.
func (w *world) runner(t *testing.T, ps []projections.Projection) (*projections.Runner, func()) {
	t.Helper()
	r, err := projections.NewRunner(projections.RunnerConfig{Store: w.store, Types: w.types, Projections: ps,
		PollInterval: 10 * time.Millisecond, RetryDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return r, stop
}

// catchUp runs every projection of All() until it has applied the whole
// log, then stops it.
func (w *world) catchUp(t *testing.T) {
	t.Helper()
	r, stop := w.runner(t, projections.All())
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := r.WaitFor(ctx, w.head(t)); err != nil {
		t.Fatal(err)
	}
}

// mustEqualRebuild compares every projection of All() with a rebuild, row
// by row, and fails the test with the differences.
func (w *world) mustEqualRebuild(t *testing.T) {
	t.Helper()
	for _, p := range projections.All() {
		d, err := projections.Compare(context.Background(), w.store, w.types, p)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Equal() {
			t.Errorf("%s differs from its rebuild at position %d: %+v", p.Name(), d.Checkpoint.Position, d.Tables)
		}
	}
}

func count(t *testing.T, w *world, table string) int {
	t.Helper()
	var n int
	if err := w.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
