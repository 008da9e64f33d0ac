package api

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
)

// subscriptionsAPI serves the product key, products view and subscription
// endpoints (DOMAIN §3, ARS-5, ORD-5).
type subscriptionsAPI struct {
	Engine
	s       *Server
	handler *eventstore.CommandHandler[subscription.Subscription, subscription.Command]
}

// registerSubscriptions adds the key, products and subscription endpoints.
func registerSubscriptions(s *Server, deps Engine) error {
	h, err := commandHandler(s, deps, subscription.Decider)
	if err != nil {
		return err
	}
	a := &subscriptionsAPI{Engine: deps, s: s, handler: h}
	a.routes()
	a.renewalRoutes()
	a.conversionRoutes()
	return nil
}

func (a *subscriptionsAPI) routes() {
	keys, subs := []string{"keys"}, []string{"subscriptions"}
	a.s.Route(Route{Method: "POST", Pattern: "/v1/keys", Tags: keys, Auth: AuthCustomer,
		Summary: "Register a product key",
		Description: "Saves the key's subscription into the signed-in customer's account (KEY-2): 201 with its products-view row. " +
			"The same key again in the same account changes nothing and answers 200. An unknown or disabled key, a key registered " +
			"to another account and a product that cannot be registered (CAT-1, reached through its order: PRD-5) are refused " +
			"with 400 naming the field key.",
		Request:   registerKeyRequest{},
		Responses: map[int]any{http.StatusCreated: productView{}, http.StatusOK: productView{}},
		Handler:   HandlerFunc(a.registerKey)})
	a.s.Route(Route{Method: "GET", Pattern: "/v1/keys/{key}", Tags: keys, Auth: AuthCustomer,
		Summary:     "Look up a product key's serial number",
		Description: "The serial number, product and subscription of a key registered in the caller's account (PRD-4); any other key answers 404.",
		Responses:   map[int]any{http.StatusOK: keyLookupView{}, http.StatusNotFound: nil},
		Handler:     HandlerFunc(a.lookUpKey)})
	a.s.Route(Route{Method: "GET", Pattern: "/v1/products", Tags: keys, Auth: AuthCustomer,
		Summary: "List the registered products",
		Description: "Every subscription registered in the account (PRD-1): product, platform, status, registration and expiration " +
			"dates, product key, serial number, seats and seats used, automatic renewal and whether the expiration date is being " +
			"renewed (ARS-1), the active add-ons (MON-3), whether it was refunded (ARS-7, MON-2), whether download is available " +
			"(PRD-2) and whether the bootable recovery tool is (PRD-3). The status is computed at the moment of the request.",
		Responses: map[int]any{http.StatusOK: productsView{}},
		Handler:   HandlerFunc(a.listProducts)})
	a.s.Route(Route{Method: "GET", Pattern: "/v1/subscriptions/{id}", Tags: subs, Auth: AuthCustomer,
		Summary: "Read one of the account's subscriptions",
		Description: "Its products-view row (PRD-1): of a subscription registered in the caller's account, or of a non-registrable " +
			"product bought with an order saved in it (PRD-5, ORD-5), which the products list leaves out; any other answers 404 (SEC-1).",
		Responses: map[int]any{http.StatusOK: productView{}, http.StatusNotFound: nil},
		Handler:   HandlerFunc(a.getSubscription)})
	a.s.Route(Route{Method: "POST", Pattern: "/v1/subscriptions/{id}/activations", Tags: subs, Auth: AuthCustomer,
		Summary: "Activate a computer",
		Description: "Uses one seat for the computer (KEY-3): 201, or 200 when the computer already uses one. When every seat is in " +
			"use the answer is 409 saying to buy an additional product key (KEY-4) or deactivate a computer (KEY-5); an expired or " +
			"disabled subscription answers 409 too. A legacy key (NAV, NIS, N360, N1) cannot activate a Norton Security product: 400 naming " +
			"the field product (CNV-1).",
		Request:   activateRequest{},
		Responses: map[int]any{http.StatusCreated: productView{}, http.StatusOK: productView{}, http.StatusNotFound: nil},
		Handler:   HandlerFunc(a.activate)})
	a.s.Route(Route{Method: "DELETE", Pattern: "/v1/subscriptions/{id}/activations/{device}", Tags: subs, Auth: AuthCustomer,
		Summary:     "Deactivate a computer",
		Description: "Frees the computer's seat at once (KEY-5, policy); a computer not activated on the subscription answers 404.",
		Responses:   map[int]any{http.StatusNoContent: nil, http.StatusNotFound: nil},
		Handler:     HandlerFunc(a.deactivate)})
	a.s.Route(Route{Method: "GET", Pattern: "/v1/subscriptions/{id}/download", Tags: subs, Auth: AuthCustomer,
		Summary: "Download the product",
		Description: "A download descriptor while the subscription is current (PRD-2: active, trial or grace); otherwise 409, the " +
			"download being greyed out, naming the status. Products that cannot be registered are downloaded through their order (PRD-5).",
		Responses: map[int]any{http.StatusOK: downloadView{}, http.StatusNotFound: nil},
		Handler:   HandlerFunc(a.download)})
	a.s.Route(Route{Method: "GET", Pattern: "/v1/subscriptions/{id}/recovery-tool", Tags: subs, Auth: AuthCustomer,
		Summary: "Get the Norton Bootable Recovery Tool",
		Description: "Offered for a registered NAV, NIS or N360 for Windows with a non-expired paid subscription, not during a trial " +
			"(PRD-3); otherwise 409 naming why.",
		Responses: map[int]any{http.StatusOK: downloadView{}, http.StatusNotFound: nil},
		Handler:   HandlerFunc(a.recoveryTool)})
	a.s.Route(Route{Method: "PUT", Pattern: "/v1/subscriptions/{id}/auto-renewal", Tags: subs, Auth: AuthCustomer,
		Summary: "Turn automatic renewal on or off",
		Description: "Per subscription, once it is in the caller's account, or its order is (a non-registrable product: ARS-3, ORD-5). A subscription bought at an Asian online " +
			"store is managed on that store: 409 naming it (ARS-5). Off on a monthly plan is its cancellation (MON-1): within 30 days " +
			"of the purchase the initial charge is refunded and the plan ends at once (MON-2), as POST .../cancel does. On for a " +
			"subscription that has ended (expired, refunded) answers 409: nothing is left to renew (TRI-2).",
		Request:   autoRenewalRequest{},
		Responses: map[int]any{http.StatusOK: productView{}, http.StatusNotFound: nil},
		Handler:   HandlerFunc(a.setAutoRenewal)})
}

