package api_test

import (
	"context"
	cryptorand "crypto/rand"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/api"
	catalogdata "github.com/subs-engine/subs/catalog"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/events"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
)

var testCatalog = catalogdata.MustLoad()

// minter returns a key minter on the env's log and clock drawing from
// random (crypto/rand when nil).
func (e *engineEnv) minter(random io.Reader) *api.KeyMinter {
	e.t.Helper()
	types := eventstore.NewEventTypes()
	types.Register(1, events.All()...)
	m, err := api.NewKeyMinter(api.KeyMinterConfig{Store: e.store, Types: types, Clock: e.clock, Policy: testPolicy, Random: random})
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// batch returns a retail batch of count keys; platform "" is the product's
// first platform.
func batch(t testing.TB, product, term, platform string, count int) api.RetailBatch {
	t.Helper()
	p, err := testCatalog.Product(product)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := catalog.ParseTerm(term)
	if err != nil {
		t.Fatal(err)
	}
	var pl catalog.Platform
	if platform != "" {
		if pl, err = catalog.ParsePlatform(platform); err != nil {
			t.Fatal(err)
		}
	}
	return api.RetailBatch{Product: p, Term: tm, Platform: pl, Count: count}
}

// mint creates one boxed retail key, unregistered, starting now.
func (e *engineEnv) mint(product, term, platform string) (key, serial, id string) {
	e.t.Helper()
	ks, err := e.minter(nil).Mint(context.Background(), batch(e.t, product, term, platform, 1))
	if err != nil {
		e.t.Fatal(err)
	}
	return ks[0].Key.String(), ks[0].Serial.String(), ks[0].SubscriptionID.String()
}

// subscriptions is a command handler of subscription commands on the
// env's log, for what no customer endpoint does (disable a key, create a
// subscription bought at a storefront).
func (e *engineEnv) subscriptions() *eventstore.CommandHandler[subscription.Subscription, subscription.Command] {
	e.t.Helper()
	types := eventstore.NewEventTypes()
	types.Register(1, events.All()...)
	h, err := eventstore.NewCommandHandler(subscription.Decider, eventstore.HandlerConfig{Store: e.store, Types: types, Clock: e.clock, Policy: testPolicy})
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// system runs a subscription command as the system actor.
func (e *engineEnv) system(id string, cmd subscription.Command) {
	e.t.Helper()
	meta := eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorSystem, Reason: "test"}}
	if _, err := e.subscriptions().Handle(context.Background(), eventstore.StreamID(subscription.StreamPrefix+id), cmd, meta); err != nil {
		e.t.Fatal(err)
	}
}

// customerSession signs a new customer up and in.
func (e *engineEnv) customerSession(email string) string {
	e.t.Helper()
	e.signUp(email, "secret1")
	return e.signIn(email, "secret1")
}

// advance moves the simulated clock on by d.
func (e *engineEnv) advance(d time.Duration) {
	e.t.Helper()
	if err := e.clock.Advance(d); err != nil {
		e.t.Fatal(err)
	}
}

// register saves key into the session's account and returns the row.
func (e *engineEnv) register(token, key string) map[string]any {
	e.t.Helper()
	return e.want(e.call("POST", "/v1/keys", token, `{"key":"`+key+`"}`), http.StatusCreated).json(e.t)
}

// products returns the rows of the session's products view.
func (e *engineEnv) products(token string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	for _, p := range e.want(e.call("GET", "/v1/products", token, ""), http.StatusOK).json(e.t)["products"].([]any) {
		out = append(out, p.(map[string]any))
	}
	return out
}

// detail is a problem's detail.
func detail(t testing.TB, r reply) string {
	t.Helper()
	d, _ := r.json(t)["detail"].(string)
	return d
}

// wantProblem fails the test unless r has status and a detail containing
// every want.
func (e *engineEnv) wantProblem(r reply, status int, want ...string) {
	e.t.Helper()
	e.want(r, status)
	d := detail(e.t, r)
	for _, w := range want {
		if !strings.Contains(d, w) {
			e.t.Errorf("detail %q lacks %q", d, w)
		}
	}
}

