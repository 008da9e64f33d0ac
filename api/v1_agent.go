package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/agentlog"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/order"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/workers/fulfilment"
)

// agentAPI serves the support agents' console (DOMAIN §9, CNV-4): every
// action needs an agent credential (SEC-2) and a reason, and records the
// agent, the reason and the action's log code on every event it causes
// (AGT-1).
type agentAPI struct {
	Engine
	s        *Server
	accounts *accountsAPI
	subs     *subscriptionsAPI
	orders   *ordersAPI
}

// registerAgent adds the /v1/agent/ endpoints.
func registerAgent(s *Server, deps Engine) error {
	subs, err := commandHandler(s, deps, subscription.Decider)
	if err != nil {
		return err
	}
	accounts, err := commandHandler(s, deps, account.Decider)
	if err != nil {
		return err
	}
	orders, err := newOrdersAPI(s, deps)
	if err != nil {
		return err
	}
	g := &agentAPI{Engine: deps, s: s, accounts: &accountsAPI{Engine: deps, s: s, handler: accounts},
		subs: &subscriptionsAPI{Engine: deps, s: s, handler: subs}, orders: orders}
	conv, err := newConversions(g)
	if err != nil {
		return err
	}
	g.routes()
	conv.routes()
	return nil
}

func (g *agentAPI) routes() {
	tags := []string{"agent"}
	g.s.Route(Route{Method: "GET", Pattern: "/v1/agent/accounts", Tags: tags, Auth: AuthAgent,
		Summary: "Find an account",
		Description: "By exactly one query parameter: email (any case), key (a product key, current or replaced by a conversion) or serial " +
			"(a product serial number). Answers the account with its registered products; 404 when none matches.",
		Responses: map[int]any{http.StatusOK: agentAccountView{}, http.StatusNotFound: nil},
		Handler:   HandlerFunc(g.findAccount)})
	g.s.Route(Route{Method: "GET", Pattern: "/v1/agent/accounts/{id}", Tags: tags, Auth: AuthAgent,
		Summary:   "Read an account",
		Responses: map[int]any{http.StatusOK: agentAccountView{}, http.StatusNotFound: nil},
		Handler:   HandlerFunc(g.getAccount)})
	g.s.Route(Route{Method: "GET", Pattern: "/v1/agent/accounts/{id}/timeline", Tags: tags, Auth: AuthAgent,
		Summary: "An account's timeline",
		Description: "Every event of the account, of the subscriptions registered in it and of the orders saved in it, in the order they " +
			"were recorded, each with who caused it (customer, agent or system), the agent's reason and log code (AGT-1).",
		Responses: map[int]any{http.StatusOK: timelineView{}, http.StatusNotFound: nil},
		Handler:   HandlerFunc(g.timeline)})
	g.s.Route(Route{Method: "POST", Pattern: "/v1/agent/accounts/{id}/verify-ownership", Tags: tags, Auth: AuthAgent,
		Summary: "Record an ownership verification",
		Description: "Records that the agent verified the caller owns the account (basic policy: e-mail and name, an order number or a " +
			"serial number), log code \"" + agentlog.VerifyOwnership + "\" (CNV-4, AGT-1).",
		Request: verifyOwnershipRequest{}, Responses: map[int]any{http.StatusOK: agentActionView{}, http.StatusNotFound: nil},
		Handler: HandlerFunc(g.verifyOwnership)})
	g.s.Route(Route{Method: "POST", Pattern: "/v1/agent/accounts/{id}/free-orders", Tags: tags, Auth: AuthAgent,
		Summary: "Place a free order",
		Description: "An order of one annual seat pack of the product, total zero, nothing charged, saved in the account and fulfilled at " +
			"once into a subscription and key registered there; log code \"" + agentlog.FreeOrder + "\" on every event (AGT-1). The " +
			"storefront defaults to the account's country (else US).",
		Request: freeOrderRequest{}, Responses: map[int]any{http.StatusCreated: orderView{}, http.StatusNotFound: nil},
		Handler: HandlerFunc(g.freeOrder)})
	g.s.Route(Route{Method: "POST", Pattern: "/v1/agent/subscriptions/{id}/disable", Tags: tags, Auth: AuthAgent,
		Summary: "Disable a key",
		Description: "The key no longer registers or activates; log code \"" + agentlog.DisableKey + "\" (AGT-1). Disabling it again changes " +
			"nothing. With replaced_by (a conversion made step by step, CNV-4), the key's term up to its expiry goes on in that " +
			"subscription of the same account, and the charges that paid for it are not refunded (ARS-7).",
		Request: disableKeyRequest{}, Responses: map[int]any{http.StatusOK: productView{}, http.StatusNotFound: nil},
		Handler: HandlerFunc(g.disableKey)})
	g.s.Route(Route{Method: "POST", Pattern: "/v1/agent/subscriptions/{id}/days", Tags: tags, Auth: AuthAgent,
		Summary: "Add or remove days",
		Description: "Moves the expiration date by a whole number of days, positive or negative (AGT-2); removing more days than remain " +
			"is refused naming the field days. Log code \"" + agentlog.AdjustDays + "\" (AGT-1).",
		Request: adjustDaysRequest{}, Responses: map[int]any{http.StatusOK: productView{}, http.StatusNotFound: nil},
		Handler: HandlerFunc(g.adjustDays)})
	g.s.Route(Route{Method: "POST", Pattern: "/v1/agent/subscriptions/{id}/refund", Tags: tags, Auth: AuthAgent,
		Summary: "Refund on behalf of the customer",
		Description: "Refunds the last automatic-renewal charge, as the customer may and the same way (ARS-7: within 60 days of the " +
			"charge, else 409 naming ARS-7 and the date the window closed; monthly plans are cancelled instead, MON-2): the gateway " +
			"refunds it at once and the renewed term is taken back; the old key of a conversion, whose term goes on in the new " +
			"subscription, is refused (409 naming CNV-4). Answers the products-view row. Log code \"" + agentlog.Refund +
			"\" on the request (AGT-1).",
		Request: reasonRequest{}, Responses: map[int]any{http.StatusOK: productView{}, http.StatusNotFound: nil},
		Handler: HandlerFunc(g.refund)})
	g.s.Route(Route{Method: "POST", Pattern: "/v1/agent/subscriptions/{id}/add-ons/{addon}/cancel", Tags: tags, Auth: AuthAgent,
		Summary: "Cancel an add-on on behalf of the customer",
		Description: "The add-on of a monthly plan is no longer charged nor provided (MON-3); one not active answers 404. Log code \"" +
			agentlog.CancelAddOn + "\" (AGT-1).",
		Request: reasonRequest{}, Responses: map[int]any{http.StatusOK: productView{}, http.StatusNotFound: nil},
		Handler: HandlerFunc(g.cancelAddOn)})
}

