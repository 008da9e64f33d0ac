package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/subs-engine/subs/workers/gateway"
)

// FuzzHandler sends arbitrary bodies to each POST endpoint: the answer is
// never a 5xx or a panic, and an error is always problem+json.
func FuzzHandler(f *testing.F) {
	s, _ := MustSandbox(f, gateway.SandboxConfig{})
	h := gateway.NewHandler(s, nil)
	paths := []string{"/v1/tokens/cards", "/v1/tokens/direct-debits", "/v1/charges", "/v1/refunds"}
	for i := range paths {
		f.Add(uint8(i), `{}`)
		f.Add(uint8(i), `{"number":"4242424242424242","cvv":"123","holder_name":"A","exp_month":12,"exp_year":2030}`)
		f.Add(uint8(i), `{"iban":"DE89370400440532013000","holder_name":"A"}`)
		f.Add(uint8(i), `{"token":"tok_x","amount":{"amount":100,"currency":"EUR"}}`)
		f.Add(uint8(i), `{"charge_id":"ch_x","amount":{"amount":1e3,"currency":"EUR"}}`)
		f.Add(uint8(i), `nul`)
	}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		req := httptest.NewRequest(http.MethodPost, paths[int(which)%len(paths)], strings.NewReader(body))
		req.Header.Set("Idempotency-Key", "fuzz")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q = %d %s", req.URL.Path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("POST %s %q = %d with Content-Type %q", req.URL.Path, body, rec.Code, rec.Header().Get("Content-Type"))
		}
	})
}