// Requests and answers.
type (
	registerKeyRequest struct {
		Key string `json:"key" doc:"the product key, XXXXX-XXXXX-XXXXX-XXXXX-XXXXX, any case, dashes optional"`
	}
	activateRequest struct {
		DeviceID string `json:"device_id" doc:"the computer's id: 1 to 64 letters, digits, dots, dashes, underscores or colons"`
		Product  string `json:"product,omitempty" doc:"the catalog code of the product installed on the computer; a legacy key cannot activate Norton Security (CNV-1)"`
	}
	autoRenewalRequest struct {
		On *bool `json:"on" doc:"true to renew automatically, false to renew by hand"`
	}
	// productView is one row of the products view (PRD-1).
	productView struct {
		SubscriptionID        uuid.UUID    `json:"subscription_id"`
		Product               string       `json:"product" doc:"catalog code, e.g. NIS"`
		ProductName           string       `json:"product_name"`
		Platform              string       `json:"platform"`
		Term                  string       `json:"term" doc:"annual, monthly or trial"`
		Status                string       `json:"status" doc:"trial, active, grace, expired, refunded or disabled, at the time of the request"`
		RegisteredAt          time.Time    `json:"registered_at"`
		StartsAt              time.Time    `json:"starts_at"`
		ExpiresAt             time.Time    `json:"expires_at"`
		ProductKey            string       `json:"product_key"`
		SerialNumber          string       `json:"serial_number"`
		Seats                 int          `json:"seats"`
		SeatsUsed             int          `json:"seats_used"`
		AutoRenewal           bool         `json:"auto_renewal"`
		Renewing              bool         `json:"renewing" doc:"the expiration date will be renewed automatically: renewal on, a price to charge, the period not lapsed (ARS-1)"`
		Refunded              bool         `json:"refunded" doc:"the last change of the expiration date was a refund (ARS-7, MON-2)"`
		DownloadAvailable     bool         `json:"download_available" doc:"PRD-2"`
		RecoveryToolAvailable bool         `json:"recovery_tool_available" doc:"PRD-3"`
		Storefront            string       `json:"storefront,omitempty" doc:"where it was bought; absent for a boxed retail key"`
		OrderID               *uuid.UUID   `json:"order_id,omitempty" doc:"the order that bought it; absent for a boxed retail key"`
		AddOns                []string     `json:"add_ons" doc:"codes of the active add-ons of a monthly plan (MON-3)"`
		Devices               []deviceView `json:"devices" doc:"the computers it is activated on"`
	}
	deviceView struct {
		DeviceID    string    `json:"device_id"`
		ActivatedAt time.Time `json:"activated_at"`
	}
	productsView struct {
		Products []productView `json:"products"`
	}
	keyLookupView struct {
		ProductKey     string    `json:"product_key"`
		SerialNumber   string    `json:"serial_number"`
		Product        string    `json:"product"`
		ProductName    string    `json:"product_name"`
		SubscriptionID uuid.UUID `json:"subscription_id"`
	}
	downloadView struct {
		SubscriptionID uuid.UUID `json:"subscription_id"`
		Product        string    `json:"product"`
		ProductName    string    `json:"product_name"`
		Platform       string    `json:"platform"`
		Status         string    `json:"status"`
		URL            string    `json:"url" doc:"where the installer is, on the public site"`
	}
)

