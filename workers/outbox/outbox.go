// Package outbox sends the customer e-mails the events call for (EML-1):
// it claims rows of the email_outbox read model, renders and sends each
// message, and records the send as an event on the account, the order or
// the subscription the e-mail is about. The sends of a run are recorded
// together once all of them went out: a crash in between resends the run's
// messages not recorded, with the same Message-IDs (EML-2); a recorded send
// is never repeated. A claimed message is leased to the run, which starts
// its sends only in the first half of the lease, so that another worker
// never sends a message a run is still sending.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/order"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/projections"
	"github.com/subs-engine/subs/workers/concurrent"
	"github.com/subs-engine/subs/workers/mail"
)

// Config configures a Worker.
type Config struct {
	// Store is the event log, whose database holds email_outbox. Required.
	Store *eventstore.Store
	// Accounts records the sends on the accounts. Required.
	Accounts *eventstore.CommandHandler[account.Account, account.Command]
	// Orders reads orders and records the sends of their e-mails, which go
	// to a buyer who may have no account (ORD-2). Required for the order
	// e-mails: without it they stay in the outbox.
	Orders *eventstore.CommandHandler[order.Order, order.Command]
	// Subscriptions reads subscriptions and records the sends of the
	// renewal lifecycle's e-mails (notices, reminders, receipts, declines,
	// refunds). Required for those e-mails: without it they stay in the
	// outbox.
	Subscriptions *eventstore.CommandHandler[subscription.Subscription, subscription.Command]
	// Sender delivers the messages. Required.
	Sender mail.Sender
	// Templates render the messages. Required.
	Templates *mail.Templates
	// Clock dates the messages. Required.
	Clock clock.Clock
	// LeaseClock measures the leases, which are about the time a run takes,
	// not the engine's business time: a process on a simulated clock gives
	// the system clock here, or advancing the simulated clock would end the
	// leases of the messages another drainer is sending (EML-2). Default:
	// Clock.
	LeaseClock clock.Clock
	// Policy gives the values the e-mails state (a reset link's validity).
	Policy policy.Policy
	// SecretKey derives reset tokens (account.ResetToken). Required.
	SecretKey []byte
	// PublicURL is where customers open links, e.g. https://account.example.com.
	// Default http://127.0.0.1:8080.
	PublicURL string
	// From is the sender address. Default "subs" <no-reply@subs.localhost>.
	From netmail.Address
	// Lease is how long a claimed message is left to one worker before
	// another may try it. A run starts a send only in the first half of its
	// lease: the messages its sends have not reached by then are left for
	// a later run, so that no send outlasts its lease while another worker
	// sends the same message (EML-2). Default 1 minute.
	Lease time.Duration
	// BatchSize is how many messages one run claims at most. Default 50.
	BatchSize int
	// Concurrency is how many messages of a run are sent at once: each send
	// waits on the store and the mail server, not on the processor.
	// Default 8.
	Concurrency int
	// Logger receives failures (never a message body). Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.PublicURL == "" {
		c.PublicURL = "http://127.0.0.1:8080"
	}
	if c.From.Address == "" {
		c.From = netmail.Address{Name: "subs", Address: "no-reply@" + mail.DefaultDomain}
	}
	if c.Lease == 0 {
		c.Lease = time.Minute
	}
	if c.LeaseClock == nil {
		c.LeaseClock = c.Clock
	}
	if c.BatchSize == 0 {
		c.BatchSize = 50
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config the worker cannot run with.
func (c Config) Validate() error {
	switch {
	case c.Store == nil || c.Accounts == nil || c.Sender == nil || c.Templates == nil || c.Clock == nil:
		return errors.New("outbox config: Store, Accounts, Sender, Templates and Clock are required")
	case c.BatchSize < 0 || c.Concurrency < 0:
		return errors.New("outbox config: BatchSize and Concurrency must not be negative")
	case len(c.SecretKey) < 32:
		return errors.New("outbox config: SecretKey must have at least 32 bytes")
	}
	_, err := newLinks(c.PublicURL)
	return err
}

// Worker drains the e-mail outbox. Several may run at once; one Worker's
// runs take turns, so that a run (a Drain's) that returns after another of
// its runs started has seen that run's messages sent: an advance of the test
// clock drains while the Worker's loop may be sending (TIM-2).
type Worker struct {
	cfg  Config
	runs sync.Mutex
	// recordEachSend: the sender may deliver a message again (SMTP), so
	// each send is recorded before the run goes on, and a crash repeats
	// at most the message in between (EML-2). A sender that delivers each
	// Message-ID once (the maildir) lets a run record its sends together.
	recordEachSend bool
	links          links
}

// links are the pages of PublicURL the e-mails point to, joined once.
type links struct {
	billing, orders, resetPassword string
}

func newLinks(publicURL string) (links, error) {
	var l links
	var err error
	for _, page := range []struct {
		to   *string
		elem []string
	}{
		{&l.billing, []string{"account", "billing"}},
		{&l.orders, []string{"account", "orders"}},
		{&l.resetPassword, []string{"reset-password"}},
	} {
		if *page.to, err = url.JoinPath(publicURL, page.elem...); err != nil {
			return links{}, fmt.Errorf("outbox config: PublicURL: %w", err)
		}
	}
	return l, nil
}

// New returns a worker.
func New(cfg Config) (*Worker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("outbox: invalid config: %w", err)
	}
	l, err := newLinks(cfg.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("outbox: invalid config: %w", err)
	}
	return &Worker{cfg: cfg, recordEachSend: !mail.DeliversOnce(cfg.Sender), links: l}, nil
}

