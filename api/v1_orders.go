package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/api/password"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/order"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/workers/fulfilment"
)

// ProblemTypePaymentDeclined (402) means the bank declined the order's
// charge; errors[] names payment_method with the reason. The order is
// recorded as declined and nothing was delivered: order again with another
// payment method.
const ProblemTypePaymentDeclined = "urn:subs:problem:payment-declined"

// downloadBase is where installers are downloaded from (PRD-2, PRD-5).
const downloadBase = "https://downloads.subs.localhost/"

// orderIDSpace derives an order's id from the Idempotency-Key of the POST
// that places it, so that a retry after a lost answer finds the order (and
// its charge) instead of placing another.
var orderIDSpace = uuid.MustParse("6f1d1a55-7c1e-4b8e-9a43-0e1b2c3d4e5f")

// ordersAPI serves the order endpoints (DOMAIN §4, KEY-4, PRD-4, PRD-5).
type ordersAPI struct {
	Engine
	s         *Server
	accounts  *accountsAPI // billing input and the owner of an e-mail address, as the account endpoints read them
	orders    *eventstore.CommandHandler[order.Order, order.Command]
	acctState *eventstore.CommandHandler[account.Account, account.Command]
	subs      *eventstore.CommandHandler[subscription.Subscription, subscription.Command]
	fulfil    *fulfilment.Fulfiller
}

// registerOrders adds the order endpoints.
func registerOrders(s *Server, deps Engine) error {
	o, err := newOrdersAPI(s, deps)
	if err != nil {
		return err
	}
	o.routes()
	return nil
}

// newOrdersAPI returns the order endpoints' handlers, unrouted.
func newOrdersAPI(s *Server, deps Engine) (*ordersAPI, error) {
	o := &ordersAPI{Engine: deps, s: s, accounts: &accountsAPI{Engine: deps, s: s}}
	var err error
	if o.orders, err = commandHandler(s, deps, order.Decider); err != nil {
		return nil, err
	}
	if o.acctState, err = commandHandler(s, deps, account.Decider); err != nil {
		return nil, err
	}
	if o.subs, err = commandHandler(s, deps, subscription.Decider); err != nil {
		return nil, err
	}
	o.fulfil, err = fulfilment.New(fulfilment.Config{Store: deps.Store, Types: deps.Types, Catalog: deps.Catalog,
		Clock: s.Clock(), Policy: s.Policy(), Random: deps.Random, Logger: deps.Logger})
	return o, err
}

