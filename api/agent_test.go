package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/api/agentauth"
	catalogdata "github.com/subs-engine/subs/catalog"
	"github.com/subs-engine/subs/domain/agentlog"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/conversion"
	"github.com/subs-engine/subs/domain/events"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/order"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
)

// agent adds a support agent and returns its credential.
func (e *engineEnv) agent(id string) string {
	e.t.Helper()
	cred, err := agentauth.New(e.store.Pool()).Add(context.Background(), agentauth.Agent{ID: id, Name: "Agent " + id}, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return cred
}

// legacyCustomer signs a customer up and in, and registers a boxed key of
// product in the account: it returns the session, the account id, the
// subscription id and the key.
func (e *engineEnv) legacyCustomer(email, product string) (token, account, sub, key string) {
	e.t.Helper()
	account = e.signUp(email, "secret1")
	token = e.signIn(email, "secret1")
	key, _, sub = e.mint(product, "annual", "windows")
	e.register(token, key)
	return token, account, sub, key
}

// row returns the products-view row of subscription id in the session's
// account.
func (e *engineEnv) row(token, id string) map[string]any {
	e.t.Helper()
	return e.want(e.call("GET", "/v1/subscriptions/"+id, token, ""), http.StatusOK).json(e.t)
}

// events reads a stream's records.
func (e *engineEnv) events(stream string) []eventstore.RecordedEvent {
	e.t.Helper()
	recs, err := e.store.ReadStream(context.Background(), eventstore.StreamID(stream), eventstore.ReadStreamOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return recs
}

// wantFields fails unless r has status and, when field is not empty, names
// field among its errors.
func wantFields(t testing.TB, r reply, status int, field string) {
	t.Helper()
	if r.status != status || (field != "" && !slices.Contains(r.fields(t), field)) {
		t.Fatalf("status %d %s, want %d naming %s", r.status, r.body, status, field)
	}
}

// rule SEC-2: a customer credential on any /v1/agent/ endpoint is refused
// (401), as is no credential; the agent's is accepted.
func TestRule_SEC2_CustomerCredentialOnEveryAgentEndpoint(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	token, account, _, _ := e.legacyCustomer("ann@example.com", "NIS")
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(e.want(e.call("GET", "/v1/openapi.json", "", ""), http.StatusOK).body, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for path, ops := range doc.Paths {
		if !strings.HasPrefix(path, "/v1/agent/") {
			continue
		}
		for method := range ops {
			n++
			p := strings.ReplaceAll(path, "{id}", account)
			body := ""
			if strings.EqualFold(method, "post") {
				body = `{"reason":"customer tries"}`
			}
			for _, cred := range []string{token, ""} {
				if r := e.call(strings.ToUpper(method), p, cred, body); r.status != http.StatusUnauthorized && r.status != http.StatusForbidden {
					t.Errorf("%s %s with a customer credential (%t): status %d", method, path, cred != "", r.status)
				}
			}
		}
	}
	if n < 9 {
		t.Errorf("%d agent operations documented, want the console's 9 at least", n)
	}
	e.want(e.call("GET", "/v1/agent/accounts/"+account, e.agent("ava"), ""), http.StatusOK)
}

// rule AGT-1: every agent action needs a reason (refused naming the field
// otherwise, nothing written), and every event it causes carries the
// agent's id, the reason and the action's log code.
func TestRule_AGT1_AgentActionsRecordAgentReasonAndLogCode(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	agent := e.agent("ava")
	_, account, sub, key := e.legacyCustomer("ann@example.com", "NIS")
	before := e.eventCount()
	for _, c := range []struct{ path, body string }{
		{"/v1/agent/accounts/" + account + "/verify-ownership", `{"method":"email_and_name"}`},
		{"/v1/agent/accounts/" + account + "/free-orders", `{"product":"NS-PRM","reason":"  "}`},
		{"/v1/agent/subscriptions/" + sub + "/disable", `{}`},
		{"/v1/agent/subscriptions/" + sub + "/days", `{"days":3}`},
		{"/v1/agent/conversions", `{"account_id":"` + account + `","subscription_id":"` + sub + `","ownership_method":"email_and_name","device_id":"pc-1"}`},
	} {
		wantFields(t, e.call("POST", c.path, agent, c.body), http.StatusBadRequest, "reason")
	}
	if n := e.eventCount(); n != before {
		t.Fatalf("refused actions wrote %d events", n-before)
	}

	found := e.want(e.call("GET", "/v1/agent/accounts?key="+key, agent, ""), http.StatusOK).json(t)
	if found["account_id"] != account {
		t.Fatalf("found by key: %v", found)
	}
	e.want(e.call("POST", "/v1/agent/accounts/"+account+"/verify-ownership", agent, `{"method":"serial_number","reason":"caller gave the serial"}`), http.StatusOK)
	ord := e.want(e.call("POST", "/v1/agent/accounts/"+account+"/free-orders", agent, `{"product":"NS-PRM","reason":"goodwill"}`), http.StatusCreated).json(t)
	if ord["total"].(map[string]any)["amount"].(float64) != 0 || ord["order_status"] != "fulfilled" || len(ord["items"].([]any)) != 1 {
		t.Fatalf("free order %v", ord)
	}
	e.want(e.call("POST", "/v1/agent/subscriptions/"+sub+"/days", agent, `{"days":5,"reason":"outage compensation"}`), http.StatusOK)
	e.want(e.call("POST", "/v1/agent/subscriptions/"+sub+"/disable", agent, `{"reason":"key leaked"}`), http.StatusOK)

	want := map[string][2]string{ // event type → reason, log code
		"account.ownership_verified": {"caller gave the serial", agentlog.VerifyOwnership},
		"order.placed":               {"goodwill", agentlog.FreeOrder},
		"order.fulfilled":            {"goodwill", agentlog.FreeOrder},
		"subscription.created":       {"goodwill", agentlog.FreeOrder},
		"subscription.registered":    {"goodwill", agentlog.FreeOrder},
		"subscription.days_adjusted": {"outage compensation", agentlog.AdjustDays},
		"subscription.disabled":      {"key leaked", agentlog.DisableKey},
	}
	newSub := ord["items"].([]any)[0].(map[string]any)["subscription_id"].(string)
	// The free order costs nothing, but its subscription renews at the
	// catalog's annual price (ARS-1), never at zero.
	var created subscription.Created
	if err := json.Unmarshal(e.events("subscription-" + newSub)[0].Data, &created); err != nil {
		t.Fatal(err)
	}
	listPrice, err := catalogdata.MustLoad().Price("NS-PRM", catalog.Annual, money.USD)
	if err != nil {
		t.Fatal(err)
	}
	if created.Price != listPrice {
		t.Errorf("the free order's subscription renews at %v, want the catalog's %v", created.Price, listPrice)
	}
	var seen []string
	for _, stream := range []string{"account-" + account, "order-" + ord["order_id"].(string), "subscription-" + sub, "subscription-" + newSub} {
		for _, rec := range e.events(stream) {
			if rec.Metadata.ActorKind != eventstore.ActorAgent {
				continue
			}
			w, ok := want[rec.Type]
			if !ok || rec.Metadata.ActorID != "ava" || rec.Metadata.Reason != w[0] || rec.Metadata.LogCode != w[1] {
				t.Errorf("%s %s: metadata %+v, want agent ava, %q, %q", stream, rec.Type, rec.Metadata, w[0], w[1])
			}
			seen = append(seen, rec.Type)
		}
	}
	for typ := range want {
		if !slices.Contains(seen, typ) {
			t.Errorf("no agent event %s", typ)
		}
	}
	timeline := e.want(e.call("GET", "/v1/agent/accounts/"+account+"/timeline", agent, ""), http.StatusOK).json(t)["events"].([]any)
	var codes []string
	for _, ev := range timeline {
		if c, _ := ev.(map[string]any)["log_code"].(string); c != "" {
			codes = append(codes, c)
		}
	}
	for _, c := range []string{agentlog.VerifyOwnership, agentlog.FreeOrder, agentlog.AdjustDays, agentlog.DisableKey} {
		if !slices.Contains(codes, c) {
			t.Errorf("the timeline has no %q: %v", c, codes)
		}
	}
}

// rule AGT-2: days are added or removed whole; removing more days than
// remain is refused naming the field days.
func TestRule_AGT2_AgentAddsAndRemovesWholeDays(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	agent := e.agent("ava")
	token, _, sub, _ := e.legacyCustomer("ann@example.com", "NAV")
	expires := mustTime(t, e.row(token, sub)["expires_at"])
	got := e.want(e.call("POST", "/v1/agent/subscriptions/"+sub+"/days", agent, `{"days":10,"reason":"goodwill"}`), http.StatusOK).json(t)
	if !mustTime(t, got["expires_at"]).Equal(expires.AddDate(0, 0, 10)) || !mustTime(t, e.row(token, sub)["expires_at"]).Equal(expires.AddDate(0, 0, 10)) {
		t.Fatalf("after adding 10 days: %v, was %v", got["expires_at"], expires)
	}
	remaining := int(expires.AddDate(0, 0, 10).Sub(e.clock.Now()) / (24 * time.Hour))
	wantFields(t, e.call("POST", "/v1/agent/subscriptions/"+sub+"/days", agent, `{"days":-`+strconv.Itoa(remaining+1)+`,"reason":"too many"}`), http.StatusBadRequest, "days")
	wantFields(t, e.call("POST", "/v1/agent/subscriptions/"+sub+"/days", agent, `{"days":0,"reason":"nothing"}`), http.StatusBadRequest, "days")
	e.want(e.call("POST", "/v1/agent/subscriptions/"+sub+"/days", agent, `{"days":-`+strconv.Itoa(remaining)+`,"reason":"refund agreed"}`), http.StatusOK)
	// every remaining day removed: it expires now
	if st := e.row(token, sub); st["status"] != "expired" || !mustTime(t, st["expires_at"]).Equal(e.clock.Now()) {
		t.Errorf("after removing %d days: %v %v", remaining, st["status"], st["expires_at"])
	}
}

// rule CNV-1: a legacy key cannot activate a Norton Security product; it
// still activates its own.
func TestRule_CNV1_LegacyKeyCannotActivateNortonSecurity(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	token, _, sub, _ := e.legacyCustomer("ann@example.com", "N360")
	r := e.call("POST", "/v1/subscriptions/"+sub+"/activations", token, `{"device_id":"pc-1","product":"NS-PRM"}`)
	wantFields(t, r, http.StatusBadRequest, "product")
	if !strings.Contains(string(r.body), "new product with a new subscription") {
		t.Errorf("refusal %s", r.body)
	}
	e.want(e.call("POST", "/v1/subscriptions/"+sub+"/activations", token, `{"device_id":"pc-1","product":"N360"}`), http.StatusCreated)
}

// rule CNV-2: NAV and NIS map to Standard or Deluxe (chosen, else by
// seats), N360 to Premium; any other target is refused naming target.
func TestRule_CNV2_MappingFromTheCatalog(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	for i, c := range []struct{ from, target, want string }{
		{"NAV", "", "NS-STD"}, {"NIS", "", "NS-DLX"}, {"NIS", "NS-STD", "NS-STD"}, {"N360", "", "NS-PRM"},
	} {
		token, _, sub, _ := e.legacyCustomer("c"+strconv.Itoa(i)+"@example.com", c.from)
		wantFields(t, e.call("POST", "/v1/subscriptions/"+sub+"/convert", token, `{"target":"NU"}`), http.StatusBadRequest, "target")
		body := `{}`
		if c.target != "" {
			body = `{"target":"` + c.target + `"}`
		}
		if got := e.want(e.call("POST", "/v1/subscriptions/"+sub+"/convert", token, body), http.StatusOK).json(t); got["product"] != c.want {
			t.Errorf("%s target %q became %v, want %s", c.from, c.target, got["product"], c.want)
		}
	}
}

// rule CNV-3: option 1 — the customer's subscription becomes the mapped
// product with the same expiry; a new key is issued, the old one is
// disabled but still names this subscription only (KEY-1).
func TestRule_CNV3_CustomerTransfersTheSubscription(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	agent := e.agent("ava")
	token, account, sub, oldKey := e.legacyCustomer("ann@example.com", "NIS")
	e.want(e.call("POST", "/v1/subscriptions/"+sub+"/activations", token, `{"device_id":"pc-1"}`), http.StatusCreated)
	before := e.row(token, sub)
	got := e.want(e.call("POST", "/v1/subscriptions/"+sub+"/convert", token, `{"target":"NS-DLX"}`), http.StatusOK).json(t)
	newKey := got["product_key"].(string)
	if got["product"] != "NS-DLX" || got["seats"].(float64) != 5 || got["seats_used"].(float64) != 0 || newKey == oldKey ||
		got["expires_at"] != before["expires_at"] || got["serial_number"] != before["serial_number"] || got["status"] != "active" {
		t.Fatalf("converted row %v, was %v", got, before)
	}
	if rows := e.products(token); len(rows) != 1 || rows[0]["product_key"] != newKey {
		t.Errorf("products view %v", rows)
	}
	e.want(e.call("POST", "/v1/subscriptions/"+sub+"/activations", token, `{"device_id":"pc-1","product":"NS-DLX"}`), http.StatusCreated)
	wantFields(t, e.call("POST", "/v1/subscriptions/"+sub+"/convert", token, `{}`), http.StatusConflict, "")
	other := e.customerSession("bob@example.com")
	wantFields(t, e.call("POST", "/v1/keys", other, `{"key":"`+oldKey+`"}`), http.StatusBadRequest, "key")
	wantFields(t, e.call("POST", "/v1/keys", token, `{"key":"`+oldKey+`"}`), http.StatusBadRequest, "key")
	e.want(e.call("POST", "/v1/keys", token, `{"key":"`+newKey+`"}`), http.StatusOK)
	for _, k := range []string{oldKey, newKey} {
		if found := e.want(e.call("GET", "/v1/agent/accounts?key="+k, agent, ""), http.StatusOK).json(t); found["account_id"] != account {
			t.Errorf("key %s found %v", k, found["account_id"])
		}
	}
	e.want(e.call("POST", "/v1/subscriptions/"+sub+"/convert", other, `{}`), http.StatusNotFound)
}

// conversionEnv is a legacy customer and an agent, ready for option 2.
type conversionEnv struct {
	*engineEnv
	agent, account, sub, key string
	oldExpiry                time.Time
}

// session signs the customer in afresh: the simulated clock outruns
// sessions.
func (c conversionEnv) session() string { return c.signIn("ann@example.com", "secret1") }

func newConversionEnv(t *testing.T, product string) conversionEnv {
	e := newEngineEnv(t)
	c := conversionEnv{engineEnv: e, agent: e.agent("ava")}
	_, c.account, c.sub, c.key = e.legacyCustomer("ann@example.com", product)
	e.advance(40 * 24 * time.Hour) // the old subscription has run a while: the free order's year would end later
	c.oldExpiry = mustTime(t, e.row(c.session(), c.sub)["expires_at"])
	return c
}

func (c conversionEnv) startBody(steps string, extra string) string {
	body := `{"account_id":"` + c.account + `","subscription_id":"` + c.sub + `","ownership_method":"email_and_name","device_id":"pc-9","reason":"customer asked for Norton Security"` + extra
	if steps != "" {
		body += `,"steps":` + steps
	}
	return body + `}`
}

// checkConverted asserts CNV-4's ends: exactly one live key in the account,
// the new expiry on the old one's day, each step recorded once with its log
// code, every event of every step by the agent.
func (c conversionEnv) checkConverted(t *testing.T, id string) {
	t.Helper()
	v := c.want(c.call("GET", "/v1/agent/conversions/"+id, c.agent, ""), http.StatusOK).json(t)
	if v["completed"] != true {
		t.Fatalf("conversion %v", v)
	}
	var live []map[string]any
	for _, p := range c.products(c.session()) {
		if p["status"] == "active" || p["status"] == "trial" {
			live = append(live, p)
		}
	}
	if len(live) != 1 || live[0]["product"] != "NS-DLX" || live[0]["seats_used"].(float64) != 1 {
		t.Fatalf("live keys %v", live)
	}
	if exp := mustTime(t, live[0]["expires_at"]); exp.Format(time.DateOnly) != c.oldExpiry.Format(time.DateOnly) {
		t.Errorf("new expiry %v, old %v: a day lost or gained", exp, c.oldExpiry)
	}
	if old := c.row(c.session(), c.sub); old["status"] != "disabled" {
		t.Errorf("old subscription %v", old["status"])
	}
	// The old key records the subscription its term went on in, so that
	// its charges are not refunded (ARS-7): the new one would be unpaid.
	var replaced []string
	for _, rec := range c.events(subscription.StreamPrefix + c.sub) {
		if rec.Type != "subscription.replaced" {
			continue
		}
		var d subscription.Replaced
		if err := json.Unmarshal(rec.Data, &d); err != nil {
			t.Fatal(err)
		}
		replaced = append(replaced, d.By.String()+" through "+d.Through.UTC().Format(time.RFC3339))
	}
	if want := fmt.Sprint(live[0]["subscription_id"]) + " through " + c.oldExpiry.UTC().Format(time.RFC3339); len(replaced) != 1 || replaced[0] != want {
		t.Errorf("the old key was replaced by %v, want once by %v", replaced, want)
	}
	var steps []string
	for _, rec := range c.events(conversion.StreamName(uuid.MustParse(id))) {
		if rec.Metadata.ActorKind != eventstore.ActorAgent || rec.Metadata.ActorID != "ava" || rec.Metadata.Reason == "" || rec.Metadata.LogCode == "" {
			t.Errorf("%s metadata %+v", rec.Type, rec.Metadata)
		}
		if rec.Type == "conversion.step_completed" {
			var d conversion.StepCompleted
			if err := json.Unmarshal(rec.Data, &d); err != nil {
				t.Fatal(err)
			}
			steps = append(steps, string(d.Step))
			if rec.Metadata.LogCode != d.Step.LogCode() {
				t.Errorf("step %s logged %q", d.Step, rec.Metadata.LogCode)
			}
		}
	}
	if strings.Join(steps, ",") != "verify_ownership,free_order,activate,disable_old_key,adjust_days" {
		t.Errorf("steps recorded %v, want each once in order", steps)
	}
	codes, sagaEvents := map[string]int{}, 0
	for _, ev := range c.want(c.call("GET", "/v1/agent/accounts/"+c.account+"/timeline", c.agent, ""), http.StatusOK).json(t)["events"].([]any) {
		m := ev.(map[string]any)
		if m["actor_kind"] == "agent" {
			codes[m["log_code"].(string)]++
		}
		if strings.HasPrefix(m["stream"].(string), conversion.StreamPrefix) {
			sagaEvents++
		}
	}
	// The saga's own record (started, each step, completed) is on the
	// account's timeline too.
	if want := len(conversion.Steps) + 2; sagaEvents != want {
		t.Errorf("the timeline shows %d events of the conversion's saga, want %d", sagaEvents, want)
	}
	for _, code := range []string{agentlog.Conversion, agentlog.VerifyOwnership, agentlog.FreeOrder, agentlog.Activate, agentlog.DisableKey, agentlog.AdjustDays} {
		if codes[code] == 0 {
			t.Errorf("no agent event logged %q in the timeline: %v", code, codes)
		}
	}
}

// rule CNV-4: option 2 — the agent's procedure as one saga; run whole, and
// interrupted after each of its steps and resumed: each time one live key,
// the new expiry on the old one's day, each step recorded once.
func TestRule_CNV4_AgentProcedureInterruptedAfterEachStepAndResumed(t *testing.T) {
	t.Parallel()
	for k := 0; k <= len(conversion.Steps); k++ {
		t.Run("after "+strconv.Itoa(k)+" steps", func(t *testing.T) {
			t.Parallel()
			c := newConversionEnv(t, "NIS")
			steps := strconv.Itoa(k)
			if k == len(conversion.Steps) {
				steps = "" // all at once
			}
			v := c.want(c.call("POST", "/v1/agent/conversions", c.agent, c.startBody(steps, `,"target":"NS-DLX"`)), http.StatusCreated).json(t)
			id := v["conversion_id"].(string)
			// Disabling the old key takes the days' adjustment with it: a
			// pause between them could outlast the old key's term.
			joined := k > 0 && k < len(conversion.Steps) && conversion.Steps[k-1] == conversion.DisableOldKey
			if joined && v["completed"] != true {
				t.Fatalf("stopped after disabling the old key, before adjusting the days: %v", v)
			}
			if k < len(conversion.Steps) && !joined {
				if v["completed"] != false {
					t.Fatalf("stopped after %d steps but completed: %v", k, v)
				}
				c.advance(2 * time.Hour) // the procedure resumes later, maybe after the first request's answer was lost
				c.want(c.call("POST", "/v1/agent/conversions/"+id+"/continue", c.agent, `{"reason":"resume","steps":0}`), http.StatusOK)
				c.want(c.call("POST", "/v1/agent/conversions/"+id+"/continue", c.agent, `{"reason":"resume"}`), http.StatusOK)
			}
			c.want(c.call("POST", "/v1/agent/conversions/"+id+"/continue", c.agent, `{"reason":"again"}`), http.StatusOK) // nothing left
			c.checkConverted(t, id)
		})
	}
}

// rule ARS-3, CNV-4: the agent's conversion gives the new subscription the
// old one's automatic renewal setting: off stays off (no notice, no
// charge), on stays on.
func TestRule_ARS3_AgentConversionKeepsTheRenewalSetting(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("renewal on %v", on), func(t *testing.T) {
			t.Parallel()
			c := newConversionEnv(t, "NIS")
			c.want(c.call("PUT", "/v1/subscriptions/"+c.sub+"/auto-renewal", c.session(), fmt.Sprintf(`{"on":%v}`, on)), http.StatusOK)
			v := c.want(c.call("POST", "/v1/agent/conversions", c.agent, c.startBody("", `,"target":"NS-DLX"`)), http.StatusCreated).json(t)
			c.checkConverted(t, v["conversion_id"].(string))
			for _, p := range c.products(c.session()) {
				if p["product"] == "NS-DLX" && (p["auto_renewal"] != on || p["renewing"] != on) {
					t.Errorf("new subscription %v: auto_renewal %v, renewing %v; want %v as the old one", p["subscription_id"], p["auto_renewal"], p["renewing"], on)
				}
			}
		})
	}
}

// rule CNV-4: a step whose effect landed but was not recorded (the agent
// disabled the old key by hand, or a crash cut the step short) is recorded
// once when the procedure resumes, and changes nothing twice.
func TestRule_CNV4_StepAlreadyDoneIsRecordedOnce(t *testing.T) {
	t.Parallel()
	c := newConversionEnv(t, "NIS")
	v := c.want(c.call("POST", "/v1/agent/conversions", c.agent, c.startBody("3", `,"target":"NS-DLX"`)), http.StatusCreated).json(t)
	id := v["conversion_id"].(string)
	c.want(c.call("POST", "/v1/agent/subscriptions/"+c.sub+"/disable", c.agent, `{"reason":"disable first"}`), http.StatusOK)
	newSub := v["new_subscription_id"].(string)
	c.want(c.call("POST", "/v1/agent/subscriptions/"+newSub+"/days", c.agent, `{"days":-3,"reason":"by hand"}`), http.StatusOK)
	c.want(c.call("POST", "/v1/agent/conversions/"+id+"/continue", c.agent, `{"reason":"resume"}`), http.StatusOK)
	c.checkConverted(t, id)
	disabled := 0
	for _, rec := range c.events("subscription-" + c.sub) {
		if rec.Type == "subscription.disabled" {
			disabled++
		}
	}
	if disabled != 1 {
		t.Errorf("the old key was disabled %d times", disabled)
	}
}

// rule CNV-5: converting Norton One needs the acknowledgement of losing
// Premium Support and Anti-Theft, by either option; refused naming what
// would be lost otherwise.
func TestRule_CNV5_NortonOneAcknowledgesTheLoss(t *testing.T) {
	t.Parallel()
	c := newConversionEnv(t, "N1")
	for _, r := range []reply{
		c.call("POST", "/v1/subscriptions/"+c.sub+"/convert", c.session(), `{"acknowledge_losses":["anti-theft"]}`),
		c.call("POST", "/v1/agent/conversions", c.agent, c.startBody("", "")),
	} {
		wantFields(t, r, http.StatusBadRequest, "acknowledge_losses")
		if !strings.Contains(string(r.body), "Premium Support") || !strings.Contains(string(r.body), "Anti-Theft") {
			t.Errorf("refusal %s does not name the extras", r.body)
		}
	}
	v := c.want(c.call("POST", "/v1/agent/conversions", c.agent, c.startBody("", `,"acknowledge_losses":["premium-support","anti-theft"]`)), http.StatusCreated).json(t)
	if v["to"] != "NS-PRM" || v["completed"] != true {
		t.Errorf("conversion %v", v)
	}
}

// rule CNV-6: only a current subscription converts; nothing forces a
// conversion: a legacy subscription left alone stays current as it was.
func TestRule_CNV6_OnlyCurrentConvertsAndNothingForcesIt(t *testing.T) {
	t.Parallel()
	c := newConversionEnv(t, "NIS")
	c.advance(30 * 24 * time.Hour)
	if row := c.row(c.session(), c.sub); row["product"] != "NIS" || row["status"] != "active" || row["product_key"] != c.key {
		t.Errorf("a legacy subscription left alone: %v", row)
	}
	c.advance(c.oldExpiry.Sub(c.clock.Now()))
	wantFields(t, c.call("POST", "/v1/subscriptions/"+c.sub+"/convert", c.session(), `{}`), http.StatusConflict, "")
	wantFields(t, c.call("POST", "/v1/agent/conversions", c.agent, c.startBody("", "")), http.StatusConflict, "")
}

func mustTime(t testing.TB, v any) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, v.(string))
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// renewal runs a subscription command of the renewal lifecycle as the
// system, under the policy's defaults (what the renewal workers do).
func (e *engineEnv) renewal(id string, cmd subscription.Command) {
	e.t.Helper()
	p, err := policy.New(testPolicy)
	if err != nil {
		e.t.Fatal(err)
	}
	types := eventstore.NewEventTypes()
	types.Register(1, events.All()...)
	h, err := eventstore.NewCommandHandler(subscription.Decider, eventstore.HandlerConfig{Store: e.store, Types: types, Clock: e.clock, Policy: p})
	if err != nil {
		e.t.Fatal(err)
	}
	meta := eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorSystem, ActorID: "renewals"}}
	if _, err := h.Handle(context.Background(), eventstore.StreamID(subscription.StreamPrefix+id), cmd, meta); err != nil {
		e.t.Fatal(err)
	}
}

