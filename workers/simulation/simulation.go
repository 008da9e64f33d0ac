// Package simulation moves a population of customers through a year on
// the simulated clock with the engine's real workers (TIM-2): the renewal
// worker, the gateway sandbox, the e-mail outbox and mail sender, the
// projections. It builds the population from a seed, plays the customers'
// actions at their instants (opting out of trials, turning renewal off,
// cancelling, asking for refunds, updating expired cards), advances the
// clock through the cron schedule's ticks in between, and ends with a
// report whose invariant checks say whether the engine kept its rules.
// The same seed gives the same report.
package simulation

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/events"
	"github.com/subs-engine/subs/domain/order"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/projections"
	"github.com/subs-engine/subs/workers/concurrent"
	"github.com/subs-engine/subs/workers/gateway"
	"github.com/subs-engine/subs/workers/mail"
	"github.com/subs-engine/subs/workers/outbox"
	"github.com/subs-engine/subs/workers/renewal"
	"github.com/subs-engine/subs/workers/schedule"
)

// Config sets the population and the year. Zero fields take the defaults
// their comments name.
type Config struct {
	// Pool is a migrated database of the simulation's own. Required.
	Pool *pgxpool.Pool
	// Catalog prices the products. Required.
	Catalog *catalog.Catalog
	// Mail receives the e-mails. Required.
	Mail mail.Sender
	// Customers is the population's size. Default 10,000.
	Customers int
	// Days is how long the simulated year lasts. Default 365.
	Days int
	// Seed draws the population and its behaviour. Default 1.
	Seed uint64
	// Start is the simulated clock's first instant. Default 2027-01-01.
	Start time.Time
	// Schedule is the cron spec of the worker runs on the simulated clock
	// besides the runs at due instants. Default "@daily".
	Schedule string
	// Resolution batches the due instants: the workers run at the due
	// instants rounded up to it, so that the work of an hour is one run
	// and an hour without work costs nothing. Default 1 hour.
	Resolution time.Duration
	// Shares of the population, from 0 to 1: MonthlyShare on monthly plans
	// (default 0.3), TrialShare starting with a trial (default 0.2); the
	// rest annual. OptOutShare of trials opt out (default 0.3); CancelShare
	// of plans are cancelled (default 0.1); RefundShare of annual renewals
	// ask for a refund (default 0.05); DeclinedCardShare have a card every
	// charge of which is declined (default 0.03); ExpiringCardShare have a
	// card that expires during the year (default 0.05), and UpdateCardShare
	// of those update it after the decline e-mail (default 0.5). A negative
	// share means none.
	MonthlyShare, TrialShare, OptOutShare, CancelShare, RefundShare float64
	DeclinedCardShare, ExpiringCardShare, UpdateCardShare           float64
	// Policy is the lifecycle's policy; unset fields take the defaults.
	Policy policy.Policy
	// Progress, when set, is called after each simulated day.
	Progress func(day, days int)
	// Logger receives the workers' logs. Default: discard.
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	setInt := func(f *int, v int) {
		if *f == 0 {
			*f = v
		}
	}
	setShare := func(f *float64, v float64) {
		switch {
		case *f == 0:
			*f = v
		case *f < 0:
			*f = 0
		}
	}
	setInt(&c.Customers, 10_000)
	setInt(&c.Days, 365)
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if c.Schedule == "" {
		c.Schedule = "@daily"
	}
	if c.Resolution <= 0 {
		c.Resolution = time.Hour
	}
	setShare(&c.MonthlyShare, 0.3)
	setShare(&c.TrialShare, 0.2)
	setShare(&c.OptOutShare, 0.3)
	setShare(&c.CancelShare, 0.1)
	setShare(&c.RefundShare, 0.05)
	setShare(&c.DeclinedCardShare, 0.03)
	setShare(&c.ExpiringCardShare, 0.05)
	setShare(&c.UpdateCardShare, 0.5)
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p, err := policy.New(c.Policy)
	if err != nil {
		return err
	}
	c.Policy = p
	switch {
	case c.Pool == nil:
		return errors.New("simulation: Config.Pool is required")
	case c.Catalog == nil:
		return errors.New("simulation: Config.Catalog is required")
	case c.Mail == nil:
		return errors.New("simulation: Config.Mail is required")
	case c.Customers < 0 || c.Days < 0:
		return errors.New("simulation: customers and days must be positive")
	case c.MonthlyShare+c.TrialShare > 1 || c.DeclinedCardShare+c.ExpiringCardShare > 1:
		return errors.New("simulation: the shares of terms and of cards each add up to at most 1")
	}
	return nil
}