// Requests and answers.
type (
	reasonRequest struct {
		Reason string `json:"reason" doc:"why the agent acts, recorded with every event (AGT-1)"`
	}
	disableKeyRequest struct {
		Reason     string `json:"reason" doc:"why the agent acts, recorded with every event (AGT-1)"`
		ReplacedBy string `json:"replaced_by,omitempty" doc:"the subscription of the same account that carries this key's term on (a conversion made step by step, CNV-4): the charges that paid for that term are then not refunded (ARS-7)"`
	}
	verifyOwnershipRequest struct {
		Method string `json:"method" doc:"email_and_name, order_number or serial_number"`
		Reason string `json:"reason"`
	}
	freeOrderRequest struct {
		Product    string `json:"product" doc:"catalog code, e.g. NS-PRM"`
		Platform   string `json:"platform,omitempty" doc:"windows or mac; default the product's first"`
		Storefront string `json:"storefront,omitempty" doc:"default the account's country, else US"`
		Reason     string `json:"reason"`
	}
	adjustDaysRequest struct {
		Days   *int   `json:"days" doc:"whole days: positive adds, negative removes (AGT-2)"`
		Reason string `json:"reason"`
	}
	agentActionView struct {
		Recorded bool   `json:"recorded"`
		LogCode  string `json:"log_code"`
	}
	agentAccountView struct {
		AccountID uuid.UUID     `json:"account_id"`
		Email     string        `json:"email"`
		Name      string        `json:"name"`
		Country   string        `json:"country"`
		Products  []productView `json:"products"`
	}
	timelineEntry struct {
		At        time.Time `json:"at"`
		Stream    string    `json:"stream"`
		Version   int64     `json:"version"`
		Type      string    `json:"type"`
		ActorKind string    `json:"actor_kind" doc:"customer, agent or system"`
		ActorID   string    `json:"actor_id,omitempty"`
		Reason    string    `json:"reason,omitempty"`
		LogCode   string    `json:"log_code,omitempty"`
	}
	timelineView struct {
		AccountID uuid.UUID       `json:"account_id"`
		Events    []timelineEntry `json:"events"`
	}
)