func (o *ordersAPI) routes() {
	tags := []string{"orders"}
	o.s.Route(Route{Method: "POST", Pattern: "/v1/orders", Tags: tags, Auth: AuthNone,
		Summary: "Place and pay an order",
		Description: "Buys lines of products at a storefront, priced in its currency, and charges the total once (an Idempotency-Key retry " +
			"finds the same order and charge). Signed in (bearer token), the order is saved in the account (buy another key: KEY-4) and " +
			"charged to the given card or the account's billing method. Not signed in, give email and password: when they match an " +
			"account the order is saved there, otherwise it awaits that address's account with \"action required\" (ORD-2); both " +
			"answers look alike. A paid order yields one subscription, key and serial number per seat pack (PRD-4). A trial line " +
			"(term trial) costs nothing and needs a credit or debit card, given or on file; the charge when the trial ends goes to " +
			"the card in the account's billing information, else to this one (TRI-4): any other payment method is refused naming the field and TRI-1. An order whose total is zero is paid " +
			"without a charge; the trial is current for 30 days (policy) with automatic renewal on at the catalog's standard annual " +
			"price (TRI-1, TRI-4).",
		Request: placeOrderRequest{}, Responses: map[int]any{http.StatusCreated: orderView{}, http.StatusPaymentRequired: nil,
			http.StatusServiceUnavailable: nil},
		Handler: HandlerFunc(o.place)})
	o.s.Route(Route{Method: "GET", Pattern: "/v1/orders", Tags: tags, Auth: AuthCustomer,
		Summary: "Order history",
		Description: "The orders saved in the account, newest first, with the products and keys each yielded (ORD-1); and, apart, " +
			"the orders placed with the account's e-mail address that await an answer (action required: ORD-2).",
		Responses: map[int]any{http.StatusOK: orderListView{}}, Handler: HandlerFunc(o.list)})
	o.s.Route(Route{Method: "GET", Pattern: "/v1/orders/{id}", Tags: tags, Auth: AuthCustomer,
		Summary: "Order details",
		Description: "A saved order with its keys and serial numbers (PRD-4); a pending one without them until it is recognized " +
			"(ORD-3). Another account's order answers 404 (SEC-1).",
		Responses: map[int]any{http.StatusOK: orderView{}, http.StatusNotFound: nil}, Handler: HandlerFunc(o.get)})
	o.s.Route(Route{Method: "POST", Pattern: "/v1/orders/{id}/recognize", Tags: tags, Auth: AuthCustomer,
		Summary: "I recognize this order",
		Description: "Saves a pending order placed with the account's e-mail address, given its order number or the serial number of " +
			"one of its products (ORD-3); its keys are registered in the account.",
		Request: recognizeRequest{}, Responses: map[int]any{http.StatusOK: orderView{}, http.StatusNotFound: nil, http.StatusConflict: nil},
		Handler: HandlerFunc(o.recognize)})
	o.s.Route(Route{Method: "POST", Pattern: "/v1/orders/{id}/disown", Tags: tags, Auth: AuthCustomer,
		Summary:     "I do not recognize this order",
		Description: "The pending order is not saved, and automatic renewal is turned off for every subscription of the order (ORD-4).",
		Responses:   map[int]any{http.StatusNoContent: nil, http.StatusNotFound: nil, http.StatusConflict: nil},
		Handler:     HandlerFunc(o.disown)})
	o.s.Route(Route{Method: "GET", Pattern: "/v1/orders/{id}/items/{subscription}/download", Tags: tags, Auth: AuthCustomer,
		Summary: "Download a product of an order",
		Description: "The download and the key of a product a saved order yielded, while its subscription is current (PRD-2). A " +
			"product that cannot be registered in an account is reached only this way (PRD-5).",
		Responses: map[int]any{http.StatusOK: orderDownloadView{}, http.StatusNotFound: nil, http.StatusConflict: nil},
		Handler:   HandlerFunc(o.download)})
}

// Requests and answers.
type (
	placeOrderRequest struct {
		Storefront    string                `json:"storefront"`
		Lines         []orderLineRequest    `json:"lines"`
		PaymentMethod *paymentMethodRequest `json:"payment_method,omitempty" doc:"required unless signed in with billing information"`
		Email         string                `json:"email,omitempty" doc:"the buyer's e-mail when not signed in"`
		Password      string                `json:"password,omitempty" doc:"the buyer's account password when not signed in"`
	}
	orderLineRequest struct {
		Product  string `json:"product"`
		Term     string `json:"term"`
		Platform string `json:"platform"`
		Quantity int    `json:"quantity"`
	}
	recognizeRequest struct {
		Answer string `json:"answer" doc:"the order number, or the serial number of one product of the order"`
	}
	amountView struct {
		Amount   int64  `json:"amount" doc:"minor units"`
		Currency string `json:"currency"`
	}
	orderLineView struct {
		Product     string     `json:"product"`
		ProductName string     `json:"product_name"`
		Term        string     `json:"term"`
		Platform    string     `json:"platform"`
		Quantity    int        `json:"quantity"`
		UnitPrice   amountView `json:"unit_price"`
		Amount      amountView `json:"amount"`
	}
	orderItemView struct {
		SubscriptionID uuid.UUID `json:"subscription_id"`
		Product        string    `json:"product"`
		ProductName    string    `json:"product_name"`
		Key            string    `json:"key"`
		Serial         string    `json:"serial"`
		Registrable    bool      `json:"registrable"`
		Download       string    `json:"download" doc:"the path of the item's download endpoint"`
	}
	orderView struct {
		OrderID        uuid.UUID       `json:"order_id"`
		Number         string          `json:"number,omitempty" doc:"absent while the order awaits recognition (ORD-3)"`
		PlacedAt       time.Time       `json:"placed_at"`
		Storefront     string          `json:"storefront"`
		Lines          []orderLineView `json:"lines"`
		Total          amountView      `json:"total"`
		OrderStatus    string          `json:"order_status" doc:"placed, fulfilled or declined"`
		PaymentStatus  string          `json:"payment_status" doc:"pending, paid, declined, refunded (all of the order's charge) or partially_refunded"`
		Refunded       *amountView     `json:"refunded,omitempty" doc:"what was refunded of the order's charge: a monthly plan cancelled within 30 days of its purchase (MON-2)"`
		SavedInAccount bool            `json:"saved_in_account"`
		ActionRequired bool            `json:"action_required"`
		Items          []orderItemView `json:"items" doc:"the subscriptions, keys and serial numbers it yielded; empty while pending"`
	}
	orderListView struct {
		Orders         []orderView `json:"orders"`
		ActionRequired []orderView `json:"action_required"`
	}
	orderDownloadView struct {
		SubscriptionID uuid.UUID `json:"subscription_id"`
		Product        string    `json:"product"`
		ProductName    string    `json:"product_name"`
		Platform       string    `json:"platform"`
		Key            string    `json:"key"`
		Serial         string    `json:"serial"`
		Status         string    `json:"status"`
		DownloadURL    string    `json:"download_url"`
	}
)