// sim is one run.
type sim struct {
	cfg       Config
	clock     *clock.Simulated
	store     *eventstore.Store
	types     *eventstore.EventTypes
	runner    *projections.Runner // the read models the workers read
	trailer   *projections.Runner // the others
	relayed   relay               // runner's batches, for trailer
	trail     *sideJob            // catches the others up
	mailing   *sideJob            // drains the outbox
	gateway   *gateway.Sandbox
	renewals  *renewal.Worker
	outboxes  [2]*outbox.Worker
	accounts  *eventstore.CommandHandler[account.Account, account.Command]
	subs      *eventstore.CommandHandler[subscription.Subscription, subscription.Command]
	customers []customer
	ids       []uuid.UUID // subscription of customer n
	acctIDs   []uuid.UUID // account of customer n
	refusals  map[string]int
	sends     *sends // the sender, counting what it delivered
	// lagging is what the renewal runs and the customers' actions appended
	// since the read models the workers read were last caught up: the next
	// run catches them up first (one catch-up a run), and the schedule's
	// next stop comes no later than the earliest instant those appends
	// made due (their states' NextDue), which the schedule's table lacks
	// meanwhile.
	lagging struct {
		last eventstore.Checkpoint
		due  time.Time // zero: none
	}
}

// Run builds the population, moves it through the year and returns the
// report. The database must be empty of events.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return Report{}, err
	}
	defer collectLessOften()()
	s := &sim{cfg: cfg, clock: clock.NewSimulated(cfg.Start), types: eventstore.NewEventTypes(), refusals: map[string]int{}, sends: newSends(cfg.Mail)}
	s.cfg.Mail = s.sends
	s.types.Register(1, events.All()...)
	s.store = eventstore.New(cfg.Pool, eventstore.Config{})
	if err := s.open(ctx); err != nil {
		return Report{}, err
	}
	s.trail.start(ctx)
	defer s.trail.close()
	s.mailing.start(ctx)
	defer s.mailing.close()

	began := time.Now()
	customers, actions, err := population(cfg, cfg.Catalog)
	if err != nil {
		return Report{}, err
	}
	s.customers = customers
	if err := s.build(ctx); err != nil {
		return Report{}, err
	}
	// The outbox is not a job of the schedule: it sends on the side, as it
	// runs beside the renewal worker in a deployment, once a day (below).
	sched, err := schedule.New(schedule.Config{Clock: s.clock, SimulatedSpec: cfg.Schedule, Logger: cfg.Logger, Jobs: []schedule.Job{
		{Name: "renewals", Run: s.runRenewals},
	}, DueAt: s.dueAt})
	if err != nil {
		return Report{}, err
	}
	// Work due when the year starts (the notices of subscriptions bought
	// before it) runs at its first instant: the schedule's stops are the
	// due instants after the clock's (TIM-2).
	if err := s.runRenewals(ctx, cfg.Start); err != nil {
		return Report{}, err
	}
	end := cfg.Start.AddDate(0, 0, cfg.Days)
	next := 0
	for day := 1; day <= cfg.Days; day++ {
		dayEnd := cfg.Start.AddDate(0, 0, day)
		for ; next < len(actions) && actions[next].at.Before(dayEnd); next++ {
			if _, err := sched.AdvanceTo(ctx, actions[next].at); err != nil {
				return Report{}, err
			}
			if err := s.act(ctx, actions[next]); err != nil {
				return Report{}, err
			}
		}
		if _, err := sched.AdvanceTo(ctx, dayEnd); err != nil {
			return Report{}, err
		}
		// The day's e-mails go out together. Drained after every batch the
		// read models applied, the outbox claimed some 30 messages at a
		// time (27,000 claims in the 100,000-customer year, each with its
		// round trips and its records' append); a day at a time, 180, and
		// its sends took a third less time.
		s.mailing.poke()
		if err := errors.Join(s.trail.failed(), s.mailing.failed()); err != nil {
			return Report{}, err
		}
		if cfg.Progress != nil {
			cfg.Progress(day, cfg.Days)
		}
	}
	// Every read model up to date, the last e-mails, then their records
	// in the read models.
	if err := s.settle(ctx); err != nil {
		return Report{}, err
	}
	if err := s.trail.finish(ctx); err != nil {
		return Report{}, err
	}
	if err := s.trailToHead(ctx); err != nil {
		return Report{}, err
	}
	if err := s.mailing.finish(ctx); err != nil {
		return Report{}, err
	}
	if err := s.settle(ctx); err != nil {
		return Report{}, err
	}
	if err := s.trailToHead(ctx); err != nil {
		return Report{}, err
	}
	r, err := s.report(ctx, end)
	r.Elapsed = time.Since(began)
	return r, err
}