// do sends a request from any goroutine: it returns errors instead of
// failing the test.
func (e *engineEnv) do(method, path, token, body string) (reply, error) {
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, err
}

// concurrently sends each request at once and returns the replies in order.
func (e *engineEnv) concurrently(reqs ...[4]string) []reply {
	e.t.Helper()
	out := make([]reply, len(reqs))
	errs := make([]error, len(reqs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() {
			<-start
			out[i], errs[i] = e.do(r[0], r[1], r[2], r[3])
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			e.t.Fatal(err)
		}
	}
	return out
}

var keyFormat = regexp.MustCompile(`^[ACDEFGHJKMNPQRTUVWXY34679]{5}(-[ACDEFGHJKMNPQRTUVWXY34679]{5}){4}$`)

func TestRule_KEY1_KeysHaveTheFormatNoAmbiguousCharacterAndAreUnique(t *testing.T) {
	t.Parallel()
	if strings.ContainsAny(subscription.KeyAlphabet, "0O1IL2Z5S8B") {
		t.Fatalf("the alphabet %q holds an ambiguous character", subscription.KeyAlphabet)
	}
	e := newEngineEnv(t)
	keys, err := e.minter(nil).Mint(context.Background(), batch(t, "NIS", "annual", "windows", 2000))
	if err != nil {
		t.Fatal(err)
	}
	seenKeys, seenSerials, seenIDs := map[string]bool{}, map[string]bool{}, map[uuid.UUID]bool{}
	for _, k := range keys {
		s := k.Key.String()
		if !keyFormat.MatchString(s) {
			t.Fatalf("key %q is not XXXXX-XXXXX-XXXXX-XXXXX-XXXXX over the alphabet", s)
		}
		if p, err := subscription.ParseProductKey(strings.ToLower(strings.ReplaceAll(s, "-", ""))); err != nil || p != k.Key {
			t.Fatalf("key %q does not parse back as typed by a person: %v", s, err)
		}
		if _, err := subscription.ParseSerialNumber(k.Serial.String()); err != nil {
			t.Fatalf("serial %q: %v", k.Serial, err)
		}
		if seenKeys[s] || seenSerials[k.Serial.String()] || seenIDs[k.SubscriptionID] {
			t.Fatalf("key %s, serial %s or subscription %s minted twice", s, k.Serial, k.SubscriptionID)
		}
		seenKeys[s], seenSerials[k.Serial.String()], seenIDs[k.SubscriptionID] = true, true, true
	}
	if n := len(keys); n != 2000 {
		t.Fatalf("minted %d keys, want 2000", n)
	}
	// Each key names its subscription through its reservation.
	owner, found, err := e.store.ReservationOwner(context.Background(), eventstore.Reservation{Scope: subscription.KeyScope, Key: keys[1234].Key.String()})
	if err != nil || !found || string(owner) != subscription.StreamName(keys[1234].SubscriptionID) {
		t.Fatalf("reservation of key 1234: %s %v %v", owner, found, err)
	}
}

func TestRule_KEY1_EveryAlphabetCharacterIsEquallyLikely(t *testing.T) {
	t.Parallel()
	// A seeded ChaCha8 stream makes the statistic deterministic: the bound
	// checks the drawing (rejection of biased bytes), not luck.
	src := mathrand.NewChaCha8([32]byte{'s', 'u', 'b', 's'})
	const keys = 4000
	counts := map[rune]int{}
	for range keys {
		k, err := subscription.NewProductKey(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range strings.ReplaceAll(k.String(), "-", "") {
			counts[r]++
		}
	}
	if len(counts) != len(subscription.KeyAlphabet) {
		t.Fatalf("%d distinct characters drawn, want %d", len(counts), len(subscription.KeyAlphabet))
	}
	expected := float64(keys*25) / float64(len(subscription.KeyAlphabet))
	var chi2 float64
	for _, r := range subscription.KeyAlphabet {
		d := float64(counts[r]) - expected
		chi2 += d * d / expected
	}
	// 24 degrees of freedom: P(chi2 > 51.2) = 0.001. Taking bytes modulo
	// 25 without rejection would give 6 characters 11/256 and the others
	// 10/256, which puts chi2 near 170 at this sample size.
	if chi2 > 51.2 {
		t.Errorf("chi-square %.1f over %d characters: the draw is not uniform: %v", chi2, keys*25, counts)
	}
}

func TestRule_KEY1_MintingDrawsAgainWhenAKeyIsTaken(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	seed := [32]byte{'k', 'e', 'y'}
	first, err := e.minter(mathrand.NewChaCha8(seed)).Mint(context.Background(), batch(t, "NAV", "annual", "", 1))
	if err != nil {
		t.Fatal(err)
	}
	// The same stream again draws the same key and serial first: taken, so
	// the minter draws again.
	second, err := e.minter(mathrand.NewChaCha8(seed)).Mint(context.Background(), batch(t, "NAV", "annual", "", 1))
	if err != nil {
		t.Fatal(err)
	}
	if first[0].Key == second[0].Key || first[0].Serial == second[0].Serial {
		t.Errorf("a taken key or serial was minted again: %v %v", first, second)
	}
}

func TestRule_CAT1_NonRegistrableProductIsRefusedWithTheOrderAsTheWay(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	token := e.customerSession("ann@example.com")
	key, _, id := e.mint("NU", "annual", "windows")
	before := e.eventCount()
	r := e.call("POST", "/v1/keys", token, `{"key":"`+key+`"}`)
	e.wantProblem(r, http.StatusBadRequest, "cannot be registered", "order")
	if f := r.fields(t); len(f) != 1 || f[0] != "key" {
		t.Errorf("fields %v, want key", f)
	}
	if e.eventCount() != before {
		t.Error("a refused registration wrote events")
	}
	e.want(e.call("GET", "/v1/subscriptions/"+id, token, ""), http.StatusNotFound)
	if len(e.products(token)) != 0 {
		t.Error("a non-registrable product shows in the products view")
	}
}

func TestRule_KEY2_RegistrationAndEveryRefusal(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.customerSession("ann@example.com")
	bob := e.customerSession("bob@example.com")
	key, serial, id := e.mint("NIS", "annual", "windows")

	// Typed as people type it: lower case, no dashes.
	row := e.register(ann, strings.ToLower(strings.ReplaceAll(key, "-", "")))
	if row["subscription_id"] != id || row["product_key"] != key || row["serial_number"] != serial || row["status"] != "active" {
		t.Errorf("registered row %v", row)
	}
	// Read-your-writes: the products view shows it at once.
	if ps := e.products(ann); len(ps) != 1 || ps[0]["subscription_id"] != id {
		t.Fatalf("products after registration: %v", ps)
	}
	// The same key again in the same account: a no-op.
	before := e.eventCount()
	again := e.want(e.call("POST", "/v1/keys", ann, `{"key":"`+key+`"}`), http.StatusOK).json(t)
	if again["subscription_id"] != id || e.eventCount() != before {
		t.Errorf("second registration: %v, events %d → %d", again, before, e.eventCount())
	}

	refusals := []struct {
		name, token, body, want string
	}{
		{"other account", bob, `{"key":"` + key + `"}`, "registered to another account"},
		{"unknown key", ann, `{"key":"AAAAA-AAAAA-AAAAA-AAAAA-AAAAA"}`, "no product has this key"},
		{"malformed key", ann, `{"key":"ABCDE-12345"}`, "is not a product key"},
		{"ambiguous character", ann, `{"key":"OOOOO-AAAAA-AAAAA-AAAAA-AAAAA"}`, "which no product key has"},
		{"missing key", ann, `{}`, "is required"},
	}
	for _, c := range refusals {
		r := e.call("POST", "/v1/keys", c.token, c.body)
		e.wantProblem(r, http.StatusBadRequest, c.want)
		if f := r.fields(t); len(f) != 1 || f[0] != "key" {
			t.Errorf("%s: fields %v, want key", c.name, f)
		}
	}
	if len(e.products(bob)) != 0 {
		t.Error("bob sees ann's product")
	}

	disabledKey, _, disabledID := e.mint("NAV", "annual", "windows")
	e.system(disabledID, subscription.Disable{})
	r := e.call("POST", "/v1/keys", ann, `{"key":"`+disabledKey+`"}`)
	e.wantProblem(r, http.StatusBadRequest, "disabled")
	if f := r.fields(t); len(f) != 1 || f[0] != "key" {
		t.Errorf("disabled key: fields %v", f)
	}
}

func TestRule_KEY2_TwoAccountsRegisteringOneKeyAtOnceExactlyOneWins(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.customerSession("ann@example.com")
	bob := e.customerSession("bob@example.com")
	for round := range 5 {
		key, _, id := e.mint("NIS", "annual", "windows")
		body := `{"key":"` + key + `"}`
		rs := e.concurrently([4]string{"POST", "/v1/keys", ann, body}, [4]string{"POST", "/v1/keys", bob, body})
		won, lost := 0, 0
		for _, r := range rs {
			switch {
			case r.status == http.StatusCreated:
				won++
			case r.status == http.StatusBadRequest && strings.Contains(detail(t, r), "registered to another account"):
				lost++
			default:
				t.Fatalf("round %d: unexpected answer %d %s", round, r.status, r.body)
			}
		}
		if won != 1 || lost != 1 {
			t.Fatalf("round %d: %d won, %d lost; want exactly one each", round, won, lost)
		}
		winner, loser := ann, bob
		if rs[1].status == http.StatusCreated {
			winner, loser = bob, ann
		}
		e.want(e.call("GET", "/v1/subscriptions/"+id, winner, ""), http.StatusOK)
		e.want(e.call("GET", "/v1/subscriptions/"+id, loser, ""), http.StatusNotFound)
	}
}

func TestRule_KEY3_ActivationUsesASeatAndBeyondSaysBuyAnAdditionalKey(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.customerSession("ann@example.com")
	bob := e.customerSession("bob@example.com")
	key, _, id := e.mint("NIS", "annual", "windows") // 3 seats
	path := "/v1/subscriptions/" + id + "/activations"
	// Not registered yet: not the caller's (SEC-1).
	e.want(e.call("POST", path, ann, `{"device_id":"pc-1"}`), http.StatusNotFound)
	e.register(ann, key)

	for i, dev := range []string{"pc-1", "pc-2", "laptop:3"} {
		row := e.want(e.call("POST", path, ann, `{"device_id":"`+dev+`"}`), http.StatusCreated).json(t)
		if row["seats_used"] != float64(i+1) {
			t.Errorf("after %s: seats_used %v, want %d", dev, row["seats_used"], i+1)
		}
		// Read-your-writes.
		if got := e.products(ann)[0]["seats_used"]; got != float64(i+1) {
			t.Errorf("products view after %s: seats_used %v", dev, got)
		}
	}
	// The same computer again: it already uses a seat.
	before := e.eventCount()
	e.want(e.call("POST", path, ann, `{"device_id":"pc-1"}`), http.StatusOK)
	if e.eventCount() != before {
		t.Error("a repeated activation wrote an event")
	}
	e.wantProblem(e.call("POST", path, ann, `{"device_id":"pc-4"}`), http.StatusConflict, "buy an additional product key")
	e.want(e.call("POST", path, bob, `{"device_id":"pc-9"}`), http.StatusNotFound)
	for _, body := range []string{`{"device_id":""}`, `{"device_id":"a b"}`, `{}`} {
		r := e.want(e.call("POST", path, ann, body), http.StatusBadRequest)
		if f := r.fields(t); len(f) != 1 || f[0] != "device_id" {
			t.Errorf("%s: fields %v", body, f)
		}
	}
	row := e.products(ann)[0]
	devs := row["devices"].([]any)
	var names []string
	for _, d := range devs {
		names = append(names, d.(map[string]any)["device_id"].(string))
	}
	if row["seats"] != 3.0 || row["seats_used"] != 3.0 || strings.Join(names, " ") != "laptop:3 pc-1 pc-2" {
		t.Errorf("products view: %v", row)
	}

	// Expired and disabled keys cannot activate.
	expKey, _, expID := e.mint("NAV", "annual", "windows")
	e.register(ann, expKey)
	disKey, _, disID := e.mint("NAV", "annual", "windows")
	e.register(ann, disKey)
	e.system(disID, subscription.Disable{})
	e.wantProblem(e.call("POST", "/v1/subscriptions/"+disID+"/activations", ann, `{"device_id":"pc-1"}`), http.StatusConflict, "disabled")
	e.advance(366 * 24 * time.Hour)
	ann = e.signIn("ann@example.com", "secret1") // sessions last 30 days
	e.wantProblem(e.call("POST", "/v1/subscriptions/"+expID+"/activations", ann, `{"device_id":"pc-1"}`), http.StatusConflict, "expired")
}

func TestRule_KEY3_TenConcurrentActivationsOnThreeSeatsExactlyThreeSucceed(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.customerSession("ann@example.com")
	key, _, id := e.mint("N360", "annual", "windows") // 3 seats
	e.register(ann, key)
	reqs := make([][4]string, 10)
	for i := range reqs {
		reqs[i] = [4]string{"POST", "/v1/subscriptions/" + id + "/activations", ann, fmt.Sprintf(`{"device_id":"pc-%d"}`, i)}
	}
	won, full := 0, 0
	for _, r := range e.concurrently(reqs...) {
		switch {
		case r.status == http.StatusCreated:
			won++
		case r.status == http.StatusConflict && strings.Contains(detail(t, r), "buy an additional product key"):
			full++
		default:
			t.Fatalf("unexpected answer %d %s", r.status, r.body)
		}
	}
	if won != 3 || full != 7 {
		t.Fatalf("%d activations succeeded and %d were refused, want 3 and 7", won, full)
	}
	row := e.want(e.call("GET", "/v1/subscriptions/"+id, ann, ""), http.StatusOK).json(t)
	if row["seats_used"] != 3.0 || len(row["devices"].([]any)) != 3 {
		t.Errorf("row after the race: %v", row)
	}
}

// The order that buys the additional key is the orders endpoints'; here the
// rule's effect on seats: a second key of the same product in the same
// account is a subscription of its own with its own seats.
func TestRule_KEY4_AnAdditionalKeyOfTheProductBringsItsOwnSeats(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.customerSession("ann@example.com")
	key1, _, id1 := e.mint("NAV", "annual", "windows") // 1 seat
	e.register(ann, key1)
	e.want(e.call("POST", "/v1/subscriptions/"+id1+"/activations", ann, `{"device_id":"pc-1"}`), http.StatusCreated)
	e.wantProblem(e.call("POST", "/v1/subscriptions/"+id1+"/activations", ann, `{"device_id":"pc-2"}`), http.StatusConflict, "buy an additional product key")
	key2, _, id2 := e.mint("NAV", "annual", "windows")
	e.register(ann, key2)
	e.want(e.call("POST", "/v1/subscriptions/"+id2+"/activations", ann, `{"device_id":"pc-2"}`), http.StatusCreated)
	ps := e.products(ann)
	if len(ps) != 2 || ps[0]["product"] != "NAV" || ps[1]["product"] != "NAV" || ps[0]["product_key"] == ps[1]["product_key"] {
		t.Errorf("products: %v", ps)
	}
}

func TestRule_KEY5_DeactivationFreesTheSeatAtOnce(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.customerSession("ann@example.com")
	bob := e.customerSession("bob@example.com")
	key, _, id := e.mint("NAV", "annual", "windows") // 1 seat
	e.register(ann, key)
	path := "/v1/subscriptions/" + id + "/activations"
	e.want(e.call("POST", path, ann, `{"device_id":"old-pc"}`), http.StatusCreated)
	e.wantProblem(e.call("POST", path, ann, `{"device_id":"new-pc"}`), http.StatusConflict, "buy an additional product key")
	e.want(e.call("DELETE", path+"/old-pc", bob, ""), http.StatusNotFound) // SEC-1
	e.want(e.call("DELETE", path+"/old-pc", ann, ""), http.StatusNoContent)
	if got := e.products(ann)[0]["seats_used"]; got != 0.0 {
		t.Errorf("seats_used after deactivation: %v", got)
	}
	e.want(e.call("POST", path, ann, `{"device_id":"new-pc"}`), http.StatusCreated)
	e.want(e.call("DELETE", path+"/old-pc", ann, ""), http.StatusNotFound)   // no longer activated
	e.want(e.call("DELETE", path+"/bad%20id", ann, ""), http.StatusNotFound) // no computer has that id
}

func TestRule_PRD1_ProductsViewListsEveryColumnOfEachRegisteredSubscription(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.customerSession("ann@example.com")
	bob := e.customerSession("bob@example.com")
	start := e.clock.Now()
	nisKey, nisSerial, nisID := e.mint("NIS", "annual", "mac")
	e.mint("N360", "annual", "windows") // minted, never registered: not shown
	e.register(ann, nisKey)
	e.advance(time.Hour)
	trialKey, _, trialID := e.mint("NS-DLX", "trial", "windows")
	e.register(ann, trialKey)
	e.want(e.call("POST", "/v1/subscriptions/"+nisID+"/activations", ann, `{"device_id":"mac-1"}`), http.StatusCreated)
	e.want(e.call("PUT", "/v1/subscriptions/"+nisID+"/auto-renewal", ann, `{"on":true}`), http.StatusOK)

	ps := e.products(ann)
	if len(ps) != 2 {
		t.Fatalf("products: %v", ps)
	}
	nis, trial := ps[0], ps[1]
	want := map[string]any{
		"subscription_id": nisID, "product": "NIS", "product_name": "Norton Internet Security", "platform": "mac",
		"term": "annual", "status": "active", "registered_at": start.Format(time.RFC3339),
		"starts_at": start.Format(time.RFC3339), "expires_at": start.AddDate(1, 0, 0).Format(time.RFC3339),
		"product_key": nisKey, "serial_number": nisSerial, "seats": 3.0, "seats_used": 1.0, "auto_renewal": true,
		"download_available": true, "recovery_tool_available": false,
	}
	for k, v := range want {
		if nis[k] != v {
			t.Errorf("NIS %s = %v, want %v", k, nis[k], v)
		}
	}
	if _, ok := nis["order_id"]; ok {
		t.Errorf("a boxed key has an order: %v", nis)
	}
	trialEnd := start.Add(time.Hour).Add(30 * 24 * time.Hour).Format(time.RFC3339)
	if trial["subscription_id"] != trialID || trial["status"] != "trial" || trial["seats"] != 5.0 || trial["expires_at"] != trialEnd ||
		trial["auto_renewal"] != false || trial["download_available"] != true {
		t.Errorf("trial row %v (want expiry %s)", trial, trialEnd)
	}
	if len(e.products(bob)) != 0 {
		t.Error("bob sees ann's products")
	}
}

func TestRule_PRD2_DownloadWhileCurrentGreyedOutOnceExpired(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.customerSession("ann@example.com")
	bob := e.customerSession("bob@example.com")
	key, _, id := e.mint("NS-STD", "monthly", "mac")
	trialKey, _, trialID := e.mint("NS-PRM", "trial", "windows")
	e.register(ann, key)
	e.register(ann, trialKey)
	dl := e.want(e.call("GET", "/v1/subscriptions/"+id+"/download", ann, ""), http.StatusOK).json(t)
	if dl["url"] != "/downloads/NS-STD/mac" || dl["status"] != "active" || dl["product"] != "NS-STD" || dl["platform"] != "mac" {
		t.Errorf("download: %v", dl)
	}
	e.want(e.call("GET", "/v1/subscriptions/"+trialID+"/download", ann, ""), http.StatusOK)
	e.want(e.call("GET", "/v1/subscriptions/"+id+"/download", bob, ""), http.StatusNotFound)

	// One month later the monthly term has expired; the trial (30 days) too.
	e.advance(31 * 24 * time.Hour)
	ann = e.signIn("ann@example.com", "secret1") // sessions last 30 days
	e.wantProblem(e.call("GET", "/v1/subscriptions/"+id+"/download", ann, ""), http.StatusConflict, "greyed out", "expired")
	e.wantProblem(e.call("GET", "/v1/subscriptions/"+trialID+"/download", ann, ""), http.StatusConflict, "greyed out")
	for _, p := range e.products(ann) {
		if p["status"] != "expired" || p["download_available"] != false {
			t.Errorf("after expiry: %v", p)
		}
	}
}

func TestRule_PRD3_RecoveryToolOnlyForPaidCurrentNAVNISN360OnWindows(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.customerSession("ann@example.com")
	ids := map[string]string{}
	for _, c := range [][3]string{
		{"nis-win", "NIS", "windows"}, {"nav-win", "NAV", "windows"}, {"n360", "N360", "windows"},
		{"nis-mac", "NIS", "mac"}, {"n1", "N1", "windows"}, {"ns-dlx", "NS-DLX", "windows"},
	} {
		key, _, id := e.mint(c[1], "annual", c[2])
		e.register(ann, key)
		ids[c[0]] = id
	}
	trialKey, _, trialID := e.mint("NIS", "trial", "windows")
	e.register(ann, trialKey)
	tool := func(id string) reply { return e.call("GET", "/v1/subscriptions/"+id+"/recovery-tool", ann, "") }

	for _, name := range []string{"nis-win", "nav-win", "n360"} {
		got := e.want(tool(ids[name]), http.StatusOK).json(t)
		if got["url"] != "/downloads/recovery-tool/windows" {
			t.Errorf("%s: %v", name, got)
		}
	}
	e.wantProblem(tool(ids["nis-mac"]), http.StatusConflict, "windows", "not for mac")
	e.wantProblem(tool(ids["n1"]), http.StatusConflict, "Norton One does not include")
	e.wantProblem(tool(ids["ns-dlx"]), http.StatusConflict, "does not include")
	e.wantProblem(tool(trialID), http.StatusConflict, "trial")
	available := func() map[string]bool {
		out := map[string]bool{}
		for _, p := range e.products(ann) {
			out[p["subscription_id"].(string)] = p["recovery_tool_available"].(bool)
		}
		return out
	}
	got := available()
	for name, id := range ids {
		if want := name == "nis-win" || name == "nav-win" || name == "n360"; got[id] != want {
			t.Errorf("%s: recovery_tool_available %v, want %v", name, got[id], want)
		}
	}
	if got[trialID] {
		t.Error("a trial offers the recovery tool")
	}

	e.advance(366 * 24 * time.Hour)
	ann = e.signIn("ann@example.com", "secret1") // sessions last 30 days
	e.wantProblem(tool(ids["nis-win"]), http.StatusConflict, "expired")
	for id, on := range available() {
		if on {
			t.Errorf("%s offers the recovery tool after expiry", id)
		}
	}
}

func TestRule_PRD4_LookingUpAKeyReturnsItsSerialNumber(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.customerSession("ann@example.com")
	bob := e.customerSession("bob@example.com")
	key, serial, id := e.mint("N360", "annual", "windows")
	other, _, _ := e.mint("N360", "annual", "windows")
	e.want(e.call("GET", "/v1/keys/"+key, ann, ""), http.StatusNotFound) // not registered yet
	e.register(ann, key)
	for _, typed := range []string{key, strings.ToLower(strings.ReplaceAll(key, "-", ""))} {
		got := e.want(e.call("GET", "/v1/keys/"+typed, ann, ""), http.StatusOK).json(t)
		if got["serial_number"] != serial || got["product_key"] != key || got["subscription_id"] != id || got["product"] != "N360" {
			t.Errorf("lookup %s: %v", typed, got)
		}
	}
	e.want(e.call("GET", "/v1/keys/"+key, bob, ""), http.StatusNotFound)
	e.want(e.call("GET", "/v1/keys/"+other, ann, ""), http.StatusNotFound)
	e.want(e.call("GET", "/v1/keys/not-a-key", ann, ""), http.StatusNotFound)
	if row := e.products(ann)[0]; row["serial_number"] != serial {
		t.Errorf("products view serial %v, want %s", row["serial_number"], serial)
	}
}

func TestRule_ARS5_AsianStoreSubscriptionIsManagedOnThatStore(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.customerSession("ann@example.com")
	jp, err := testCatalog.Storefront("JP")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := testCatalog.Product("NS-DLX")
	key, _ := subscription.NewProductKey(cryptorand.Reader)
	serial, _ := subscription.NewSerialNumber(cryptorand.Reader)
	id := uuid.New()
	created, err := subscription.NewCreated(id, p, catalog.Annual, catalog.Windows, key, serial, e.clock.Now(), testPolicy,
		subscription.Origin{OrderID: uuid.New(), Storefront: jp, AutoRenew: true})
	if err != nil {
		t.Fatal(err)
	}
	e.system(id.String(), subscription.Create{Created: created})
	e.register(ann, key.String())
	e.wantProblem(e.call("PUT", "/v1/subscriptions/"+id.String()+"/auto-renewal", ann, `{"on":false}`), http.StatusConflict, jp.Code())
	if row := e.products(ann)[0]; row["auto_renewal"] != true || row["storefront"] != "JP" {
		t.Errorf("row after the refusal: %v", row)
	}
}

func TestRule_ARS3_AutoRenewalOnAndOffOnlyInTheOwnersAccount(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.customerSession("ann@example.com")
	bob := e.customerSession("bob@example.com")
	key, _, id := e.mint("NS-STD", "annual", "windows")
	path := "/v1/subscriptions/" + id + "/auto-renewal"
	e.want(e.call("PUT", path, ann, `{"on":true}`), http.StatusNotFound) // ORD-5: not in the account yet
	e.register(ann, key)
	for _, on := range []bool{true, false, true} {
		row := e.want(e.call("PUT", path, ann, fmt.Sprintf(`{"on":%v}`, on)), http.StatusOK).json(t)
		if row["auto_renewal"] != on || e.products(ann)[0]["auto_renewal"] != on {
			t.Errorf("after on=%v: %v", on, row)
		}
	}
	e.want(e.call("PUT", path, bob, `{"on":false}`), http.StatusNotFound)
	r := e.want(e.call("PUT", path, ann, `{}`), http.StatusBadRequest)
	if f := r.fields(t); len(f) != 1 || f[0] != "on" {
		t.Errorf("fields %v", f)
	}
}

func TestRule_SEC1_AnotherAccountsSubscriptionAnswersLikeAMissingOne(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.customerSession("ann@example.com")
	bob := e.customerSession("bob@example.com")
	key, _, id := e.mint("NIS", "annual", "windows")
	e.register(ann, key)
	e.want(e.call("POST", "/v1/subscriptions/"+id+"/activations", ann, `{"device_id":"pc-1"}`), http.StatusCreated)
	missing := uuid.NewString()
	for _, c := range [][3]string{
		{"GET", "/v1/subscriptions/%s", ""},
		{"GET", "/v1/subscriptions/%s/download", ""},
		{"GET", "/v1/subscriptions/%s/recovery-tool", ""},
		{"POST", "/v1/subscriptions/%s/activations", `{"device_id":"pc-2"}`},
		{"DELETE", "/v1/subscriptions/%s/activations/pc-1", ""},
		{"PUT", "/v1/subscriptions/%s/auto-renewal", `{"on":false}`},
	} {
		theirs := e.want(e.call(c[0], fmt.Sprintf(c[1], id), bob, c[2]), http.StatusNotFound)
		none := e.want(e.call(c[0], fmt.Sprintf(c[1], missing), bob, c[2]), http.StatusNotFound)
		if string(theirs.body) != string(none.body) {
			t.Errorf("%s %s: another account's answer %s differs from a missing one's %s", c[0], c[1], theirs.body, none.body)
		}
	}
	// Ann's subscription is untouched.
	if row := e.products(ann)[0]; row["seats_used"] != 1.0 {
		t.Errorf("row %v", row)
	}
}
