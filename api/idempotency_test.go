package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/api"
)

// orderRoutes registers POST /v1/test/orders (anonymous) and
// POST /v1/test/my-orders (customers), whose handler counts its runs and
// answers as behave says for that run.
type orderHandler struct {
	runs   atomic.Int64
	behave func(run int64, w http.ResponseWriter, r *http.Request) error
}

func (h *orderHandler) routes(s *api.Server) {
	for _, rt := range []struct {
		pattern string
		auth    api.Auth
	}{{"/v1/test/orders", api.AuthNone}, {"/v1/test/my-orders", api.AuthCustomer}, {"/v1/test/other-orders", api.AuthNone}} {
		s.Route(api.Route{
			Method: http.MethodPost, Pattern: rt.pattern, Summary: "Place a test order", Auth: rt.auth,
			Request: map[string]any{}, Responses: map[int]any{http.StatusCreated: map[string]any{}},
			Handler: api.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				var in map[string]any
				if err := api.DecodeJSON(w, r, &in); err != nil {
					return err
				}
				return h.behave(h.runs.Add(1), w, r)
			}),
		})
	}
}

// created answers 201 with a Location and a body holding a secret token.
func created(secret string) func(int64, http.ResponseWriter, *http.Request) error {
	return func(run int64, w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Location", fmt.Sprintf("/v1/test/orders/%d", run))
		w.Header().Set("X-Not-Stored", "1")
		return api.WriteJSON(w, http.StatusCreated, map[string]any{"run": run, "token": secret})
	}
}

func withKey(key string) map[string]string { return map[string]string{api.IdempotencyKeyHeader: key} }

func TestIdempotency_ReplaysTheFirstAnswer(t *testing.T) {
	t.Parallel()
	const secret = "subs_SECRET-session-token-never-at-rest"
	h := &orderHandler{behave: created(secret)}
	env := MustNewAPIEnv(t, api.ServerConfig{}, h.routes)
	url := env.URL + "/v1/test/orders"

	first := MustSend(t, http.MethodPost, url, `{"sku":"A"}`, withKey("k1"))
	if first.Status != 201 || first.Header.Get(api.IdempotentReplayedHeader) != "" {
		t.Fatalf("first: %d replayed=%q %s", first.Status, first.Header.Get(api.IdempotentReplayedHeader), first.Body)
	}
	again := MustSend(t, http.MethodPost, url, `{"sku":"A"}`, withKey("k1"))
	if again.Status != 201 || again.Body != first.Body || again.Header.Get("Location") != first.Header.Get("Location") ||
		again.Header.Get("Content-Type") != "application/json" {
		t.Errorf("replay = %d %q Location %q; want the first answer %d %q Location %q",
			again.Status, again.Body, again.Header.Get("Location"), first.Status, first.Body, first.Header.Get("Location"))
	}
	if got := again.Header.Get(api.IdempotentReplayedHeader); got != "true" {
		t.Errorf("%s = %q, want true", api.IdempotentReplayedHeader, got)
	}
	if again.Header.Get("X-Not-Stored") != "" {
		t.Error("a header outside the stored set was replayed")
	}
	if got := h.runs.Load(); got != 1 {
		t.Errorf("handler ran %d times, want 1", got)
	}

	t.Run("without a key every POST runs", func(t *testing.T) {
		before := h.runs.Load()
		MustSend(t, http.MethodPost, url, `{"sku":"A"}`, nil)
		MustSend(t, http.MethodPost, url, `{"sku":"A"}`, nil)
		if got := h.runs.Load() - before; got != 2 {
			t.Errorf("handler ran %d times, want 2", got)
		}
	})

	t.Run("the same key on another route is another key", func(t *testing.T) {
		resp := MustSend(t, http.MethodPost, env.URL+"/v1/test/other-orders", `{"sku":"A"}`, withKey("k1"))
		if resp.Status != 201 || resp.Header.Get(api.IdempotentReplayedHeader) != "" {
			t.Errorf("other route with a used key: %d replayed=%q, want a fresh 201", resp.Status, resp.Header.Get(api.IdempotentReplayedHeader))
		}
	})

	t.Run("a different body with the key is refused", func(t *testing.T) {
		resp := MustSend(t, http.MethodPost, url, `{"sku":"B"}`, withKey("k1"))
		if resp.Status != http.StatusUnprocessableEntity {
			t.Fatalf("status = %d, want 422; body %s", resp.Status, resp.Body)
		}
		if p := resp.Problem(t); p.Type != api.ProblemTypeIdempotencyMismatch {
			t.Errorf("type = %q, want %q", p.Type, api.ProblemTypeIdempotencyMismatch)
		}
	})

	t.Run("stored bodies are encrypted (SEC-3)", func(t *testing.T) {
		MustNotFindInTable(t, env, "idempotency_keys", secret, `"sku"`)
	})

	t.Run("an expired key runs again", func(t *testing.T) {
		before := h.runs.Load()
		if err := env.Clock.Advance(24 * time.Hour); err != nil {
			t.Fatal(err)
		}
		resp := MustSend(t, http.MethodPost, url, `{"sku":"B"}`, withKey("k1"))
		if resp.Status != 201 || resp.Header.Get(api.IdempotentReplayedHeader) != "" || h.runs.Load() != before+1 {
			t.Errorf("after expiry: %d replayed=%q runs +%d; want a fresh 201", resp.Status, resp.Header.Get(api.IdempotentReplayedHeader), h.runs.Load()-before)
		}
		n, err := env.Server.PurgeIdempotencyKeys(context.Background(), env.Clock.Now())
		if err != nil || n < 1 {
			t.Errorf("PurgeIdempotencyKeys = %d, %v; want the expired keys gone", n, err)
		}
	})
}