// open builds the engine's parts on the simulation's database and clock.
func (s *sim) open(ctx context.Context) error {
	var err error
	// The read models the workers read are brought up to date when they
	// need them (Runner.CatchUp), not followed live: a run's events are one
	// batch. The others trail behind on the side, applying the same
	// batches (relay), and the outbox sends what its queue holds at the
	// end of each day.
	var read, others []projections.Projection
	for _, p := range projections.AllKeeping(max(s.cfg.Customers, 1)) {
		if readByWorkers(p) {
			read = append(read, p)
		} else {
			others = append(others, p)
		}
	}
	if s.runner, err = projections.NewRunner(projections.RunnerConfig{Store: s.store, Types: s.types, Projections: read, Logger: s.cfg.Logger,
		Feed: func(b projections.Batch) {
			s.relayed.put(b)
			s.trail.poke()
		}}); err != nil {
		return err
	}
	if s.trailer, err = projections.NewRunner(projections.RunnerConfig{Store: s.store, Types: s.types, Projections: others, Logger: s.cfg.Logger}); err != nil {
		return err
	}
	s.trail = newSideJob(applyRelayed(&s.relayed, s.trailer))
	if s.gateway, err = gateway.NewSandbox(ctx, s.cfg.Pool, gateway.SandboxConfig{Clock: s.clock}); err != nil {
		return err
	}
	hc := eventstore.HandlerConfig{Store: s.store, Types: s.types, Clock: s.clock, Policy: s.cfg.Policy}
	// One handler of account commands and one of subscription commands,
	// each keeping every customer's state, for the renewals, the e-mails
	// (whose every send reads its account) and the customers' actions:
	// every event of their streams is appended through them, so the states
	// they keep are current (SoleWriter), and a load reads nothing.
	kept := hc
	kept.CacheSize, kept.SoleWriter = max(s.cfg.Customers, 1), true
	if s.accounts, err = eventstore.NewCommandHandler(account.Decider, kept); err != nil {
		return err
	}
	if s.subs, err = eventstore.NewCommandHandler(subscription.Decider, kept); err != nil {
		return err
	}
	orders, err := eventstore.NewCommandHandler(order.Decider, hc)
	if err != nil {
		return err
	}
	if s.renewals, err = renewal.New(renewal.Config{Store: s.store, Types: s.types, Gateway: s.gateway, Policy: s.cfg.Policy,
		Clock: s.clock, Logger: s.cfg.Logger, Subscriptions: s.subs, Accounts: s.accounts}); err != nil {
		return err
	}
	templates, err := mail.NewTemplates()
	if err != nil {
		return err
	}
	secret := make([]byte, 32)
	if _, err := crand.Read(secret); err != nil {
		return err
	}
	// The outbox claims as many messages at once as the renewal worker
	// claims subscriptions: a claimed batch's sends are recorded in one
	// round trip. Two workers drain it together, as two processes would
	// (their claims skip each other's rows): while one waits for the
	// database, the other renders and sends.
	for i := range s.outboxes {
		if s.outboxes[i], err = outbox.New(outbox.Config{Store: s.store, Accounts: s.accounts, Orders: orders, Subscriptions: s.subs, Sender: s.cfg.Mail,
			Templates: templates, BatchSize: renewal.DefaultBatchSize,
			Clock: s.clock, LeaseClock: machineClock{}, Policy: s.cfg.Policy, SecretKey: secret, PublicURL: "https://account.example.com", Logger: s.cfg.Logger}); err != nil {
			return err
		}
	}
	s.mailing = newSideJob(func(ctx context.Context) error {
		errs := make([]error, len(s.outboxes))
		concurrent.Each(len(s.outboxes), len(s.outboxes), func(i int) {
			_, errs[i] = s.outboxes[i].Drain(ctx)
		})
		return errors.Join(errs...)
	})
	return nil
}