func subscriptionStream(id uuid.UUID) eventstore.StreamID {
	return eventstore.StreamID(subscription.StreamName(id))
}

// handle runs a customer's command on a subscription and waits until the
// read models show it.
func (a *subscriptionsAPI) handle(ctx context.Context, id uuid.UUID, cmd subscription.Command) (eventstore.Outcome[subscription.Subscription], error) {
	sess, _ := SessionFrom(ctx)
	return a.command(ctx, id, cmd, customer(sess.AccountID))
}

// command runs cmd on subscription id, recorded with meta, and waits until
// the read models show it.
func (a *subscriptionsAPI) command(ctx context.Context, id uuid.UUID, cmd subscription.Command, meta eventstore.CommandMeta) (eventstore.Outcome[subscription.Subscription], error) {
	out, err := a.handler.Handle(ctx, subscriptionStream(id), cmd, meta)
	if err != nil {
		return out, err
	}
	a.settle(ctx, out.Append)
	return out, nil
}

// subscriptionID reads the {id} path value; one that is not a uuid names
// no subscription.
func subscriptionID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return uuid.Nil, subscription.ErrNotFound
	}
	return id, nil
}

// keyOwner finds the subscription a key names through its reservation,
// which the append that created it wrote: no projection lag.
func (a *subscriptionsAPI) keyOwner(ctx context.Context, key subscription.ProductKey) (uuid.UUID, bool, error) {
	stream, found, err := a.Store.ReservationOwner(ctx, eventstore.Reservation{Scope: subscription.KeyScope, Key: key.String()})
	if err != nil || !found {
		return uuid.Nil, false, err
	}
	id, err := uuid.Parse(string(stream)[len(subscription.StreamPrefix):])
	if err != nil {
		return uuid.Nil, false, fmt.Errorf("api: product key reserved by %s, not a subscription", stream)
	}
	return id, true, nil
}