// maxReasonLength bounds a reason: a sentence or two, not a document.
const maxReasonLength = 500

// parseReason checks an agent action's reason (AGT-1).
func parseReason(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", domain.Invalid("reason", "is required: say why the agent acts (AGT-1)")
	case len(s) > maxReasonLength:
		return "", domain.Invalid("reason", fmt.Sprintf("must be at most %d characters", maxReasonLength))
	}
	return s, nil
}

// agentMeta is the metadata of an agent action (AGT-1): the agent from the
// request, its reason and log code; commandID makes it idempotent.
func agentMeta(ctx context.Context, reason, logCode, commandID string) eventstore.CommandMeta {
	a, _ := AgentFrom(ctx)
	return eventstore.CommandMeta{CommandID: commandID, Metadata: eventstore.Metadata{ActorKind: eventstore.ActorAgent,
		ActorID: a.ID, Reason: reason, LogCode: logCode}}
}

// pathID reads a uuid path value; one that is not a uuid answers notFound.
func pathID(r *http.Request, notFound error) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return uuid.Nil, notFound
	}
	return id, nil
}

// account loads account id, or account.ErrNotFound.
func (g *agentAPI) account(ctx context.Context, id uuid.UUID) (account.Account, error) {
	a, _, err := g.accounts.handler.Load(ctx, streamOf(id))
	if err == nil && !a.Registered() {
		err = account.ErrNotFound
	}
	return a, err
}

// ownerOfSubscription finds the account that owns a reserved key or
// serial's subscription (subscription.Owner).
func (g *agentAPI) ownerOfSubscription(ctx context.Context, scope, key string) (uuid.UUID, error) {
	stream, found, err := g.Store.ReservationOwner(ctx, eventstore.Reservation{Scope: scope, Key: key})
	if err != nil {
		return uuid.Nil, err
	}
	if !found {
		return uuid.Nil, account.ErrNotFound
	}
	st, _, err := g.subs.handler.Load(ctx, eventstore.StreamID(stream))
	if err == nil && st.Owner() == uuid.Nil {
		err = account.ErrNotFound
	}
	return st.Owner(), err
}

func (g *agentAPI) findAccount(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var given []string
	for _, k := range []string{"email", "key", "serial"} {
		if q.Get(k) != "" {
			given = append(given, k)
		}
	}
	if len(given) != 1 {
		return domain.Invalid("email", "give exactly one of the query parameters email, key or serial")
	}
	ctx := r.Context()
	var id uuid.UUID
	var err error
	var found bool
	switch given[0] {
	case "email":
		id, found, err = g.accounts.ownerOf(ctx, account.EmailScope, q.Get("email"))
		if err == nil && !found {
			err = account.ErrNotFound
		}
	case "key":
		key, perr := subscription.ParseProductKey(q.Get("key"))
		if perr != nil {
			return domain.Invalid("key", perr.Error())
		}
		id, err = g.ownerOfSubscription(ctx, subscription.KeyScope, key.String())
	case "serial":
		serial, perr := subscription.ParseSerialNumber(q.Get("serial"))
		if perr != nil {
			return domain.Invalid("serial", perr.Error())
		}
		id, err = g.ownerOfSubscription(ctx, subscription.SerialScope, serial.String())
	}
	if err != nil {
		return err
	}
	return g.writeAccount(w, r, id)
}

func (g *agentAPI) getAccount(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, account.ErrNotFound)
	if err != nil {
		return err
	}
	return g.writeAccount(w, r, id)
}

func (g *agentAPI) writeAccount(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	a, err := g.account(r.Context(), id)
	if err != nil {
		return err
	}
	products, err := g.subs.queryRows(r.Context(), `WHERE account_id = $1 ORDER BY registered_at, subscription_id`, id)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, agentAccountView{AccountID: id, Email: a.Email().String(), Name: a.Name().String(),
		Country: a.Country().String(), Products: products})
}