// machineClock measures the outbox's leases: it sends on the side while
// the year's clock moves on, and a lease is about the time a run takes.
type machineClock struct{}

func (machineClock) Now() time.Time { return time.Now().UTC() }

// dueAt is the next due instant of the schedule after after, or of a
// subscription a customer acted on since the last catch-up, rounded up to
// the resolution.
func (s *sim) dueAt(ctx context.Context, after time.Time) (time.Time, bool, error) {
	at, ok, err := renewal.NextDue(ctx, s.cfg.Pool, after)
	if err != nil {
		return at, ok, err
	}
	if due := s.lagging.due; due.After(after) && (!ok || due.Before(at)) {
		at, ok = due, true
	}
	if !ok {
		return at, ok, nil
	}
	if r := at.Truncate(s.cfg.Resolution); r.Before(at) {
		at = r.Add(s.cfg.Resolution)
	}
	return at, true, nil
}

// runRenewals is the renewal job: the read models brought up to date with
// what was appended since the last run (lagging), then the run, whose
// appends the next run's catch-up takes with the customers' actions in
// between: a catch-up a run, not two. Meanwhile the schedule stops no
// later than where the run left a subscription due (Result.NextDue).
func (s *sim) runRenewals(ctx context.Context, now time.Time) error {
	if s.lagging.last != (eventstore.Checkpoint{}) {
		if err := s.catchUp(ctx, s.lagging.last); err != nil {
			return err
		}
	}
	res, err := s.renewals.Run(ctx, now)
	if err != nil {
		return err
	}
	if res.Failed > 0 {
		return fmt.Errorf("simulation: %d renewal visits failed at %s", res.Failed, now.Format(time.RFC3339))
	}
	s.lag(res.Last, res.NextDue)
	return nil
}

// lag notes that the read models the workers read lack the log up to last
// (none when zero), by whose states a subscription falls due at due (none
// when zero).
func (s *sim) lag(last eventstore.Checkpoint, due time.Time) {
	if !s.lagging.last.Reached(last) {
		s.lagging.last = last
	}
	if !due.IsZero() && (s.lagging.due.IsZero() || due.Before(s.lagging.due)) {
		s.lagging.due = due
	}
}

// catchUp brings the read models the workers read up to date with cp;
// the others, the outbox's queue among them, follow on the side with the
// same batches (relay).
func (s *sim) catchUp(ctx context.Context, cp eventstore.Checkpoint) error {
	if err := s.runner.CatchUp(ctx, cp); err != nil {
		return err
	}
	if cp.Reached(s.lagging.last) {
		s.lagging.last, s.lagging.due = eventstore.Checkpoint{}, time.Time{}
	}
	return nil
}

// trailToHead brings the read models that trail behind up to date with
// the whole log, once their side job is over: the batches relayed, then
// what was not (maxRelayed).
func (s *sim) trailToHead(ctx context.Context) error {
	if err := applyRelayed(&s.relayed, s.trailer)(ctx); err != nil {
		return err
	}
	return catchUpToHead(s.store, s.trailer)(ctx)
}

// settle brings the read models the workers read up to date with the whole
// log.
func (s *sim) settle(ctx context.Context) error {
	head, err := s.store.Head(ctx)
	if err != nil {
		return err
	}
	return s.catchUp(ctx, head)
}

var system = eventstore.Metadata{ActorKind: eventstore.ActorSystem, ActorID: "simulation"}

// buildChunk is how many customers build creates at once: their commands
// of each kind are appended in one round trip (HandleBatch).
const buildChunk = 250

