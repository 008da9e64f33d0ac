package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/workers/gateway"
	"github.com/subs-engine/subs/workers/gateway/gatewaytest"
)

// wireProblem is what a client sees of a problem+json answer.
type wireProblem struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Field  string `json:"field"`
	Errors []struct {
		Field string `json:"field"`
	} `json:"errors"`
}

func TestHandler_AnswersProblemsNamingTheField(t *testing.T) {
	t.Parallel()
	s, _ := MustSandbox(t, gateway.SandboxConfig{})
	_, srv, logs := MustServe(t, s)
	card := func(number, cvv string, month, year int) string {
		b, _ := json.Marshal(map[string]any{"number": number, "cvv": cvv, "holder_name": "Ada", "exp_month": month, "exp_year": year})
		return string(b)
	}
	tests := []struct {
		name, method, path, key, body string
		wantStatus                    int
		wantType                      string
		wantCode, wantField           string // problem members, or errors[0].field for 400
	}{
		{"bad Luhn", "POST", "/v1/tokens/cards", "", card("4242424242424241", "123", 12, 2030),
			402, gateway.ProblemCardError, payment.CodeIncorrectNumber, payment.FieldCardNumber},
		{"expired card", "POST", "/v1/tokens/cards", "", card(gateway.CardSucceeds, "123", 12, 2025),
			402, gateway.ProblemCardError, payment.CodeExpiredCard, payment.FieldCardExpiry},
		{"refused test card", "POST", "/v1/tokens/cards", "", card(gateway.CardRefused, "123", 12, 2030),
			402, gateway.ProblemCardError, payment.CodeCardDeclined, payment.FieldCardNumber},
		{"bad CVV", "POST", "/v1/tokens/cards", "", card(gateway.CardSucceeds, "12", 12, 2030),
			400, gateway.ProblemInvalidRequest, "", payment.FieldCardCVV},
		{"month 13", "POST", "/v1/tokens/cards", "", card(gateway.CardSucceeds, "123", 13, 2030),
			400, gateway.ProblemInvalidRequest, "", payment.FieldCardExpiry},
		{"unknown field", "POST", "/v1/tokens/cards", "", `{"number":"4242424242424242","pin":"1"}`,
			400, gateway.ProblemInvalidRequest, "", "body"},
		{"wrong type", "POST", "/v1/tokens/cards", "", `{"exp_month":"twelve"}`,
			400, gateway.ProblemInvalidRequest, "", "exp_month"},
		{"trailing data", "POST", "/v1/tokens/direct-debits", "", `{"iban":"x"} {}`,
			400, gateway.ProblemInvalidRequest, "", "body"},
		{"bad IBAN", "POST", "/v1/tokens/direct-debits", "", `{"iban":"DE88370400440532013000","holder_name":"Ada"}`,
			400, gateway.ProblemInvalidRequest, "", payment.FieldIBAN},
		{"charge without key", "POST", "/v1/charges", "", `{"token":"tok_x","amount":{"amount":100,"currency":"EUR"}}`,
			400, gateway.ProblemInvalidRequest, "", payment.FieldIdempotencyKey},
		{"charge without amount", "POST", "/v1/charges", "k1", `{"token":"tok_x"}`,
			400, gateway.ProblemInvalidRequest, "", payment.FieldAmount},
		{"charge in a made-up currency", "POST", "/v1/charges", "k1", `{"token":"tok_x","amount":{"amount":100,"currency":"XXX"}}`,
			400, gateway.ProblemInvalidRequest, "", payment.FieldAmount},
		{"charge of an unknown token", "POST", "/v1/charges", "k1", `{"token":"tok_x","amount":{"amount":100,"currency":"EUR"}}`,
			404, gateway.ProblemUnknownToken, "", payment.FieldToken},
		{"refund of an unknown charge", "POST", "/v1/refunds", "k1", `{"charge_id":"ch_x","amount":{"amount":100,"currency":"EUR"}}`,
			404, gateway.ProblemUnknownCharge, "", payment.FieldChargeID},
		{"ledger limit not a number", "GET", "/v1/charges?limit=ten", "", "",
			400, gateway.ProblemInvalidRequest, "", "limit"},
		{"ledger from not a time", "GET", "/v1/charges?from=yesterday", "", "",
			400, gateway.ProblemInvalidRequest, "", "from"},
		{"no such route", "GET", "/v1/nothing", "", "",
			404, gateway.ProblemNotFound, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tt.key != "" {
				req.Header.Set("Idempotency-Key", gatewaytest.NewKey(tt.key))
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d %s, want %d application/problem+json; body %s", resp.StatusCode, resp.Header.Get("Content-Type"), tt.wantStatus, body)
			}
			var p wireProblem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			field := p.Field
			if tt.wantStatus == 400 && len(p.Errors) > 0 {
				field = p.Errors[0].Field
			}
			if p.Type != tt.wantType || p.Status != tt.wantStatus || p.Code != tt.wantCode || field != tt.wantField {
				t.Errorf("problem = %s, want type %s, code %q, field %q", body, tt.wantType, tt.wantCode, tt.wantField)
			}
			if strings.Contains(string(body), "4242424242424241") || strings.Contains(string(body), gateway.CardSucceeds) {
				t.Errorf("the answer quotes the card number: %s", body)
			}
		})
	}
	if strings.Contains(logs.String(), "4242424242424241") {
		t.Errorf("the handler logged the card number:\n%s", logs)
	}
	assertNoSecretsLogged(t, logs.String())
}