func (g *agentAPI) timeline(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, account.ErrNotFound)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := g.account(ctx, id); err != nil {
		return err
	}
	rows, err := g.Store.Pool().Query(ctx, `SELECT 'subscription-' || subscription_id FROM products_view WHERE account_id = $1
UNION SELECT 'order-' || order_id FROM orders WHERE account_id = $1
UNION SELECT stream_id FROM events WHERE event_type = 'conversion.started' AND data->>'account_id' = $1::text`, id)
	if err != nil {
		return err
	}
	streams := []eventstore.StreamID{streamOf(id)}
	var name string
	_, err = pgx.ForEachRow(rows, []any{&name}, func() error {
		streams = append(streams, eventstore.StreamID(name))
		return nil
	})
	if err != nil {
		return err
	}
	var recs []eventstore.RecordedEvent
	for _, s := range streams {
		got, err := g.Store.ReadStream(ctx, s, eventstore.ReadStreamOptions{})
		if err != nil {
			return err
		}
		recs = append(recs, got...)
	}
	slices.SortFunc(recs, func(a, b eventstore.RecordedEvent) int {
		if c := a.RecordedAt.Compare(b.RecordedAt); c != 0 {
			return c
		}
		return int(a.Position - b.Position)
	})
	out := timelineView{AccountID: id, Events: make([]timelineEntry, len(recs))}
	for i, e := range recs {
		out.Events[i] = timelineEntry{At: e.RecordedAt.UTC(), Stream: string(e.StreamID), Version: e.Version, Type: e.Type,
			ActorKind: string(e.Metadata.ActorKind), ActorID: e.Metadata.ActorID, Reason: e.Metadata.Reason, LogCode: e.Metadata.LogCode}
	}
	return WriteJSON(w, http.StatusOK, out)
}

func (g *agentAPI) verifyOwnership(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, account.ErrNotFound)
	if err != nil {
		return err
	}
	var in verifyOwnershipRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	reason, err := parseReason(in.Reason)
	if err != nil {
		return err
	}
	out, err := g.accounts.handler.Handle(r.Context(), streamOf(id), account.VerifyOwnership{Method: in.Method},
		agentMeta(r.Context(), reason, agentlog.VerifyOwnership, ""))
	if err != nil {
		return err
	}
	g.settle(r.Context(), out.Append)
	return WriteJSON(w, http.StatusOK, agentActionView{Recorded: true, LogCode: agentlog.VerifyOwnership})
}

// freeOrderSpace derives a free order's id from the Idempotency-Key of the
// request that places it, so a retry finds the order.
var freeOrderSpace = uuid.MustParse("1e0b8c3a-5d6f-4a7b-8c9d-0e1f2a3b4c5d")

func (g *agentAPI) freeOrder(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, account.ErrNotFound)
	if err != nil {
		return err
	}
	var in freeOrderRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	var v domain.Validation
	reason, err := parseReason(in.Reason)
	v.Check("", err)
	product, err := g.Catalog.Product(strings.ToUpper(strings.TrimSpace(in.Product)))
	if err != nil {
		v.Check("product", errors.New("is not a product of the catalog, such as NS-PRM"))
	}
	var platform catalog.Platform
	if in.Platform != "" {
		if platform, err = catalog.ParsePlatform(in.Platform); err != nil {
			v.Check("platform", errors.New(`must be "windows" or "mac"`))
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	acct, err := g.account(ctx, id)
	if err != nil {
		return err
	}
	orderID := uuid.New()
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		orderID = uuid.NewSHA1(freeOrderSpace, []byte(principal(r)+"\x00"+key))
	}
	res, err := g.placeFreeOrder(ctx, acct, orderID,
		freeOrder{product: product, platform: platform, term: catalog.Annual, storefront: in.Storefront, renews: true},
		agentMeta(ctx, reason, agentlog.FreeOrder, ""))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/orders/"+orderID.String())
	return WriteJSON(w, http.StatusCreated, g.orders.view(res.Order, true))
}

// freeOrder is what an agent's free order is of: one seat pack of product
// on platform for term (annual, or a trial a conversion carries on), at
// storefront (else the account's country, else US), enrolled in automatic
// renewal when renews holds. A conversion's keeps the card the old
// subscription's order was paid with (token, card), the fallback of its
// charges as it was of the old one's (ARS-6, TRI-4).
type freeOrder struct {
	product    catalog.Product
	platform   catalog.Platform
	term       catalog.Term
	storefront string
	renews     bool
	token      string
	card       *payment.CardExpiry
}