func viewAmount(m money.Money) amountView {
	return amountView{Amount: m.Amount(), Currency: m.Currency().Code()}
}

// paymentDeclined is the 402 answer to a declined charge.
func paymentDeclined(code string) *Problem {
	return &Problem{Type: ProblemTypePaymentDeclined, Title: "Payment declined", Status: http.StatusPaymentRequired,
		Detail: "The bank declined the charge (" + code + "); the order was recorded as declined and nothing was delivered.",
		Errors: []FieldError{{Field: "payment_method", Message: "was declined by the bank (" + code + "); use another card or account"}}}
}

// buyer is who an order is placed for: the account it is saved in (none
// while pending) and the e-mail address it was placed with.
type buyer struct {
	savedTo uuid.UUID
	email   string
	acct    account.Account // the signed-in customer's account, else zero
}

func (o *ordersAPI) place(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in placeOrderRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	sess, signedIn, err := o.optionalSession(r)
	if err != nil {
		return err
	}
	store, lines, total, err := o.price(in, signedIn)
	if err != nil {
		return err
	}
	b, err := o.buyer(ctx, in, sess, signedIn)
	if err != nil {
		return err
	}
	id := uuid.New()
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		id = uuid.NewSHA1(orderIDSpace, []byte(principal(r)+"\x00"+key))
	}
	placed := order.Placed{OrderID: id, Storefront: store.Code(), Lines: lines, Total: total, BuyerEmail: b.email,
		SavedTo: b.savedTo}
	method := func() (payment.PaymentMethod, error) { return o.paymentMethod(ctx, in, b, store, hasTrial(lines)) }
	st, err := o.placeOnce(ctx, placed, method, o.actor(placed, "place/"+id.String()))
	if err != nil {
		return err
	}
	if !st.Paid() && !st.Declined() {
		if st, err = o.charge(ctx, st); err != nil {
			return err
		}
	}
	if st.Declined() {
		return paymentDeclined(st.DeclineCode())
	}
	res, err := o.fulfil.Fulfil(ctx, id)
	if err != nil {
		return err
	}
	o.settle(ctx, res.Last)
	w.Header().Set("Location", "/v1/orders/"+id.String())
	return WriteJSON(w, http.StatusCreated, o.view(res.Order, true))
}

// optionalSession authenticates the bearer token when the request has one:
// placing an order works signed in or not.
func (o *ordersAPI) optionalSession(r *http.Request) (Session, bool, error) {
	token := bearerToken(r)
	if token == "" {
		return Session{}, false, nil
	}
	sess, err := o.s.Sessions().Authenticate(r.Context(), token, o.s.Clock().Now())
	return sess, err == nil, err
}

// price checks the storefront and the lines against the catalog and prices
// each line in the storefront's currency. Every bad field is named at once
// (SEC-4).
func (o *ordersAPI) price(in placeOrderRequest, signedIn bool) (catalog.Storefront, []order.Line, money.Money, error) {
	var v domain.Validation
	store, err := o.Catalog.Storefront(strings.ToUpper(strings.TrimSpace(in.Storefront)))
	if err != nil {
		v.Check("storefront", errors.New("is not a storefront of the catalog, such as US, GB or JP"))
	}
	if len(in.Lines) == 0 {
		v.Check("lines", errors.New("an order needs at least one line"))
	}
	if !signedIn {
		if in.Email == "" {
			v.Check("email", errors.New("is required when not signed in"))
		}
		if in.Password == "" {
			v.Check("password", errors.New("is required when not signed in"))
		}
	} else {
		if in.Email != "" {
			v.Check("email", errors.New("is the signed-in account's: leave it out"))
		}
		if in.Password != "" {
			v.Check("password", errors.New("is not needed when signed in: leave it out"))
		}
	}
	var lines []order.Line
	var total money.Money
	if store.Code() != "" {
		total = money.Zero(store.Currency())
	}
	for i, l := range in.Lines {
		line, err := o.priceLine(l, store)
		if err != nil || store.Code() == "" {
			v.Check(fmt.Sprintf("lines[%d]", i), err)
			continue
		}
		lines = append(lines, line)
		if total, err = total.Add(line.Amount); err != nil {
			v.Check(fmt.Sprintf("lines[%d].amount", i), err)
		}
	}
	if err := v.Err(); err != nil {
		return store, nil, money.Money{}, err
	}
	return store, lines, total, nil
}