// MustNotFindInTable fails if any row of table, as text, holds one of needles.
func MustNotFindInTable(tb testing.TB, env *apiEnv, table string, needles ...string) {
	tb.Helper()
	rows, err := env.DB.Query(context.Background(), `SELECT t::text, coalesce(t.response_body, ''::bytea) FROM `+table+` t`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
		var text string
		var body []byte
		if err := rows.Scan(&text, &body); err != nil {
			tb.Fatal(err)
		}
		for _, needle := range needles {
			if strings.Contains(text, needle) || strings.Contains(string(body), needle) {
				tb.Errorf("%s row holds %q: %s", table, needle, text)
			}
		}
	}
	if n == 0 {
		tb.Errorf("%s is empty: nothing was checked", table)
	}
}

func TestIdempotency_KeysAreScopedToTheCustomer(t *testing.T) {
	t.Parallel()
	h := &orderHandler{behave: created("x")}
	env := MustNewAPIEnv(t, api.ServerConfig{}, h.routes)
	var answers []string
	for range 2 {
		token, _ := MustCreateSession(t, env.Server.Sessions(), uuid.New(), env.Clock.Now(), time.Hour)
		resp := MustSend(t, http.MethodPost, env.URL+"/v1/test/my-orders", `{"sku":"A"}`,
			map[string]string{api.IdempotencyKeyHeader: "shared", "Authorization": "Bearer " + token})
		if resp.Status != 201 || resp.Header.Get(api.IdempotentReplayedHeader) != "" {
			t.Errorf("customer's first use of the key: %d replayed=%q, want a fresh 201", resp.Status, resp.Header.Get(api.IdempotentReplayedHeader))
		}
		answers = append(answers, resp.Body)
	}
	if answers[0] == answers[1] {
		t.Error("one customer got another's stored answer")
	}
}

