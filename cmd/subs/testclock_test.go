package main_test

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/subs-engine/subs/eventstore/pgtest"
)

// rule TIM-2: with --clock=simulated, POST /v1/test-clock/advance moves the
// engine's clock and runs every due worker action on the way, in time
// order: a monthly plan bought through the API renews twice in 62 days,
// each time for one month from the old expiry (ARS-1). Without a simulated
// clock the endpoints do not exist.
func TestRule_TIM2_TestClockAdvanceRenewsAsIfTimePassed(t *testing.T) {
	t.Parallel()
	c, dataDir, srv := simulatedServe(t, "2027-01-31T09:00:00Z")
	c.call("POST", "/v1/orders", `{"storefront":"US","lines":[{"product":"NS-STD","term":"monthly","platform":"windows","quantity":1}],
		"payment_method":{"type":"card","card":{"number":"4242 4242 4242 4242","cvv":"123","exp_month":12,"exp_year":2030,"holder_name":"Tim Ode"}}}`, http.StatusCreated)
	if got := c.product()["expires_at"]; got != "2027-02-28T09:00:00Z" {
		t.Fatalf("bought on Jan 31, expires %v, want Feb 28", got)
	}

	adv := c.call("POST", "/v1/test-clock/advance", `{"days":62}`, http.StatusOK)
	if adv["now"] != "2027-04-03T09:00:00Z" || adv["ticks"].(float64) < 1 {
		t.Errorf("advance answered %v, want now 2027-04-03T09:00:00Z after some ticks", adv)
	}
	if got := c.call("GET", "/v1/test-clock", "", http.StatusOK)["now"]; got != "2027-04-03T09:00:00Z" {
		t.Errorf("the test clock reads %v after the advance", got)
	}
	c.signIn() // the session has expired with the 62 days, as it would have
	p := c.product()
	if p["expires_at"] != "2027-04-30T09:00:00Z" || p["status"] != "active" || p["auto_renewal"] != true {
		t.Errorf("after 62 days the plan shows %v %v renewing %v, want renewed twice from the Jan 31 anchor (Feb 28 → Mar 31 → Apr 30), active, renewing",
			p["expires_at"], p["status"], p["auto_renewal"])
	}
	// the e-mails went out on the way, each once: a pre-billing notice and a
	// receipt per renewal (ARS-2, EML-1)
	kinds := map[string]int{}
	for _, msg := range maildirMessages(t, dataDir) {
		kinds[msg.Header.Get("X-Subs-Kind")]++
	}
	if want := map[string]int{"order_confirmation": 1, "renewal_notice": 2, "renewal_receipt": 2}; !maps.Equal(kinds, want) {
		t.Errorf("the maildir holds %v, want %v", kinds, want)
	}
	tooFar := c.call("POST", "/v1/test-clock/advance", `{"days":213504}`, http.StatusBadRequest)
	if errs, _ := tooFar["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "days" {
		t.Errorf("an advance by 213,504 days answered %v, want 400 naming days", tooFar)
	}
	problem := c.call("POST", "/v1/test-clock/advance", `{"to":"2027-04-01T00:00:00Z"}`, http.StatusBadRequest)
	if errs, _ := problem["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "to" {
		t.Errorf("moving the clock back answered %v, want 400 naming to", problem)
	}
	// Two advances by a day at once move the clock by two days: each adds
	// its day to the clock as it finds it (TIM-1), not as it was read first.
	statuses := make([]int, 2)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() {
			resp, err := http.Post(c.base+"/v1/test-clock/advance", "application/json", strings.NewReader(`{"days":1}`))
			if err == nil {
				statuses[i] = resp.StatusCode
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if got := c.call("GET", "/v1/test-clock", "", http.StatusOK)["now"]; statuses[0] != http.StatusOK || statuses[1] != http.StatusOK || got != "2027-04-05T09:00:00Z" {
		t.Errorf("two concurrent advances by a day answered %v and left the clock at %v, want 2027-04-05T09:00:00Z", statuses, got)
	}
	srv.MustStop(t, 7*time.Second)

	m, out := MustParse(t, map[string]string{"DATABASE_URL": pgtest.NewDatabase(t)},
		"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--shutdown-timeout", "5s")
	srv = MustStartServe(t, m, out, time.Minute)
	system := apiClient{t: t, base: srv.base}
	system.call("POST", "/v1/test-clock/advance", `{"days":1}`, http.StatusNotFound)
	system.call("GET", "/v1/test-clock", "", http.StatusNotFound)
}

// rule TIM-2 (with ARS-2): work a command makes due at once runs at the
// start of the next advance, as the system clock's schedule would run it
// within a minute: automatic renewal turned back on after the notice date
// gets its pre-billing notice at that instant, though the next tick (hourly)
// lies beyond the advance.
func TestRule_TIM2_AdvanceRunsWorkDueAtItsStart(t *testing.T) {
	t.Parallel()
	c, dataDir, srv := simulatedServe(t, "2027-01-01T09:00:00Z")
	defer srv.MustStop(t, 7*time.Second)
	c.call("POST", "/v1/orders", `{"storefront":"US","lines":[{"product":"NS-STD","term":"annual","platform":"windows","quantity":1}],
		"payment_method":{"type":"card","card":{"number":"4242 4242 4242 4242","cvv":"123","exp_month":12,"exp_year":2030,"holder_name":"Tim Ode"}}}`, http.StatusCreated)
	renewal := "/v1/subscriptions/" + c.product()["subscription_id"].(string) + "/auto-renewal"
	c.call("PUT", renewal, `{"on":false}`, http.StatusOK)
	c.call("POST", "/v1/test-clock/advance", `{"to":"2027-12-10T09:00:00Z"}`, http.StatusOK) // past the notice date, Dec 2
	c.signIn()
	c.call("PUT", renewal, `{"on":true}`, http.StatusOK)
	c.call("POST", "/v1/test-clock/advance", `{"to":"2027-12-10T09:30:00Z"}`, http.StatusOK)

	// The advance or the outbox loop, whichever claimed it, has sent the
	// notice when the advance answers (the advance's drain waits for the
	// loop's run in flight); without the run at the advance's start there
	// is none to send until an advance reaches the next tick.
	notices := 0
	for _, msg := range maildirMessages(t, dataDir) {
		if msg.Header.Get("X-Subs-Kind") == "renewal_notice" {
			notices++
		}
	}
	if notices != 1 {
		t.Fatalf("%d pre-billing notices when the advance answered, want 1", notices)
	}
}

// simulatedServe starts serve on a simulated clock from start (RFC 3339)
// with Tim's account, signed in; it returns his client, the data directory
// and the server.
func simulatedServe(t *testing.T, start string) (*apiClient, string, *running) {
	t.Helper()
	dataDir := t.TempDir()
	m, out := MustParse(t, map[string]string{"DATABASE_URL": pgtest.NewDatabase(t)},
		"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--shutdown-timeout", "5s",
		"--clock", "simulated", "--clock-start", start)
	srv := MustStartServe(t, m, out, time.Minute)
	c := &apiClient{t: t, base: srv.base}
	c.call("POST", "/v1/accounts", `{"email":"tim@example.com","password":"correct-horse","name":"Tim Ode","country":"US"}`, http.StatusCreated)
	c.signIn()
	return c, dataDir, srv
}

// signIn opens a session for Tim.
func (c *apiClient) signIn() {
	c.t.Helper()
	c.token = c.call("POST", "/v1/sessions", `{"email":"tim@example.com","password":"correct-horse"}`, http.StatusCreated)["token"].(string)
}

// maildirMessages reads the messages the engine delivered to the data
// directory's maildir.
func maildirMessages(t *testing.T, dataDir string) []*mail.Message {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dataDir, "mail", "new", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*mail.Message
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, msg)
	}
	return out
}

// apiClient calls a running engine's API as one signed-in customer.
type apiClient struct {
	t     *testing.T
	base  string
	token string
}

// call sends method path with body (JSON, may be empty), requires status
// and returns the JSON object answered.
func (c apiClient) call(method, path, body string, status int) map[string]any {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewBufferString(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != status {
		c.t.Fatalf("%s %s: status %d %s, want %d", method, path, resp.StatusCode, raw, status)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return out
}

// product is the customer's one product in the products view.
func (c apiClient) product() map[string]any {
	c.t.Helper()
	products := c.call("GET", "/v1/products", "", http.StatusOK)["products"].([]any)
	if len(products) != 1 {
		c.t.Fatalf("the products view shows %d products, want 1", len(products))
	}
	return products[0].(map[string]any)
}