// priceLine checks one line: the product exists, is sold under the term, runs
// on the platform; the quantity is 1 to 100.
func (o *ordersAPI) priceLine(l orderLineRequest, store catalog.Storefront) (order.Line, error) {
	var v domain.Validation
	product, err := o.Catalog.Product(strings.ToUpper(strings.TrimSpace(l.Product)))
	if err != nil {
		v.Check("product", errors.New("is not a product of the catalog, such as NS-STD"))
	}
	term, err := catalog.ParseTerm(l.Term)
	switch {
	case err != nil:
		v.Check("term", errors.New(`must be "annual", "monthly" or "trial"`))
	case product.Code() != "" && !product.Sells(term):
		v.Check("term", fmt.Errorf("%s is not sold %s", product.Name(), term))
	}
	platform, err := catalog.ParsePlatform(l.Platform)
	switch {
	case err != nil:
		v.Check("platform", errors.New(`must be "windows" or "mac"`))
	case product.Code() != "" && !product.RunsOn(platform):
		v.Check("platform", fmt.Errorf("%s does not run on %s", product.Name(), platform))
	}
	if l.Quantity < 1 || l.Quantity > 100 {
		v.Check("quantity", errors.New("must be 1 to 100"))
	}
	if err := v.Err(); err != nil || store.Code() == "" {
		return order.Line{}, err // without a storefront there is no currency to price in; price says so
	}
	unit, err := o.Catalog.Price(product.Code(), term, store.Currency())
	if err != nil {
		return order.Line{}, domain.Invalid("product", fmt.Sprintf("is not sold at the %s storefront", store.Code()))
	}
	amount, err := unit.Mul(int64(l.Quantity))
	if err != nil {
		return order.Line{}, domain.Invalid("quantity", err.Error())
	}
	line := order.Line{Product: product.Code(), ProductName: product.Name(), Term: term.String(), Platform: platform.String(),
		Quantity: l.Quantity, UnitPrice: unit, Amount: amount}
	if term == catalog.Trial { // the year that follows is charged at the standard price (TRI-4)
		if line.RenewalPrice, err = o.Catalog.Price(product.Code(), catalog.Annual, store.Currency()); err != nil {
			return order.Line{}, domain.Invalid("product", fmt.Sprintf("is not sold annually at the %s storefront", store.Code()))
		}
	}
	return line, nil
}

// hasTrial reports whether an order buys a trial.
func hasTrial(lines []order.Line) bool {
	for _, l := range lines {
		if l.Term == catalog.Trial.String() {
			return true
		}
	}
	return false
}

// buyer says whom the order is for (ORD-2): the signed-in customer's
// account; else the account of the e-mail address when the password
// matches; else nobody yet. A wrong password and an unknown address cost
// the same and answer the same, so the answer reveals nothing.
func (o *ordersAPI) buyer(ctx context.Context, in placeOrderRequest, sess Session, signedIn bool) (buyer, error) {
	if signedIn {
		acct, _, err := o.acctState.Load(ctx, streamOf(sess.AccountID))
		if err != nil {
			return buyer{}, err
		}
		return buyer{savedTo: sess.AccountID, email: acct.Email().String(), acct: acct}, nil
	}
	email, err := account.ParseEmail(in.Email)
	if err != nil {
		return buyer{}, domain.Invalid("email", err.Error())
	}
	b := buyer{email: email.String()}
	id, found, err := o.accounts.ownerOf(ctx, account.EmailScope, in.Email)
	if err != nil {
		return b, err
	}
	if !found {
		return b, password.VerifyDummy(in.Password, o.s.Policy().Argon2id)
	}
	acct, _, err := o.acctState.Load(ctx, streamOf(id))
	if err != nil {
		return b, err
	}
	if verifier(in.Password)(acct.PasswordHash()) {
		b.savedTo = id
	}
	return b, nil
}

