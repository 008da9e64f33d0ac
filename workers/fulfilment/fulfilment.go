// Package fulfilment delivers paid orders: one subscription, product key and
// serial number per seat pack bought (PRD-4), registered at once in the
// account the order is saved in (KEY-4, ORD-2). It is also the process
// manager of the order's reactions across streams (DESIGN §3): a saved order
// registers its subscriptions (ORD-3), a disowned one turns their automatic
// renewal off (ORD-4).
//
// Every step is idempotent: subscription ids derive from the order id, line
// and unit, commands carry ids, so the API (which fulfils at once) and the
// process manager (which finishes what a crash left) may both run a step,
// in any order, any number of times, and each subscription exists once.
package fulfilment

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/order"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
)

// CheckpointName is the process manager's checkpoint in the event log.
const CheckpointName = "fulfilment"

// Config configures a Fulfiller.
type Config struct {
	// Store is the event log. Required.
	Store *eventstore.Store
	// Types encodes and decodes the events. Required.
	Types *eventstore.EventTypes
	// Catalog describes the products bought. Required.
	Catalog *catalog.Catalog
	// Clock gives each command its instant. Required.
	Clock clock.Clock
	// Policy is passed to every decision.
	Policy policy.Policy
	// Random draws product keys and serial numbers. Default crypto/rand.Reader.
	Random io.Reader
	// PollInterval is the process manager's polling floor. Default 500ms.
	PollInterval time.Duration
	// RetryDelay is how long the process manager waits after a failure
	// before it resumes from its checkpoint. Default 1s.
	RetryDelay time.Duration
	// Logger receives the process manager's failures. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Random == nil {
		c.Random = rand.Reader
	}
	if c.PollInterval == 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config the fulfiller cannot run with.
func (c Config) Validate() error {
	switch {
	case c.Store == nil || c.Types == nil || c.Catalog == nil || c.Clock == nil:
		return errors.New("fulfilment config: Store, Types, Catalog and Clock are required")
	case c.PollInterval < 0 || c.RetryDelay < 0:
		return errors.New("fulfilment config: PollInterval and RetryDelay must not be negative")
	}
	return nil
}

// Fulfiller runs the fulfilment steps and the process manager. It is safe
// for concurrent use, also by several processes.
type Fulfiller struct {
	cfg    Config
	orders *eventstore.CommandHandler[order.Order, order.Command]
	subs   *eventstore.CommandHandler[subscription.Subscription, subscription.Command]
}

// New returns a fulfiller.
func New(cfg Config) (*Fulfiller, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("fulfilment: invalid config: %w", err)
	}
	hc := eventstore.HandlerConfig{Store: cfg.Store, Types: cfg.Types, Clock: cfg.Clock, Policy: cfg.Policy}
	orders, err := eventstore.NewCommandHandler(order.Decider, hc)
	if err != nil {
		return nil, err
	}
	subs, err := eventstore.NewCommandHandler(subscription.Decider, hc)
	if err != nil {
		return nil, err
	}
	return &Fulfiller{cfg: cfg, orders: orders, subs: subs}, nil
}

// OrderStream is the stream of an order.
func OrderStream(id uuid.UUID) eventstore.StreamID {
	return eventstore.StreamID("order-" + id.String())
}

// SubscriptionStream is the stream of a subscription.
func SubscriptionStream(id uuid.UUID) eventstore.StreamID {
	return eventstore.StreamID(subscription.StreamName(id))
}

// SubscriptionID is the id of the unit-th subscription (from 0) that line
// of the order yields: derived, not drawn, so a retried fulfilment finds
// what an earlier attempt created instead of creating it again.
func SubscriptionID(orderID uuid.UUID, line, unit int) uuid.UUID {
	return uuid.NewSHA1(orderID, fmt.Appendf(nil, "line/%d/unit/%d", line, unit))
}

// Result is what a step did: the order's state afterwards, and the last
// append it made (zero when it made none), for a caller that waits for the
// read models.
type Result struct {
	Order order.Order
	Last  eventstore.AppendResult
}

