package api_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/api"
	catalogdata "github.com/subs-engine/subs/catalog"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/events"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/order"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/workers/fulfilment"
	"github.com/subs-engine/subs/workers/gateway"
	"github.com/subs-engine/subs/workers/mail/mailtest"
)

// Test cards of the sandbox gateway.
const (
	goodCard     = "4242 4242 4242 4242"
	declinedCard = "4000 0000 0000 0341" // tokenizes, every charge is declined
)

func cardJSON(number string) string {
	return `{"type":"card","card":{"number":"` + number + `","cvv":"919","exp_month":12,"exp_year":2031,"holder_name":"Ann Lee"}}`
}

// orderBody is a POST /v1/orders body; extra is appended to the object
// (`,"email":…`).
func orderBody(store, lines, card, extra string) string {
	b := `{"storefront":"` + store + `","lines":` + lines
	if card != "" {
		b += `,"payment_method":` + cardJSON(card)
	}
	return b + extra + `}`
}

func line(product, term, platform string, quantity int) string {
	return fmt.Sprintf(`{"product":%q,"term":%q,"platform":%q,"quantity":%d}`, product, term, platform, quantity)
}

// items returns the items of an order answer.
func items(t testing.TB, o map[string]any) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, it := range o["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

// postWithKey sends a POST with an Idempotency-Key.
func (e *engineEnv) postWithKey(path, token, key, body string) reply {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// countEvents counts the events of a type in the log.
func (e *engineEnv) countEvents(typ string) int {
	e.t.Helper()
	var n int
	if err := e.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE event_type = $1`, typ).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// buy places a paid order for a signed-in customer and returns the answer.
func (e *engineEnv) buy(token, lines string) map[string]any {
	e.t.Helper()
	return e.want(e.call("POST", "/v1/orders", token, orderBody("US", lines, goodCard, "")), http.StatusCreated).json(e.t)
}

func TestRule_ORD1_OrderHistoryListsOrdersWithLinesTotalStatusesAndKeys(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "right-pass")
	token := e.signIn("ann@example.com", "right-pass")
	placed := e.buy(token, `[`+line("NS-DLX", "annual", "windows", 2)+`,`+line("NAV", "annual", "mac", 1)+`]`)
	if got, want := len(items(t, placed)), 3; got != want {
		t.Fatalf("a 2 + 1 seat-pack order yielded %d subscriptions, want %d", got, want)
	}

	hist := e.want(e.call("GET", "/v1/orders", token, ""), http.StatusOK).json(t)
	orders := hist["orders"].([]any)
	if len(orders) != 1 {
		t.Fatalf("history holds %d orders, want 1: %v", len(orders), hist)
	}
	o := orders[0].(map[string]any)
	if o["number"] != placed["number"] || !strings.HasPrefix(o["number"].(string), "N") {
		t.Errorf("number %v, want %v", o["number"], placed["number"])
	}
	if o["storefront"] != "US" || o["order_status"] != "fulfilled" || o["payment_status"] != "paid" || o["placed_at"] != "2027-03-01T09:00:00Z" {
		t.Errorf("order = %v", o)
	}
	// NS-DLX and NAV annual in USD: 2 × 89.99 + 39.99 with the catalog's prices.
	cat := catalogdata.MustLoad()
	usd, _ := money.ParseCurrency("USD")
	dlx, _ := cat.Price("NS-DLX", catalog.Annual, usd)
	nav, _ := cat.Price("NAV", catalog.Annual, usd)
	total := o["total"].(map[string]any)
	if got, want := int64(total["amount"].(float64)), 2*dlx.Amount()+nav.Amount(); got != want || total["currency"] != "USD" {
		t.Errorf("total %v, want %d USD", total, want)
	}
	lines := o["lines"].([]any)
	if len(lines) != 2 || lines[0].(map[string]any)["quantity"].(float64) != 2 || lines[0].(map[string]any)["product"] != "NS-DLX" {
		t.Errorf("lines %v", lines)
	}
	got := items(t, o)
	if len(got) != 3 {
		t.Fatalf("history shows %d items, want 3", len(got))
	}
	for _, it := range got {
		if _, err := subscription.ParseProductKey(it["key"].(string)); err != nil {
			t.Errorf("item key %v: %v", it["key"], err)
		}
	}
	if len(hist["action_required"].([]any)) != 0 {
		t.Errorf("action_required %v, want none", hist["action_required"])
	}
}

func TestRule_ORD2_PasswordDecidesWhetherTheOrderIsSavedAndWrongOrUnknownLookAlike(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "right-pass")
	token := e.signIn("ann@example.com", "right-pass")
	lines := `[` + line("NS-STD", "annual", "windows", 1) + `]`

	matching := e.want(e.call("POST", "/v1/orders", "", orderBody("US", lines, goodCard, `,"email":"ANN@example.com","password":"right-pass"`)), http.StatusCreated).json(t)
	if matching["saved_in_account"] != true || matching["action_required"] != false {
		t.Errorf("matching password: %v, want saved", matching)
	}
	wrong := e.want(e.call("POST", "/v1/orders", "", orderBody("US", lines, goodCard, `,"email":"ann@example.com","password":"wrong-pass"`)), http.StatusCreated).json(t)
	unknown := e.want(e.call("POST", "/v1/orders", "", orderBody("US", lines, goodCard, `,"email":"nobody@example.com","password":"wrong-pass"`)), http.StatusCreated).json(t)
	for name, o := range map[string]map[string]any{"wrong password": wrong, "unknown e-mail": unknown} {
		if o["saved_in_account"] != false || o["action_required"] != true {
			t.Errorf("%s: %v, want pending with action required", name, o)
		}
	}
	if keysOf(wrong) != keysOf(unknown) {
		t.Errorf("a wrong password and an unknown e-mail answer differently: %v vs %v", keysOf(wrong), keysOf(unknown))
	}

	hist := e.want(e.call("GET", "/v1/orders", token, ""), http.StatusOK).json(t)
	saved, pending := hist["orders"].([]any), hist["action_required"].([]any)
	if len(saved) != 1 || saved[0].(map[string]any)["order_id"] != matching["order_id"] {
		t.Errorf("saved orders %v, want only the matching one", saved)
	}
	if len(pending) != 1 || pending[0].(map[string]any)["order_id"] != wrong["order_id"] {
		t.Fatalf("action required %v, want the wrong-password order", pending)
	}
	p := pending[0].(map[string]any)
	if _, shown := p["number"]; shown || len(items(t, p)) != 0 {
		t.Errorf("a pending order shows its number or keys before it is recognized: %v", p)
	}
	// Its keys are not in the account until it is saved.
	products := e.want(e.call("GET", "/v1/products", token, ""), http.StatusOK).json(t)["products"].([]any)
	if len(products) != 1 {
		t.Errorf("products view holds %d products, want 1 (the saved order's)", len(products))
	}
}

// rule EML-1 with ORD-2: an order not saved in an account (a wrong
// password, or an address with no account yet) gets the "order needs
// action" e-mail at its buyer's address, besides its confirmation, once;
// it says where to answer and does not give the order number (an answer of
// ORD-3). A saved order gets none.
func TestRule_EML1_OrderNeedsActionEmailForAnOrderNotSaved(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "right-pass")
	lines := `[` + line("NS-STD", "annual", "windows", 1) + `]`
	e.want(e.call("POST", "/v1/orders", "", orderBody("US", lines, goodCard, `,"email":"ann@example.com","password":"right-pass"`)), http.StatusCreated)
	wrong := e.want(e.call("POST", "/v1/orders", "", orderBody("US", lines, goodCard, `,"email":"ann@example.com","password":"wrong-pass"`)), http.StatusCreated).json(t)
	e.want(e.call("POST", "/v1/orders", "", orderBody("US", lines, goodCard, `,"email":"nobody@example.com","password":"any-pass"`)), http.StatusCreated)

	const subject = "Subject: An order placed with your e-mail address needs your answer"
	needsAction := map[string]int{}
	var body string
	for _, m := range e.sendMail() {
		if !strings.Contains(m, subject) {
			continue
		}
		for _, to := range []string{"ann@example.com", "nobody@example.com"} {
			if strings.Contains(m, "To: <"+to+">") {
				needsAction[to]++
				if to == "ann@example.com" {
					body = mailtest.PlainText(t, m)
				}
			}
		}
	}
	if want := map[string]int{"ann@example.com": 1, "nobody@example.com": 1}; !maps.Equal(needsAction, want) {
		t.Fatalf("order-needs-action e-mails by recipient %v, want %v (none for the saved order)", needsAction, want)
	}
	for _, fact := range []string{"USD 39.99", "https://account.example.com/account/orders", "If you do not recognize it"} {
		if !strings.Contains(body, fact) {
			t.Errorf("the e-mail lacks %q:\n%s", fact, body)
		}
	}
	if number, ok := wrong["number"].(string); ok && strings.Contains(body, number) {
		t.Errorf("the e-mail gives the order number %s, an answer of ORD-3:\n%s", number, body)
	}
	if n := e.countEvents("order.email_sent"); n != 5 {
		t.Errorf("%d order.email_sent events, want 5: three confirmations and two needs-action e-mails (EML-1)", n)
	}
	if again := e.sendMail(); len(again) != 5 {
		t.Errorf("%d e-mails after a second outbox run, want the same 5 (EML-2)", len(again))
	}
}

// keysOf lists an object's keys, sorted, as one string.
func keysOf(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ",")
}

// pendingOrder places an order for ann's e-mail with a wrong password and
// returns its answer (which the buyer sees: number and keys).
func pendingOrder(e *engineEnv, lines string) map[string]any {
	e.t.Helper()
	return e.want(e.call("POST", "/v1/orders", "", orderBody("US", lines, goodCard, `,"email":"ann@example.com","password":"wrong-pass"`)), http.StatusCreated).json(e.t)
}

func TestRule_ORD3_RecognizeWithOrderNumberOrSerialSavesTheOrder(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "right-pass")
	token := e.signIn("ann@example.com", "right-pass")
	e.signUp("bob@example.com", "bobs-pass")
	bob := e.signIn("bob@example.com", "bobs-pass")
	lines := `[` + line("NIS", "annual", "windows", 2) + `]`
	byNumber, bySerial := pendingOrder(e, lines), pendingOrder(e, lines)

	path := "/v1/orders/" + byNumber["order_id"].(string)
	e.want(e.call("POST", path+"/recognize", bob, `{"answer":"`+byNumber["number"].(string)+`"}`), http.StatusNotFound) // SEC-1
	wrong := e.want(e.call("POST", path+"/recognize", token, `{"answer":"N0000000000"}`), http.StatusBadRequest)
	if got := wrong.fields(t); !slices.Equal(got, []string{"answer"}) {
		t.Errorf("wrong answer names %v, want [answer]", got)
	}
	saved := e.want(e.call("POST", path+"/recognize", token, `{"answer":"`+strings.ToLower(byNumber["number"].(string))+`"}`), http.StatusOK).json(t)
	if saved["saved_in_account"] != true || len(items(t, saved)) != 2 {
		t.Errorf("recognized order %v, want saved with its 2 items", saved)
	}
	e.want(e.call("POST", path+"/recognize", token, `{"answer":"`+byNumber["number"].(string)+`"}`), http.StatusConflict)

	serial := items(t, bySerial)[1]["serial"].(string)
	e.want(e.call("POST", "/v1/orders/"+bySerial["order_id"].(string)+"/recognize", token, `{"answer":"`+serial+`"}`), http.StatusOK)

	hist := e.want(e.call("GET", "/v1/orders", token, ""), http.StatusOK).json(t)
	if n := len(hist["orders"].([]any)); n != 2 || len(hist["action_required"].([]any)) != 0 {
		t.Errorf("history %v, want both orders saved and none awaiting", hist)
	}
	products := e.want(e.call("GET", "/v1/products", token, ""), http.StatusOK).json(t)["products"].([]any)
	if len(products) != 4 {
		t.Errorf("products view holds %d products, want the 4 keys of the recognized orders", len(products))
	}
}

func TestRule_ORD4_DisownTurnsRenewalOffAndDoesNotSave(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "right-pass")
	token := e.signIn("ann@example.com", "right-pass")
	o := pendingOrder(e, `[`+line("NS-STD", "annual", "windows", 2)+`]`)
	path := "/v1/orders/" + o["order_id"].(string)
	e.want(e.call("POST", path+"/disown", token, ""), http.StatusNoContent)
	e.want(e.call("POST", path+"/disown", token, ""), http.StatusNotFound) // not pending, not saved: gone from the account
	e.want(e.call("POST", path+"/recognize", token, `{"answer":"`+o["number"].(string)+`"}`), http.StatusNotFound)

	hist := e.want(e.call("GET", "/v1/orders", token, ""), http.StatusOK).json(t)
	if len(hist["orders"].([]any))+len(hist["action_required"].([]any)) != 0 {
		t.Errorf("history %v, want the disowned order gone", hist)
	}
	subs := subscriptionHandler(t, e)
	for _, it := range items(t, o) {
		st, _, err := subs.Load(context.Background(), eventstore.StreamID(subscription.StreamName(uuid.MustParse(it["subscription_id"].(string)))))
		if err != nil {
			t.Fatal(err)
		}
		if st.AutoRenew() || st.Account() != uuid.Nil {
			t.Errorf("subscription %s: auto-renew %v, account %v; want off and in no account", it["subscription_id"], st.AutoRenew(), st.Account())
		}
	}
}

func subscriptionHandler(t testing.TB, e *engineEnv) *eventstore.CommandHandler[subscription.Subscription, subscription.Command] {
	t.Helper()
	types := eventstore.NewEventTypes()
	types.Register(1, events.All()...)
	h, err := eventstore.NewCommandHandler(subscription.Decider, eventstore.HandlerConfig{Store: e.store, Types: types, Clock: e.clock, Policy: testPolicy})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestRule_ORD5_RenewalSettingsOnlyOnceTheOrderIsSaved(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "right-pass")
	token := e.signIn("ann@example.com", "right-pass")
	o := pendingOrder(e, `[`+line("NS-STD", "annual", "windows", 1)+`]`)
	sub := items(t, o)[0]["subscription_id"].(string)
	e.want(e.call("PUT", "/v1/subscriptions/"+sub+"/auto-renewal", token, `{"on":false}`), http.StatusNotFound)
	e.want(e.call("POST", "/v1/orders/"+o["order_id"].(string)+"/recognize", token, `{"answer":"`+o["number"].(string)+`"}`), http.StatusOK)
	got := e.want(e.call("PUT", "/v1/subscriptions/"+sub+"/auto-renewal", token, `{"on":false}`), http.StatusOK).json(t)
	if got["auto_renewal"] != false {
		t.Errorf("auto_renewal %v after turning it off", got["auto_renewal"])
	}
}

func TestRule_KEY4_BuyAnotherKeyYieldsANewSubscriptionInTheSameAccount(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "right-pass")
	token := e.signIn("ann@example.com", "right-pass")
	// Billing information on file: the second order needs no card.
	e.want(e.call("PUT", "/v1/account/billing", token, cardBilling("US", goodCard)), http.StatusOK)
	first := e.want(e.call("POST", "/v1/orders", token, orderBody("US", `[`+line("NAV", "annual", "windows", 1)+`]`, "", "")), http.StatusCreated).json(t)
	second := e.want(e.call("POST", "/v1/orders", token, orderBody("US", `[`+line("NAV", "annual", "windows", 1)+`]`, "", "")), http.StatusCreated).json(t)
	k1, k2 := items(t, first)[0]["key"], items(t, second)[0]["key"]
	if k1 == k2 {
		t.Fatalf("another key is the same key %v", k1)
	}
	products := e.want(e.call("GET", "/v1/products", token, ""), http.StatusOK).json(t)["products"].([]any)
	var keys []string
	for _, p := range products {
		keys = append(keys, p.(map[string]any)["product_key"].(string))
	}
	slices.Sort(keys)
	want := []string{k1.(string), k2.(string)}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("products view keys %v, want %v", keys, want)
	}
}

func TestRule_PRD4_SerialInOrderDetailsConfirmationEmailAndProductsView(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "right-pass")
	token := e.signIn("ann@example.com", "right-pass")
	placed := e.buy(token, `[`+line("NS-PRM", "annual", "mac", 2)+`]`)
	details := e.want(e.call("GET", "/v1/orders/"+placed["order_id"].(string), token, ""), http.StatusOK).json(t)
	its := items(t, details)
	if len(its) != 2 {
		t.Fatalf("details show %d items, want 2", len(its))
	}
	mails := e.sendMail()
	if len(mails) != 1 {
		t.Fatalf("%d e-mails sent, want the order confirmation", len(mails))
	}
	if !strings.Contains(mails[0], "To: \"Ann Lee\" <ann@example.com>") && !strings.Contains(mails[0], "<ann@example.com>") {
		t.Errorf("confirmation not addressed to the account:\n%s", mails[0])
	}
	body := mailtest.PlainText(t, mails[0])
	products := e.want(e.call("GET", "/v1/products", token, ""), http.StatusOK).json(t)["products"].([]any)
	serials := map[string]string{}
	for _, p := range products {
		p := p.(map[string]any)
		serials[p["product_key"].(string)] = p["serial_number"].(string)
	}
	for _, it := range its {
		key, serial := it["key"].(string), it["serial"].(string)
		if _, err := subscription.ParseSerialNumber(serial); err != nil {
			t.Errorf("serial %q: %v", serial, err)
		}
		if !strings.Contains(body, key) || !strings.Contains(body, serial) {
			t.Errorf("confirmation lacks key %s or serial %s:\n%s", key, serial, body)
		}
		if serials[key] != serial {
			t.Errorf("products view: key %s has serial %q, want %q", key, serials[key], serial)
		}
	}
	if !strings.Contains(body, placed["number"].(string)) {
		t.Errorf("confirmation lacks the order number:\n%s", body)
	}
	if again := e.sendMail(); len(again) != 1 {
		t.Errorf("%d e-mails after a second outbox run, want the one confirmation (EML-2)", len(again))
	}
}

func TestOrderConfirmation_GoesToABuyerWithoutAccount(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	o := e.want(e.call("POST", "/v1/orders", "", orderBody("US", `[`+line("NS-STD", "annual", "windows", 1)+`]`, goodCard,
		`,"email":"carl@example.com","password":"any-pass"`)), http.StatusCreated).json(t)
	var confirmation string
	for _, m := range e.sendMail() {
		if strings.Contains(m, "Subject: Your order") && strings.Contains(m, "carl@example.com") {
			confirmation = m
		}
	}
	if confirmation == "" {
		t.Fatal("no order confirmation to carl@example.com")
	}
	if body := mailtest.PlainText(t, confirmation); !strings.Contains(body, items(t, o)[0]["serial"].(string)) {
		t.Errorf("confirmation lacks the serial:\n%s", body)
	}
	// The confirmation, and the e-mail saying the order awaits an account
	// (ORD-2).
	if n := e.countEvents("order.email_sent"); n != 2 {
		t.Errorf("%d order.email_sent events, want 2 (EML-1)", n)
	}
}

func TestRule_PRD5_NonRegistrableProductReachedThroughItsOrder(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "right-pass")
	token := e.signIn("ann@example.com", "right-pass")
	e.signUp("bob@example.com", "bobs-pass")
	bob := e.signIn("bob@example.com", "bobs-pass")
	placed := e.buy(token, `[`+line("NU", "annual", "windows", 1)+`,`+line("NS-STD", "annual", "windows", 1)+`]`)
	its := items(t, placed)
	nu := its[0]
	if nu["product"] != "NU" || nu["registrable"] != false {
		t.Fatalf("first item %v, want a non-registrable NU", nu)
	}
	refused := e.want(e.call("POST", "/v1/keys", token, `{"key":"`+nu["key"].(string)+`"}`), http.StatusBadRequest)
	if got := refused.fields(t); !slices.Equal(got, []string{"key"}) {
		t.Errorf("registering NU names %v, want [key]", got)
	}
	products := e.want(e.call("GET", "/v1/products", token, ""), http.StatusOK).json(t)["products"].([]any)
	if len(products) != 1 || products[0].(map[string]any)["product"] != "NS-STD" {
		t.Errorf("products view %v, want only NS-STD", products)
	}
	for _, it := range its {
		got := e.want(e.call("GET", it["download"].(string), token, ""), http.StatusOK).json(t)
		if got["key"] != it["key"] || !strings.HasPrefix(got["download_url"].(string), "https://") {
			t.Errorf("download of %s: %v", it["product"], got)
		}
	}
	e.want(e.call("GET", nu["download"].(string), bob, ""), http.StatusNotFound) // SEC-1
	// Once the term is over, the download is greyed out (PRD-2): no
	// renewal worker runs here, so its renewal lapses with the grace.
	e.clock.Advance((366 + 7) * 24 * time.Hour)
	token = e.signIn("ann@example.com", "right-pass")
	e.want(e.call("GET", nu["download"].(string), token, ""), http.StatusConflict)
}

func TestOrders_DeclinedCardAnswers402AndDeliversNothing(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "right-pass")
	token := e.signIn("ann@example.com", "right-pass")
	r := e.want(e.call("POST", "/v1/orders", token, orderBody("US", `[`+line("NS-STD", "annual", "windows", 1)+`]`, declinedCard, "")), http.StatusPaymentRequired)
	if got := r.fields(t); !slices.Equal(got, []string{"payment_method"}) {
		t.Errorf("decline names %v, want [payment_method]", got)
	}
	if n := e.countEvents("subscription.created"); n != 0 {
		t.Errorf("%d subscriptions created for a declined order", n)
	}
	hist := e.want(e.call("GET", "/v1/orders", token, ""), http.StatusOK).json(t)
	o := hist["orders"].([]any)[0].(map[string]any)
	if o["order_status"] != "declined" || o["payment_status"] != "declined" {
		t.Errorf("declined order shows %v", o)
	}
}

func TestOrders_InputRefusedNamingEachField(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "right-pass")
	token := e.signIn("ann@example.com", "right-pass")
	for _, c := range []struct {
		name, token, body string
		fields            []string
	}{
		{"no storefront, no lines", token, `{"storefront":"XX","lines":[]}`, []string{"storefront", "lines"}},
		{"bad line", token, orderBody("US", `[`+line("NOPE", "weekly", "linux", 0)+`]`, goodCard, ""),
			[]string{"lines[0].product", "lines[0].term", "lines[0].platform", "lines[0].quantity"}},
		{"term not sold", token, orderBody("US", `[`+line("NAV", "monthly", "windows", 1)+`]`, goodCard, ""), []string{"lines[0].term"}},
		{"trial not offered", token, orderBody("US", `[`+line("N1", "trial", "windows", 1)+`]`, goodCard, ""), []string{"lines[0].term"}},
		{"platform", token, orderBody("US", `[`+line("N360", "annual", "mac", 1)+`]`, goodCard, ""), []string{"lines[0].platform"}},
		{"anonymous without e-mail", "", orderBody("US", `[`+line("NAV", "annual", "windows", 1)+`]`, goodCard, ""), []string{"email", "password"}},
		{"no payment method", token, orderBody("US", `[`+line("NAV", "annual", "windows", 1)+`]`, "", ""), []string{"payment_method"}},
		{"bad card", token, orderBody("US", `[`+line("NAV", "annual", "windows", 1)+`]`, "4242 4242 4242 4241", ""), []string{"payment_method.card.number"}},
	} {
		r := e.call("POST", "/v1/orders", c.token, c.body)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s\n%s", c.name, r.status, r.body, e.logs.String())
			continue
		}
		if got := r.fields(t); !slices.Equal(got, c.fields) {
			t.Errorf("%s: fields %v, want %v", c.name, got, c.fields)
		}
	}
	if n := e.countEvents("order.placed"); n != 0 {
		t.Errorf("%d orders placed from refused input (SEC-4)", n)
	}
}

func TestOrders_RetriedPostChargesOnce(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "right-pass")
	token := e.signIn("ann@example.com", "right-pass")
	body := orderBody("US", `[`+line("NS-STD", "annual", "windows", 1)+`]`, goodCard, "")
	first := e.want(e.postWithKey("/v1/orders", token, "buy-1", body), http.StatusCreated).json(t)
	again := e.want(e.postWithKey("/v1/orders", token, "buy-1", body), http.StatusCreated).json(t)
	if first["order_id"] != again["order_id"] {
		t.Errorf("a retry placed another order")
	}
	if n := e.countEvents("order.paid"); n != 1 {
		t.Errorf("%d order.paid events, want 1", n)
	}
	// The idempotency middleware replayed that answer. Without its record
	// (released after a 5xx, or expired), the same key finds the same order
	// and the gateway's first outcome.
	if _, err := e.store.Pool().Exec(context.Background(), `DELETE FROM idempotency_keys`); err != nil {
		t.Fatal(err)
	}
	third := e.want(e.postWithKey("/v1/orders", token, "buy-1", body), http.StatusCreated).json(t)
	if third["order_id"] != first["order_id"] || e.countEvents("order.paid") != 1 || e.countEvents("subscription.created") != 1 {
		t.Errorf("a retry after the record was gone charged or delivered again")
	}
	var charges int
	if err := e.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM gateway_charges`).Scan(&charges); err != nil {
		t.Logf("gateway ledger not readable here: %v", err)
	} else if charges != 1 {
		t.Errorf("gateway holds %d charges, want 1", charges)
	}
}

// fulfilEnv is an order written straight to the log (placed and paid, as
// if the API crashed after the charge), and a fulfiller over it.
func fulfilEnv(t *testing.T, e *engineEnv, gw payment.Gateway) (uuid.UUID, *fulfilment.Fulfiller) {
	t.Helper()
	ctx := context.Background()
	types := eventstore.NewEventTypes()
	types.Register(1, events.All()...)
	cat := catalogdata.MustLoad()
	f, err := fulfilment.New(fulfilment.Config{Store: e.store, Types: types, Catalog: cat, Clock: e.clock, Policy: testPolicy,
		PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	orders, err := eventstore.NewCommandHandler(order.Decider, eventstore.HandlerConfig{Store: e.store, Types: types, Clock: e.clock, Policy: testPolicy})
	if err != nil {
		t.Fatal(err)
	}
	usd, _ := money.ParseCurrency("USD")
	unit, _ := cat.Price("NIS", catalog.Annual, usd)
	amount, _ := unit.Mul(3)
	card, err := payment.NewCard(goodCard, "919", "Ann Lee", 12, 2031, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	method, err := gw.TokenizeCard(ctx, card)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	number, _ := order.NewNumber(strings.NewReader("0123456789"))
	p := order.Placed{OrderID: id, Number: number, Storefront: "US", BuyerEmail: "carl@example.com", PlacedAt: e.clock.Now(), PaymentToken: method.Token(),
		Lines: []order.Line{{Product: "NIS", ProductName: "Norton Internet Security", Term: "annual", Platform: "windows", Quantity: 3, UnitPrice: unit, Amount: amount}},
		Total: amount}
	meta := eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorSystem}}
	if _, err := orders.Handle(ctx, fulfilment.OrderStream(id), order.Place{Placed: p}, meta); err != nil {
		t.Fatal(err)
	}
	out, err := gw.Charge(ctx, payment.ChargeRequest{IdempotencyKey: "order-" + id.String(), Token: method.Token(), Amount: amount})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := orders.Handle(ctx, fulfilment.OrderStream(id), order.RecordCharge{ChargeID: out.ChargeID, Succeeded: true}, meta); err != nil {
		t.Fatal(err)
	}
	return id, f
}

func TestFulfilment_CrashAfterPaymentFinishedOnceByRetryAndProcessManager(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ctx := context.Background()
	gw, err := gateway.NewSandbox(ctx, e.store.Pool(), gateway.SandboxConfig{Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	id, f := fulfilEnv(t, e, gw)
	// The process manager sees order.paid and fulfils.
	pmCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { f.Run(pmCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	fulfilled := waitFor(t, func() bool { return e.countEvents("order.fulfilled") == 1 })
	if !fulfilled {
		t.Fatal("the process manager did not fulfil the paid order")
	}
	// Fulfilling again, as a restarted API would, changes nothing.
	for range 2 {
		res, err := f.Fulfil(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(res.Order.Items()); n != 3 {
			t.Errorf("fulfilled order has %d items, want 3", n)
		}
	}
	if n := e.countEvents("subscription.created"); n != 3 {
		t.Errorf("%d subscriptions created, want exactly 3", n)
	}
	if n := e.countEvents("order.fulfilled"); n != 1 {
		t.Errorf("%d order.fulfilled events, want 1", n)
	}
}

func TestFulfilment_HalfCreatedItemsAreKept(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ctx := context.Background()
	gw, err := gateway.NewSandbox(ctx, e.store.Pool(), gateway.SandboxConfig{Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	id, f := fulfilEnv(t, e, gw)
	// A crash after the first subscription: it exists, the order does not
	// list it yet.
	subs := subscriptionHandler(t, e)
	cat := catalogdata.MustLoad()
	nis, _ := cat.Product("NIS")
	key, _ := subscription.NewProductKey(strings.NewReader(strings.Repeat("\x01\x02\x03\x04\x05", 40)))
	serial, _ := subscription.NewSerialNumber(strings.NewReader(strings.Repeat("\x01\x02\x03\x04\x05", 40)))
	first := fulfilment.SubscriptionID(id, 0, 0)
	created, err := subscription.NewCreated(first, nis, catalog.Annual, catalog.Windows, key, serial, e.clock.Now(), testPolicy, subscription.Origin{OrderID: id})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := subs.Handle(ctx, eventstore.StreamID(subscription.StreamName(first)), subscription.Create{Created: created},
		eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorSystem}}); err != nil {
		t.Fatal(err)
	}
	res, err := f.Fulfil(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	its := res.Order.Items()
	if len(its) != 3 || its[0].SubscriptionID != first || its[0].Key != key {
		t.Errorf("items %v, want 3 with the first one kept", its)
	}
	if n := e.countEvents("subscription.created"); n != 3 {
		t.Errorf("%d subscriptions created, want 3", n)
	}
}

// waitFor polls cond until it holds or five seconds pass: the process
// manager runs on its own goroutine, and its progress is only observable
// in the log.
func waitFor(t *testing.T, cond func() bool) bool {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			return cond()
		}
	}
	return true
}

// unavailableCharges answers every charge "unavailable" (a gateway that
// cannot answer now) while down holds, and passes the calls on after.
type unavailableCharges struct {
	payment.Gateway
	down atomic.Bool
}

func (g *unavailableCharges) Charge(ctx context.Context, req payment.ChargeRequest) (payment.ChargeOutcome, error) {
	if g.down.Load() {
		return payment.ChargeOutcome{}, payment.ErrUnavailable
	}
	return g.Gateway.Charge(ctx, req)
}

// rule ORD-4: an order disowned while its payment had not gone through
// yet, then paid on the buyer's retry, yields subscriptions whose automatic
// renewal is off, as disowning turns it off for those it had.
func TestRule_ORD4_DisownedBeforeItWasPaidNeverRenews(t *testing.T) {
	t.Parallel()
	gw := &unavailableCharges{}
	gw.down.Store(true)
	e := newEngineEnvWithGateway(t, func(g payment.Gateway) payment.Gateway { gw.Gateway = g; return gw })
	e.signUp("ann@example.com", "right-pass")
	ann := e.signIn("ann@example.com", "right-pass")
	body := orderBody("US", `[`+line("NS-STD", "annual", "windows", 1)+`]`, goodCard, `,"email":"ann@example.com","password":"wrong-pass"`)
	e.want(e.postWithKey("/v1/orders", "", "bobs-order", body), http.StatusServiceUnavailable)
	e.caughtUp() // the answer was an error: the order history shows the placed order once caught up
	pending := e.want(e.call("GET", "/v1/orders", ann, ""), http.StatusOK).json(t)["action_required"].([]any)
	if len(pending) != 1 {
		t.Fatalf("action required %v, want the unpaid order", pending)
	}
	e.want(e.call("POST", "/v1/orders/"+pending[0].(map[string]any)["order_id"].(string)+"/disown", ann, ""), http.StatusNoContent)
	gw.down.Store(false)
	paid := e.want(e.postWithKey("/v1/orders", "", "bobs-order", body), http.StatusCreated).json(t)
	subs := subscriptionHandler(t, e)
	for _, it := range items(t, paid) {
		st, _, err := subs.Load(context.Background(), eventstore.StreamID(subscription.StreamName(uuid.MustParse(it["subscription_id"].(string)))))
		if err != nil {
			t.Fatal(err)
		}
		if st.AutoRenew() {
			t.Errorf("subscription %s of the disowned order renews automatically", it["subscription_id"])
		}
	}
}

// outboxRows is each e-mail of kind in the outbox: whether it was dropped,
// why, and how many runs claimed it.
func (e *engineEnv) outboxRows(kind string) []outboxRow {
	e.t.Helper()
	rows, err := e.store.Pool().Query(context.Background(),
		`SELECT dropped_at IS NOT NULL, coalesce(last_error, ''), attempts FROM email_outbox WHERE kind = $1`, kind)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[outboxRow])
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

type outboxRow struct {
	Dropped  bool
	Reason   string
	Attempts int
}

// wantDroppedOnce checks that the outbox holds one e-mail of kind, dropped
// for the rule named, and that later runs leave it alone (it is not retried
// at every lease).
func (e *engineEnv) wantDroppedOnce(kind, rule string) {
	e.t.Helper()
	before := len(e.sendMail())
	e.clock.Advance(time.Hour) // past the lease of the run that dropped it
	if after := len(e.sendMail()); after != before {
		e.t.Errorf("later runs sent %d messages", after-before)
	}
	rows := e.outboxRows(kind)
	if len(rows) != 1 || !rows[0].Dropped || !strings.Contains(rows[0].Reason, rule) || rows[0].Attempts != 1 {
		e.t.Errorf("outbox rows of %s: %+v; want one dropped for %s, claimed once", kind, rows, rule)
	}
}

// rule ORD-4, ARS-3: a disowned order's subscriptions (in no account, their
// renewal off) are reminded to no one: the address the order was placed
// with is the account's that said it does not recognize the order.
func TestRule_ORD4_DisownedOrdersSubscriptionsAreRemindedToNoOne(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "right-pass")
	ann := e.signIn("ann@example.com", "right-pass")
	o := pendingOrder(e, `[`+line("NS-STD", "annual", "windows", 1)+`]`)
	e.want(e.call("POST", "/v1/orders/"+o["order_id"].(string)+"/disown", ann, ""), http.StatusNoContent)
	e.sendMail() // the order's own e-mail, from before

	st, _, err := subscriptionHandler(t, e).Load(context.Background(),
		eventstore.StreamID(subscription.StreamName(uuid.MustParse(items(t, o)[0]["subscription_id"].(string)))))
	if err != nil {
		t.Fatal(err)
	}
	e.advance(st.StatusFacts().ExpiresAt.AddDate(0, 0, -30).Sub(e.clock.Now()))
	e.runRenewals()
	if got := mailBySubject(t, e.sendMail(), "Your Norton Security Standard expires on"); len(got) != 0 {
		t.Errorf("reminders of the disowned order's subscription sent to %v, want none", got)
	}
	e.wantDroppedOnce("renewal_reminder", "ORD-4")
}

// rule AUD-5, ORD-2: an order placed with an account's address and not
// saved in it, whose account is erased before its e-mail went out, e-mails
// no one: its address is erased with the account.
func TestRule_AUD5_PendingOrderOfAnErasedAccountEmailsNoOne(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t, withAgents)
	id := e.signUp("ann@example.com", "right-pass")
	pendingOrder(e, `[`+line("NS-STD", "annual", "windows", 1)+`]`)
	e.want(e.call("POST", "/v1/agent/accounts/"+id+"/erase", supportCredential, `{"reason":"the customer asked"}`), http.StatusOK)
	e.caughtUp()
	if mails := e.sendMail(); len(mails) != 0 {
		t.Errorf("sent %d messages after the erasure, want none: %q", len(mails), mails)
	}
	e.wantDroppedOnce("order_needs_action", "AUD-5")
}

// rule AUD-5, ARS-2: erasing an account turns automatic renewal off for the
// subscriptions it would go on paying for with no one told: its own, and
// those of an order placed with its address and saved in no account; none
// is charged again, and the change is the erasing agent's.
func TestRule_AUD5_ErasedAccountsSubscriptionsAreNotRenewed(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t, withAgents)
	id := e.signUp("ann@example.com", "right-pass")
	own := e.buyOne(e.signIn("ann@example.com", "right-pass"), "NS-STD", "annual")
	pending := items(t, pendingOrder(e, `[`+line("NS-DLX", "annual", "windows", 1)+`]`))[0]["subscription_id"].(string)
	expires := e.clock.Now().AddDate(1, 0, 0)
	e.want(e.call("POST", "/v1/agent/accounts/"+id+"/erase", supportCredential, `{"reason":"the customer asked"}`), http.StatusOK)
	charged := e.gatewayCharges()
	e.renewOnce(own, expires)
	e.advance(30 * 24 * time.Hour)
	e.runRenewals()
	if n := e.gatewayCharges(); n != charged {
		t.Errorf("the gateway made %d charges after the erasure, want none", n-charged)
	}
	for _, sub := range []string{own, pending} {
		off := false
		for _, rec := range e.events("subscription-" + sub) {
			if rec.Type == "subscription.auto_renewal_changed" && rec.Metadata.ActorID == "agent-support" && rec.Metadata.Reason == "the customer asked" {
				off = true
			}
		}
		if !off {
			t.Errorf("subscription %s: no renewal turned off by the erasing agent", sub)
		}
	}
}

// rule AUD-5: the erasure finds the subscriptions registered in the account
// in the log, not in a read model that may not have applied them yet (as
// `subs accounts erase` runs, with no projections of its own).
func TestRule_AUD5_ErasureStopsRenewalsTheReadModelsHaveNotSeen(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	id := e.signUp("ann@example.com", "right-pass")
	sub := e.buyOne(e.signIn("ann@example.com", "right-pass"), "NS-STD", "annual")
	// The products view and the order history have not seen it: read
	// models behind.
	for _, table := range []string{"products_view", "order_subscriptions"} {
		if _, err := e.store.Pool().Exec(context.Background(), `DELETE FROM `+table+` WHERE subscription_id = $1`, sub); err != nil {
			t.Fatal(err)
		}
	}
	types := eventstore.NewEventTypes()
	types.Register(1, events.All()...)
	meta := eventstore.Metadata{ActorKind: eventstore.ActorAgent, ActorID: "agent-9", Reason: "the customer asked"}
	if _, err := api.EraseAccount(context.Background(), api.Engine{Store: e.store, Types: types}, e.clock, uuid.MustParse(id), meta); err != nil {
		t.Fatal(err)
	}
	st, _, err := subscriptionHandler(t, e).Load(context.Background(), eventstore.StreamID(subscription.StreamName(uuid.MustParse(sub))))
	if err != nil {
		t.Fatal(err)
	}
	if st.AutoRenew() {
		t.Errorf("the erased account's subscription still renews automatically")
	}
}

// rule ORD-4, EML-1, ARS-7: what a disowned order's subscription was
// charged before the disowning is still confirmed when refunded: money
// that moved is not one of the renewal prompts dropped for its address.
func TestRule_ORD4_DisownedOrdersRefundIsStillConfirmed(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	agent := e.agent("ava")
	e.signUp("ann@example.com", "right-pass")
	o := pendingOrder(e, `[`+line("NS-STD", "annual", "windows", 1)+`]`)
	id := items(t, o)[0]["subscription_id"].(string)
	st, _, err := subscriptionHandler(t, e).Load(context.Background(), eventstore.StreamID(subscription.StreamName(uuid.MustParse(id))))
	if err != nil {
		t.Fatal(err)
	}
	e.renewOnce(id, st.StatusFacts().ExpiresAt) // renewed while the order awaited its account (ARS-2)
	ann := e.signIn("ann@example.com", "right-pass")
	e.want(e.call("POST", "/v1/orders/"+o["order_id"].(string)+"/disown", ann, ""), http.StatusNoContent)
	e.sendMail()
	e.want(e.call("POST", "/v1/agent/subscriptions/"+id+"/refund", agent, `{"reason":"the card's owner asked"}`), http.StatusOK)
	e.caughtUp()
	if got := mailBySubject(t, e.sendMail(), "Refund"); got["ann@example.com"] != 1 {
		t.Errorf("refund confirmations by recipient %v, want one at the order's address", got)
	}
}