func (a *subscriptionsAPI) registerKey(w http.ResponseWriter, r *http.Request) error {
	var in registerKeyRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Key == "" {
		return domain.Invalid("key", "is required")
	}
	key, err := subscription.ParseProductKey(in.Key)
	if err != nil {
		return domain.Invalid("key", err.Error())
	}
	id, found, err := a.keyOwner(r.Context(), key)
	if err != nil {
		return err
	}
	if !found {
		return subscription.ErrUnknownKey
	}
	if err := a.checkNotRetired(r.Context(), id, key); err != nil {
		return err
	}
	sess, _ := SessionFrom(r.Context())
	out, err := a.handle(r.Context(), id, subscription.Register{AccountID: sess.AccountID})
	if err != nil {
		return err
	}
	status := http.StatusOK // the same key twice in one account (KEY-2)
	if len(out.Events) > 0 {
		status = http.StatusCreated
		w.Header().Set("Location", "/v1/subscriptions/"+id.String())
	}
	return a.writeRow(w, r, status, id)
}

func (a *subscriptionsAPI) lookUpKey(w http.ResponseWriter, r *http.Request) error {
	key, err := subscription.ParseProductKey(r.PathValue("key"))
	if err != nil {
		return subscription.ErrNotFound // a malformed key names nothing
	}
	id, found, err := a.keyOwner(r.Context(), key)
	if err != nil {
		return err
	}
	if !found {
		return subscription.ErrNotFound
	}
	row, err := a.readRow(r.Context(), id)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, keyLookupView{ProductKey: row.ProductKey, SerialNumber: row.SerialNumber,
		Product: row.Product, ProductName: row.ProductName, SubscriptionID: row.SubscriptionID})
}

func (a *subscriptionsAPI) listProducts(w http.ResponseWriter, r *http.Request) error {
	sess, _ := SessionFrom(r.Context())
	rows, err := a.queryRows(r.Context(), `WHERE account_id = $1 ORDER BY registered_at, subscription_id`, sess.AccountID)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, productsView{Products: rows})
}

func (a *subscriptionsAPI) getSubscription(w http.ResponseWriter, r *http.Request) error {
	id, err := subscriptionID(r)
	if err != nil {
		return err
	}
	return a.writeRow(w, r, http.StatusOK, id)
}

func (a *subscriptionsAPI) activate(w http.ResponseWriter, r *http.Request) error {
	id, err := subscriptionID(r)
	if err != nil {
		return err
	}
	var in activateRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.DeviceID == "" {
		return domain.Invalid("device_id", "is required")
	}
	device, err := subscription.ParseDeviceID(in.DeviceID)
	if err != nil {
		return domain.Invalid("device_id", err.Error())
	}
	if err := a.checkClient(r.Context(), id, in.Product); err != nil {
		return err
	}
	sess, _ := SessionFrom(r.Context())
	out, err := a.handle(r.Context(), id, subscription.Activate{AccountID: sess.AccountID, Device: device})
	if err != nil {
		return err
	}
	status := http.StatusOK // the computer already uses a seat
	if len(out.Events) > 0 {
		status = http.StatusCreated
	}
	return a.writeRow(w, r, status, id)
}

func (a *subscriptionsAPI) deactivate(w http.ResponseWriter, r *http.Request) error {
	id, err := subscriptionID(r)
	if err != nil {
		return err
	}
	device, err := subscription.ParseDeviceID(r.PathValue("device"))
	if err != nil {
		return subscription.ErrNotActivated // no computer has a malformed id
	}
	sess, _ := SessionFrom(r.Context())
	if _, err := a.handle(r.Context(), id, subscription.Deactivate{AccountID: sess.AccountID, Device: device}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *subscriptionsAPI) download(w http.ResponseWriter, r *http.Request) error {
	id, err := subscriptionID(r)
	if err != nil {
		return err
	}
	row, err := a.readRow(r.Context(), id)
	if err != nil {
		return err
	}
	if err := subscription.CheckDownload(subscription.Status(row.Status)); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, downloadView{SubscriptionID: id, Product: row.Product, ProductName: row.ProductName,
		Platform: row.Platform, Status: row.Status, URL: "/downloads/" + url.PathEscape(row.Product) + "/" + url.PathEscape(row.Platform)})
}

