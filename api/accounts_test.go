package api_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/subs-engine/subs/api"
	"github.com/subs-engine/subs/workers/mail/mailtest"
)

func TestRule_ACC1_ConcurrentSignUpsSameEmail_OneAccount(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	spellings := []string{"ann@example.com", "Ann@Example.com", "  ANN@EXAMPLE.COM", "ann@EXAMPLE.com  "}
	statuses := make([]int, 20)
	replies := make([]reply, 20)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() {
			replies[i] = e.call("POST", "/v1/accounts", "", fmt.Sprintf(`{"email":%q,"password":"secret-%d","name":"Ann","country":"US"}`, spellings[i%4], i))
			statuses[i] = replies[i].status
		})
	}
	wg.Wait()
	if n := count(statuses, http.StatusCreated); n != 1 {
		t.Fatalf("%d sign-ups succeeded, want exactly 1 (statuses %v)", n, statuses)
	}
	for _, r := range replies {
		if r.status == http.StatusConflict && !slices.Contains(r.fields(t), "email") {
			t.Errorf("conflict does not name the email field: %s", r.body)
		}
	}
	if n := count(statuses, http.StatusConflict); n != 19 {
		t.Errorf("%d refused as conflicts, want 19 (statuses %v)", n, statuses)
	}
	if got := e.eventCount(); got != 1 {
		t.Errorf("%d events written, want the one registration", got)
	}
}

func count(xs []int, x int) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

func TestRule_ACC2_MissingOrMalformedFieldRefusedNamingIt(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	cases := []struct {
		body   string
		fields []string
	}{
		{`{"password":"secret1","name":"Ann","country":"US"}`, []string{"email"}},
		{`{"email":"not-an-address","password":"secret1","name":"Ann","country":"US"}`, []string{"email"}},
		{`{"email":"ann@example.com","name":"Ann","country":"US"}`, []string{"password"}},
		{`{"email":"ann@example.com","password":"secret1","country":"US"}`, []string{"name"}},
		{`{"email":"ann@example.com","password":"secret1","name":"Ann"}`, []string{"country"}},
		{`{"email":"ann@example.com","password":"secret1","name":"Ann","country":"Atlantis"}`, []string{"country"}},
		{`{}`, []string{"email", "password", "name", "country"}},
	}
	for _, c := range cases {
		r := e.want(e.call("POST", "/v1/accounts", "", c.body), http.StatusBadRequest)
		if got := r.fields(t); !slices.Equal(got, c.fields) {
			t.Errorf("%s: fields %v, want %v", c.body, got, c.fields)
		}
	}
	if n := e.eventCount(); n != 0 {
		t.Errorf("refused sign-ups wrote %d events", n)
	}
}

func TestRule_ACC3_PasswordSixTo128CharactersStoredOnlyHashed(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	for _, pw := range []string{"12345", strings.Repeat("x", 129)} {
		r := e.want(e.call("POST", "/v1/accounts", "", `{"email":"ann@example.com","password":"`+pw+`","name":"Ann","country":"US"}`), http.StatusBadRequest)
		if !slices.Equal(r.fields(t), []string{"password"}) {
			t.Errorf("%d characters: %s", len(pw), r.body)
		}
	}
	e.signUp("ann@example.com", "123456")
	var data string
	if err := e.store.Pool().QueryRow(context.Background(), `SELECT data::text FROM events`).Scan(&data); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(data, "123456") || !strings.Contains(data, `"$argon2id$`) {
		t.Errorf("registration event holds %s: want an argon2id hash and not the password", data)
	}
}

func TestRule_ACC4_WrongPasswordAndUnknownEmailSameAnswer_SixthAttemptLocked(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "right-pass")
	unknown := e.call("POST", "/v1/sessions", "", `{"email":"nobody@example.com","password":"wrong-pass"}`)
	wrong := e.call("POST", "/v1/sessions", "", `{"email":"ann@example.com","password":"wrong-pass"}`)
	if unknown.status != http.StatusUnauthorized || wrong.status != unknown.status || string(wrong.body) != string(unknown.body) {
		t.Fatalf("unknown e-mail %d %s; wrong password %d %s: want one identical 401", unknown.status, unknown.body, wrong.status, wrong.body)
	}
	for range 4 { // failures 2 to 5
		e.want(e.call("POST", "/v1/sessions", "", `{"email":"ann@example.com","password":"wrong-pass"}`), http.StatusUnauthorized)
	}
	locked := e.want(e.call("POST", "/v1/sessions", "", `{"email":"ANN@example.com","password":"right-pass"}`), http.StatusTooManyRequests)
	if locked.header.Get("Retry-After") != "900" {
		t.Errorf("Retry-After %q, want 900 seconds", locked.header.Get("Retry-After"))
	}
	if err := e.clock.Advance(14*time.Minute + 59*time.Second); err != nil {
		t.Fatal(err)
	}
	e.want(e.call("POST", "/v1/sessions", "", `{"email":"ann@example.com","password":"right-pass"}`), http.StatusTooManyRequests)
	if err := e.clock.Advance(time.Second); err != nil {
		t.Fatal(err)
	}
	token := e.signIn("ann@example.com", "right-pass")
	e.want(e.call("GET", "/v1/account/profile", token, ""), http.StatusOK)
}