// paymentMethod returns the payment method to charge: the card given, handed
// to the gateway (ACC-8's checks, for the storefront's country), or the
// signed-in account's billing method. An order with a trial takes a credit
// or debit card only (TRI-1), kept for the charge when the trial ends.
func (o *ordersAPI) paymentMethod(ctx context.Context, in placeOrderRequest, b buyer, store catalog.Storefront, trial bool) (payment.PaymentMethod, error) {
	if in.PaymentMethod != nil {
		if kind, err := payment.ParseMethodKind(in.PaymentMethod.Type); trial && err == nil && kind != payment.KindCard {
			return payment.PaymentMethod{}, domain.Invalid("payment_method.type", trialNeedsCard)
		}
		_, method, err := o.accounts.tokenize(ctx, billingRequest{Country: store.Code(), PaymentMethod: *in.PaymentMethod})
		var ve *domain.ValidationError
		if errors.As(err, &ve) {
			for i := range ve.Fields { // the country is the storefront's, not a field of this request
				ve.Fields[i].Field = strings.Replace(ve.Fields[i].Field, "country", "storefront", 1)
			}
		}
		return method, err
	}
	if _, method, ok := b.acct.Billing(); ok {
		if trial && method.Kind() != payment.KindCard {
			return payment.PaymentMethod{}, domain.Invalid("payment_method", trialNeedsCard+": give one, the account's billing method is not a card")
		}
		// A card typed in is checked when it is tokenized; the one on file
		// may have expired since. A trial charges nothing now (TRI-1), so
		// no gateway would tell.
		if card, ok := method.CardExpiry(); ok && card.ExpiredAt(o.s.Clock().Now()) {
			return payment.PaymentMethod{}, domain.Invalid("payment_method", "the card on file (ending "+card.LastFour+") expired at the end of "+
				card.String()+": give a card, or update the billing information")
		}
		return method, nil
	}
	return payment.PaymentMethod{}, domain.Invalid("payment_method", "is required: give a card, or sign in to an account with billing information")
}

// trialNeedsCard refuses another payment method for a trial (TRI-1).
const trialNeedsCard = "a trial needs a credit or debit card, no other payment method (TRI-1)"

// placeOnce places the order under a freshly drawn number, recorded with
// meta, or finds the order an earlier attempt with the same Idempotency-Key
// placed. method is called only for a new order, so a retry charges what
// the first attempt charged.
func (o *ordersAPI) placeOnce(ctx context.Context, p order.Placed, method func() (payment.PaymentMethod, error), meta eventstore.CommandMeta) (order.Order, error) {
	stream := fulfilment.OrderStream(p.OrderID)
	for range 5 {
		st, _, err := o.orders.Load(ctx, stream)
		if err != nil {
			return st, err
		}
		if st.Exists() {
			if !samePurchase(st.Placement(), p) {
				return st, &Problem{Type: ProblemTypeIdempotencyMismatch, Title: "Idempotency key reused", Status: http.StatusUnprocessableEntity,
					Detail: "This Idempotency-Key placed another order; use a new key for a new order."}
			}
			return st, nil
		}
		if p.PaymentToken == "" {
			m, err := method()
			if err != nil {
				return st, err
			}
			p.PaymentToken = m.Token()
			if card, ok := m.CardExpiry(); ok {
				p.PaymentCard = &card
			}
		}
		if p.Number, err = order.NewNumber(o.Random); err != nil {
			return st, err
		}
		out, err := o.orders.Handle(ctx, stream, order.Place{Placed: p}, meta)
		var taken *eventstore.ReservationConflictError
		var raced *eventstore.ConflictError
		if errors.As(err, &taken) || errors.As(err, &raced) {
			continue // the number is another order's, or a concurrent retry placed this one: look again
		}
		return out.State, err
	}
	return order.Order{}, fmt.Errorf("api: order %s: no free order number after 5 draws", p.OrderID)
}