// placeFreeOrder places (or finds, for a retry) the free order orderID of
// f in acct, and fulfils it into a subscription registered in the account,
// every event recorded with meta (AGT-1). A free order records no payment,
// so the fulfilment process manager (which reacts to payments) leaves it
// alone: a retry with the same Idempotency-Key, or the conversion resumed,
// finishes a fulfilment cut short, on the agent's behalf.
func (g *agentAPI) placeFreeOrder(ctx context.Context, acct account.Account, orderID uuid.UUID, f freeOrder,
	meta eventstore.CommandMeta) (fulfilment.Result, error) {
	store, err := g.storefront(f.storefront, acct)
	if err != nil {
		return fulfilment.Result{}, err
	}
	product, platform := f.product, f.platform
	if platform.IsZero() {
		platform = product.Platforms()[0]
	}
	if !product.RunsOn(platform) {
		return fulfilment.Result{}, domain.Invalid("platform", product.Name()+" does not run on "+platform.String())
	}
	for _, term := range []catalog.Term{catalog.Annual, f.term} {
		if !product.Sells(term) {
			return fulfilment.Result{}, domain.Invalid("product", fmt.Sprintf("%s is not sold for the %s term", product.Name(), term))
		}
	}
	// The free order costs nothing, but the subscription it yields renews at
	// the catalog's annual price like any other (ARS-1; a trial at its end,
	// TRI-4), not at zero.
	renewal, err := g.Catalog.Price(product.Code(), catalog.Annual, store.Currency())
	if err != nil {
		return fulfilment.Result{}, domain.Invalid("product", fmt.Sprintf("is not sold at the %s storefront", store.Code()))
	}
	zero := money.Zero(store.Currency())
	placed := order.Placed{OrderID: orderID, Storefront: store.Code(), BuyerEmail: acct.Email().String(), SavedTo: acct.ID(),
		Total: zero, Free: true, NoAutoRenewal: !f.renews, PaymentToken: f.token, PaymentCard: f.card,
		Lines: []order.Line{{Product: product.Code(), ProductName: product.Name(), Term: f.term.String(), Platform: platform.String(),
			Quantity: 1, UnitPrice: zero, Amount: zero, RenewalPrice: renewal}}}
	meta.CommandID = "place/" + orderID.String()
	if meta.Metadata.CorrelationID == "" {
		meta.Metadata.CorrelationID = orderID.String()
	}
	if _, err := g.orders.placeOnce(ctx, placed, func() (payment.PaymentMethod, error) { return payment.PaymentMethod{}, nil }, meta); err != nil {
		return fulfilment.Result{}, err
	}
	return g.fulfilFree(ctx, orderID, meta.Metadata)
}

// fulfilFree fulfils free order orderID on the agent's behalf (md), if it
// is not already, and waits until the read models show it.
func (g *agentAPI) fulfilFree(ctx context.Context, orderID uuid.UUID, md eventstore.Metadata) (fulfilment.Result, error) {
	res, err := g.orders.fulfil.FulfilAs(ctx, orderID, md)
	if err != nil {
		return res, err
	}
	g.settle(ctx, res.Last)
	return res, nil
}

// storefront resolves a free order's storefront: the one given, else the
// account's country when it is a storefront, else US.
func (g *agentAPI) storefront(code string, acct account.Account) (catalog.Storefront, error) {
	if code != "" {
		s, err := g.Catalog.Storefront(strings.ToUpper(strings.TrimSpace(code)))
		if err != nil {
			return s, domain.Invalid("storefront", "is not a storefront of the catalog, such as US, GB or JP")
		}
		return s, nil
	}
	if s, err := g.Catalog.Storefront(acct.Country().String()); err == nil {
		return s, nil
	}
	return g.Catalog.Storefront("US")
}

// runner runs a command on a subscription, recorded with meta, and waits
// until the read models show it: subscriptionsAPI.command, or
// subscriptionsAPI.runRenewal for the renewal lifecycle's commands, which
// the customer's own endpoints run the same way.
type runner func(ctx context.Context, id uuid.UUID, cmd subscription.Command, meta eventstore.CommandMeta) (eventstore.Outcome[subscription.Subscription], error)