// Run sends due messages every interval until ctx is done.
func (w *Worker) Run(ctx context.Context, interval time.Duration) {
	for {
		if _, err := w.RunOnce(ctx); err != nil && ctx.Err() == nil {
			w.cfg.Logger.Error("outbox run failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

type pending struct {
	cause     uuid.UUID
	kind      string
	accountID uuid.NullUUID // none for an e-mail about an order (its buyer may have no account)
	data      []byte
}

// RunOnce claims the messages due now, sends them (Concurrency at once),
// records the sends (one round trip per kind of aggregate), marks the sent
// ones in one statement, and returns how many went out. A message that
// fails stays in the outbox for a later run; one with no one to send it to
// (noRecipient) is dropped, never tried again. Two messages about one
// stream are recorded one after the other in the same round trip
// (HandleBatch decides the second on the state the first leaves).
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	_, sent, _, err := w.runOnce(ctx)
	return sent, err
}

// Drain runs RunOnce until every message due now has been tried: it stops
// after a run that claimed less than a full batch (none was left to
// claim) or settled none, neither sending nor dropping one (the rest fail
// for now; their leases hold them for a later run). It returns how many
// went out. A process that waits for its outbox to empty
// (workers/simulation) saves the last, empty claim.
func (w *Worker) Drain(ctx context.Context) (int, error) {
	total := 0
	for {
		claimed, sent, dropped, err := w.runOnce(ctx)
		total += sent
		if err != nil || claimed < w.cfg.BatchSize || sent+dropped == 0 {
			return total, err
		}
	}
}

// runOnce is RunOnce, which also returns how many messages it claimed and
// how many it dropped.
func (w *Worker) runOnce(ctx context.Context) (claimed, sent, dropped int, err error) {
	w.runs.Lock()
	defer w.runs.Unlock()
	leased := w.cfg.LeaseClock.Now()
	batch, err := w.claim(ctx, leased)
	if err != nil || len(batch) == 0 {
		return 0, 0, 0, err
	}
	sendBy := leased.Add(w.cfg.Lease / 2)
	// A send that outlasts the lease lets another worker claim the message
	// and send it again (EML-2): each send is cut off at three quarters of
	// the lease, which leaves the last quarter to record it.
	sendCtx, cancel := context.WithTimeout(ctx, leased.Add(w.cfg.Lease*3/4).Sub(w.cfg.LeaseClock.Now()))
	defer cancel()
	streams, err := w.load(ctx, batch)
	if err != nil {
		return len(batch), 0, 0, err
	}
	errs := make([]error, len(batch))
	var recs records
	concurrent.Each(len(batch), w.cfg.Concurrency, func(i int) {
		if w.cfg.LeaseClock.Now().After(sendBy) {
			errs[i] = errLeaseRunningOut
			return
		}
		errs[i] = w.send(ctx, sendCtx, batch[i], streams, &recs, i)
	})
	recs.append(ctx, w, errs)
	var causes []uuid.UUID
	var kinds []string
	for i, p := range batch {
		var nobody noRecipient
		switch {
		case errors.As(errs[i], &nobody):
			w.cfg.Logger.Info("e-mail dropped: no one to send it to", "kind", p.kind, "cause", p.cause, "reason", errs[i])
			w.drop(ctx, p, errs[i])
			dropped++
		case errs[i] != nil:
			w.cfg.Logger.Warn("e-mail not sent; will retry", "kind", p.kind, "cause", p.cause, "err", errs[i])
			w.failed(ctx, p, errs[i])
		default:
			causes, kinds = append(causes, p.cause), append(kinds, p.kind)
		}
	}
	if len(causes) == 0 {
		return len(batch), 0, dropped, nil
	}
	// A message whose send is recorded but not marked here (a crash in
	// between) is claimed again, found recorded, and marked then. Rows
	// that the outbox projection holds are skipped: it is marking them
	// sent itself, from the records, and in another order, so waiting for
	// it could deadlock.
	_, err = w.cfg.Store.Pool().Exec(ctx, `UPDATE email_outbox o SET sent_at = coalesce(o.sent_at, $3), last_error = NULL
FROM (SELECT cause, kind FROM email_outbox WHERE (cause, kind) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))
      FOR UPDATE SKIP LOCKED) AS s
WHERE o.cause = s.cause AND o.kind = s.kind`, causes, kinds, w.cfg.Clock.Now())
	if err != nil {
		return len(batch), 0, dropped, fmt.Errorf("outbox: mark %d messages sent: %w", len(causes), err)
	}
	return len(batch), len(causes), dropped, nil
}

// noRecipient is why an e-mail has no one to send it to: its account was
// erased (AUD-5), or it is about a subscription in no account whose order
// the buyer's account disowned (ORD-4). The run drops such a message
// rather than retrying it at every lease.
type noRecipient struct{ reason string }

func (e noRecipient) Error() string { return "no recipient: " + e.reason }

// errLeaseRunningOut: a run reached a message after the first half of its
// lease; a later run sends it.
var errLeaseRunningOut = errors.New("outbox: the run's lease is running out: left for a later run")

// claim leases due messages to this run, from now on the lease clock, in
// one short transaction: the sends happen outside any transaction.
func (w *Worker) claim(ctx context.Context, now time.Time) ([]pending, error) {
	rows, err := w.cfg.Store.Pool().Query(ctx, `UPDATE email_outbox SET claimed_until = $1, attempts = attempts + 1
WHERE (cause, kind) IN (
    SELECT cause, kind FROM email_outbox
    WHERE sent_at IS NULL AND dropped_at IS NULL AND (claimed_until IS NULL OR claimed_until <= $2)
    ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED)
RETURNING cause, kind, account_id, data`, now.Add(w.cfg.Lease), now, w.cfg.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("outbox: claim: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (pending, error) {
		var p pending
		err := r.Scan(&p.cause, &p.kind, &p.accountID, &p.data)
		return p, err
	})
}

// delivery is a message about to go out: its recipient and template data,
// whether its send is recorded already, and how to record it (on the
// account, the order or the subscription it is about), as message msg of
// the run.
type delivery struct {
	to     netmail.Address
	data   map[string]any
	sent   bool
	record func(r *records, msg int, meta eventstore.CommandMeta, messageID string)
}

// loaded holds the accounts and subscriptions a claimed batch's messages
// are about, read for all of them at once (Worker.load).
type loaded struct {
	accounts      map[uuid.UUID]eventstore.Loaded[account.Account]
	subscriptions map[string]eventstore.Loaded[subscription.Subscription]
}

// load reads the accounts of batch's messages and the subscriptions of its
// renewal e-mails, in one query each.
func (w *Worker) load(ctx context.Context, batch []pending) (loaded, error) {
	l := loaded{accounts: map[uuid.UUID]eventstore.Loaded[account.Account]{}, subscriptions: map[string]eventstore.Loaded[subscription.Subscription]{}}
	var accounts []uuid.UUID
	var accountStreams, subscriptionStreams []eventstore.StreamID
	var subscriptions []string
	for _, p := range batch {
		if p.accountID.Valid {
			accounts = append(accounts, p.accountID.UUID)
			accountStreams = append(accountStreams, eventstore.StreamID(account.StreamName(p.accountID.UUID)))
		}
		if w.cfg.Subscriptions == nil || !slices.Contains(projections.SubscriptionEmailKinds, p.kind) {
			continue
		}
		var sd projections.SubscriptionEmailData
		if json.Unmarshal(p.data, &sd) != nil {
			continue // prepare fails this message alone, saying why
		}
		subscriptions = append(subscriptions, sd.SubscriptionID)
		subscriptionStreams = append(subscriptionStreams, eventstore.StreamID(subscription.StreamPrefix+sd.SubscriptionID))
	}
	if err := loadInto(ctx, w.cfg.Accounts, accounts, accountStreams, l.accounts); err != nil {
		return l, err
	}
	if err := loadInto(ctx, w.cfg.Subscriptions, subscriptions, subscriptionStreams, l.subscriptions); err != nil {
		return l, err
	}
	return l, nil
}

// loadInto sets into[keys[i]] to the state of streams[i], read with h in
// one query.
func loadInto[K comparable, S, C any](ctx context.Context, h *eventstore.CommandHandler[S, C], keys []K, streams []eventstore.StreamID,
	into map[K]eventstore.Loaded[S]) error {
	if len(streams) == 0 {
		return nil
	}
	states, err := h.LoadMany(ctx, streams)
	if err != nil {
		return err
	}
	for i, k := range keys {
		into[k] = states[i]
	}
	return nil
}

// send sends p, message i of the run, within sendCtx, and records its
// send (within ctx): at once when the sender may deliver a message again
// (recordEachSend), else queued in recs for the run to record with the
// others.
func (w *Worker) send(ctx, sendCtx context.Context, p pending, streams loaded, recs *records, i int) error {
	d, err := w.prepare(ctx, p, streams)
	if err != nil {
		return err
	}
	if !d.sent {
		msg, err := w.cfg.Templates.Fill(mail.Message{
			CausationID: p.cause, Kind: p.kind, From: w.cfg.From, To: d.to, Date: w.cfg.Clock.Now(),
		}, d.data)
		if err != nil {
			return err
		}
		if err := w.cfg.Sender.Send(sendCtx, msg); err != nil {
			return err
		}
		// The record's command id is in its metadata (AUD-1) but not the
		// append's: recording a send again decides nothing (the deciders
		// find it in the state, EML-2), so the commands table need not keep
		// one row per e-mail (830,000 in a 100,000-customer year).
		meta := eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorSystem, ActorID: "outbox",
			CommandID: "email/" + p.kind + "/" + p.cause.String(), CausationID: p.cause.String()}}
		if w.recordEachSend {
			var own records
			d.record(&own, 0, meta, mail.MessageID(p.cause, p.kind, ""))
			errs := make([]error, 1)
			own.append(ctx, w, errs)
			return errs[0]
		}
		d.record(recs, i, meta, mail.MessageID(p.cause, p.kind, ""))
	}
	return nil
}

// prepare resolves where p goes and what it says, from the streams loaded
// for its batch.
func (w *Worker) prepare(ctx context.Context, p pending, streams loaded) (delivery, error) {
	if slices.Contains(projections.OrderEmailKinds, p.kind) {
		return w.prepareOrder(ctx, p)
	}
	if slices.Contains(projections.SubscriptionEmailKinds, p.kind) {
		return w.prepareSubscription(ctx, p, streams)
	}
	if !p.accountID.Valid {
		return delivery{}, fmt.Errorf("outbox: e-mail %s names no account", p.kind)
	}
	stream := eventstore.StreamID(account.StreamName(p.accountID.UUID))
	acct, version := streams.accounts[p.accountID.UUID].State, streams.accounts[p.accountID.UUID].Version
	var err error
	d := delivery{
		to:   netmail.Address{Name: acct.Name().String(), Address: acct.Email().String()},
		sent: acct.EmailSent(p.kind, p.cause),
		record: func(r *records, msg int, meta eventstore.CommandMeta, messageID string) {
			add(r, &r.accounts, msg, stream, eventstore.Loaded[account.Account]{State: acct, Version: version},
				account.Command(account.RecordEmailSent{Kind: p.kind, Cause: p.cause, MessageID: messageID}), meta)
		},
	}
	if !d.sent {
		d.data, err = w.templateData(acct, p)
	}
	return d, err
}

// prepareOrder resolves an order e-mail: it goes to the account the order
// is saved in, else to the e-mail address the buyer typed (ORD-2), and its
// send is recorded on the order.
func (w *Worker) prepareOrder(ctx context.Context, p pending) (delivery, error) {
	if w.cfg.Orders == nil {
		return delivery{}, errors.New("outbox: Config.Orders is required for order e-mails")
	}
	var od projections.OrderEmailData
	if err := json.Unmarshal(p.data, &od); err != nil {
		return delivery{}, err
	}
	stream := eventstore.StreamID("order-" + od.OrderID)
	o, version, err := w.cfg.Orders.Load(ctx, stream)
	if err != nil {
		return delivery{}, err
	}
	if !o.Exists() {
		return delivery{}, fmt.Errorf("outbox: order %s does not exist", od.OrderID)
	}
	to, err := w.orderRecipient(ctx, o)
	if err != nil {
		return delivery{}, fmt.Errorf("outbox: e-mail %s of order %s: %w", p.kind, od.OrderID, err)
	}
	d := delivery{
		to:   to,
		sent: o.EmailSent(p.kind, p.cause),
		record: func(r *records, msg int, meta eventstore.CommandMeta, messageID string) {
			add(r, &r.orders, msg, stream, eventstore.Loaded[order.Order]{State: o, Version: version},
				order.Command(order.RecordEmailSent{Kind: p.kind, Cause: p.cause, MessageID: messageID}), meta)
		},
	}
	if d.sent {
		return d, nil
	}
	if p.kind == projections.EmailOrderNeedsAction {
		d.data = w.orderNeedsActionData(o, to.Name)
		return d, nil
	}
	d.data = orderConfirmationData(o, to.Name)
	return d, nil
}

// orderRecipient is where an e-mail about order o, or about a subscription
// it bought that is in no account, goes: the account the order is saved
// in, else the address the buyer typed (ORD-2), with no name.
func (w *Worker) orderRecipient(ctx context.Context, o order.Order) (netmail.Address, error) {
	if o.SavedTo() == uuid.Nil {
		if o.Placement().BuyerEmail == domain.ErasedText {
			return netmail.Address{}, noRecipient{fmt.Sprintf("the address order %s was placed with is erased (AUD-5)", o.Placement().OrderID)}
		}
		return netmail.Address{Address: o.Placement().BuyerEmail}, nil
	}
	acct, _, err := w.cfg.Accounts.Load(ctx, eventstore.StreamID(account.StreamName(o.SavedTo())))
	if err != nil {
		return netmail.Address{}, err
	}
	return accountRecipient(acct, o.SavedTo())
}

// accountRecipient is the address of account acct, id; an erased account
// gets nothing (AUD-5).
func accountRecipient(acct account.Account, id uuid.UUID) (netmail.Address, error) {
	switch {
	case acct.Erased():
		return netmail.Address{}, noRecipient{fmt.Sprintf("account %s is erased: its e-mails go nowhere (AUD-5)", id)}
	case !acct.Registered():
		return netmail.Address{}, fmt.Errorf("account %s does not exist", id)
	}
	return netmail.Address{Name: acct.Name().String(), Address: acct.Email().String()}, nil
}

// orderNeedsActionData is what the e-mail about an order awaiting its
// buyer's account states (ORD-2): when and where it was placed and its
// total, and where to answer. Not its number: the number is one of the
// answers that save the order (ORD-3), which only its confirmation gives.
func (w *Worker) orderNeedsActionData(o order.Order, name string) map[string]any {
	p := o.Placement()
	return map[string]any{"Name": name, "Date": p.PlacedAt.Format(emailDate), "Storefront": p.Storefront,
		"Total": p.Total.String(), "OrdersURL": w.links.orders}
}

// orderConfirmationData is what the order confirmation states (PRD-4): the
// order, its lines and total, and each product's key and serial number.
func orderConfirmationData(o order.Order, name string) map[string]any {
	p := o.Placement()
	type line struct {
		Product, Term, Platform, UnitPrice, Amount string
		Quantity                                   int
	}
	type item struct{ Product, Key, Serial string }
	lines := make([]line, len(p.Lines))
	for i, l := range p.Lines {
		lines[i] = line{Product: l.ProductName, Term: l.Term, Platform: l.Platform, Quantity: l.Quantity,
			UnitPrice: l.UnitPrice.String(), Amount: l.Amount.String()}
	}
	var items []item
	for _, it := range o.Items() {
		items = append(items, item{Product: p.Lines[it.Line].ProductName, Key: it.Key.String(), Serial: it.Serial.String()})
	}
	return map[string]any{
		"Name": name, "Number": p.Number.String(), "Date": p.PlacedAt.Format(emailDate),
		"Storefront": p.Storefront, "Lines": lines, "Total": p.Total.String(), "Items": items,
	}
}

// prepareSubscription resolves an e-mail of a subscription's renewal
// lifecycle: it goes to the account that owns the subscription, or, for
// one in no account, through its order (orderRecipient); its send is
// recorded on the subscription.
func (w *Worker) prepareSubscription(ctx context.Context, p pending, streams loaded) (delivery, error) {
	if w.cfg.Subscriptions == nil {
		return delivery{}, errors.New("outbox: Config.Subscriptions is required for the renewal e-mails")
	}
	var sd projections.SubscriptionEmailData
	if err := json.Unmarshal(p.data, &sd); err != nil {
		return delivery{}, err
	}
	stream := eventstore.StreamID(subscription.StreamPrefix + sd.SubscriptionID)
	sub, version := streams.subscriptions[sd.SubscriptionID].State, streams.subscriptions[sd.SubscriptionID].Version
	if !sub.Exists() {
		return delivery{}, fmt.Errorf("outbox: subscription %s does not exist", sd.SubscriptionID)
	}
	to, err := w.subscriptionRecipient(ctx, p, streams, sub)
	if err != nil {
		return delivery{}, fmt.Errorf("outbox: e-mail %s of subscription %s: %w", p.kind, sd.SubscriptionID, err)
	}
	d := delivery{
		to:   to,
		sent: sub.EmailSent(p.kind, p.cause),
		record: func(r *records, msg int, meta eventstore.CommandMeta, messageID string) {
			add(r, &r.subscriptions, msg, stream, eventstore.Loaded[subscription.Subscription]{State: sub, Version: version},
				subscription.Command(subscription.RecordEmailSent{Kind: p.kind, Cause: p.cause, MessageID: messageID}), meta)
		},
	}
	if d.sent {
		return d, nil
	}
	data, err := w.renewalData(p.kind, sub, to.Name, sd.Event)
	d.data = data
	return d, err
}

// subscriptionRecipient is where an e-mail about sub goes: the account its
// row names, else, for a subscription in no account, its order's recipient
// (ARS-2: one bought without an account renews too, and is noticed).
func (w *Worker) subscriptionRecipient(ctx context.Context, p pending, streams loaded, sub subscription.Subscription) (netmail.Address, error) {
	if p.accountID.Valid {
		return accountRecipient(streams.accounts[p.accountID.UUID].State, p.accountID.UUID)
	}
	orderID := sub.Facts().OrderID
	switch {
	case orderID == uuid.Nil:
		return netmail.Address{}, errors.New("it is in no account and from no order")
	case w.cfg.Orders == nil:
		return netmail.Address{}, errors.New("the outbox has no Config.Orders to address the e-mails of a subscription in no account")
	}
	o, _, err := w.cfg.Orders.Load(ctx, eventstore.StreamID("order-"+orderID.String()))
	if err != nil {
		return netmail.Address{}, err
	}
	if !o.Exists() {
		return netmail.Address{}, fmt.Errorf("its order %s does not exist", orderID)
	}
	if o.Disowned() && slices.Contains(renewalPrompts, p.kind) {
		// The address the order was placed with belongs to the account
		// that said "I do not recognize this order" (ORD-4): it is not
		// asked to act on the renewals of what it disowned. A receipt or
		// a refund's confirmation, money that moved, still goes there.
		return netmail.Address{}, noRecipient{fmt.Sprintf("its order %s was disowned by the account of its address (ORD-4)", orderID)}
	}
	return w.orderRecipient(ctx, o)
}

// renewalPrompts are the renewal e-mails that ask their recipient to act
// (expect a charge, renew by hand, update a card); the others, receipts
// and refunds' confirmations, record money that moved.
var renewalPrompts = []string{projections.EmailRenewalNotice, projections.EmailRenewalReminder, projections.EmailTrialEnding,
	projections.EmailChargeDeclined, projections.EmailCardExpiring}

// emailDate is how an e-mail states a date.
const emailDate = "January 2, 2006"

// renewalData is what an e-mail of the renewal lifecycle states: the
// product and key, the facts of the event that called for it (EML-1), and
// where its renewal is managed, for the prompts to say what can be done:
// ManagedOn, an Asian store's code (ARS-5); Unsaved, a subscription of an
// order saved in no account, charged to the order's card until it is
// (ORD-2, ORD-5); CardOnly, a trial, charged to a card only (TRI-1);
// RenewalPage, the page of the account its renewal is turned on and off
// in: the products view, or for a non-registrable product, which it does
// not list, the order history (PRD-5).
func (w *Worker) renewalData(kind string, sub subscription.Subscription, name string, event json.RawMessage) (map[string]any, error) {
	var err error
	facts := sub.Facts()
	managedOn := ""
	if facts.AsianStore {
		managedOn = facts.Storefront
	}
	page := "the products view of your account"
	if !facts.Registrable {
		page = "the order history of your account"
	}
	data := map[string]any{"Name": name, "Product": facts.ProductName, "Key": facts.Key.String(), "BillingURL": w.links.billing,
		"ManagedOn": managedOn, "Unsaved": sub.Owner() == uuid.Nil, "CardOnly": sub.Term() == catalog.Trial.String(), "RenewalPage": page}
	switch kind {
	case projections.EmailRenewalNotice:
		var e subscription.RenewalNoticeIssued
		err = json.Unmarshal(event, &e)
		data["Term"], data["RenewsOn"], data["ChargeOn"], data["Fee"] = e.Term, e.ExpiresAt.Format(emailDate), e.ChargeAt.Format(emailDate), e.Amount.String()
	case projections.EmailRenewalReminder:
		var e subscription.RenewalReminderIssued
		err = json.Unmarshal(event, &e)
		data["ExpiresOn"], data["DaysLeft"] = e.ExpiresAt.Format(emailDate), daysLeft(e.At, e.ExpiresAt)
	case projections.EmailTrialEnding:
		var e subscription.TrialEndingNoticeIssued
		err = json.Unmarshal(event, &e)
		data["EndsOn"], data["ChargeOn"], data["Price"] = e.ExpiresAt.Format(emailDate), e.ChargeAt.Format(emailDate), e.Amount.String()
	case projections.EmailRenewalReceipt:
		var e subscription.ChargeSucceeded
		err = json.Unmarshal(event, &e)
		data["Amount"], data["Term"], data["PaidOn"], data["ExpiresOn"], data["ChargeID"] = e.Amount.String(), e.Term,
			e.At.Format(emailDate), e.ExpiresAt.Format(emailDate), e.ChargeID
	case projections.EmailChargeDeclined:
		var e subscription.ChargeDeclined
		err = json.Unmarshal(event, &e)
		data["DeclineCode"], data["RetryOn"] = e.DeclineCode, ""
		if !e.NextRetryAt.IsZero() {
			data["RetryOn"] = e.NextRetryAt.Format(emailDate)
		}
	case projections.EmailCardExpiring:
		var e subscription.PaymentMethodWarned
		err = json.Unmarshal(event, &e)
		data["LastFour"], data["CardExpiry"], data["ChargeOn"] = e.LastFour, e.CardExpiry, e.ChargeAt.Format(emailDate)
	case projections.EmailRefundConfirmation:
		var e subscription.Refunded
		err = json.Unmarshal(event, &e)
		data["Amount"], data["RefundedOn"], data["ExpiresOn"] = e.Amount.String(), e.At.Format(emailDate), e.ExpiresAt.Format(emailDate)
		// The term taken back may leave an end already past (ARS-7).
		data["Ended"] = !e.ExpiresAt.After(e.At)
	default:
		return nil, fmt.Errorf("outbox: no data for e-mail kind %q", kind)
	}
	return data, err
}

// failed records why p did not go out, for a later run to try again.
func (w *Worker) failed(ctx context.Context, p pending, cause error) {
	w.exec(ctx, `UPDATE email_outbox SET last_error = $3 WHERE cause = $1 AND kind = $2`, p.cause, p.kind, cause.Error())
}

// drop records that p has no one to send it to: no run claims it again.
func (w *Worker) drop(ctx context.Context, p pending, cause error) {
	w.exec(ctx, `UPDATE email_outbox SET last_error = $3, dropped_at = $4 WHERE cause = $1 AND kind = $2`,
		p.cause, p.kind, cause.Error(), w.cfg.Clock.Now())
}

// exec runs a statement recording a message's outcome, even when the run is
// being cancelled: the outcome is known, and losing it costs a retry.
func (w *Worker) exec(ctx context.Context, sql string, args ...any) {
	if _, err := w.cfg.Store.Pool().Exec(context.WithoutCancel(ctx), sql, args...); err != nil {
		w.cfg.Logger.Error("outbox: record a message's outcome", "err", err)
	}
}

func (w *Worker) templateData(acct account.Account, p pending) (map[string]any, error) {
	data := map[string]any{"Name": acct.Name().String()}
	switch p.kind {
	case projections.EmailPasswordReset:
		var d projections.PasswordResetData
		if err := json.Unmarshal(p.data, &d); err != nil {
			return nil, err
		}
		resetID, err := uuid.Parse(d.ResetID)
		if err != nil {
			return nil, err
		}
		data["ResetURL"] = w.links.resetPassword + "?token=" + account.ResetToken(w.cfg.SecretKey, resetID)
		data["ValidFor"] = humanDuration(w.cfg.Policy.ResetTokenValidity)
	default:
		return nil, fmt.Errorf("outbox: no data for e-mail kind %q", p.kind)
	}
	return data, nil
}

// daysLeft says how long is left from at until expiry in whole days, the
// way a reminder does: a reminder issued late (renewal turned off 20 days
// before expiry, past the 30-day reminder's instant) states the days that
// are left, not its schedule's lead (ARS-3).
func daysLeft(at, expiry time.Time) string {
	days := int(expiry.Sub(at) / (24 * time.Hour))
	if days < 1 {
		return "less than a day"
	}
	return plural(days, "day")
}

// humanDuration says a policy duration the way an e-mail would.
func humanDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0 && d >= 24*time.Hour:
		return plural(int(d/(24*time.Hour)), "day")
	case d%time.Hour == 0 && d >= time.Hour:
		return plural(int(d/time.Hour), "hour")
	default:
		return plural(int(d/time.Minute), "minute")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