func (r *Result) appended(a eventstore.AppendResult) {
	if a.LastPosition > 0 && a.LastPosition >= r.Last.LastPosition {
		r.Last = a
	}
}

// system is the metadata of the fulfiller's commands (AUD-1): caused by the
// order.
func system(orderID uuid.UUID, commandID string) eventstore.CommandMeta {
	return eventstore.CommandMeta{CommandID: commandID, Metadata: eventstore.Metadata{
		ActorKind: eventstore.ActorSystem, ActorID: "fulfilment", CorrelationID: orderID.String()}}
}

// Fulfil delivers a paid order: it creates the subscription, key and
// serial number of every seat pack bought (those that exist already are
// kept), records them on the order (order.Fulfilled), and registers them in
// the account the order is saved in. It is idempotent, and finishes what an
// interrupted earlier call began. Errors: order.ErrNotFound for no such
// order, order.ErrNotPaid for an order that is not paid.
func (f *Fulfiller) Fulfil(ctx context.Context, orderID uuid.UUID) (Result, error) {
	return f.fulfil(ctx, orderID, systemActor(orderID))
}

// FulfilAs is Fulfil on behalf of actor: a support agent's free order
// (AGT-1) records the agent, its reason and log code on every event the
// fulfilment causes, correlated with the order unless actor names another
// correlation (a conversion's).
func (f *Fulfiller) FulfilAs(ctx context.Context, orderID uuid.UUID, actor eventstore.Metadata) (Result, error) {
	if actor.CorrelationID == "" {
		actor.CorrelationID = orderID.String()
	}
	return f.fulfil(ctx, orderID, func(commandID string) eventstore.CommandMeta {
		return eventstore.CommandMeta{CommandID: commandID, Metadata: actor}
	})
}

// actor gives the metadata of a fulfilment command with this id.
type actor func(commandID string) eventstore.CommandMeta

// systemActor is the fulfiller acting on its own, caused by the order.
func systemActor(orderID uuid.UUID) actor {
	return func(commandID string) eventstore.CommandMeta { return system(orderID, commandID) }
}