// build creates every customer's account, billing information and
// subscription, a chunk of customers at a time, two chunks at once.
func (s *sim) build(ctx context.Context) error {
	s.ids = make([]uuid.UUID, len(s.customers))
	s.acctIDs = make([]uuid.UUID, len(s.customers))
	for i := range s.customers {
		s.ids[i] = uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "simulation/%d/subscription/%d", s.cfg.Seed, i))
		s.acctIDs[i] = uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "simulation/%d/account/%d", s.cfg.Seed, i))
	}
	work := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for first := range work {
				if err := s.buildChunk(ctx, first, min(first+buildChunk, len(s.customers))); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for first := 0; first < len(s.customers); first += buildChunk {
		select {
		case work <- first:
		case err := <-errs:
			close(work)
			wg.Wait()
			return err
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	return s.settle(ctx)
}

// buildChunk creates customers first to end (excluded): their accounts,
// their cards (tokenized at the gateway, several at once), their
// subscriptions, each kind of command in one round trip.
func (s *sim) buildChunk(ctx context.Context, first, end int) error {
	n := end - first
	accounts := make([]eventstore.BatchCommand[account.Account, account.Command], n)
	subs := make([]eventstore.BatchCommand[subscription.Subscription, subscription.Command], n)
	for i := range n {
		c := first + i
		register, create, err := s.newCustomer(c)
		if err != nil {
			return fmt.Errorf("simulation: customer %d: %w", c, err)
		}
		accounts[i] = eventstore.BatchCommand[account.Account, account.Command]{Stream: eventstore.StreamID(account.StreamName(s.acctIDs[c])),
			Cmd: register, Meta: eventstore.CommandMeta{Metadata: system}}
		subs[i] = eventstore.BatchCommand[subscription.Subscription, subscription.Command]{Stream: eventstore.StreamID(subscription.StreamName(s.ids[c])),
			Cmd: create, Meta: eventstore.CommandMeta{Metadata: system}}
	}
	if err := handleAll(ctx, s.accounts, accounts, first); err != nil {
		return err
	}
	methods := make([]payment.PaymentMethod, n)
	if err := s.tokenizeAll(ctx, first, methods); err != nil {
		return err
	}
	for i := range n {
		c := first + i
		country, err := account.ParseCountry(s.customers[c].storefront)
		if err != nil {
			return err
		}
		accounts[i].Cmd = account.UpdateBilling{Country: country, Method: methods[i]}
		accounts[i].Meta = eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorCustomer, ActorID: s.acctIDs[c].String()}}
	}
	if err := handleAll(ctx, s.accounts, accounts, first); err != nil {
		return err
	}
	if err := handleAll(ctx, s.subs, subs, first); err != nil {
		return err
	}
	for i := range subs {
		subs[i].Cmd = subscription.Register{AccountID: s.acctIDs[first+i]}
	}
	return handleAll(ctx, s.subs, subs, first)
}

// handleAll handles cmds, the commands of customers first onwards, in one
// batch, and moves each command's From on to its outcome for the next.
func handleAll[S, C any](ctx context.Context, h *eventstore.CommandHandler[S, C], cmds []eventstore.BatchCommand[S, C], first int) error {
	for i, out := range h.HandleBatch(ctx, cmds) {
		if out.Err != nil {
			return fmt.Errorf("simulation: customer %d: %w", first+i, out.Err)
		}
		cmds[i].From = eventstore.Loaded[S]{State: out.State, Version: out.Append.LastVersion}
	}
	return nil
}

// newCustomer is customer i's sign-up and the creation of its
// subscription.
func (s *sim) newCustomer(i int) (account.Register, subscription.Create, error) {
	c := s.customers[i]
	store, err := s.cfg.Catalog.Storefront(c.storefront)
	if err != nil {
		return account.Register{}, subscription.Create{}, err
	}
	email, err := account.ParseEmail(fmt.Sprintf("customer%d@simulation.example", i))
	if err != nil {
		return account.Register{}, subscription.Create{}, err
	}
	name, _ := account.ParseName(fmt.Sprintf("Customer %d", i))
	country, err := account.ParseCountry(c.storefront)
	if err != nil {
		return account.Register{}, subscription.Create{}, err
	}
	register := account.Register{AccountID: s.acctIDs[i], Email: email, Name: name, Country: country, PasswordHash: "simulated: no password"}
	product, err := s.cfg.Catalog.Product(c.product)
	if err != nil {
		return account.Register{}, subscription.Create{}, err
	}
	priced := c.term
	if c.term == catalog.Trial {
		priced = catalog.Annual
	}
	price, err := s.cfg.Catalog.Price(c.product, priced, store.Currency())
	if err != nil {
		return account.Register{}, subscription.Create{}, err
	}
	key, err := subscription.NewProductKey(crand.Reader)
	if err != nil {
		return account.Register{}, subscription.Create{}, err
	}
	serial, err := subscription.NewSerialNumber(crand.Reader)
	if err != nil {
		return account.Register{}, subscription.Create{}, err
	}
	created, err := subscription.NewCreated(s.ids[i], product, c.term, catalog.Platform{}, key, serial, c.start, s.cfg.Policy,
		subscription.Origin{Storefront: store, AutoRenew: true, Price: price})
	return register, subscription.Create{Created: created}, err
}