// renewAtExpiry runs the renewals of a term whose notice comes 3 days
// before expires and whose charge on it: a monthly plan (ARS-2) or a
// trial's end (TRI-3, TRI-4).
func (e *engineEnv) renewAtExpiry(expires time.Time) {
	e.t.Helper()
	e.advance(expires.AddDate(0, 0, -3).Sub(e.clock.Now()))
	e.runRenewals() // the notice
	e.advance(3 * 24 * time.Hour)
	e.runRenewals() // the charge, on the expiry day
}

// renewOnce takes annual subscription id, expiring at expires, through its
// first renewal with the renewal worker and the sandbox gateway: the notice
// 30 days before, the charge 7 days before.
func (e *engineEnv) renewOnce(id string, expires time.Time) {
	e.t.Helper()
	e.advance(expires.AddDate(0, 0, -30).Sub(e.clock.Now()))
	e.runRenewals()
	e.advance(23 * 24 * time.Hour)
	e.runRenewals()
}

// rule AGT-1: an agent refunds on behalf of the customer (ARS-7's window
// applies) and cancels an add-on (MON-3), each event carrying the agent,
// the reason and the log code.
func TestRule_AGT1_RefundAndAddOnCancellationOnBehalf(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	agent := e.agent("ava")
	account := e.signUp("ann@example.com", "secret1")
	session := func() string { return e.signIn("ann@example.com", "secret1") }
	annual := items(t, e.buy(session(), "["+line("NS-DLX", "annual", "windows", 1)+"]"))[0]["subscription_id"].(string)
	monthly := items(t, e.buy(session(), "["+line("NS-PRM", "monthly", "windows", 1)+"]"))[0]["subscription_id"].(string)

	usd, err := money.ParseCurrency("USD")
	if err != nil {
		t.Fatal(err)
	}
	e.renewal(monthly, subscription.AddAddOn{AccountID: uuid.MustParse(account), AddOn: "NS-PRM-STORAGE", Name: "Storage", Price: money.New(299, usd)})

	// the renewal of the annual subscription is charged 7 days before it expires
	expires := mustTime(t, e.row(session(), annual)["expires_at"])
	e.renewOnce(annual, expires)
	if got := mustTime(t, e.row(session(), annual)["expires_at"]); !got.Equal(expires.AddDate(1, 0, 0)) {
		t.Fatalf("renewed to %v", got)
	}
	wantFields(t, e.call("POST", "/v1/agent/subscriptions/"+annual+"/refund", agent, `{}`), http.StatusBadRequest, "reason")
	refunded := e.want(e.call("POST", "/v1/agent/subscriptions/"+annual+"/refund", agent, `{"reason":"customer forgot to turn renewal off"}`), http.StatusOK).json(t)
	if refunded["refunded"] != true || !mustTime(t, refunded["expires_at"]).Equal(expires) {
		t.Errorf("refunded on behalf: %v", refunded)
	}
	e.want(e.call("POST", "/v1/agent/subscriptions/"+monthly+"/refund", agent, `{"reason":"monthly"}`), http.StatusConflict)

	e.want(e.call("POST", "/v1/agent/subscriptions/"+monthly+"/add-ons/ns-prm-storage/cancel", agent, `{"reason":"not needed"}`), http.StatusOK)
	e.want(e.call("POST", "/v1/agent/subscriptions/"+monthly+"/add-ons/NS-PRM-STORAGE/cancel", agent, `{"reason":"again"}`), http.StatusNotFound)
	if addOns := e.row(session(), monthly)["add_ons"].([]any); len(addOns) != 0 {
		t.Errorf("add-ons after the cancellation: %v", addOns)
	}
	// The refund made with the gateway at once is the agent's too.
	for _, want := range []struct{ stream, typ, reason, code string }{
		{"subscription-" + annual, "subscription.refund_requested", "customer forgot to turn renewal off", agentlog.Refund},
		{"subscription-" + annual, "subscription.refunded", "customer forgot to turn renewal off", agentlog.Refund},
		{"subscription-" + monthly, "subscription.add_on_cancelled", "not needed", agentlog.CancelAddOn},
	} {
		found := false
		for _, rec := range e.events(want.stream) {
			if rec.Type != want.typ {
				continue
			}
			found = true
			m := rec.Metadata
			if m.ActorKind != eventstore.ActorAgent || m.ActorID != "ava" || m.Reason != want.reason || m.LogCode != want.code {
				t.Errorf("%s metadata %+v", rec.Type, m)
			}
		}
		if !found {
			t.Errorf("no %s in %s", want.typ, want.stream)
		}
	}
}