func (a *subscriptionsAPI) recoveryTool(w http.ResponseWriter, r *http.Request) error {
	id, err := subscriptionID(r)
	if err != nil {
		return err
	}
	row, err := a.readRow(r.Context(), id)
	if err != nil {
		return err
	}
	var toolPlatforms []catalog.Platform
	if p, err := a.Catalog.Product(row.Product); err == nil {
		toolPlatforms = p.RecoveryToolPlatforms()
	}
	if err := subscription.CheckRecoveryTool(row.ProductName, row.Platform, row.offersTool, toolPlatforms, subscription.Status(row.Status)); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, downloadView{SubscriptionID: id, Product: row.Product, ProductName: "Norton Bootable Recovery Tool",
		Platform: row.Platform, Status: row.Status, URL: "/downloads/recovery-tool/" + url.PathEscape(row.Platform)})
}

// boxedKeyPrice is the price a boxed key renews at once enrolled: its
// term's catalog price at the storefront of the account's country (the
// United States store where the country has none). A subscription bought
// online has its own price, which the decider keeps; zero then.
func (a *subscriptionsAPI) boxedKeyPrice(ctx context.Context, id, accountID uuid.UUID) (money.Money, error) {
	var product, term, country string
	var fromOrder bool
	err := a.Store.Pool().QueryRow(ctx, `SELECT v.product, v.term, v.order_id IS NOT NULL, a.country
FROM products_view v JOIN accounts a ON a.account_id = v.account_id
WHERE v.subscription_id = $1 AND v.account_id = $2`, id, accountID).Scan(&product, &term, &fromOrder, &country)
	if errors.Is(err, pgx.ErrNoRows) || fromOrder {
		return money.Money{}, nil // not the caller's (the decider says so), or priced by its order
	}
	if err != nil {
		return money.Money{}, err
	}
	store, err := a.Catalog.Storefront(country)
	if err != nil {
		if store, err = a.Catalog.Storefront("US"); err != nil {
			return money.Money{}, err
		}
	}
	t, err := catalog.ParseTerm(term)
	if err != nil || t == catalog.Trial {
		t = catalog.Annual
	}
	price, err := a.Catalog.Price(product, t, store.Currency())
	if err != nil {
		return money.Money{}, nil // not sold any more: the decider refuses, naming the field
	}
	return price, nil
}

func (a *subscriptionsAPI) setAutoRenewal(w http.ResponseWriter, r *http.Request) error {
	id, err := subscriptionID(r)
	if err != nil {
		return err
	}
	var in autoRenewalRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.On == nil {
		return domain.Invalid("on", "is required: true or false")
	}
	sess, _ := SessionFrom(r.Context())
	cmd := subscription.SetAutoRenewal{AccountID: sess.AccountID, On: *in.On}
	if cmd.On {
		if cmd.Price, err = a.boxedKeyPrice(r.Context(), id, sess.AccountID); err != nil {
			return err
		}
	}
	// Through the renewal path: turning a monthly plan's renewal off within
	// 30 days of its purchase is a cancellation refunded at once (MON-2).
	if _, err := a.runRenewal(r.Context(), id, cmd, customer(sess.AccountID)); err != nil {
		return err
	}
	return a.writeRow(w, r, http.StatusOK, id)
}

// productRow is a productView with what the view computes from.
type productRow struct {
	productView
	offersTool bool
}

// productColumns are the products_view columns scanRow reads, in order.
const productColumns = `subscription_id, product, product_name, platform, term, registered_at, starts_at, expires_at,
product_key, serial, seats, seats_used, auto_renew, storefront, order_id, disabled, recovery_tool, renewing, refunded, add_ons`

// queryRows reads the products_view rows that where (a WHERE clause and
// its order) selects, with their devices, and computes each row's status at
// the request's instant.
func (a *subscriptionsAPI) queryRows(ctx context.Context, where string, args ...any) ([]productView, error) {
	now := a.s.Clock().Now()
	rows, err := a.Store.Pool().Query(ctx, `SELECT `+productColumns+` FROM products_view `+where, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (productView, error) {
		r, err := scanRow(row, now, a.s.Policy())
		return r.productView, err
	})
	if err != nil || len(out) == 0 {
		return []productView{}, err
	}
	ids := make([]uuid.UUID, len(out))
	at := make(map[uuid.UUID]int, len(out))
	for i, v := range out {
		ids[i], at[v.SubscriptionID] = v.SubscriptionID, i
	}
	devices, err := a.Store.Pool().Query(ctx, `SELECT subscription_id, device_id, activated_at FROM subscription_devices
WHERE subscription_id = ANY($1) ORDER BY activated_at, device_id`, ids)
	if err != nil {
		return nil, err
	}
	var id uuid.UUID
	var d deviceView
	_, err = pgx.ForEachRow(devices, []any{&id, &d.DeviceID, &d.ActivatedAt}, func() error {
		out[at[id]].Devices = append(out[at[id]].Devices, d)
		return nil
	})
	return out, err
}