func TestRule_ACC5_ChangePasswordNeedsCurrentAndNewTwice(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "old-pass")
	token := e.signIn("ann@example.com", "old-pass")
	other := e.signIn("ann@example.com", "old-pass")
	cases := []struct {
		body  string
		field string
	}{
		{`{"current_password":"not-it","new_password":"new-pass","new_password_again":"new-pass"}`, "current_password"},
		{`{"current_password":"old-pass","new_password":"new-pass","new_password_again":"new-pazz"}`, "new_password_again"},
		{`{"current_password":"old-pass","new_password":"short","new_password_again":"short"}`, "new_password"},
	}
	for _, c := range cases {
		r := e.want(e.call("POST", "/v1/password/change", token, c.body), http.StatusBadRequest)
		if !slices.Contains(r.fields(t), c.field) {
			t.Errorf("%s: fields %v, want %s", c.body, r.fields(t), c.field)
		}
	}
	e.want(e.call("POST", "/v1/password/change", token, `{"current_password":"old-pass","new_password":"new-pass","new_password_again":"new-pass"}`), http.StatusNoContent)
	e.want(e.call("POST", "/v1/sessions", "", `{"email":"ann@example.com","password":"old-pass"}`), http.StatusUnauthorized)
	e.signIn("ann@example.com", "new-pass")
	e.want(e.call("GET", "/v1/account/profile", token, ""), http.StatusOK)
	e.want(e.call("GET", "/v1/account/profile", other, ""), http.StatusUnauthorized) // other sessions end
}

var resetLink = regexp.MustCompile(`https://account\.example\.com/reset-password\?token=([A-Za-z0-9_-]+)`)

// resetTokenFromMail asks for reset instructions and returns the token of
// the link in the one e-mail the request added.
func (e *engineEnv) resetTokenFromMail(email string) string {
	e.t.Helper()
	before := e.sendMail()
	e.want(e.call("POST", "/v1/password/forgot", "", `{"email":"`+email+`"}`), http.StatusAccepted)
	after := e.sendMail()
	added := slices.DeleteFunc(after, func(m string) bool { return slices.Contains(before, m) })
	if len(added) != 1 {
		e.t.Fatalf("the request added %d e-mails, want 1", len(added))
	}
	tok := resetLink.FindStringSubmatch(mailtest.PlainText(e.t, added[0]))
	if tok == nil {
		e.t.Fatal("the e-mail carries no reset link")
	}
	return tok[1]
}

func TestRule_ACC6_ResetTokenWorksOnceExpiresAfterAnHourVoidedByNewer(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "old-pass")
	// The answer does not reveal whether the address has an account.
	known := e.want(e.call("POST", "/v1/password/forgot", "", `{"email":"ann@example.com"}`), http.StatusAccepted)
	unknown := e.want(e.call("POST", "/v1/password/forgot", "", `{"email":"nobody@example.com"}`), http.StatusAccepted)
	if string(known.body) != string(unknown.body) {
		t.Errorf("answers differ: %s / %s", known.body, unknown.body)
	}
	e.sendMail()
	reset := func(token, pw string) reply {
		return e.call("POST", "/v1/password/reset", "", `{"token":"`+token+`","new_password":"`+pw+`","new_password_again":"`+pw+`"}`)
	}

	// Works once.
	first := e.resetTokenFromMail("ann@example.com")
	e.want(reset(first, "new-pass-1"), http.StatusNoContent)
	e.signIn("ann@example.com", "new-pass-1")
	if r := e.want(reset(first, "new-pass-2"), http.StatusBadRequest); !slices.Equal(r.fields(t), []string{"token"}) {
		t.Errorf("second use: %s", r.body)
	}

	// A newer request voids the older token.
	older := e.resetTokenFromMail("ann@example.com")
	newer := e.resetTokenFromMail("ann@example.com")
	e.want(reset(older, "new-pass-3"), http.StatusBadRequest)

	// Expires after an hour.
	if err := e.clock.Advance(time.Hour); err != nil {
		t.Fatal(err)
	}
	e.want(reset(newer, "new-pass-4"), http.StatusBadRequest)
	e.signIn("ann@example.com", "new-pass-1")

	latest := e.resetTokenFromMail("ann@example.com")
	if err := e.clock.Advance(59 * time.Minute); err != nil {
		t.Fatal(err)
	}
	e.want(reset(latest, "new-pass-5"), http.StatusNoContent)
	e.signIn("ann@example.com", "new-pass-5")
}

