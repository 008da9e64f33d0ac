package api_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/workers/mail/mailtest"
)

// gatewayCharges is how many charges the sandbox gateway made.
func (e *engineEnv) gatewayCharges() int {
	e.t.Helper()
	var n int
	if err := e.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM gateway_sandbox.charges`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

const directDebit = `{"type":"direct_debit","bank_account":{"iban":"DE89370400440532013000","holder_name":"Ann Lee"}}`

// rule TRI-1: a trial order needs a credit or debit card, charges
// nothing, and the product is current for 30 days from the start with
// automatic renewal on; the order history shows the trial line at 0.
func TestRule_TRI1_TrialOrderNeedsACardChargesNothingAndIsCurrentFor30Days(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	start := e.clock.Now()

	// Any other method than a card is refused, naming the field and the rule.
	r := e.call("POST", "/v1/orders", ann(), `{"storefront":"DE","lines":[`+line("NS-DLX", "trial", "windows", 1)+`],"payment_method":`+directDebit+`}`)
	wantFields(t, r, http.StatusBadRequest, "payment_method.type")
	e.wantProblem(r, http.StatusBadRequest, "TRI-1")
	e.want(e.call("PUT", "/v1/account/billing", ann(), `{"country":"DE","payment_method":`+directDebit+`}`), http.StatusOK)
	r = e.call("POST", "/v1/orders", ann(), `{"storefront":"DE","lines":[`+line("NS-DLX", "trial", "windows", 1)+`]}`)
	wantFields(t, r, http.StatusBadRequest, "payment_method")
	e.wantProblem(r, http.StatusBadRequest, "TRI-1")
	if n := e.countEvents("order.placed"); n != 0 {
		t.Fatalf("refused trials placed %d orders", n)
	}

	placed := e.buy(ann(), "["+line("NS-DLX", "trial", "windows", 1)+"]")
	if placed["order_status"] != "fulfilled" || placed["payment_status"] != "paid" || placed["total"].(map[string]any)["amount"] != 0.0 {
		t.Errorf("trial order %v", placed)
	}
	if n := e.gatewayCharges(); n != 0 {
		t.Errorf("the gateway made %d charges for a trial", n)
	}
	id := items(t, placed)[0]["subscription_id"].(string)
	row := e.row(ann(), id)
	if row["term"] != "trial" || row["status"] != "trial" || row["auto_renewal"] != true || row["renewing"] != true ||
		!mustTime(t, row["expires_at"]).Equal(start.Add(30*24*time.Hour)) || row["download_available"] != true {
		t.Errorf("trial row %v", row)
	}
	hist := e.want(e.call("GET", "/v1/orders", ann(), ""), http.StatusOK).json(t)["orders"].([]any)
	l := hist[0].(map[string]any)["lines"].([]any)[0].(map[string]any)
	if l["term"] != "trial" || l["unit_price"].(map[string]any)["amount"] != 0.0 || l["amount"].(map[string]any)["amount"] != 0.0 {
		t.Errorf("history line %v", l)
	}
}

// rule TRI-1: a trial ordered on the account's card on file, expired since
// it was saved, is refused naming the field (no gateway call would tell: a
// trial charges nothing now); a card given with the order is then taken.
func TestRule_TRI1_TrialOnAnExpiredCardOnFileIsRefused(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	soon := `{"type":"card","card":{"number":"` + goodCard + `","cvv":"123","exp_month":` + e.clock.Now().Format("1") + `,"exp_year":` +
		e.clock.Now().Format("2006") + `,"holder_name":"Ann Lee"}}`
	e.want(e.call("PUT", "/v1/account/billing", ann(), `{"country":"US","payment_method":`+soon+`}`), http.StatusOK)
	e.advance(40 * 24 * time.Hour)
	r := e.call("POST", "/v1/orders", ann(), `{"storefront":"US","lines":[`+line("NS-DLX", "trial", "windows", 1)+`]}`)
	wantFields(t, r, http.StatusBadRequest, "payment_method")
	e.wantProblem(r, http.StatusBadRequest, "expired")
	if n := e.countEvents("order.placed"); n != 0 {
		t.Fatalf("the refused trial placed %d orders", n)
	}
	e.buy(ann(), "["+line("NS-DLX", "trial", "windows", 1)+"]")
}

// rule TIM-2, ARS-6, TRI-1: a billing update that changes nothing for a
// declined trial's retry (a direct debit: trials are charged to a card
// only) leaves the retry at its own instant in the schedule, which the
// test clock's advance stops at; the visit the update called for puts the
// row back there.
func TestRule_TIM2_BillingUpdateThatChangesNothingKeepsTheRetrysInstant(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	placed := e.want(e.call("POST", "/v1/orders", ann(), orderBody("US", "["+line("NS-PRM", "trial", "windows", 1)+"]", declinedCard, "")),
		http.StatusCreated).json(t)
	id := items(t, placed)[0]["subscription_id"].(string)
	e.renewAtExpiry(mustTime(t, e.row(ann(), id)["expires_at"])) // declined at the trial's end
	var retry time.Time
	for _, rec := range e.events("subscription-" + id) {
		if rec.Type == "subscription.charge_declined" {
			var d struct {
				NextRetryAt time.Time `json:"next_retry_at"`
			}
			if err := json.Unmarshal(rec.Data, &d); err != nil {
				t.Fatal(err)
			}
			retry = d.NextRetryAt
		}
	}
	if retry.IsZero() {
		t.Fatal("no retry scheduled after the trial's charge was declined")
	}
	e.advance(time.Hour)
	e.want(e.call("PUT", "/v1/account/billing", ann(), `{"country":"DE","payment_method":`+directDebit+`}`), http.StatusOK)
	e.runRenewals() // the update brought the row forward: nothing is due
	var due time.Time
	if err := e.store.Pool().QueryRow(context.Background(), `SELECT due_at FROM due_work WHERE subscription_id = $1`, id).Scan(&due); err != nil {
		t.Fatal(err)
	}
	if !due.Equal(retry) {
		t.Errorf("due at %v after the visit, want the retry's %v", due, retry)
	}
}

// rule TRI-4: at the end of the trial the card given at the order is
// charged the standard annual price, and the subscription runs a year
// from the trial's end with automatic renewal on. rule TRI-5: that charge
// is then refunded as ARS-7 says.
func TestRule_TRI4_TrialEndChargesTheOrdersCardTheStandardPriceThenTRI5Refund(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	id := e.buyOne(ann(), "NS-PRM", "trial")
	ends := mustTime(t, e.row(ann(), id)["expires_at"])
	e.renewAtExpiry(ends)

	row := e.row(ann(), id)
	if row["term"] != "annual" || row["status"] != "active" || row["auto_renewal"] != true ||
		!mustTime(t, row["expires_at"]).Equal(ends.AddDate(1, 0, 0)) {
		t.Errorf("after the trial: %v", row)
	}
	var charged int64
	var token string
	if err := e.store.Pool().QueryRow(context.Background(), `SELECT amount_minor, token FROM gateway_sandbox.charges`).Scan(&charged, &token); err != nil {
		t.Fatal(err)
	}
	if want := usdPrice(t, "NS-PRM", catalog.Annual).Amount(); charged != want || token == "" {
		t.Errorf("trial end charged %d to %q, want %d to the order's card", charged, token, want)
	}

	row = e.want(e.call("POST", "/v1/subscriptions/"+id+"/refund", ann(), ""), http.StatusOK).json(t)
	if row["refunded"] != true || !mustTime(t, row["expires_at"]).Equal(ends) || row["auto_renewal"] != false {
		t.Errorf("refunded after the trial: %v", row)
	}
}

// rule TRI-6: the card a trial was ordered with, the charge's card when the
// buyer's account has none (or there is no account), is warned of with the
// trial-ending notice when it will have expired by the trial's end.
func TestRule_TRI6_OrdersCardExpiringDuringTheTrialWarned(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.advance(time.Date(2027, 3, 20, 9, 0, 0, 0, time.UTC).Sub(e.clock.Now()))
	expiring := `{"type":"card","card":{"number":"` + goodCard + `","cvv":"919","exp_month":3,"exp_year":2027,"holder_name":"Gus Guest"}}`
	placed := e.want(e.call("POST", "/v1/orders", "", `{"storefront":"US","lines":[`+line("NS-DLX", "trial", "windows", 1)+`],`+
		`"payment_method":`+expiring+`,"email":"guest@example.com","password":"any-pass"}`), http.StatusCreated).json(t)
	if placed["saved_in_account"] != false {
		t.Fatalf("the guest's order is saved: %v", placed)
	}
	e.advance(27 * 24 * time.Hour) // the trial ends on April 19, after the card's March
	e.runRenewals()
	mails := e.sendMail()
	if got, want := mailBySubject(t, mails, "Your Norton Security Deluxe trial ends on April 19, 2027"), map[string]int{"guest@example.com": 1}; !maps.Equal(got, want) {
		t.Errorf("trial-ending e-mails by recipient %v, want %v (TRI-3)", got, want)
	}
	if got, want := mailBySubject(t, mails, "Your card ending "+goodCard[len(goodCard)-4:]+" expires before"), map[string]int{"guest@example.com": 1}; !maps.Equal(got, want) {
		t.Errorf("card-expiring e-mails by recipient %v, want %v (TRI-6)", got, want)
	}
	// ORD-5: the order is saved in no account: the prompts say to save it,
	// not to use a products view or billing information it has none of.
	for _, m := range mails {
		subject := mailtest.MustParse(t, []byte(m)).Header.Get("Subject")
		if !strings.Contains(subject, "trial ends") && !strings.Contains(subject, "expires before") {
			continue
		}
		if text := strings.Join(strings.Fields(mailtest.PlainText(t, m)), " "); !strings.Contains(text, "say you recognize it") {
			t.Errorf("%q does not say to save the order: %s", subject, text)
		}
	}
}