// rule CNV-6: nothing forces a conversion: a legacy subscription bought
// online renews as before, as the same product and key.
func TestRule_CNV6_LegacySubscriptionRenewsAsBefore(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "secret1")
	session := func() string { return e.signIn("ann@example.com", "secret1") }
	item := items(t, e.buy(session(), "["+line("NIS", "annual", "windows", 1)+"]"))[0]
	id := item["subscription_id"].(string)
	expires := mustTime(t, e.row(session(), id)["expires_at"])
	e.renewOnce(id, expires)
	row := e.row(session(), id)
	if row["product"] != "NIS" || row["product_key"] != item["key"] || row["status"] != "active" ||
		!mustTime(t, row["expires_at"]).Equal(expires.AddDate(1, 0, 0)) {
		t.Errorf("after its renewal: %v", row)
	}
}

// rule TRI-4, TRI-3, CNV-4: a legacy trial an agent converts goes on as a
// trial of the new product: the trial-ending notice 3 days before the old
// trial's end, then the new product's year charged on that end to the card
// the trial was ordered with (the account has none), not a year's renewal
// charged a week before that end.
func TestRule_TRI4_AgentConvertedTrialIsBilledAtTheOldTrialsEnd(t *testing.T) {
	t.Parallel()
	c := newBoughtConversionEnv(t, "NIS", "trial")
	e, ann, ends := c.engineEnv, c.session, c.oldExpiry
	e.advance(10 * 24 * time.Hour)
	converted := c.start(``)["new_subscription_id"].(string)
	row := e.row(ann(), converted)
	expires := mustTime(t, row["expires_at"])
	if row["term"] != "trial" || row["status"] != "trial" || row["auto_renewal"] != true || expires.Format(time.DateOnly) != ends.Format(time.DateOnly) {
		t.Fatalf("converted trial %v; want a trial of NS-DLX ending on %s, renewal on", row, ends.Format(time.DateOnly))
	}

	e.advance(expires.AddDate(0, 0, -7).Sub(e.clock.Now()))
	e.runRenewals()
	if n := e.gatewayCharges(); n != 0 {
		t.Fatalf("%d charges a week before the trial's end, want none (TRI-4)", n)
	}
	e.renewAtExpiry(expires)
	if got := mailBySubject(t, e.sendMail(), "Your Norton Security Deluxe trial ends on"); got["ann@example.com"] != 1 {
		t.Errorf("trial-ending notices %v, want one to ann (TRI-3)", got)
	}
	var amount int64
	var at time.Time
	if err := e.store.Pool().QueryRow(context.Background(),
		`SELECT amount_minor, created_at FROM gateway_sandbox.charges WHERE status = 'succeeded'`).Scan(&amount, &at); err != nil {
		t.Fatalf("the trial's end charge: %v", err)
	}
	if want := usdPrice(t, "NS-DLX", catalog.Annual).Amount(); amount != want || at.Before(expires) {
		t.Errorf("charged %d at %v, want %d at the trial's end %v", amount, at, want, expires)
	}
	if row := e.row(ann(), converted); row["term"] != "annual" || row["status"] != "active" || !mustTime(t, row["expires_at"]).Equal(expires.AddDate(1, 0, 0)) {
		t.Errorf("after the trial: %v", row)
	}
}

