package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	catalogdata "github.com/subs-engine/subs/catalog"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/workers/mail/mailtest"
)

// gatewayRefund is the amount the sandbox gateway refunded under the
// subscription's refund key of period (0: the initial charge), and false
// when it refunded nothing.
func (e *engineEnv) gatewayRefund(id string, period int) (int64, bool) {
	e.t.Helper()
	var minor int64
	err := e.store.Pool().QueryRow(context.Background(), `SELECT amount_minor FROM gateway_sandbox.refunds WHERE idempotency_key = $1`,
		subscription.RefundKey(uuid.MustParse(id), period)).Scan(&minor)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return minor, true
}

// usdPrice is the catalog's price of one term of code in US dollars.
func usdPrice(t testing.TB, code string, term catalog.Term) money.Money {
	t.Helper()
	usd, err := money.ParseCurrency("USD")
	if err != nil {
		t.Fatal(err)
	}
	p, err := catalogdata.MustLoad().Price(code, term, usd)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sessions signs a new customer up and returns a function that signs
// them in afresh: the simulated clock outlives sessions.
func (e *engineEnv) sessions(email string) func() string {
	e.t.Helper()
	e.signUp(email, "secret1")
	return func() string { return e.signIn(email, "secret1") }
}

// buyOne buys one seat pack of product for term and returns its
// subscription id.
func (e *engineEnv) buyOne(token, product, term string) string {
	e.t.Helper()
	return items(e.t, e.buy(token, "["+line(product, term, "windows", 1)+"]"))[0]["subscription_id"].(string)
}

// rule ARS-7: within 60 days of an automatic-renewal charge the customer
// gets it back through the gateway at once, and the renewed term is taken
// back off the subscription, which then expires at its old date.
func TestRule_ARS7_RefundWithinTheWindowReturnsTheChargeAndTakesTheTermBack(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	id := e.buyOne(ann(), "NS-DLX", "annual")
	expires := mustTime(t, e.row(ann(), id)["expires_at"])
	e.renewOnce(id, expires)
	if row := e.row(ann(), id); !mustTime(t, row["expires_at"]).Equal(expires.AddDate(1, 0, 0)) || row["renewing"] != true {
		t.Fatalf("after the renewal: %v", row)
	}
	e.advance(20 * 24 * time.Hour)

	row := e.want(e.call("POST", "/v1/subscriptions/"+id+"/refund", ann(), ""), http.StatusOK).json(t)
	if !mustTime(t, row["expires_at"]).Equal(expires) || row["refunded"] != true || row["auto_renewal"] != false || row["renewing"] != false {
		t.Errorf("refunded row %v, want expiry %v back, refunded, renewal off", row, expires)
	}
	price := usdPrice(t, "NS-DLX", catalog.Annual)
	if got, ok := e.gatewayRefund(id, 1); !ok || got != price.Amount() {
		t.Errorf("gateway refunded %d (%v), want %d", got, ok, price.Amount())
	}
	if got := e.row(ann(), id)["status"]; got != "refunded" {
		t.Errorf("status once the old expiry passed: %v", got)
	}
	// The charge was given back once; nothing is left to refund.
	e.wantProblem(e.call("POST", "/v1/subscriptions/"+id+"/refund", ann(), ""), http.StatusConflict, "no automatic-renewal charge")
	if n := e.countEvents("subscription.refunded"); n != 1 {
		t.Errorf("%d refunds recorded, want 1", n)
	}
}

// rule ARS-7: after 60 days the refund is refused naming the rule and the
// date the window closed; nothing is written.
func TestRule_ARS7_RefundAfterTheWindowRefusedWithTheDateItClosed(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	id := e.buyOne(ann(), "NS-STD", "annual")
	expires := mustTime(t, e.row(ann(), id)["expires_at"])
	e.renewOnce(id, expires)
	charged := e.clock.Now()
	e.advance(61 * 24 * time.Hour)
	token := ann()
	before := e.eventCount()
	r := e.call("POST", "/v1/subscriptions/"+id+"/refund", token, "")
	e.wantProblem(r, http.StatusConflict, "ARS-7", charged.AddDate(0, 0, 60).Format("2006-01-02"))
	if n := e.eventCount(); n != before {
		t.Errorf("a refused refund wrote %d events", n-before)
	}
	if _, ok := e.gatewayRefund(id, 1); ok {
		t.Error("the gateway refunded after the window")
	}
}

// rule MON-2: a monthly plan cancelled within 30 days of its purchase has
// its initial charge refunded in full and ends at once; a monthly plan is
// never refunded by the month.
func TestRule_MON2_CancelWithin30DaysRefundsTheInitialChargeAndEndsAtOnce(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	id := e.buyOne(ann(), "NS-PRM", "monthly")
	e.wantProblem(e.call("POST", "/v1/subscriptions/"+id+"/refund", ann(), ""), http.StatusConflict, "cancel the plan")
	e.advance(10 * 24 * time.Hour)

	row := e.want(e.call("POST", "/v1/subscriptions/"+id+"/cancel", ann(), ""), http.StatusOK).json(t)
	if row["status"] != "refunded" || row["refunded"] != true || row["auto_renewal"] != false || row["download_available"] != false ||
		!mustTime(t, row["expires_at"]).Equal(e.clock.Now()) {
		t.Errorf("cancelled early: %v", row)
	}
	if got, ok := e.gatewayRefund(id, 0); !ok || got != usdPrice(t, "NS-PRM", catalog.Monthly).Amount() {
		t.Errorf("gateway refunded %d (%v), want the initial charge", got, ok)
	}
}

// rule MON-3: an add-on of a boxed monthly key, enrolled at the price of the
// account's country, is priced in that currency (it was priced in dollars,
// and refused for a plan renewing in euros or yen).
func TestRule_MON3_BoxedKeysAddOnIsPricedInThePlansCurrency(t *testing.T) {
	t.Parallel()
	for country, currency := range map[string]string{"US": "USD", "DE": "EUR", "JP": "JPY"} {
		t.Run(country, func(t *testing.T) {
			t.Parallel()
			e := newEngineEnv(t)
			e.want(e.call("POST", "/v1/accounts", "", `{"email":"ann@example.com","password":"secret1","name":"Ann Lee","country":"`+country+`"}`),
				http.StatusCreated)
			tok := e.signIn("ann@example.com", "secret1")
			key, _, id := e.mint("NS-PRM", "monthly", "windows")
			e.register(tok, key)
			e.want(e.call("PUT", "/v1/subscriptions/"+id+"/auto-renewal", tok, `{"on":true}`), http.StatusOK)
			e.want(e.call("POST", "/v1/subscriptions/"+id+"/addons", tok, `{"addon":"NS-PRM-STORAGE"}`), http.StatusCreated)
			var got string
			for _, rec := range e.events("subscription-" + id) {
				if rec.Type == "subscription.add_on_added" {
					var added struct {
						Price struct{ Currency string } `json:"price"`
					}
					if err := json.Unmarshal(rec.Data, &added); err != nil {
						t.Fatal(err)
					}
					got = added.Price.Currency
				}
			}
			if got != currency {
				t.Errorf("add-on priced in %q, want %s", got, currency)
			}
		})
	}
}

// rule MON-3, MON-2: a plan that ended (cancelled within 30 days, ending at
// once) lists no active add-on.
func TestRule_MON3_EndedPlanListsNoAddOns(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	id := e.buyOne(ann(), "NS-PRM", "monthly")
	bought := e.want(e.call("POST", "/v1/subscriptions/"+id+"/addons", ann(), `{"addon":"NS-PRM-STORAGE"}`), http.StatusCreated).json(t)
	if addOns := bought["add_ons"].([]any); len(addOns) != 1 {
		t.Fatalf("add-ons after buying one: %v", addOns)
	}
	e.advance(10 * 24 * time.Hour)
	e.want(e.call("POST", "/v1/subscriptions/"+id+"/cancel", ann(), ""), http.StatusOK)
	if row := e.row(ann(), id); row["status"] != "refunded" || len(row["add_ons"].([]any)) != 0 {
		t.Errorf("ended plan: status %v, add-ons %v; want none", row["status"], row["add_ons"])
	}
}

// rule MON-2, ORD-1: the order history shows the initial charge refunded:
// all of it for an order of the plan alone, the plan's line of it (partly
// refunded) for an order with an annual subscription too; the order's own
// page says the same.
func TestRule_MON2_OrderHistoryShowsTheInitialChargeRefunded(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	monthly := usdPrice(t, "NS-PRM", catalog.Monthly).Amount()
	alone := e.buy(ann(), "["+line("NS-PRM", "monthly", "windows", 1)+"]")
	both := e.buy(ann(), "["+line("NS-PRM", "monthly", "windows", 1)+","+line("NS-DLX", "annual", "windows", 1)+"]")
	e.advance(10 * 24 * time.Hour)
	for _, o := range []map[string]any{alone, both} {
		id := items(t, o)[0]["subscription_id"].(string)
		e.want(e.call("POST", "/v1/subscriptions/"+id+"/cancel", ann(), ""), http.StatusOK)
	}
	e.caughtUp()
	want := map[string]string{alone["order_id"].(string): "refunded", both["order_id"].(string): "partially_refunded"}
	history := e.want(e.call("GET", "/v1/orders", ann(), ""), http.StatusOK).json(t)["orders"].([]any)
	for _, x := range history {
		o := x.(map[string]any)
		page := e.want(e.call("GET", "/v1/orders/"+o["order_id"].(string), ann(), ""), http.StatusOK).json(t)
		for what, v := range map[string]map[string]any{"history": o, "order page": page} {
			refunded, _ := v["refunded"].(map[string]any)
			if v["payment_status"] != want[o["order_id"].(string)] || refunded == nil || int64(refunded["amount"].(float64)) != monthly {
				t.Errorf("%s of order %v: payment %v, refunded %v; want %s, %d", what, o["order_id"], v["payment_status"], v["refunded"],
					want[o["order_id"].(string)], monthly)
			}
		}
	}
}

// rule MON-2, ORD-1: a refund of the gateway counts once in the order
// history however often the log records it (an older history could hold
// a refund recorded twice): the order's refunded amount and payment status
// stay those of the one refund.
func TestRule_MON2_ARefundRecordedTwiceCountsOnceInTheOrderHistory(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	monthly := usdPrice(t, "NS-PRM", catalog.Monthly).Amount()
	o := e.buy(ann(), "["+line("NS-PRM", "monthly", "windows", 1)+","+line("NS-DLX", "annual", "windows", 1)+"]")
	id := items(t, o)[0]["subscription_id"].(string)
	e.advance(10 * 24 * time.Hour)
	e.want(e.call("POST", "/v1/subscriptions/"+id+"/cancel", ann(), ""), http.StatusOK)
	stream := subscription.StreamName(uuid.MustParse(id))
	var refunded eventstore.RecordedEvent
	for _, r := range e.events(stream) {
		if r.Type == (subscription.Refunded{}).EventType() {
			refunded = r
		}
	}
	if refunded.Type == "" {
		t.Fatal("the cancellation within 30 days recorded no refund (MON-2)")
	}
	again := eventstore.EventData{Type: refunded.Type, SchemaVersion: refunded.SchemaVersion, Data: refunded.Data}
	if _, err := e.store.Append(context.Background(), eventstore.StreamID(stream), eventstore.ExpectedVersion(refunded.Version), []eventstore.EventData{again},
		eventstore.AppendOptions{RecordedAt: e.clock.Now(), Metadata: refunded.Metadata}); err != nil {
		t.Fatal(err)
	}
	e.caughtUp()
	page := e.want(e.call("GET", "/v1/orders/"+o["order_id"].(string), ann(), ""), http.StatusOK).json(t)
	amount, _ := page["refunded"].(map[string]any)
	if page["payment_status"] != "partially_refunded" || amount == nil || int64(amount["amount"].(float64)) != monthly {
		t.Errorf("order page: payment %v, refunded %v; want partially_refunded, %d (the one refund)", page["payment_status"], page["refunded"], monthly)
	}
}

// rule MON-2: a plan bought on January 31, 2028 renews on February 29,
// inside its first 30 days; cancelled then, it ends at once and gets back
// the initial charge and the renewal's, whose month it will never deliver.
func TestRule_MON2_CancelWithin30DaysAfterARenewalRefundsTheRenewalToo(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	e.advance(time.Date(2028, 1, 31, 9, 0, 0, 0, time.UTC).Sub(e.clock.Now()))
	id := e.buyOne(ann(), "NS-STD", "monthly")
	expires := mustTime(t, e.row(ann(), id)["expires_at"])
	if want := time.Date(2028, 2, 29, 9, 0, 0, 0, time.UTC); !expires.Equal(want) {
		t.Fatalf("expires %v, want %v", expires, want)
	}
	e.renewAtExpiry(expires)
	if renewed := mustTime(t, e.row(ann(), id)["expires_at"]); !renewed.After(expires) {
		t.Fatalf("not renewed: %v", e.row(ann(), id))
	}
	e.advance(time.Hour)

	row := e.want(e.call("POST", "/v1/subscriptions/"+id+"/cancel", ann(), ""), http.StatusOK).json(t)
	if row["status"] != "refunded" || row["auto_renewal"] != false || !mustTime(t, row["expires_at"]).Equal(e.clock.Now()) {
		t.Errorf("cancelled within 30 days of the purchase: %v", row)
	}
	price := usdPrice(t, "NS-STD", catalog.Monthly).Amount()
	for period, what := range []string{"the initial charge", "the renewal"} {
		if got, ok := e.gatewayRefund(id, period); !ok || got != price {
			t.Errorf("gateway refunded %d (%v) of %s, want %d", got, ok, what, price)
		}
	}
	if n := e.countEvents("subscription.refunded"); n != 2 {
		t.Errorf("%d refunds recorded, want 2", n)
	}
}

// rule MON-1: cancelling a monthly plan turns its renewal off; it stays
// current until its expiration date, then expires. Past 30 days (MON-2)
// nothing is refunded for the partial month.
func TestRule_MON1_CancelledPlanStaysCurrentUntilItsExpiry(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	id := e.buyOne(ann(), "NS-STD", "monthly")
	expires := mustTime(t, e.row(ann(), id)["expires_at"])
	e.renewAtExpiry(expires)
	renewed := mustTime(t, e.row(ann(), id)["expires_at"])
	if !renewed.After(expires) {
		t.Fatalf("not renewed: %v", e.row(ann(), id))
	}
	e.advance(5 * 24 * time.Hour)

	row := e.want(e.call("POST", "/v1/subscriptions/"+id+"/cancel", ann(), ""), http.StatusOK).json(t)
	if row["status"] != "active" || row["auto_renewal"] != false || row["renewing"] != false || row["refunded"] != false ||
		!mustTime(t, row["expires_at"]).Equal(renewed) {
		t.Errorf("cancelled after 30 days: %v", row)
	}
	if _, ok := e.gatewayRefund(id, 0); ok {
		t.Error("a partial month was refunded")
	}
	e.want(e.call("POST", "/v1/subscriptions/"+id+"/cancel", ann(), ""), http.StatusOK) // again: nothing changes
	e.advance(renewed.Sub(e.clock.Now()) + time.Minute)
	e.runRenewals()
	if got := e.row(ann(), id)["status"]; got != "expired" {
		t.Errorf("status after the expiry: %v", got)
	}
	annual := e.buyOne(ann(), "NS-STD", "annual")
	e.wantProblem(e.call("POST", "/v1/subscriptions/"+annual+"/cancel", ann(), ""), http.StatusConflict, "automatic renewal off")
}

// rule MON-1, MON-2: cancelling a monthly plan is turning its automatic
// renewal off, so both ways give the same outcome: within 30 days of the
// purchase the initial charge is refunded and the plan ends at once; later
// it stays current until its expiry, with nothing refunded.
func TestRule_MON1_TurningRenewalOffIsCancelling(t *testing.T) {
	t.Parallel()
	cancel := func(e *engineEnv, token, id string) map[string]any {
		return e.want(e.call("POST", "/v1/subscriptions/"+id+"/cancel", token, ""), http.StatusOK).json(e.t)
	}
	turnOff := func(e *engineEnv, token, id string) map[string]any {
		return e.want(e.call("PUT", "/v1/subscriptions/"+id+"/auto-renewal", token, `{"on":false}`), http.StatusOK).json(e.t)
	}
	for _, c := range []struct {
		name     string
		way      func(e *engineEnv, token, id string) map[string]any
		renewed  bool // cancelled after the first renewal, past 30 days
		refunded bool
	}{
		{"cancel within 30 days", cancel, false, true},
		{"renewal off within 30 days", turnOff, false, true},
		{"cancel after 30 days", cancel, true, false},
		{"renewal off after 30 days", turnOff, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEngineEnv(t)
			ann := e.sessions("ann@example.com")
			id := e.buyOne(ann(), "NS-STD", "monthly")
			expires := mustTime(t, e.row(ann(), id)["expires_at"])
			if c.renewed {
				e.renewAtExpiry(expires)
				expires = mustTime(t, e.row(ann(), id)["expires_at"])
			}
			e.advance(5 * 24 * time.Hour)

			row := c.way(e, ann(), id)
			wantStatus, wantExpiry := "active", expires
			if c.refunded {
				wantStatus, wantExpiry = "refunded", e.clock.Now()
			}
			if row["status"] != wantStatus || row["auto_renewal"] != false || row["refunded"] != c.refunded ||
				!mustTime(t, row["expires_at"]).Equal(wantExpiry) {
				t.Errorf("row %v, want status %s, renewal off, refunded %v, expiry %v", row, wantStatus, c.refunded, wantExpiry)
			}
			got, ok := e.gatewayRefund(id, 0)
			if want := usdPrice(t, "NS-STD", catalog.Monthly).Amount(); c.refunded && (!ok || got != want) {
				t.Errorf("gateway refunded %d (%v) of the initial charge, want %d", got, ok, want)
			}
			if !c.refunded && ok {
				t.Errorf("gateway refunded %d of the initial charge, want nothing for a partial month", got)
			}
		})
	}
}