// readRow reads subscription id's row if the caller's account owns it
// (ownedByAccount), or answers subscription.ErrNotFound (SEC-1).
func (a *subscriptionsAPI) readRow(ctx context.Context, id uuid.UUID) (productRow, error) {
	sess, _ := SessionFrom(ctx)
	now := a.s.Clock().Now()
	row, err := scanRow(a.Store.Pool().QueryRow(ctx, `SELECT `+productColumns+` FROM products_view
WHERE subscription_id = $1 AND `+ownedByAccount, id, sess.AccountID), now, a.s.Policy())
	if errors.Is(err, pgx.ErrNoRows) {
		return row, subscription.ErrNotFound
	}
	return row, err
}

// ownedByAccount is the products_view condition that a row's subscription
// belongs to account $2: registered in it, or a non-registrable product
// whose order is saved in it (subscription.Owner). The latter is not listed
// among the account's products (PRD-1, PRD-5) but is read and managed by
// its id, found in the order history (ORD-5).
const ownedByAccount = `(account_id = $2 OR (account_id IS NULL AND NOT registrable
    AND order_id IN (SELECT order_id FROM orders WHERE account_id = $2)))`

// writeRow answers subscription id's products-view row with its devices.
func (a *subscriptionsAPI) writeRow(w http.ResponseWriter, r *http.Request, status int, id uuid.UUID) error {
	sess, _ := SessionFrom(r.Context())
	rows, err := a.queryRows(r.Context(), `WHERE subscription_id = $1 AND `+ownedByAccount, id, sess.AccountID)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return subscription.ErrNotFound
	}
	return WriteJSON(w, status, rows[0])
}

// scanRow reads one row of productColumns and computes what the view shows
// at now: the status (subscription.StatusAt), download (PRD-2) and
// recovery tool (PRD-3) availability.
func scanRow(row pgx.Row, now time.Time, p policy.Policy) (productRow, error) {
	var r productRow
	var registered *time.Time
	var f subscription.StatusFacts
	err := row.Scan(&r.SubscriptionID, &r.Product, &r.ProductName, &r.Platform, &r.Term, &registered, &r.StartsAt, &r.ExpiresAt,
		&r.ProductKey, &r.SerialNumber, &r.Seats, &r.SeatsUsed, &r.AutoRenewal, &r.Storefront, &r.OrderID, &f.Disabled, &r.offersTool,
		&f.Renewing, &f.Refunded, &r.AddOns)
	if err != nil {
		return r, err
	}
	r.Renewing, r.Refunded = f.Renewing, f.Refunded
	if registered != nil {
		r.RegisteredAt = registered.UTC()
	}
	r.StartsAt, r.ExpiresAt = r.StartsAt.UTC(), r.ExpiresAt.UTC()
	f.Trial, f.ExpiresAt = r.Term == catalog.Trial.String(), r.ExpiresAt
	st := subscription.StatusAt(f, now, p)
	r.Status = string(st)
	r.DownloadAvailable = subscription.CheckDownload(st) == nil
	r.RecoveryToolAvailable = subscription.RecoveryToolAvailable(r.offersTool, st)
	if !st.Current() {
		r.AddOns = []string{} // an ended plan provides none (MON-3)
	}
	r.Devices = []deviceView{}
	return r, nil
}

// RetailBatch is a retailer's batch of boxed keys: Count unregistered
// subscriptions of Product for Term on Platform (the product's first
// platform when zero).
type RetailBatch struct {
	Product  catalog.Product
	Term     catalog.Term
	Platform catalog.Platform
	Count    int
}