// rule CNV-4: the free order of a step cut short after placing it stands as
// placed when the procedure resumes, though the old subscription changed
// since: here a trial's procedure whose order was placed for a year (as a
// trial billed in between would have it) finishes with that order.
func TestRule_CNV4_ResumedFreeOrderStandsAsPlaced(t *testing.T) {
	t.Parallel()
	c := newBoughtConversionEnv(t, "NIS", "trial")
	e := c.engineEnv
	id := uuid.MustParse(c.start(`,"steps":1`)["conversion_id"].(string))

	types := eventstore.NewEventTypes()
	types.Register(1, events.All()...)
	orders, err := eventstore.NewCommandHandler(order.Decider, eventstore.HandlerConfig{Store: e.store, Types: types, Clock: e.clock, Policy: testPolicy})
	if err != nil {
		t.Fatal(err)
	}
	orderID := uuid.NewSHA1(id, []byte("free-order")) // the step's own order
	number, err := order.NewNumber(strings.NewReader("0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	zero := money.Zero(usdPrice(t, "NS-DLX", catalog.Annual).Currency())
	placed := order.Placed{OrderID: orderID, Number: number, Storefront: "US", BuyerEmail: "ann@example.com", SavedTo: uuid.MustParse(c.account),
		PlacedAt: e.clock.Now(), Total: zero, Free: true, Lines: []order.Line{{Product: "NS-DLX", ProductName: "Norton Security Deluxe",
			Term: "annual", Platform: "windows", Quantity: 1, UnitPrice: zero, Amount: zero, RenewalPrice: usdPrice(t, "NS-DLX", catalog.Annual)}}}
	if _, err := orders.Handle(context.Background(), eventstore.StreamID("order-"+orderID.String()), order.Place{Placed: placed},
		eventstore.CommandMeta{CommandID: "place/" + orderID.String(), Metadata: eventstore.Metadata{ActorKind: eventstore.ActorAgent, ActorID: "ava", Reason: "customer asked"}}); err != nil {
		t.Fatal(err)
	}

	done := e.want(e.call("POST", "/v1/agent/conversions/"+id.String()+"/continue", c.agent, `{"reason":"resume"}`), http.StatusOK).json(t)
	if done["completed"] != true || done["new_subscription_id"] == nil {
		t.Fatalf("resumed conversion %v", done)
	}
	if row := e.row(c.session(), done["new_subscription_id"].(string)); row["term"] != "annual" || row["product"] != "NS-DLX" {
		t.Errorf("the new subscription %v, want the order's NS-DLX year as placed", row)
	}
}

// rule ARS-1, CNV-4: a subscription an agent converts renews as the old one
// did, on the card the old one's order was paid with when the account has
// no billing information of its own.
func TestRule_ARS1_AgentConvertedSubscriptionRenewsOnTheOldOrdersCard(t *testing.T) {
	t.Parallel()
	c := newBoughtConversionEnv(t, "NIS", "annual")
	e, ann := c.engineEnv, c.session
	e.advance(40 * 24 * time.Hour)
	converted := c.start(``)["new_subscription_id"].(string)
	expires := mustTime(t, e.row(ann(), converted)["expires_at"])
	e.renewOnce(converted, expires)
	if row := e.row(ann(), converted); !mustTime(t, row["expires_at"]).Equal(expires.AddDate(1, 0, 0)) || row["status"] != "active" {
		t.Errorf("after its renewal the converted subscription is %v, want renewed for a year", row)
	}
	var charges int
	var amount int64
	if err := e.store.Pool().QueryRow(context.Background(), `SELECT count(*), (array_agg(amount_minor ORDER BY seq DESC))[1]
FROM gateway_sandbox.charges WHERE status = 'succeeded'`).Scan(&charges, &amount); err != nil {
		t.Fatal(err)
	}
	if want := usdPrice(t, "NS-DLX", catalog.Annual).Amount(); charges != 2 || amount != want {
		t.Errorf("%d charges, the last of %d; want the order's and the renewal's, of NS-DLX's year %d", charges, amount, want)
	}
}

// rule ARS-7, CNV-4, AGT-1: a conversion an agent makes step by step names
// the new subscription when disabling the old key (replaced_by, another
// subscription of the same account); the charge that paid for the term the
// new one carries is then not refunded, as with the procedure.
func TestRule_ARS7_KeyDisabledForAStepByStepConversionIsNotRefunded(t *testing.T) {
	t.Parallel()
	c := newBoughtConversionEnv(t, "NIS", "annual")
	e, ann, agent, old := c.engineEnv, c.session, c.agent, c.sub
	e.renewOnce(old, c.oldExpiry)
	ord := e.want(e.call("POST", "/v1/agent/accounts/"+c.account+"/free-orders", agent, `{"product":"NS-DLX","reason":"conversion"}`), http.StatusCreated).json(t)
	converted := items(t, ord)[0]["subscription_id"].(string)
	other := e.buyOne(e.sessions("bob@example.com")(), "NS-DLX", "annual")

	disable := "/v1/agent/subscriptions/" + old + "/disable"
	for _, replacedBy := range []string{"not-an-id", uuid.NewString(), old, other} {
		wantFields(t, e.call("POST", disable, agent, `{"reason":"conversion","replaced_by":"`+replacedBy+`"}`), http.StatusBadRequest, "replaced_by")
	}
	wantFields(t, e.call("POST", "/v1/agent/subscriptions/"+converted+"/disable", agent, `{"reason":"not legacy","replaced_by":"`+old+`"}`),
		http.StatusBadRequest, "replaced_by")
	e.want(e.call("POST", disable, agent, `{"reason":"conversion","replaced_by":"`+converted+`"}`), http.StatusOK)
	e.wantProblem(e.call("POST", "/v1/subscriptions/"+old+"/refund", ann(), ""), http.StatusConflict, "CNV-4")
	e.wantProblem(e.call("POST", "/v1/agent/subscriptions/"+old+"/refund", agent, `{"reason":"asked"}`), http.StatusConflict, "CNV-4")
}

// newBoughtConversionEnv is a customer who bought product for term with a
// card typed at checkout (the account keeps no billing method of its own),
// and the agent who will convert it.
func newBoughtConversionEnv(t *testing.T, product, term string) conversionEnv {
	e := newEngineEnv(t)
	c := conversionEnv{engineEnv: e, agent: e.agent("ava"), account: e.signUp("ann@example.com", "secret1")}
	c.sub = e.buyOne(c.session(), product, term)
	c.oldExpiry = mustTime(t, e.row(c.session(), c.sub)["expires_at"])
	return c
}

// start starts the support procedure (CNV-4) converting the customer's
// subscription into NS-DLX, with extra fields (`,"steps":1`), and returns
// the conversion's view.
func (c conversionEnv) start(extra string) map[string]any {
	c.t.Helper()
	return c.want(c.call("POST", "/v1/agent/conversions", c.agent, c.startBody("", `,"target":"NS-DLX"`+extra)), http.StatusCreated).json(c.t)
}

// rule CNV-4, ARS-7: a procedure paused before disabling the old key and
// resumed after that key renewed (here a trial billed at its end) carries
// the renewed term on: the new subscription ends where the old one now
// would, and the charge that paid for it is not refunded on the old key.
func TestRule_CNV4_ResumedAfterTheOldKeyRenewedCarriesTheRenewal(t *testing.T) {
	t.Parallel()
	c := newBoughtConversionEnv(t, "NIS", "trial")
	e := c.engineEnv
	e.advance(10 * 24 * time.Hour)
	id := c.start(`,"steps":2`)["conversion_id"].(string)
	e.renewAtExpiry(c.oldExpiry) // the old trial is billed at its end
	renewed := mustTime(t, e.row(c.session(), c.sub)["expires_at"])
	if !renewed.After(c.oldExpiry) {
		t.Fatalf("the old trial was not billed: it expires %v", renewed)
	}

	done := e.want(e.call("POST", "/v1/agent/conversions/"+id+"/continue", c.agent, `{"reason":"resume"}`), http.StatusOK).json(t)
	if done["completed"] != true || mustTime(t, done["new_expires_at"]).Format(time.DateOnly) != renewed.Format(time.DateOnly) {
		t.Errorf("resumed conversion %v; want it completed with the renewed expiry %v", done, renewed)
	}
	e.wantProblem(e.call("POST", "/v1/subscriptions/"+c.sub+"/refund", c.session(), ""), http.StatusConflict, "CNV-4")
}

// rule CNV-6, CNV-4: a procedure resumed after the old key expired (an
// opted-out trial ended) no longer converts it: refused naming CNV-6, the
// key left as it was.
func TestRule_CNV6_ResumedAfterTheOldKeyExpiredIsRefused(t *testing.T) {
	t.Parallel()
	c := newBoughtConversionEnv(t, "NIS", "trial")
	e := c.engineEnv
	// Opted out (TRI-2), the procedure paused before disabling the old key.
	e.want(e.call("PUT", "/v1/subscriptions/"+c.sub+"/auto-renewal", c.session(), `{"on":false}`), http.StatusOK)
	id := c.start(`,"steps":3`)["conversion_id"].(string)
	e.advance(c.oldExpiry.Add(time.Hour).Sub(e.clock.Now()))
	e.wantProblem(e.call("POST", "/v1/agent/conversions/"+id+"/continue", c.agent, `{"reason":"resume"}`), http.StatusConflict,
		"CNV-6", "the free order's subscription")
	if old := e.row(c.session(), c.sub); old["status"] != "expired" {
		t.Errorf("the old key is %v, want left expired", old["status"])
	}
}

// rule CNV-6, CNV-4, AGT-2: a trial in grace (its end's charge declined,
// the retries under way) has no term left for the support procedure to
// carry: refused naming CNV-6, before anything is done.
func TestRule_CNV6_SupportProcedureRefusesASubscriptionInGrace(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	agent := e.agent("ava")
	c := conversionEnv{engineEnv: e, agent: agent, account: e.signUp("ann@example.com", "secret1")}
	c.sub = items(t, e.want(e.call("POST", "/v1/orders", c.session(), orderBody("US", `[`+line("NIS", "trial", "windows", 1)+`]`, declinedCard, "")),
		http.StatusCreated).json(t))[0]["subscription_id"].(string)
	e.renewAtExpiry(mustTime(t, e.row(c.session(), c.sub)["expires_at"]))
	if status := e.row(c.session(), c.sub)["status"]; status != "grace" {
		t.Fatalf("the trial whose charge was declined is %v, want in grace", status)
	}
	e.wantProblem(e.call("POST", "/v1/agent/conversions", agent, c.startBody("", `,"target":"NS-DLX"`)), http.StatusConflict, "CNV-6")
	if n := e.countEvents("order.placed"); n != 1 {
		t.Errorf("%d orders placed, want only the trial's", n)
	}
}

// rule CNV-6, CNV-4, AGT-2: a key whose term ends later today has no whole
// day left for the new subscription to end on its day without removing a
// day already past: the support procedure refuses it before doing
// anything, and, resumed on that day, before disabling the key.
func TestRule_CNV6_SupportProcedureRefusesAKeyEndingToday(t *testing.T) {
	t.Parallel()
	c := newBoughtConversionEnv(t, "NIS", "annual")
	e := c.engineEnv
	// Started at an earlier time of day than the old key's (the free
	// order's subscription keeps it), paused before disabling the old key.
	e.advance(20 * time.Hour)
	id := c.start(`,"steps":3`)["conversion_id"].(string)
	e.advance(c.oldExpiry.Add(-2 * time.Hour).Sub(e.clock.Now()))
	if c.oldExpiry.Format(time.DateOnly) != e.clock.Now().Format(time.DateOnly) {
		t.Fatalf("the clock %v is not on the old key's last day %v", e.clock.Now(), c.oldExpiry)
	}
	e.wantProblem(e.call("POST", "/v1/agent/conversions/"+id+"/continue", c.agent, `{"reason":"resume"}`), http.StatusConflict, "CNV-6")
	if old := e.row(c.session(), c.sub); old["status"] == "disabled" {
		t.Errorf("the old key was disabled by a procedure that cannot finish")
	}
	e.wantProblem(e.call("POST", "/v1/agent/conversions", c.agent, c.startBody("", `,"target":"NS-DLX"`)), http.StatusConflict, "CNV-6")
}

// rule AGT-1, MON-2: an agent's refund on behalf of a customer of a monthly
// plan within 30 days of its purchase is MON-2's: the initial charge back
// in full and the plan ended at once, the agent's; past the 30 days it is
// refused naming MON-2, and the plan is left as it was.
func TestRule_AGT1_AgentsRefundOfAMonthlyPlanIsMON2s(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	agent := e.agent("ava")
	ann := e.sessions("ann@example.com")
	early := e.buyOne(ann(), "NS-PRM", "monthly")
	late := e.buyOne(ann(), "NS-PRM", "monthly")
	e.advance(5 * 24 * time.Hour)
	row := e.want(e.call("POST", "/v1/agent/subscriptions/"+early+"/refund", agent, `{"reason":"bought by mistake"}`), http.StatusOK).json(t)
	if row["status"] != "refunded" || row["refunded"] != true {
		t.Errorf("refunded on behalf within the 30 days: %v", row)
	}
	if got, ok := e.gatewayRefund(early, 0); !ok || got != usdPrice(t, "NS-PRM", catalog.Monthly).Amount() {
		t.Errorf("gateway refunded %d (%v), want the initial charge", got, ok)
	}
	for _, rec := range e.events("subscription-" + early) {
		if rec.Type == "subscription.refunded" && (rec.Metadata.ActorID != "ava" || rec.Metadata.Reason != "bought by mistake") {
			t.Errorf("refunded with %+v, want the agent's", rec.Metadata)
		}
	}
	e.advance(30 * 24 * time.Hour)
	e.wantProblem(e.call("POST", "/v1/agent/subscriptions/"+late+"/refund", agent, `{"reason":"late"}`), http.StatusConflict, "MON-2")
	if row := e.row(ann(), late); row["auto_renewal"] != true {
		t.Errorf("a refused refund changed the plan: %v", row)
	}
}