func TestHandler_UnavailableIs503AndRetryable(t *testing.T) {
	t.Parallel()
	s, _ := MustSandbox(t, gateway.SandboxConfig{FailureRate: 1})
	_, srv, _ := MustServe(t, s)
	resp, err := srv.Client().Post(srv.URL+"/v1/tokens/direct-debits", "application/json", strings.NewReader(`{"iban":"`+gateway.IBANSucceedsDE+`","holder_name":"Ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p wireProblem
	_ = json.NewDecoder(resp.Body).Decode(&p)
	if resp.StatusCode != http.StatusServiceUnavailable || p.Type != gateway.ProblemUnavailable {
		t.Errorf("answer = %d %s, want 503 %s", resp.StatusCode, p.Type, gateway.ProblemUnavailable)
	}
}

func TestHTTPClient_TransportFailuresAreUnavailable(t *testing.T) {
	t.Parallel()
	card := gatewaytest.MustCard(t, gateway.CardSucceeds)
	req := payment.ChargeRequest{IdempotencyKey: "k", Token: "tok_x", Amount: gatewaytest.EUR(100)}

	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		c, err := gateway.NewHTTPClient(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Charge(context.Background(), req); !errors.Is(err, payment.ErrUnavailable) {
			t.Errorf("Charge = %v, want ErrUnavailable", err)
		}
		if _, err := c.TokenizeCard(context.Background(), card); !errors.Is(err, payment.ErrUnavailable) || strings.Contains(err.Error(), gateway.CardSucceeds) {
			t.Errorf("TokenizeCard = %v, want ErrUnavailable not quoting the number", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		s, _ := MustSandbox(t, gateway.SandboxConfig{Latency: 2 * time.Second})
		_, srv, _ := MustServe(t, s)
		c, err := gateway.NewHTTPClient(srv.URL, &http.Client{Timeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Charge(context.Background(), req); !errors.Is(err, payment.ErrUnavailable) {
			t.Errorf("Charge = %v, want ErrUnavailable", err)
		}
	})
	t.Run("500 without a problem", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "proxy error", http.StatusBadGateway)
		}))
		t.Cleanup(srv.Close)
		c, _ := gateway.NewHTTPClient(srv.URL, srv.Client())
		if _, err := c.Charges(context.Background(), payment.ChargeFilter{}); !errors.Is(err, payment.ErrUnavailable) {
			t.Errorf("Charges = %v, want ErrUnavailable", err)
		}
	})
	t.Run("unreadable success", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("{not json"))
		}))
		t.Cleanup(srv.Close)
		c, _ := gateway.NewHTTPClient(srv.URL, srv.Client())
		if _, err := c.Charge(context.Background(), req); !errors.Is(err, payment.ErrUnavailable) {
			t.Errorf("Charge = %v, want ErrUnavailable", err)
		}
	})
}

func TestNewHTTPClient_RefusesABadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "127.0.0.1:8090", "ftp://host", "http://", "::"} {
		if _, err := gateway.NewHTTPClient(u, nil); err == nil {
			t.Errorf("NewHTTPClient(%q) succeeded", u)
		}
	}
}