// tokenizeAll tokenizes the cards of customers first onwards at the
// gateway, several at once, into methods.
func (s *sim) tokenizeAll(ctx context.Context, first int, methods []payment.PaymentMethod) error {
	errs := make([]error, len(methods))
	concurrent.Each(len(methods), 8, func(i int) {
		c := s.customers[first+i]
		methods[i], errs[i] = s.tokenize(ctx, first+i, c.card, c.cardExpiry)
	})
	return errors.Join(errs...)
}

// tokenize tokenizes customer i's card at the gateway.
func (s *sim) tokenize(ctx context.Context, i int, number string, expiry time.Time) (payment.PaymentMethod, error) {
	last := expiry.Add(-time.Nanosecond) // the card's last valid month
	card, err := payment.NewCard(number, "123", fmt.Sprintf("Customer %d", i), int(last.Month()), last.Year(), s.clock.Now())
	if err != nil {
		return payment.PaymentMethod{}, err
	}
	return s.gateway.TokenizeCard(ctx, card)
}

// updateCard tokenizes a card and makes it the account's billing method;
// it returns the checkpoint of the update.
func (s *sim) updateCard(ctx context.Context, i int, number string, expiry time.Time) (eventstore.Checkpoint, error) {
	var none eventstore.Checkpoint
	m, err := s.tokenize(ctx, i, number, expiry)
	if err != nil {
		return none, err
	}
	country, err := account.ParseCountry(s.customers[i].storefront)
	if err != nil {
		return none, err
	}
	res, err := s.accounts.Handle(ctx, eventstore.StreamID(account.StreamName(s.acctIDs[i])), account.UpdateBilling{Country: country, Method: m},
		eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorCustomer, ActorID: s.acctIDs[i].String()}})
	if err != nil {
		return none, err
	}
	return res.Append.Checkpoint(), nil
}

// act plays one customer action at the clock's instant. A refusal by the
// rules (a refund after its window) is counted, not an error.
func (s *sim) act(ctx context.Context, a action) error {
	id, acct := s.ids[a.customer], s.acctIDs[a.customer]
	stream := eventstore.StreamID(subscription.StreamName(id))
	meta := eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorCustomer, ActorID: acct.String()}}
	var cmd subscription.Command
	switch a.kind {
	case actUpdateCard:
		cp, err := s.updateCard(ctx, a.customer, goodCard, time.Date(2035, 12, 31, 0, 0, 0, 0, time.UTC))
		if err != nil {
			return err
		}
		return s.catchUp(ctx, cp)
	case actOptOut, actRenewalOff:
		cmd = subscription.SetAutoRenewal{AccountID: acct, On: false}
	case actCancel:
		cmd = subscription.Cancel{AccountID: acct}
	case actRefund:
		cmd = subscription.RequestRefund{AccountID: acct}
	}
	out, err := s.subs.Handle(ctx, stream, cmd, meta)
	var refused interface{ Conflict() bool }
	if errors.As(err, &refused) {
		s.refusals[a.kind.String()]++
		return nil
	}
	if err != nil {
		return fmt.Errorf("simulation: %s of customer %d: %w", a.kind, a.customer, err)
	}
	last := out.Append.Checkpoint()
	if _, pending := out.State.PendingRefund(); pending {
		settled, err := s.renewals.Settle(ctx, id)
		if err != nil {
			return err
		}
		if settled != (eventstore.Checkpoint{}) { // else the gateway made no refund yet
			last = settled
		}
		return s.catchUp(ctx, last)
	}
	// The read models wait for the next run: a catch-up per action cost
	// more than the action (a few actions fall between two runs).
	due, _ := out.State.NextDue(s.cfg.Policy)
	s.lag(last, due)
	return nil
}