// samePurchase reports whether two placements buy the same thing for the
// same buyer: number, instant and token differ between attempts.
func samePurchase(a, b order.Placed) bool {
	return a.Storefront == b.Storefront && a.BuyerEmail == b.BuyerEmail && a.SavedTo == b.SavedTo &&
		a.Total.Equal(b.Total) && reflect.DeepEqual(a.Lines, b.Lines)
}

func (o *ordersAPI) actor(p order.Placed, commandID string) eventstore.CommandMeta {
	meta := eventstore.CommandMeta{CommandID: commandID, Metadata: eventstore.Metadata{ActorKind: eventstore.ActorCustomer,
		CorrelationID: p.OrderID.String()}}
	if p.SavedTo != uuid.Nil {
		meta.Metadata.ActorID = p.SavedTo.String()
	}
	return meta
}

// maxChargeAttempts bounds the retries of a charge whose outcome the gateway
// left unknown; each retry carries the same idempotency key, so the order is
// charged once whatever happens (DESIGN §6).
const maxChargeAttempts = 3

// charge charges the order's total with the idempotency key "order-<id>"
// and records the outcome. An order whose total is zero — a trial's
// (TRI-1) — is paid as it is: the gateway is not called.
func (o *ordersAPI) charge(ctx context.Context, st order.Order) (order.Order, error) {
	p := st.Placement()
	req := payment.ChargeRequest{IdempotencyKey: "order-" + p.OrderID.String(), Token: p.PaymentToken, Amount: p.Total,
		Description: "Order " + p.Number.String()}
	out := payment.ChargeOutcome{Status: payment.Succeeded}
	var err error
	for attempt := 0; attempt < maxChargeAttempts && !p.Total.IsZero(); attempt++ {
		if out, err = o.Gateway.Charge(ctx, req); !errors.Is(err, payment.ErrUnavailable) {
			break
		}
	}
	if errors.Is(err, payment.ErrUnavailable) {
		return st, &Problem{Type: ProblemTypeUnavailable, Title: "Service Unavailable", Status: http.StatusServiceUnavailable,
			Detail: "the payment service does not answer; the order is not paid yet: send the same request with the same Idempotency-Key again"}
	}
	if err != nil {
		return st, paymentFieldError(err)
	}
	res, err := o.orders.Handle(ctx, fulfilment.OrderStream(p.OrderID),
		order.RecordCharge{ChargeID: out.ChargeID, Succeeded: out.Status == payment.Succeeded, DeclineCode: out.DeclineCode},
		o.actor(p, "charge/"+p.OrderID.String()))
	if err != nil {
		return st, err
	}
	o.settle(ctx, res.Append)
	return res.State, nil
}

// view is what a customer sees of an order: everything once it is saved
// (full), only what was bought while it awaits recognition, so that the
// order number and serial numbers stay proof of ownership (ORD-3).
func (o *ordersAPI) view(st order.Order, full bool) orderView {
	p := st.Placement()
	v := orderView{OrderID: p.OrderID, PlacedAt: p.PlacedAt, Storefront: p.Storefront, Total: viewAmount(p.Total),
		OrderStatus: "placed", PaymentStatus: "pending", SavedInAccount: st.SavedTo() != uuid.Nil,
		ActionRequired: st.Pending(), Lines: []orderLineView{}, Items: []orderItemView{}}
	switch {
	case st.Declined():
		v.OrderStatus, v.PaymentStatus = "declined", "declined"
	case len(st.Items()) > 0:
		v.OrderStatus, v.PaymentStatus = "fulfilled", "paid"
	case st.Paid():
		v.PaymentStatus = "paid"
	}
	for _, l := range p.Lines {
		v.Lines = append(v.Lines, orderLineView{Product: l.Product, ProductName: l.ProductName, Term: l.Term, Platform: l.Platform,
			Quantity: l.Quantity, UnitPrice: viewAmount(l.UnitPrice), Amount: viewAmount(l.Amount)})
	}
	if !full {
		return v
	}
	v.Number = p.Number.String()
	for _, it := range st.Items() {
		v.Items = append(v.Items, viewItem(p.OrderID, p.Lines[it.Line].ProductName, it.SubscriptionID, it.Product, it.Key.String(),
			it.Serial.String(), it.Registrable))
	}
	return v
}

func viewItem(orderID uuid.UUID, name string, sub uuid.UUID, product, key, serial string, registrable bool) orderItemView {
	return orderItemView{SubscriptionID: sub, Product: product, ProductName: name, Key: key, Serial: serial, Registrable: registrable,
		Download: "/v1/orders/" + orderID.String() + "/items/" + sub.String() + "/download"}
}