func (f *Fulfiller) fulfil(ctx context.Context, orderID uuid.UUID, as actor) (Result, error) {
	o, _, err := f.orders.Load(ctx, OrderStream(orderID))
	if err != nil {
		return Result{}, err
	}
	res := Result{Order: o}
	switch {
	case !o.Exists():
		return res, order.ErrNotFound
	case !o.Paid():
		return res, order.ErrNotPaid
	}
	if len(o.Items()) == 0 {
		var items []order.Item
		p := o.Placement()
		for li, line := range p.Lines {
			for unit := range line.Quantity {
				it, a, err := f.createItem(ctx, o, li, unit, as)
				if err != nil {
					return res, err
				}
				res.appended(a)
				items = append(items, it)
			}
		}
		out, err := f.orders.Handle(ctx, OrderStream(orderID), order.Fulfill{Items: items}, as("fulfil/"+orderID.String()))
		if err != nil {
			return res, err
		}
		res.Order = out.State
		res.appended(out.Append)
	}
	if res.Order.SavedTo() != uuid.Nil {
		reg, err := f.registerItems(ctx, res.Order, as)
		res.appended(reg.Last)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// SaveInAccount registers the subscriptions of an order saved in an account
// (ORD-2, ORD-3) in that account; non-registrable products stay reachable
// through the order only (PRD-5). It is idempotent; an order not saved, or
// not yet fulfilled, registers nothing (Fulfil does it then).
func (f *Fulfiller) SaveInAccount(ctx context.Context, orderID uuid.UUID) (Result, error) {
	o, _, err := f.orders.Load(ctx, OrderStream(orderID))
	if err != nil {
		return Result{}, err
	}
	if o.SavedTo() == uuid.Nil {
		return Result{Order: o}, nil
	}
	return f.registerItems(ctx, o, systemActor(orderID))
}

func (f *Fulfiller) registerItems(ctx context.Context, o order.Order, as actor) (Result, error) {
	res := Result{Order: o}
	id := o.Placement().OrderID
	for _, it := range o.Items() {
		out, err := f.subs.Handle(ctx, SubscriptionStream(it.SubscriptionID),
			subscription.RegisterFromOrder{AccountID: o.SavedTo(), OrderID: id},
			as("register/"+it.SubscriptionID.String()+"/"+o.SavedTo().String()))
		if err != nil {
			return res, fmt.Errorf("fulfilment: register %s of order %s: %w", it.SubscriptionID, id, err)
		}
		res.appended(out.Append)
	}
	return res, nil
}

// StopAutoRenewal turns automatic renewal off for every subscription of an
// order its buyer's account disowned (ORD-4). It is idempotent.
func (f *Fulfiller) StopAutoRenewal(ctx context.Context, orderID uuid.UUID) (Result, error) {
	o, _, err := f.orders.Load(ctx, OrderStream(orderID))
	if err != nil {
		return Result{}, err
	}
	res := Result{Order: o}
	if !o.Disowned() {
		return res, nil
	}
	for _, it := range o.Items() {
		out, err := f.subs.Handle(ctx, SubscriptionStream(it.SubscriptionID), subscription.StopAutoRenewalForOrder{OrderID: orderID, AccountID: o.DisownedBy()},
			system(orderID, "disown/"+it.SubscriptionID.String()))
		if err != nil {
			return res, fmt.Errorf("fulfilment: stop renewal of %s (order %s): %w", it.SubscriptionID, orderID, err)
		}
		res.appended(out.Append)
	}
	return res, nil
}

// maxDraws bounds the redraws of a key or serial number that another
// subscription holds already: with 25^25 keys, a second collision in a row
// means a broken random source.
const maxDraws = 5

// createItem creates the unit-th subscription of line li of the order, or
// finds it when an earlier attempt created it.
func (f *Fulfiller) createItem(ctx context.Context, o order.Order, li, unit int, as actor) (order.Item, eventstore.AppendResult, error) {
	p := o.Placement()
	id := SubscriptionID(p.OrderID, li, unit)
	stream := SubscriptionStream(id)
	for range maxDraws {
		s, _, err := f.subs.Load(ctx, stream)
		if err != nil {
			return order.Item{}, eventstore.AppendResult{}, err
		}
		if s.Exists() {
			return itemOf(li, s.Facts()), eventstore.AppendResult{}, nil
		}
		created, err := f.newSubscription(o, li, id)
		if err != nil {
			return order.Item{}, eventstore.AppendResult{}, err
		}
		out, err := f.subs.Handle(ctx, stream, subscription.Create{Created: created}, as("create/"+id.String()))
		if err == nil {
			return itemOf(li, out.State.Facts()), out.Append, nil
		}
		if !collided(err) {
			return order.Item{}, eventstore.AppendResult{}, err
		}
	}
	return order.Item{}, eventstore.AppendResult{}, fmt.Errorf("fulfilment: subscription %s of order %s: no free key after %d draws", id, p.OrderID, maxDraws)
}

// collided reports whether a Create failed because another writer came
// first: a key or serial number drawn twice (draw again), or a concurrent
// fulfilment that created the subscription (the decider's conflict, or the
// stream's): either way, look again.
func collided(err error) bool {
	var taken *eventstore.ReservationConflictError
	var stream *eventstore.ConflictError
	c, ok := errors.AsType[interface {
		error
		Conflict() bool
	}](err)
	return errors.As(err, &taken) || errors.As(err, &stream) || (ok && c.Conflict())
}

func itemOf(line int, c subscription.Created) order.Item {
	return order.Item{SubscriptionID: c.SubscriptionID, Line: line, Product: c.Product, Key: c.Key, Serial: c.Serial, Registrable: c.Registrable}
}

// newSubscription is the subscription line li of the order yields, with a
// fresh key and serial number. The term starts when the order was placed.
func (f *Fulfiller) newSubscription(o order.Order, li int, id uuid.UUID) (subscription.Created, error) {
	p := o.Placement()
	line := p.Lines[li]
	product, err := f.cfg.Catalog.Product(line.Product)
	if err != nil {
		return subscription.Created{}, err
	}
	term, err := catalog.ParseTerm(line.Term)
	if err != nil {
		return subscription.Created{}, err
	}
	platform, err := catalog.ParsePlatform(line.Platform)
	if err != nil {
		return subscription.Created{}, err
	}
	store, err := f.cfg.Catalog.Storefront(p.Storefront)
	if err != nil {
		return subscription.Created{}, err
	}
	key, err := subscription.NewProductKey(f.cfg.Random)
	if err != nil {
		return subscription.Created{}, err
	}
	serial, err := subscription.NewSerialNumber(f.cfg.Random)
	if err != nil {
		return subscription.Created{}, err
	}
	return subscription.NewCreated(id, product, term, platform, key, serial, p.PlacedAt, f.cfg.Policy,
		// An order disowned before it was paid (ORD-4) yields subscriptions
		// that do not renew, as its disowning turned off those it had.
		subscription.Origin{OrderID: p.OrderID, Storefront: store, AutoRenew: (term.Paid() || term == catalog.Trial) && !o.Disowned() && !p.NoAutoRenewal,
			Price: renewalPrice(line), PaymentToken: p.PaymentToken, PaymentCard: p.PaymentCard, InitialChargeID: o.ChargeID(), InitialCharge: line.UnitPrice})
}

// renewalPrice is what automatic renewal charges per term for a line: its
// renewal price (a trial's year) or its unit price.
func renewalPrice(line order.Line) money.Money {
	if !line.RenewalPrice.IsZero() {
		return line.RenewalPrice
	}
	return line.UnitPrice
}

// Run is the process manager: it follows the log under CheckpointName and,
// for every paid order, fulfils it (a no-op when the API did already); for
// every saved order, registers its subscriptions in the account; for every
// disowned order, turns their automatic renewal off (ORD-4). It runs until
// ctx is done; a failure is logged and the manager resumes from its
// checkpoint after RetryDelay, so a crash between steps is finished by the
// next run.
func (f *Fulfiller) Run(ctx context.Context) {
	cfg := eventstore.SubscriptionConfig{Name: CheckpointName, PollInterval: f.cfg.PollInterval, Logger: f.cfg.Logger}
	for ctx.Err() == nil {
		err := f.cfg.Store.Subscribe(ctx, cfg, f.react)
		if ctx.Err() != nil {
			return
		}
		f.cfg.Logger.Error("fulfilment failed; resuming from its checkpoint", "err", err, "retry_in", f.cfg.RetryDelay)
		select {
		case <-ctx.Done():
		case <-time.After(f.cfg.RetryDelay):
		}
	}
}

// react handles a batch of the log. Its commands go through the pool, not
// tx: they are idempotent, so a batch applied again after a crash (its
// checkpoint not saved) repeats nothing.
func (f *Fulfiller) react(ctx context.Context, _ pgx.Tx, recs []eventstore.RecordedEvent) error {
	for _, rec := range recs {
		if rec.StreamID.Category() != "order" {
			continue
		}
		id, err := uuid.Parse(string(rec.StreamID)[len("order-"):])
		if err != nil {
			return fmt.Errorf("fulfilment: stream %s: %w", rec.StreamID, err)
		}
		e, err := f.cfg.Types.Decode(rec)
		if err != nil {
			return err
		}
		switch e.(type) {
		case order.Paid:
			_, err = f.Fulfil(ctx, id)
		case order.Saved:
			_, err = f.SaveInAccount(ctx, id)
		case order.Disowned:
			_, err = f.StopAutoRenewal(ctx, id)
		}
		if err != nil {
			return fmt.Errorf("fulfilment: %s of order %s: %w", rec.Type, id, err)
		}
	}
	return nil
}