// rule MON-3: add-ons offered on a monthly plan's product are bought and
// cancelled on their own, and charged with the base product each month
// while active.
func TestRule_MON3_AddOnsBoughtAndCancelledOnTheirOwnAndChargedWithThePlan(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	id := e.buyOne(ann(), "NS-PRM", "monthly")
	path := "/v1/subscriptions/" + id + "/addons"

	row := e.want(e.call("POST", path, ann(), `{"addon":"ns-prm-storage"}`), http.StatusCreated).json(t)
	if got := row["add_ons"].([]any); len(got) != 1 || got[0] != "NS-PRM-STORAGE" {
		t.Errorf("add-ons %v", got)
	}
	e.want(e.call("POST", path, ann(), `{"addon":"NS-PRM-STORAGE"}`), http.StatusOK) // active already
	e.want(e.call("POST", path, ann(), `{"addon":"NS-EXTRA-USER"}`), http.StatusCreated)
	for _, body := range []string{`{}`, `{"addon":"NO-SUCH"}`, `{"addon":"NS-PRM"}`} {
		wantFields(t, e.call("POST", path, ann(), body), http.StatusBadRequest, "addon")
	}
	std := e.buyOne(ann(), "NS-STD", "monthly")
	wantFields(t, e.call("POST", "/v1/subscriptions/"+std+"/addons", ann(), `{"addon":"NS-EXTRA-USER"}`), http.StatusBadRequest, "addon")
	annual := e.buyOne(ann(), "NS-PRM", "annual")
	wantFields(t, e.call("POST", "/v1/subscriptions/"+annual+"/addons", ann(), `{"addon":"NS-EXTRA-USER"}`), http.StatusBadRequest, "addon")

	row = e.want(e.call("DELETE", path+"/ns-prm-storage", ann(), ""), http.StatusOK).json(t)
	if got := row["add_ons"].([]any); len(got) != 1 || got[0] != "NS-EXTRA-USER" || row["status"] != "active" || row["auto_renewal"] != true {
		t.Errorf("after cancelling the storage add-on: %v", row)
	}
	e.want(e.call("DELETE", path+"/NS-PRM-STORAGE", ann(), ""), http.StatusNotFound)

	// The next renewal charges the plan and the add-on still active.
	expires := mustTime(t, row["expires_at"])
	e.renewAtExpiry(expires)
	var charged int64
	if err := e.store.Pool().QueryRow(context.Background(), `SELECT amount_minor FROM charges WHERE subscription_id = $1 AND status = 'succeeded'`,
		id).Scan(&charged); err != nil {
		t.Fatal(err)
	}
	want := usdPrice(t, "NS-PRM", catalog.Monthly).Amount() + usdPrice(t, "NS-EXTRA-USER", catalog.Monthly).Amount()
	if charged != want {
		t.Errorf("renewal charged %d, want plan + additional user = %d", charged, want)
	}
}