// mine loads an order the signed-in customer may see (SEC-1): saved in the
// account (full view), or pending and placed with the account's e-mail
// address (action required). Any other answers order.ErrNotFound.
func (o *ordersAPI) mine(ctx context.Context, r *http.Request) (order.Order, account.Account, bool, error) {
	sess, _ := SessionFrom(ctx)
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return order.Order{}, account.Account{}, false, order.ErrNotFound
	}
	st, _, err := o.orders.Load(ctx, fulfilment.OrderStream(id))
	if err != nil {
		return st, account.Account{}, false, err
	}
	acct, _, err := o.acctState.Load(ctx, streamOf(sess.AccountID))
	if err != nil {
		return st, acct, false, err
	}
	switch {
	case !st.Exists():
		return st, acct, false, order.ErrNotFound
	case st.SavedTo() == sess.AccountID:
		return st, acct, true, nil
	case st.Pending() && strings.EqualFold(st.Placement().BuyerEmail, acct.Email().String()):
		return st, acct, false, nil
	}
	return st, acct, false, order.ErrNotFound
}

func (o *ordersAPI) get(w http.ResponseWriter, r *http.Request) error {
	st, _, full, err := o.mine(r.Context(), r)
	if err != nil {
		return err
	}
	v := o.view(st, full)
	// The refunds of its charge are recorded on its subscriptions (MON-2):
	// the order history keeps their sum.
	var status string
	var refunded int64
	err = o.Store.Pool().QueryRow(r.Context(), `SELECT payment_status, refunded FROM orders WHERE order_id = $1`, v.OrderID).Scan(&status, &refunded)
	switch {
	case errors.Is(err, pgx.ErrNoRows): // not in the history yet: nothing refunded
	case err != nil:
		return err
	case refunded > 0:
		v.PaymentStatus, v.Refunded = status, &amountView{Amount: refunded, Currency: v.Total.Currency}
	}
	return WriteJSON(w, http.StatusOK, v)
}

func (o *ordersAPI) recognize(w http.ResponseWriter, r *http.Request) error {
	var in recognizeRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.Answer) == "" {
		return domain.Invalid("answer", "is required: the order number or the serial number of one product of the order")
	}
	ctx := r.Context()
	st, acct, _, err := o.mine(ctx, r)
	if err != nil {
		return err
	}
	id := st.Placement().OrderID
	out, err := o.orders.Handle(ctx, fulfilment.OrderStream(id),
		order.Recognize{AccountID: acct.ID(), AccountEmail: acct.Email().String(), Answer: in.Answer}, customer(acct.ID()))
	if err != nil {
		return err
	}
	// Registering the keys at once, rather than leaving it to the process
	// manager, lets the next read show them (it would do the same, idempotently).
	res, err := o.fulfil.SaveInAccount(ctx, id)
	if err != nil {
		return err
	}
	o.settle(ctx, out.Append)
	o.settle(ctx, res.Last)
	return WriteJSON(w, http.StatusOK, o.view(res.Order, true))
}

