package api_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/api"
)

// sampleRequest exercises every shape DecodeJSON walks.
type sampleRequest struct {
	Email   string `json:"email"`
	Count   int    `json:"count,omitempty"`
	Address struct {
		Line1 string `json:"line1"`
	} `json:"address,omitzero"`
	Items []struct {
		SKU string `json:"sku"`
	} `json:"items,omitempty"`
	ID     uuid.UUID         `json:"id,omitzero"`
	At     time.Time         `json:"at,omitzero"`
	Labels map[string]string `json:"labels,omitempty"`
	Extra  *sampleEmbedded   `json:"extra,omitempty"`
	sampleEmbedded
}

type sampleEmbedded struct {
	Note string `json:"note,omitempty"`
}

// decodeRoutes registers POST /v1/test/decode, which echoes what it decoded.
func decodeRoutes(s *api.Server) {
	s.Route(api.Route{
		Method: http.MethodPost, Pattern: "/v1/test/decode", Summary: "Echo a sample request",
		Request: sampleRequest{}, Responses: map[int]any{http.StatusOK: sampleRequest{}},
		Handler: api.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			var req sampleRequest
			if err := api.DecodeJSON(w, r, &req); err != nil {
				return err
			}
			api.WriteJSON(w, http.StatusOK, req)
			return nil
		}),
	})
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	env := MustNewAPIEnv(t, api.ServerConfig{DB: MustNewUnreachablePool(t), MaxBodyBytes: 1024}, decodeRoutes)
	url := env.URL + "/v1/test/decode"
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantType    string
		wantFields  []string // errors[].field, in order
		wantDetail  string   // a part of the detail
	}{
		{"a valid body", "application/json", `{"email":"a@example.com","address":{"line1":"x"},"items":[{"sku":"s"}],"note":"n","id":"0195c7a0-0000-7000-8000-000000000000","at":"2027-01-01T00:00:00Z"}`, 200, "", nil, ""},
		{"charset utf-8 is JSON", "application/json; charset=utf-8", `{"email":"a"}`, 200, "", nil, ""},
		{"text/plain", "text/plain", `{"email":"a"}`, 415, api.ProblemTypeUnsupportedMediaType, nil, "Content-Type: application/json"},
		{"no content type", "", `{"email":"a"}`, 415, api.ProblemTypeUnsupportedMediaType, nil, ""},
		{"another charset", "application/json; charset=latin1", `{"email":"a"}`, 415, api.ProblemTypeUnsupportedMediaType, nil, ""},
		{"a body over the limit", "application/json", `{"email":"` + strings.Repeat("a", 2000) + `"}`, 413, api.ProblemTypeBodyTooLarge, nil, "1024 bytes"},
		{"an empty body", "application/json", ``, 400, api.ProblemTypeMalformedBody, nil, "empty"},
		{"a blank body", "application/json", " \n\t", 400, api.ProblemTypeMalformedBody, nil, "empty"},
		{"a syntax error", "application/json", `{"email":}`, 400, api.ProblemTypeMalformedBody, nil, "at byte 10"},
		{"a body cut short", "application/json", `{"email":"a"`, 400, api.ProblemTypeMalformedBody, nil, "ends before"},
		{"a second object", "application/json", `{"email":"a"} {}`, 400, api.ProblemTypeMalformedBody, nil, "continues after"},
		{"trailing garbage", "application/json", `{"email":"a"}x`, 400, api.ProblemTypeMalformedBody, nil, "continues after"},
		{"an array", "application/json", `[{"email":"a"}]`, 400, api.ProblemTypeMalformedBody, nil, "JSON object"},
		{"null", "application/json", `null`, 400, api.ProblemTypeMalformedBody, nil, "JSON object"},
		{"a string", "application/json", `"hello"`, 400, api.ProblemTypeMalformedBody, nil, "JSON object"},
		{"an unknown field", "application/json", `{"email":"a","emali":"b"}`, 400, api.ProblemTypeValidation, []string{"emali"}, ""},
		{"an unknown nested field", "application/json", `{"address":{"line1":"x","line2":"y"}}`, 400, api.ProblemTypeValidation, []string{"address.line2"}, ""},
		{"an unknown field in an array", "application/json", `{"items":[{"sku":"a"},{"skux":"b"}]}`, 400, api.ProblemTypeValidation, []string{"items[1].skux"}, ""},
		{"an unknown field under a pointer", "application/json", `{"extra":{"nope":1}}`, 400, api.ProblemTypeValidation, []string{"extra.nope"}, ""},
		{"two unknown fields", "application/json", `{"a":1,"b":2}`, 400, api.ProblemTypeValidation, []string{"a", "b"}, "2 fields"},
		{"a field in another case", "application/json", `{"EMAIL":"a"}`, 400, api.ProblemTypeValidation, []string{"EMAIL"}, ""},
		{"a field given twice", "application/json", `{"email":"a","email":"b"}`, 400, api.ProblemTypeValidation, []string{"email"}, ""},
		{"a string for a number", "application/json", `{"count":"7"}`, 400, api.ProblemTypeValidation, []string{"count"}, "whole number"},
		{"a fraction for a whole number", "application/json", `{"count":1.5}`, 400, api.ProblemTypeValidation, []string{"count"}, ""},
		{"a number for a nested string", "application/json", `{"address":{"line1":5}}`, 400, api.ProblemTypeValidation, []string{"address.line1"}, "a string"},
		{"an object for a string", "application/json", `{"email":{}}`, 400, api.ProblemTypeValidation, []string{"email"}, ""},
		{"a malformed uuid", "application/json", `{"id":"not-a-uuid"}`, 400, api.ProblemTypeValidation, []string{"id"}, ""},
		{"a malformed time", "application/json", `{"at":"yesterday"}`, 400, api.ProblemTypeValidation, []string{"at"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := MustSend(t, http.MethodPost, url, tt.body, map[string]string{"Content-Type": tt.contentType})
			if resp.Status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.Status, tt.wantStatus, resp.Body)
			}
			if tt.wantStatus == http.StatusOK {
				return
			}
			p := resp.Problem(t)
			if p.Type != tt.wantType {
				t.Errorf("type = %q, want %q", p.Type, tt.wantType)
			}
			if got := fieldNames(p); !slices.Equal(got, tt.wantFields) {
				t.Errorf("errors[].field = %q, want %q", got, tt.wantFields)
			}
			if !strings.Contains(p.Detail, tt.wantDetail) {
				t.Errorf("detail = %q, want it to contain %q", p.Detail, tt.wantDetail)
			}
		})
	}
}