func TestRule_ACC7_ProfileReplacedAsAWholeBillingSeparate(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "secret1")
	token := e.signIn("ann@example.com", "secret1")
	e.want(e.call("PUT", "/v1/account/billing", token, cardBilling("US", "4242 4242 4242 4242")), http.StatusOK)
	e.want(e.call("PUT", "/v1/account/profile", token,
		`{"name":"Ann Smith","address":{"line1":"1 Main St","city":"Toronto","postal_code":"M5V 2T6"},"country":"CA","language":"fr-ca"}`), http.StatusOK)
	got := e.want(e.call("GET", "/v1/account/profile", token, ""), http.StatusOK).json(t)
	addr := got["address"].(map[string]any)
	if got["name"] != "Ann Smith" || got["country"] != "CA" || got["language"] != "fr-CA" || addr["city"] != "Toronto" {
		t.Errorf("profile after update: %v", got)
	}
	// Replacing means an omitted address is no address.
	e.want(e.call("PUT", "/v1/account/profile", token, `{"name":"Ann Smith","country":"CA","language":"fr"}`), http.StatusOK)
	got = e.want(e.call("GET", "/v1/account/profile", token, ""), http.StatusOK).json(t)
	if len(got["address"].(map[string]any)) != 0 {
		t.Errorf("address after a replace without one: %v", got["address"])
	}
	billing := e.want(e.call("GET", "/v1/account/billing", token, ""), http.StatusOK).json(t)
	if billing["country"] != "US" || billing["payment_method"].(map[string]any)["last4"] != "4242" {
		t.Errorf("billing after profile updates: %v", billing)
	}
	r := e.want(e.call("PUT", "/v1/account/profile", token, `{"country":"CA","language":"xx-yy-zz"}`), http.StatusBadRequest)
	if !slices.Equal(r.fields(t), []string{"name", "language"}) {
		t.Errorf("fields %v", r.fields(t))
	}
}

func cardBilling(country, number string) string {
	return `{"country":"` + country + `","payment_method":{"type":"card","card":{"number":"` + number +
		`","cvv":"919","exp_month":12,"exp_year":2031,"holder_name":"Ann Lee"}}}`
}

func TestRule_ACC8_BillingByCountryCardTokenizedOnlyLastFourKept(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	e.signUp("ann@example.com", "secret1")
	token := e.signIn("ann@example.com", "secret1")
	got := e.want(e.call("PUT", "/v1/account/billing", token, cardBilling("US", "4242 4242 4242 4242")), http.StatusOK).json(t)
	pm := got["payment_method"].(map[string]any)
	if got["country"] != "US" || pm["type"] != "card" || pm["brand"] != "visa" || pm["last4"] != "4242" ||
		pm["exp_month"] != 12.0 || pm["exp_year"] != 2031.0 || pm["holder_name"] != "Ann Lee" {
		t.Errorf("billing view %v", got)
	}
	debit := `{"country":"%s","payment_method":{"type":"direct_debit","bank_account":{"iban":"DE89370400440532013000","holder_name":"Ann Lee"}}}`
	for _, c := range []struct {
		country string
		status  int
	}{{"DE", http.StatusOK}, {"AT", http.StatusOK}, {"NL", http.StatusOK}, {"US", http.StatusBadRequest}, {"FR", http.StatusBadRequest}} {
		r := e.want(e.call("PUT", "/v1/account/billing", token, fmt.Sprintf(debit, c.country)), c.status)
		if c.status == http.StatusBadRequest && !slices.Equal(r.fields(t), []string{"payment_method.type"}) {
			t.Errorf("direct debit in %s: %s", c.country, r.body)
		}
	}
	refusals := []struct {
		body  string
		field string
	}{
		{cardBilling("US", "4000 0000 0000 0002"), "payment_method.card.number"}, // declined
		{cardBilling("US", "4000 0000 0000 0069"), "payment_method.card.expiry"}, // expired
		{cardBilling("US", "4242 4242 4242 4241"), "payment_method.card.number"}, // Luhn
		{`{"country":"US","payment_method":{"type":"card","card":{"number":"4242424242424242","exp_month":12,"exp_year":2031,"holder_name":"A"}}}`, "payment_method.card.cvv"},
		{`{"country":"US","payment_method":{"type":"card"}}`, "payment_method.card"},
		{`{"country":"US","payment_method":{"type":"cheque"}}`, "payment_method.type"},
	}
	for _, c := range refusals {
		r := e.want(e.call("PUT", "/v1/account/billing", token, c.body), http.StatusBadRequest)
		if !slices.Contains(r.fields(t), c.field) {
			t.Errorf("%s: fields %v, want %s", c.body, r.fields(t), c.field)
		}
	}
	last := e.want(e.call("GET", "/v1/account/billing", token, ""), http.StatusOK).json(t)
	if last["country"] != "NL" {
		t.Errorf("refused updates changed billing: %v", last)
	}
}