func (o *ordersAPI) disown(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	st, acct, _, err := o.mine(ctx, r)
	if err != nil {
		return err
	}
	id := st.Placement().OrderID
	out, err := o.orders.Handle(ctx, fulfilment.OrderStream(id),
		order.Disown{AccountID: acct.ID(), AccountEmail: acct.Email().String()}, customer(acct.ID()))
	if err != nil {
		return err
	}
	res, err := o.fulfil.StopAutoRenewal(ctx, id) // ORD-4 at once; the process manager repeats it harmlessly
	if err != nil {
		return err
	}
	o.settle(ctx, out.Append)
	o.settle(ctx, res.Last)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (o *ordersAPI) download(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	st, _, full, err := o.mine(ctx, r)
	if err != nil {
		return err
	}
	if !full {
		return order.ErrNotFound // a pending order's products are reached once it is recognized (ORD-3)
	}
	subID, err := uuid.Parse(r.PathValue("subscription"))
	if err != nil {
		return subscription.ErrNotFound
	}
	for _, it := range st.Items() {
		if it.SubscriptionID != subID {
			continue
		}
		sub, _, err := o.subs.Load(ctx, fulfilment.SubscriptionStream(subID))
		if err != nil {
			return err
		}
		facts := sub.Facts()
		status := sub.Status(o.s.Clock().Now(), o.s.Policy())
		if !status.Current() {
			return &subscription.NotCurrentError{Status: status}
		}
		return WriteJSON(w, http.StatusOK, orderDownloadView{SubscriptionID: subID, Product: facts.Product, ProductName: facts.ProductName,
			Platform: facts.Platform, Key: facts.Key.String(), Serial: facts.Serial.String(), Status: string(status),
			DownloadURL: downloadBase + strings.ToLower(facts.Product) + "/" + facts.Platform})
	}
	return subscription.ErrNotFound
}

// list is the order history (ORD-1) from the read model: the account's
// saved orders and, apart, the pending ones placed with its e-mail address
// (ORD-2).
func (o *ordersAPI) list(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, _ := SessionFrom(ctx)
	acct, _, err := o.acctState.Load(ctx, streamOf(sess.AccountID))
	if err != nil {
		return err
	}
	saved, err := o.readOrders(ctx, `account_id = $1 AND NOT disowned`, true, sess.AccountID)
	if err != nil {
		return err
	}
	pending, err := o.readOrders(ctx, `account_id IS NULL AND NOT disowned AND lower(buyer_email) = lower($1)`, false, acct.Email().String())
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, orderListView{Orders: saved, ActionRequired: pending})
}

// readOrders reads the orders matching where (over table orders, with one
// argument), newest first, with their lines and, when full, their items.
func (o *ordersAPI) readOrders(ctx context.Context, where string, full bool, arg any) ([]orderView, error) {
	rows, err := o.Store.Pool().Query(ctx, `SELECT order_id, number, placed_at, storefront, currency, total, order_status,
    payment_status, refunded, account_id IS NOT NULL FROM orders WHERE `+where+` ORDER BY placed_at DESC, number`, arg)
	if err != nil {
		return nil, err
	}
	views, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (orderView, error) {
		var v orderView
		var refunded int64
		err := row.Scan(&v.OrderID, &v.Number, &v.PlacedAt, &v.Storefront, &v.Total.Currency, &v.Total.Amount, &v.OrderStatus,
			&v.PaymentStatus, &refunded, &v.SavedInAccount)
		if refunded > 0 {
			v.Refunded = &amountView{Amount: refunded, Currency: v.Total.Currency}
		}
		v.ActionRequired = !v.SavedInAccount
		if !full {
			v.Number = ""
		}
		v.Lines, v.Items = []orderLineView{}, []orderItemView{}
		return v, err
	})
	if err != nil || len(views) == 0 {
		return []orderView{}, err
	}
	byID := make(map[uuid.UUID]*orderView, len(views))
	ids := make([]uuid.UUID, len(views))
	for i := range views {
		byID[views[i].OrderID], ids[i] = &views[i], views[i].OrderID
	}
	rows, err = o.Store.Pool().Query(ctx, `SELECT order_id, product, product_name, term, platform, quantity, unit_price, amount
FROM order_items WHERE order_id = ANY($1) ORDER BY order_id, line`, ids)
	if err != nil {
		return nil, err
	}
	var id uuid.UUID
	var l orderLineView
	_, err = pgx.ForEachRow(rows, []any{&id, &l.Product, &l.ProductName, &l.Term, &l.Platform, &l.Quantity, &l.UnitPrice.Amount, &l.Amount.Amount}, func() error {
		v := byID[id]
		l.UnitPrice.Currency, l.Amount.Currency = v.Total.Currency, v.Total.Currency
		v.Lines = append(v.Lines, l)
		return nil
	})
	if err != nil || !full {
		return views, err
	}
	rows, err = o.Store.Pool().Query(ctx, `SELECT s.order_id, s.subscription_id, s.product, i.product_name, s.key, s.serial, s.registrable
FROM order_subscriptions s JOIN order_items i ON i.order_id = s.order_id AND i.line = s.line
WHERE s.order_id = ANY($1) ORDER BY s.order_id, s.line, s.key`, ids)
	if err != nil {
		return nil, err
	}
	var sub uuid.UUID
	var product, name, key, serial string
	var registrable bool
	_, err = pgx.ForEachRow(rows, []any{&id, &sub, &product, &name, &key, &serial, &registrable}, func() error {
		byID[id].Items = append(byID[id].Items, viewItem(id, name, sub, product, key, serial, registrable))
		return nil
	})
	return views, err
}