// MintedKey is one key of a retail batch.
type MintedKey struct {
	Key            subscription.ProductKey
	Serial         subscription.SerialNumber
	SubscriptionID uuid.UUID
}

// KeyMinterConfig configures a KeyMinter.
type KeyMinterConfig struct {
	// Store is the event log. Required.
	Store *eventstore.Store
	// Types encodes the subscription events. Required.
	Types *eventstore.EventTypes
	// Clock gives each subscription its start. Required.
	Clock clock.Clock
	// Policy gives a trial its length; its unset fields take their
	// defaults (policy.New).
	Policy policy.Policy
	// Random draws keys and serial numbers. Default crypto/rand.Reader.
	Random io.Reader
	// MaxDraws bounds how often a key is drawn again when its key or serial
	// is taken already. Default 5.
	MaxDraws int
}

// KeyMinter creates boxed retail keys (issue 5): unregistered
// subscriptions with fresh keys and serial numbers, as a retailer's batch
// would. It is safe for concurrent use.
type KeyMinter struct {
	cfg     KeyMinterConfig
	handler *eventstore.CommandHandler[subscription.Subscription, subscription.Command]
}

// NewKeyMinter returns a minter, or an error naming the missing setting.
func NewKeyMinter(cfg KeyMinterConfig) (*KeyMinter, error) {
	p, err := policy.New(cfg.Policy)
	if err != nil {
		return nil, fmt.Errorf("api: key minter: %w", err)
	}
	cfg.Policy = p
	if cfg.Random == nil {
		cfg.Random = rand.Reader
	}
	if cfg.MaxDraws == 0 {
		cfg.MaxDraws = 5
	}
	h, err := eventstore.NewCommandHandler(subscription.Decider, eventstore.HandlerConfig{
		Store: cfg.Store, Types: cfg.Types, Clock: cfg.Clock, Policy: cfg.Policy})
	if err != nil {
		return nil, fmt.Errorf("api: key minter: %w", err)
	}
	return &KeyMinter{cfg: cfg, handler: h}, nil
}

// Mint creates b's subscriptions one by one, each starting at the clock's
// now and expiring one term later, automatic renewal off (a boxed key is
// renewed by hand), recorded by the system actor with reason "retail
// batch". A key or serial number that another subscription holds is drawn
// again. It returns the keys made before any error, and a field error for
// a product, term, platform or count the batch cannot have.
func (m *KeyMinter) Mint(ctx context.Context, b RetailBatch) ([]MintedKey, error) {
	if b.Count < 1 {
		return nil, domain.Invalid("count", "must be at least 1")
	}
	meta := eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorSystem, Reason: "retail batch"}}
	out := make([]MintedKey, 0, b.Count)
	for range b.Count {
		k, err := m.mintOne(ctx, b, meta)
		if err != nil {
			return out, err
		}
		out = append(out, k)
	}
	return out, nil
}

func (m *KeyMinter) mintOne(ctx context.Context, b RetailBatch, meta eventstore.CommandMeta) (MintedKey, error) {
	var lastTaken error
	for range m.cfg.MaxDraws {
		key, err := subscription.NewProductKey(m.cfg.Random)
		if err != nil {
			return MintedKey{}, err
		}
		serial, err := subscription.NewSerialNumber(m.cfg.Random)
		if err != nil {
			return MintedKey{}, err
		}
		id := uuid.New()
		created, err := subscription.NewCreated(id, b.Product, b.Term, b.Platform, key, serial, m.cfg.Clock.Now(), m.cfg.Policy, subscription.Origin{})
		if err != nil {
			return MintedKey{}, err
		}
		_, err = m.handler.Handle(ctx, subscriptionStream(id), subscription.Create{Created: created}, meta)
		var taken *eventstore.ReservationConflictError
		if errors.As(err, &taken) {
			lastTaken = err
			continue
		}
		if err != nil {
			return MintedKey{}, err
		}
		return MintedKey{Key: key, Serial: serial, SubscriptionID: id}, nil
	}
	return MintedKey{}, fmt.Errorf("api: mint a key: drew %d taken keys or serials in a row: %w", m.cfg.MaxDraws, lastTaken)
}