func TestDecodeJSON_AProgrammingErrorIsA500(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "application/json")
	var notAPointer sampleRequest
	err := api.DecodeJSON(httptest.NewRecorder(), r, notAPointer)
	if err == nil {
		t.Fatal("DecodeJSON into a non-pointer succeeded")
	}
	if _, isProblem := err.(*api.Problem); isProblem {
		t.Errorf("DecodeJSON into a non-pointer returned a problem %v; want a plain error (500)", err)
	}
}

// FuzzDecodeJSON: any body, any content type, gets a 200 or a 4xx
// problem+json; never a panic or a 5xx.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		`{"email":"a@example.com","items":[{"sku":"s"}]}`, `{"email":}`, `[]`, `null`, ``, `{"a":1}`,
		`{"address":{"line1":5}}`, `{"id":"x"}`, `{"EMAIL":"a","email":"b"}`, `{"labels":{"k":"v"}}`, `{"extra":null}`,
		"{\"email\":\"\xff\"}", `{"count":1e400}`,
	} {
		f.Add(seed, "application/json")
	}
	f.Add(`{"email":"a"}`, "text/plain")
	s, err := api.NewServer(api.ServerConfig{DB: MustNewUnreachablePool(f), Policy: testPolicy, SecretKey: make([]byte, 32), MaxBodyBytes: 4096})
	if err != nil {
		f.Fatal(err)
	}
	decodeRoutes(s)
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "/v1/test/decode", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case w.Code == http.StatusOK:
		case w.Code >= 400 && w.Code < 500:
			if ct := w.Header().Get("Content-Type"); ct != api.ProblemContentType {
				t.Fatalf("status %d with Content-Type %q, want a problem", w.Code, ct)
			}
		default:
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body)
		}
	})
}