// subscriptionAction runs an agent's command on subscription id with run —
// cmd makes it from the subscription as it stands, for the account that
// owns it, the customer's on whose behalf the agent acts — and answers 200
// with its products-view row.
func (g *agentAPI) subscriptionAction(w http.ResponseWriter, r *http.Request, reason, logCode string, run runner,
	cmd func(st subscription.Subscription) (subscription.Command, error)) error {
	id, err := pathID(r, subscription.ErrNotFound)
	if err != nil {
		return err
	}
	st, _, err := g.subs.handler.Load(r.Context(), subscriptionStream(id))
	if err != nil {
		return err
	}
	c, err := cmd(st)
	if err != nil {
		return err
	}
	if _, err := run(r.Context(), id, c, agentMeta(r.Context(), reason, logCode, "")); err != nil {
		return err
	}
	rows, err := g.subs.queryRows(r.Context(), `WHERE subscription_id = $1`, id)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return subscription.ErrNotFound
	}
	return WriteJSON(w, http.StatusOK, rows[0])
}

// reasonOnly decodes a request whose only field is the reason.
func reasonOnly(w http.ResponseWriter, r *http.Request) (string, error) {
	var in reasonRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return "", err
	}
	return parseReason(in.Reason)
}

func (g *agentAPI) disableKey(w http.ResponseWriter, r *http.Request) error {
	var in disableKeyRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	var v domain.Validation
	reason, err := parseReason(in.Reason)
	v.Check("", err)
	var replacedBy uuid.UUID
	if in.ReplacedBy != "" {
		if replacedBy, err = uuid.Parse(in.ReplacedBy); err != nil {
			v.Check("replaced_by", errors.New("is not a subscription id"))
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	return g.subscriptionAction(w, r, reason, agentlog.DisableKey, g.subs.command,
		func(st subscription.Subscription) (subscription.Command, error) {
			if replacedBy != uuid.Nil {
				if err := g.replaceable(r.Context(), st, replacedBy); err != nil {
					return nil, err
				}
			}
			return subscription.Disable{ReplacedBy: replacedBy}, nil
		})
}

// replaceable checks that st may be replaced by subscription other (a
// conversion made step by step, CNV-4): st is a legacy key in an account,
// and other another subscription of that account.
func (g *agentAPI) replaceable(ctx context.Context, st subscription.Subscription, other uuid.UUID) error {
	if !st.Exists() {
		return subscription.ErrNotFound
	}
	if !st.Facts().Legacy {
		return domain.Invalid("replaced_by", "names what a conversion replaces a legacy product with (CNV-4): "+st.Facts().ProductName+" is not one")
	}
	o, _, err := g.subs.handler.Load(ctx, subscriptionStream(other))
	if err != nil {
		return err
	}
	if st.Owner() == uuid.Nil || other == st.Facts().SubscriptionID || !o.Exists() || o.Owner() != st.Owner() {
		return domain.Invalid("replaced_by", "is not another subscription of the same account")
	}
	return nil
}

func (g *agentAPI) refund(w http.ResponseWriter, r *http.Request) error {
	reason, err := reasonOnly(w, r)
	if err != nil {
		return err
	}
	return g.subscriptionAction(w, r, reason, agentlog.Refund, g.subs.runRenewal,
		func(st subscription.Subscription) (subscription.Command, error) {
			if st.Term() == catalog.Monthly.String() {
				// A monthly plan's only refund is MON-2's, which ends it.
				return subscription.Cancel{AccountID: st.Owner(), OnlyWithRefund: true}, nil
			}
			return subscription.RequestRefund{AccountID: st.Owner()}, nil
		})
}

func (g *agentAPI) cancelAddOn(w http.ResponseWriter, r *http.Request) error {
	reason, err := reasonOnly(w, r)
	if err != nil {
		return err
	}
	addOn := addOnCode(r.PathValue("addon"))
	return g.subscriptionAction(w, r, reason, agentlog.CancelAddOn, g.subs.runRenewal,
		func(st subscription.Subscription) (subscription.Command, error) {
			return subscription.CancelAddOn{AccountID: st.Owner(), AddOn: addOn}, nil
		})
}

func (g *agentAPI) adjustDays(w http.ResponseWriter, r *http.Request) error {
	var in adjustDaysRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	var v domain.Validation
	if in.Days == nil {
		v.Check("days", errors.New("is required: a whole number of days, positive to add, negative to remove"))
	}
	reason, err := parseReason(in.Reason)
	v.Check("", err)
	if err := v.Err(); err != nil {
		return err
	}
	return g.subscriptionAction(w, r, reason, agentlog.AdjustDays, g.subs.command,
		func(subscription.Subscription) (subscription.Command, error) {
			return subscription.AdjustDays{Days: *in.Days}, nil
		})
}
