package api_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzAccountEndpoints sends arbitrary bodies to every account endpoint that
// takes one: bad input always gets a 4xx problem+json, never a 5xx or a
// panic (SEC-4). `make test` runs it for a few seconds.
func FuzzAccountEndpoints(f *testing.F) {
	e := newEngineEnv(f)
	e.signUp("fuzz@example.com", "fuzz-pass")
	token := e.signIn("fuzz@example.com", "fuzz-pass")
	endpoints := []struct{ method, path string }{
		{"POST", "/v1/accounts"}, {"POST", "/v1/sessions"}, {"POST", "/v1/password/change"}, {"POST", "/v1/password/forgot"},
		{"POST", "/v1/password/reset"}, {"PUT", "/v1/account/profile"}, {"PUT", "/v1/account/billing"},
	}
	seeds := []string{
		`{"email":"a@example.com","password":"secret1","name":"A","country":"US"}`,
		`{"email":"fuzz@example.com","password":"nope"}`,
		`{"current_password":"x","new_password":"yyyyyy","new_password_again":"yyyyyy"}`,
		`{"token":"abc","new_password":"yyyyyy","new_password_again":"yyyyyy"}`,
		`{"name":"A","address":{"line1":"1 Main St","city":"X"},"country":"CA","language":"fr"}`,
		`{"country":"US","payment_method":{"type":"card","card":{"number":"4242424242424242","cvv":"123","exp_month":1,"exp_year":2030,"holder_name":"A"}}}`,
		`{"country":"DE","payment_method":{"type":"direct_debit","bank_account":{"iban":"DE89370400440532013000","holder_name":"A"}}}`,
		`[]`, `null`, `{"email":null}`, `{"address":{"line1":7}}`, "{\"name\":\"\\u0000\"}", `{"payment_method":{"card":{"exp_month":1e400}}}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		ep := endpoints[int(which)%len(endpoints)]
		req, err := http.NewRequest(ep.method, e.url+ep.path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s with %q: status %d: %s", ep.method, ep.path, body, resp.StatusCode, answer)
		}
		if resp.StatusCode >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
			t.Fatalf("%s %s with %q: a %d that is not problem+json", ep.method, ep.path, body, resp.StatusCode)
		}
	})
}