func TestRule_SEC1_OtherAccountsIdAnswersAsIfItDidNotExist(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.signUp("ann@example.com", "secret1")
	bob := e.signUp("bob@example.com", "secret2")
	bobToken := e.signIn("bob@example.com", "secret2")
	e.want(e.call("GET", "/v1/accounts/"+bob, bobToken, ""), http.StatusOK)
	other := e.want(e.call("GET", "/v1/accounts/"+ann, bobToken, ""), http.StatusNotFound)
	missing := e.want(e.call("GET", "/v1/accounts/00000000-0000-0000-0000-000000000000", bobToken, ""), http.StatusNotFound)
	if string(other.body) != string(missing.body) {
		t.Errorf("another account's id answers %s, a missing one %s", other.body, missing.body)
	}
	e.want(e.call("GET", "/v1/accounts/"+ann, "", ""), http.StatusUnauthorized)
	e.want(e.call("GET", "/v1/account/profile", "subs_forged-token", ""), http.StatusUnauthorized)
}

func TestRule_SEC4_BadInputRefusedNamingFieldNothingWritten(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	cases := []struct {
		body   string
		status int
		field  string
	}{
		{`{"email":"ann@example.com","password":"secret1","name":"Ann","country":"US","admin":true}`, http.StatusBadRequest, "admin"},
		{`{"email":42,"password":"secret1","name":"Ann","country":"US"}`, http.StatusBadRequest, "email"},
		{`{"email":"ann@example.com",`, http.StatusBadRequest, ""},
		{`{"email":"` + strings.Repeat("a", 70_000) + `"}`, http.StatusRequestEntityTooLarge, ""},
	}
	for _, c := range cases {
		r := e.want(e.call("POST", "/v1/accounts", "", c.body), c.status)
		if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("content type %q", ct)
		}
		if c.field != "" && !slices.Contains(r.fields(t), c.field) {
			t.Errorf("%.60s: fields %v, want %s", c.body, r.fields(t), c.field)
		}
	}
	if n := e.eventCount(); n != 0 {
		t.Errorf("bad input wrote %d events", n)
	}
}

// The OpenAPI document at /v1/openapi.json lists every route the engine
// serves, and parses.
func TestOpenAPI_DocumentsEveryAccountRoute(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	if missing := api.UndocumentedRoutes(e.server); len(missing) != 0 {
		t.Errorf("routes missing from the OpenAPI document: %v", missing)
	}
	doc := e.want(e.call("GET", "/v1/openapi.json", "", ""), http.StatusOK).json(t)
	paths := doc["paths"].(map[string]any)
	for _, p := range []string{"/v1/accounts", "/v1/sessions", "/v1/sessions/current", "/v1/password/change", "/v1/password/forgot",
		"/v1/password/reset", "/v1/account/profile", "/v1/account/billing", "/v1/accounts/{id}",
		"/v1/keys", "/v1/keys/{key}", "/v1/products", "/v1/subscriptions/{id}", "/v1/subscriptions/{id}/activations",
		"/v1/subscriptions/{id}/activations/{device}", "/v1/subscriptions/{id}/download", "/v1/subscriptions/{id}/recovery-tool",
		"/v1/subscriptions/{id}/auto-renewal",
		"/v1/orders", "/v1/orders/{id}", "/v1/orders/{id}/recognize", "/v1/orders/{id}/disown",
		"/v1/orders/{id}/items/{subscription}/download"} {
		if _, ok := paths[p]; !ok {
			t.Errorf("the document lacks %s", p)
		}
	}
}