// rule SEC-1: another account's subscription answers the renewal endpoints
// as if it did not exist, and nothing is written.
func TestRule_SEC1_RenewalEndpointsOnAnotherAccountsSubscription(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	bob := e.sessions("bob@example.com")
	id := e.buyOne(ann(), "NS-PRM", "monthly")
	annToken, bobToken := ann(), bob()
	before := e.eventCount()
	for _, c := range [][3]string{
		{"POST", "/refund", ""}, {"POST", "/cancel", ""}, {"POST", "/addons", `{"addon":"NS-EXTRA-USER"}`}, {"DELETE", "/addons/NS-EXTRA-USER", ""},
	} {
		e.want(e.call(c[0], "/v1/subscriptions/"+id+c[1], bobToken, c[2]), http.StatusNotFound)
		e.want(e.call(c[0], "/v1/subscriptions/"+uuid.NewString()+c[1], annToken, c[2]), http.StatusNotFound)
	}
	if n := e.eventCount(); n != before {
		t.Errorf("refused calls wrote %d events", n-before)
	}
	if got := e.row(ann(), id); got["auto_renewal"] != true || !slices.Equal(got["add_ons"].([]any), []any{}) || strings.Contains(got["status"].(string), "refund") {
		t.Errorf("ann's plan changed: %v", got)
	}
}

