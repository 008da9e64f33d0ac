package renewal_test

import (
	"context"
	crand "crypto/rand"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	catalogdata "github.com/subs-engine/subs/catalog"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/events"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/eventstore/pgtest"
	"github.com/subs-engine/subs/projections"
	"github.com/subs-engine/subs/workers/gateway"
	"github.com/subs-engine/subs/workers/renewal"
)

// world is a database of the test's own with the projections running, a
// simulated clock, and the gateway sandbox without faults.
type world struct {
	url     string
	store   *eventstore.Store
	types   *eventstore.EventTypes
	clock   *clock.Simulated
	runner  *projections.Runner
	gateway *gateway.Sandbox
	subs    *eventstore.CommandHandler[subscription.Subscription, subscription.Command]
	catalog *catalog.Catalog
}

var start = time.Date(2027, 1, 31, 9, 0, 0, 0, time.UTC)

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &world{url: pgtest.NewDatabase(t), types: eventstore.NewEventTypes(), clock: clock.NewSimulated(start), catalog: catalogdata.MustLoad()}
	w.types.Register(1, events.All()...)
	w.store = eventstore.New(w.pool(t), eventstore.Config{})
	var err error
	w.runner, err = projections.NewRunner(projections.RunnerConfig{Store: w.store, Types: w.types, Projections: projections.All(),
		PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { w.runner.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if w.gateway, err = gateway.NewSandbox(ctx, w.store.Pool(), gateway.SandboxConfig{Clock: w.clock}); err != nil {
		t.Fatal(err)
	}
	w.subs, err = eventstore.NewCommandHandler(subscription.Decider, eventstore.HandlerConfig{Store: w.store, Types: w.types,
		Clock: w.clock, Policy: policy.Default()})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// pool opens a pool of its own on the world's database, as another process
// would.
func (w *world) pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), w.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// worker is a renewal worker on a pool of its own and gateway gw.
func (w *world) worker(t *testing.T, gw payment.Gateway) *renewal.Worker {
	t.Helper()
	return w.workerBatching(t, gw, 0)
}

// workerBatching is worker claiming batchSize rows at once (0: the
// default).
func (w *world) workerBatching(t *testing.T, gw payment.Gateway, batchSize int) *renewal.Worker {
	t.Helper()
	r, err := renewal.New(renewal.Config{Store: eventstore.New(w.pool(t), eventstore.Config{}), Types: w.types, Gateway: gw,
		Clock: w.clock, Concurrency: 4, BatchSize: batchSize})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// card tokenizes a test card number expiring in December 2035.
func (w *world) card(t *testing.T, number string) string {
	t.Helper()
	c, err := payment.NewCard(number, "123", "Ann Example", 12, 2035, w.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	m, err := w.gateway.TokenizeCard(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return m.Token()
}

// subscribe creates a subscription of product for term starting at the
// clock's instant, bought at the US store with auto-renewal on and paid
// with token.
func (w *world) subscribe(t *testing.T, product string, term catalog.Term, token string) uuid.UUID {
	t.Helper()
	p, err := w.catalog.Product(product)
	if err != nil {
		t.Fatal(err)
	}
	store, err := w.catalog.Storefront("US")
	if err != nil {
		t.Fatal(err)
	}
	priced := term
	if term == catalog.Trial {
		priced = catalog.Annual
	}
	price, err := w.catalog.Price(product, priced, money.USD)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	key, serial := mustKey(t), mustSerial(t)
	created, err := subscription.NewCreated(id, p, term, catalog.Platform{}, key, serial, w.clock.Now(), policy.Default(),
		subscription.Origin{OrderID: uuid.New(), Storefront: store, AutoRenew: true, Price: price, PaymentToken: token})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.subs.Handle(context.Background(), eventstore.StreamID(subscription.StreamName(id)), subscription.Create{Created: created},
		eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorSystem, ActorID: "test"}}); err != nil {
		t.Fatal(err)
	}
	return id
}

// load folds a subscription's stream.
func (w *world) load(t *testing.T, id uuid.UUID) subscription.Subscription {
	t.Helper()
	s, _, err := w.subs.Load(context.Background(), eventstore.StreamID(subscription.StreamName(id)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// records reads a subscription's events, in order.
func (w *world) records(t *testing.T, id uuid.UUID) []eventstore.RecordedEvent {
	t.Helper()
	recs, err := w.store.ReadStream(context.Background(), eventstore.StreamID(subscription.StreamName(id)), eventstore.ReadStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// eventTypes lists the types of a subscription's events, in order.
func (w *world) eventTypes(t *testing.T, id uuid.UUID) []string {
	t.Helper()
	recs := w.records(t, id)
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Type
	}
	return out
}

// settle waits until the projections have applied every event appended so
// far.
func (w *world) settle(t *testing.T) {
	t.Helper()
	cp, err := w.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.runner.WaitFor(ctx, cp); err != nil {
		t.Fatal(err)
	}
}

func mustKey(t *testing.T) subscription.ProductKey {
	t.Helper()
	k, err := subscription.NewProductKey(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSerial(t *testing.T) subscription.SerialNumber {
	t.Helper()
	s, err := subscription.NewSerialNumber(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