func TestIdempotency_FailuresAndRefusals(t *testing.T) {
	t.Parallel()
	var mode atomic.Value // what the next run answers
	h := &orderHandler{behave: func(run int64, w http.ResponseWriter, r *http.Request) error {
		switch mode.Load() {
		case "500":
			return fmt.Errorf("database down")
		case "429":
			return rateLimitedErr(time.Minute)
		case "400":
			return fieldsErr{{"sku", "is not in the catalog"}}
		case "panic":
			panic("handler bug")
		}
		return created("x")(run, w, r)
	}}
	env := MustNewAPIEnv(t, api.ServerConfig{MaxBodyBytes: 256}, h.routes)
	url := env.URL + "/v1/test/orders"

	for _, transient := range []string{"500", "429", "panic"} {
		t.Run("a "+transient+" is not stored: the retry runs", func(t *testing.T) {
			key := "transient-" + transient
			mode.Store(transient)
			first := MustSend(t, http.MethodPost, url, `{"sku":"A"}`, withKey(key))
			if first.Status < 429 {
				t.Fatalf("first: status %d, want a failure", first.Status)
			}
			mode.Store("ok")
			before := h.runs.Load()
			retry := MustSend(t, http.MethodPost, url, `{"sku":"A"}`, withKey(key))
			if retry.Status != 201 || h.runs.Load() != before+1 || retry.Header.Get(api.IdempotentReplayedHeader) != "" {
				t.Errorf("retry: %d, runs +%d, replayed=%q; want a fresh 201", retry.Status, h.runs.Load()-before, retry.Header.Get(api.IdempotentReplayedHeader))
			}
		})
	}

	t.Run("a 4xx is stored and replayed", func(t *testing.T) {
		mode.Store("400")
		first := MustSend(t, http.MethodPost, url, `{"sku":"Z"}`, withKey("refused"))
		mode.Store("ok")
		before := h.runs.Load()
		again := MustSend(t, http.MethodPost, url, `{"sku":"Z"}`, withKey("refused"))
		if first.Status != 400 || again.Status != 400 || again.Body != first.Body || h.runs.Load() != before ||
			again.Header.Get("Content-Type") != api.ProblemContentType || again.Header.Get(api.IdempotentReplayedHeader) != "true" {
			t.Errorf("first %d, again %d (replayed=%q, %q), runs +%d; want the 400 replayed",
				first.Status, again.Status, again.Header.Get(api.IdempotentReplayedHeader), again.Header.Get("Content-Type"), h.runs.Load()-before)
		}
	})

	t.Run("a malformed key is refused, naming the header", func(t *testing.T) {
		for _, key := range []string{"has space", strings.Repeat("k", 256), "tab\tkey"} {
			resp := MustSend(t, http.MethodPost, url, `{"sku":"A"}`, withKey(key))
			if resp.Status != 400 {
				t.Errorf("key %q: status %d, want 400", key, resp.Status)
				continue
			}
			if p := resp.Problem(t); p.Type != api.ProblemTypeValidation || len(p.Errors) != 1 || p.Errors[0].Field != api.IdempotencyKeyHeader {
				t.Errorf("key %q: problem %+v, want a validation error naming %s", key, p, api.IdempotencyKeyHeader)
			}
		}
	})

	t.Run("a body over the limit is 413 with a key too", func(t *testing.T) {
		resp := MustSend(t, http.MethodPost, url, `{"sku":"`+strings.Repeat("A", 300)+`"}`, withKey("big"))
		if resp.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", resp.Status)
		}
	})
}

func TestIdempotency_InProgressAndConcurrent(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{}, 16)
	h := &orderHandler{}
	h.behave = func(run int64, w http.ResponseWriter, r *http.Request) error {
		started <- struct{}{}
		<-release
		return created("x")(run, w, r)
	}
	env := MustNewAPIEnv(t, api.ServerConfig{}, h.routes)
	url := env.URL + "/v1/test/orders"

	t.Run("a repeat while the first runs gets 409", func(t *testing.T) {
		done := make(chan response)
		go func() { done <- MustSend(t, http.MethodPost, url, `{"sku":"A"}`, withKey("slow")) }()
		<-started
		resp := MustSend(t, http.MethodPost, url, `{"sku":"A"}`, withKey("slow"))
		if resp.Status != http.StatusConflict {
			t.Fatalf("status %d, want 409; body %s", resp.Status, resp.Body)
		}
		if p := resp.Problem(t); p.Type != api.ProblemTypeIdempotencyInProgress || resp.Header.Get("Retry-After") == "" {
			t.Errorf("problem %+v Retry-After %q; want %s with Retry-After", p, resp.Header.Get("Retry-After"), api.ProblemTypeIdempotencyInProgress)
		}
		release <- struct{}{}
		if first := <-done; first.Status != 201 {
			t.Fatalf("first: %d", first.Status)
		}
		if after := MustSend(t, http.MethodPost, url, `{"sku":"A"}`, withKey("slow")); after.Header.Get(api.IdempotentReplayedHeader) != "true" {
			t.Errorf("after the first finished: %d replayed=%q, want the replay", after.Status, after.Header.Get(api.IdempotentReplayedHeader))
		}
	})

	t.Run("ten at once run the handler once", func(t *testing.T) {
		before := h.runs.Load()
		go func() { // let the one that runs finish once the others had their chance
			<-started
			time.Sleep(200 * time.Millisecond)
			close(release)
		}()
		var wg sync.WaitGroup
		results := make([]response, 10)
		for i := range results {
			wg.Go(func() { results[i] = MustSend(t, http.MethodPost, url, `{"sku":"C"}`, withKey("crowd")) })
		}
		wg.Wait()
		if got := h.runs.Load() - before; got != 1 {
			t.Errorf("handler ran %d times, want 1", got)
		}
		fresh := 0
		for _, r := range results {
			switch {
			case r.Status == 201 && r.Header.Get(api.IdempotentReplayedHeader) == "":
				fresh++
			case r.Status == 201 || r.Status == 409:
			default:
				t.Errorf("unexpected answer %d: %s", r.Status, r.Body)
			}
		}
		if fresh != 1 {
			t.Errorf("%d fresh answers, want 1", fresh)
		}
	})
}