// mailBySubject counts the messages of mails whose subject starts with
// prefix, by recipient address.
func mailBySubject(t testing.TB, mails []string, prefix string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range mails {
		msg := mailtest.MustParse(t, []byte(m))
		if !strings.HasPrefix(msg.Header.Get("Subject"), prefix) {
			continue
		}
		to, err := msg.Header.AddressList("To")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range to {
			out[a.Address]++
		}
	}
	return out
}

// rule ARS-2, ARS-3, ORD-5, PRD-5: a subscription in no account renews like
// any other, so its buyer gets its renewal e-mails: a guest's order (saved
// in no account, ORD-2) at the address it was placed with; a non-registrable
// product (not in the products view) at the account its order is saved in,
// which manages its automatic renewal by its id from the order history.
func TestRule_ARS2_SubscriptionInNoAccountGetsItsRenewalEmails(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	bob := e.sessions("bob@example.com")
	guest := e.want(e.call("POST", "/v1/orders", "", orderBody("US", `[`+line("NS-STD", "annual", "windows", 1)+`]`, goodCard,
		`,"email":"guest@example.com","password":"any-pass"`)), http.StatusCreated).json(t)
	if guest["saved_in_account"] != false {
		t.Fatalf("the guest's order is saved: %v", guest)
	}
	nu := e.buyOne(ann(), "NU", "annual")
	if len(e.products(ann())) != 0 {
		t.Fatalf("the non-registrable NU is in the products view: %v", e.products(ann())) // PRD-5
	}
	path := "/v1/subscriptions/" + nu + "/auto-renewal"
	e.want(e.call("PUT", path, bob(), `{"on":false}`), http.StatusNotFound) // SEC-1
	if row := e.want(e.call("PUT", path, ann(), `{"on":false}`), http.StatusOK).json(t); row["auto_renewal"] != false {
		t.Fatalf("NU's renewal turned off: %v", row)
	}
	expires := mustTime(t, e.row(ann(), nu)["expires_at"])

	e.advance(expires.AddDate(0, 0, -30).Sub(e.clock.Now()))
	e.runRenewals()
	mails := e.sendMail()
	if got, want := mailBySubject(t, mails, "Your Norton Security Standard will renew on"), map[string]int{"guest@example.com": 1}; !maps.Equal(got, want) {
		t.Errorf("renewal notices by recipient %v, want %v (ARS-2)", got, want)
	}
	if got, want := mailBySubject(t, mails, "Your Norton Utilities expires on"), map[string]int{"ann@example.com": 1}; !maps.Equal(got, want) {
		t.Errorf("30-day reminders by recipient %v, want %v (ARS-3)", got, want)
	}
	for _, m := range mails {
		// PRD-5: the NU is turned on and off from the order history.
		subject := mailtest.MustParse(t, []byte(m)).Header.Get("Subject")
		if text := strings.Join(strings.Fields(mailtest.PlainText(t, m)), " "); strings.HasPrefix(subject, "Your Norton Utilities") &&
			!strings.Contains(text, "on in the order history of your account") {
			t.Errorf("the NU's reminder does not point to the order history: %s", text)
		}
	}

	e.advance(23 * 24 * time.Hour) // 7 days before expiry: the charge, and the last reminder
	e.runRenewals()
	mails = e.sendMail()
	if got, want := mailBySubject(t, mails, "Receipt: Norton Security Standard renewed"), map[string]int{"guest@example.com": 1}; !maps.Equal(got, want) {
		t.Errorf("renewal receipts by recipient %v, want %v (ARS-1)", got, want)
	}
	if got, want := mailBySubject(t, mails, "Your Norton Utilities expires on"), map[string]int{"ann@example.com": 2}; !maps.Equal(got, want) {
		t.Errorf("reminders by recipient %v, want %v: at 30 and 7 days (ARS-3)", got, want)
	}
	if n := e.countEvents("subscription.email_sent"); n != 4 {
		t.Errorf("%d subscription.email_sent events, want 4 (EML-1)", n)
	}
}

// rule ARS-4: a subscription bought at any storefront, in every region, is
// enrolled in automatic renewal (the Asian stores' too, whose settings are
// managed there: ARS-5).
func TestRule_ARS4_OrdersAtEveryStorefrontAreEnrolled(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	lines := `[` + line("NS-STD", "annual", "windows", 1) + `]`
	stores := catalogdata.MustLoad().Storefronts()
	if len(stores) == 0 {
		t.Fatal("the catalog has no storefront")
	}
	for _, sf := range stores {
		placed := e.want(e.call("POST", "/v1/orders", ann(), orderBody(sf.Code(), lines, goodCard, "")), http.StatusCreated).json(t)
		id := items(t, placed)[0]["subscription_id"].(string)
		if row := e.row(ann(), id); row["auto_renewal"] != true || row["renewing"] != true || row["storefront"] != sf.Code() {
			t.Errorf("%s (%v): bought with renewal %v, renewing %v, storefront %v; want enrolled", sf.Code(), sf.Region(),
				row["auto_renewal"], row["renewing"], row["storefront"])
		}
	}
}
