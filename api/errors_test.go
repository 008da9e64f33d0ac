package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/subs-engine/subs/api"
)

// Domain-like errors: they satisfy api's kind interfaces with stdlib types
// only, as the domain's errors do.
type (
	fieldsErr      [][2]string
	notFoundErr    string
	conflictErr    string
	forbiddenErr   string
	unauthErr      string
	rateLimitedErr time.Duration
)

func (e fieldsErr) Error() string                  { return fmt.Sprint([][2]string(e)) }
func (e fieldsErr) FieldErrors() [][2]string       { return e }
func (e notFoundErr) Error() string                { return string(e) }
func (notFoundErr) NotFound() bool                 { return true }
func (e conflictErr) Error() string                { return string(e) }
func (conflictErr) Conflict() bool                 { return true }
func (e forbiddenErr) Error() string               { return string(e) }
func (forbiddenErr) Forbidden() bool               { return true }
func (e unauthErr) Error() string                  { return string(e) }
func (unauthErr) Unauthorized() bool               { return true }
func (rateLimitedErr) Error() string               { return "Too many failed sign-ins; try again later." }
func (e rateLimitedErr) RetryAfter() time.Duration { return time.Duration(e) }

func TestWriteError_MapsEachKindOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantType   string
		wantFields []string
		wantDetail string
		wantHeader [2]string
	}{
		{"a problem as it is", &api.Problem{Type: "urn:subs:problem:custom", Title: "Custom", Status: 418, Detail: "short and stout"}, 418, "urn:subs:problem:custom", nil, "short and stout", [2]string{}},
		{"invalid fields", fieldsErr{{"email", "is not an e-mail address"}, {"password", "has fewer than 6 characters"}}, 400, api.ProblemTypeValidation, []string{"email", "password"}, "2 fields", [2]string{}},
		{"one invalid field, wrapped", fmt.Errorf("sign up: %w", fieldsErr{{"country", "is not an ISO 3166 code"}}), 400, api.ProblemTypeValidation, []string{"country"}, `"country" is invalid`, [2]string{}},
		{"invalid fields joined", errors.Join(fieldsErr{{"a", "bad"}}, fieldsErr{{"b", "bad"}}), 400, api.ProblemTypeValidation, []string{"a", "b"}, "", [2]string{}},
		{"not found", fmt.Errorf("load: %w", notFoundErr("No such subscription.")), 404, api.ProblemTypeNotFound, nil, "No such subscription.", [2]string{}},
		{"conflict", conflictErr("An account with this e-mail address exists."), 409, api.ProblemTypeConflict, nil, "e-mail address exists", [2]string{}},
		{"forbidden", forbiddenErr("Agents only."), 403, api.ProblemTypeForbidden, nil, "Agents only.", [2]string{}},
		{"unauthorized", unauthErr("The e-mail address or the password is wrong."), 401, api.ProblemTypeUnauthorized, nil, "password is wrong", [2]string{"WWW-Authenticate", `Bearer realm="subs"`}},
		{"session sentinel", api.ErrUnauthenticated, 401, api.ProblemTypeUnauthorized, nil, "sign in again", [2]string{"WWW-Authenticate", `Bearer realm="subs"`}},
		{"rate limited", rateLimitedErr(14*time.Minute + 1500*time.Millisecond), 429, api.ProblemTypeRateLimited, nil, "try again later", [2]string{"Retry-After", "842"}},
		{"body too large", &http.MaxBytesError{Limit: 10}, 413, api.ProblemTypeBodyTooLarge, nil, "10 bytes", [2]string{}},
		{"anything else", errors.New("pq: connection reset; password=hunter2"), 500, api.ProblemTypeInternal, nil, "try again later", [2]string{}},
		{"client gone", context.Canceled, 500, api.ProblemTypeInternal, nil, "", [2]string{}},
	}
	byPath := map[string]error{}
	for i, tt := range tests {
		byPath[fmt.Sprintf("/v1/test/errors/%d", i)] = tt.err
	}
	env := MustNewAPIEnv(t, api.ServerConfig{DB: MustNewUnreachablePool(t)}, func(s *api.Server) {
		s.Route(api.Route{
			Method: http.MethodGet, Pattern: "/v1/test/errors/{n}", Summary: "Fail as told",
			Handler: api.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return byPath[r.URL.Path] }),
		})
	})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := MustSend(t, http.MethodGet, fmt.Sprintf("%s/v1/test/errors/%d", env.URL, i), "", nil)
			if resp.Status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.Status, tt.wantStatus, resp.Body)
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
			if h := tt.wantHeader; h[0] != "" && resp.Header.Get(h[0]) != h[1] {
				t.Errorf("%s = %q, want %q", h[0], resp.Header.Get(h[0]), h[1])
			}
			if strings.Contains(resp.Body, "hunter2") {
				t.Errorf("a 500 shows its cause to the client: %s", resp.Body)
			}
		})
	}
	t.Run("the cause of a 500 is logged", func(t *testing.T) {
		// The parallel subtests above have not run yet (they wait for the
		// parent to return), so this one sends its own failing request.
		resp := MustSend(t, http.MethodGet, fmt.Sprintf("%s/v1/test/errors/%d", env.URL, len(tests)-2), "", nil)
		if resp.Status != 500 {
			t.Fatalf("status = %d, want 500", resp.Status)
		}
		logs := env.Log.String()
		if !strings.Contains(logs, `msg="http handler failed"`) || !strings.Contains(logs, "connection reset") || !strings.Contains(logs, "route=/v1/test/errors/{n}") {
			t.Errorf("log lacks the 500's cause and route:\n%s", logs)
		}
	})
}

func TestHandlerFunc_NilErrorWritesNothingMore(t *testing.T) {
	t.Parallel()
	env := MustNewAPIEnv(t, api.ServerConfig{DB: MustNewUnreachablePool(t)}, func(s *api.Server) {
		s.Route(api.Route{
			Method: http.MethodGet, Pattern: "/v1/test/ok", Summary: "Answer 200",
			Responses: map[int]any{200: map[string]string{}},
			Handler: api.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				api.WriteJSON(w, http.StatusOK, map[string]string{"status": "fine"})
				return nil
			}),
		})
	})
	resp := MustSend(t, http.MethodGet, env.URL+"/v1/test/ok", "", nil)
	if resp.Status != 200 || resp.Header.Get("Content-Type") != "application/json" || strings.TrimSpace(resp.Body) != `{"status":"fine"}` {
		t.Errorf("got %d %q %q, want 200 application/json {\"status\":\"fine\"}", resp.Status, resp.Header.Get("Content-Type"), resp.Body)
	}
}
