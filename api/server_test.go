package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/api"
	"github.com/subs-engine/subs/eventstore/pgtest"
)

func TestHealthz_AnswersOKWithoutTheDatabase(t *testing.T) {
	t.Parallel()
	_, ts := MustNewServer(t, api.ServerConfig{DB: MustNewUnreachablePool(t)})
	resp, body := MustDo(t, http.MethodGet, ts.URL+"/healthz", nil)
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Fatalf("status = %d, want %d; body %s", got, want, body)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		pool          func(testing.TB) *pgxpool.Pool
		schemaVersion int
		wantStatus    int
		wantReason    string
	}{
		{"migrated database", pgtest.NewPool, 0, http.StatusOK, ""},
		{"migrated database at the required version", pgtest.NewPool, 1, http.StatusOK, ""},
		{"database behind the binary's schema", pgtest.NewPool, 1 << 20, http.StatusServiceUnavailable, "run `subs migrate`"},
		{"database without migrations", MustNewEmptyPool, 0, http.StatusServiceUnavailable, "schema is at version 0"},
		{"database not answering", MustNewUnreachablePool, 0, http.StatusServiceUnavailable, "does not answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, ts := MustNewServer(t, api.ServerConfig{DB: tt.pool(t), SchemaVersion: tt.schemaVersion})
			resp, body := MustDo(t, http.MethodGet, ts.URL+"/readyz", nil)
			if got := resp.StatusCode; got != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", got, tt.wantStatus, body)
			}
			if got, want := resp.Header.Get("Content-Type"), "application/json"; got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
			var r struct{ Status, Reason string }
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				t.Fatalf("body %q is not JSON: %v", body, err)
			}
			if tt.wantStatus == http.StatusOK {
				if r.Status != "ready" {
					t.Errorf("status field = %q, want ready", r.Status)
				}
				return
			}
			if r.Status != "not_ready" || !strings.Contains(r.Reason, tt.wantReason) {
				t.Errorf("body = %+v, want status not_ready and a reason containing %q", r, tt.wantReason)
			}
		})
	}
}

func TestUnmatchedRoutes_AnswerProblemJSON(t *testing.T) {
	t.Parallel()
	_, ts := MustNewServer(t, api.ServerConfig{DB: MustNewUnreachablePool(t)})
	tests := []struct {
		method, path string
		wantStatus   int
		wantType     string
		wantAllow    string
	}{
		{http.MethodGet, "/no/such/thing", http.StatusNotFound, api.ProblemTypeNotFound, ""},
		{http.MethodGet, "/", http.StatusNotFound, api.ProblemTypeNotFound, ""},
		{http.MethodPost, "/v1/accounts", http.StatusNotFound, api.ProblemTypeNotFound, ""},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed, api.ProblemTypeMethodNotAllowed, "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			resp, body := MustDo(t, tt.method, ts.URL+tt.path, nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			if got, want := resp.Header.Get("Content-Type"), api.ProblemContentType; got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
			if got := resp.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
			var p api.Problem
			dec := json.NewDecoder(strings.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				t.Fatalf("body %q is not a problem: %v", body, err)
			}
			if p.Type != tt.wantType || p.Status != tt.wantStatus || p.Title == "" || p.Detail == "" {
				t.Errorf("problem = %+v, want type %s, status %d, a title and a detail", p, tt.wantType, tt.wantStatus)
			}
		})
	}
}

func TestMetrics_ExportRuntimeHTTPAndPoolFigures(t *testing.T) {
	t.Parallel()
	_, ts := MustNewServer(t, api.ServerConfig{DB: pgtest.NewPool(t)})
	MustDo(t, http.MethodGet, ts.URL+"/healthz", nil)
	MustDo(t, http.MethodGet, ts.URL+"/readyz", nil)
	MustDo(t, http.MethodGet, ts.URL+"/v1/keys/SECRET-KEY-1234", nil)

	resp, body := MustDo(t, http.MethodGet, ts.URL+"/metrics", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want the Prometheus text format", ct)
	}
	for _, want := range []string{
		"go_goroutines ",
		"process_cpu_seconds_total ",
		`subs_http_requests_total{code="200",method="GET",route="/healthz"} 1`,
		`subs_http_requests_total{code="200",method="GET",route="/readyz"} 1`,
		`subs_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`subs_http_request_duration_seconds_bucket{code="200",method="GET",route="/healthz",le="+Inf"} 1`,
		"subs_db_pool_total_connections ",
		"subs_db_pool_max_connections ",
		"subs_db_pool_acquires_total ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "SECRET-KEY") {
		t.Error("/metrics shows a raw request path; labels must be route patterns")
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRequestLog_NamesTheRouteAndNeverSecrets(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, ts := MustNewServer(t, api.ServerConfig{DB: MustNewUnreachablePool(t), Logger: logger})
	MustDo(t, http.MethodPost, ts.URL+"/v1/keys/SECRET-KEY-1234", http.Header{"Authorization": {"Bearer SECRET-TOKEN"}})
	MustDo(t, http.MethodGet, ts.URL+"/healthz", http.Header{"Authorization": {"Bearer SECRET-TOKEN"}})

	got := logs.String()
	for _, want := range []string{"method=POST route=unmatched status=404", "method=GET route=/healthz status=200", "duration="} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	for _, secret := range []string{"SECRET", "4242424242424242", "Bearer"} {
		if strings.Contains(got, secret) {
			t.Errorf("log shows %q:\n%s", secret, got)
		}
	}
}

func TestHandle_RoutesGetTheMiddleware(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	s, err := api.NewServer(api.ServerConfig{Addr: "127.0.0.1:0", DB: MustNewUnreachablePool(t), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("GET /v1/things/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	s.Handle("GET /v1/broken", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("broken on purpose")
	}))
	s.Handle("GET /v1/missing/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.WriteProblem(w, api.Problem{Type: "urn:subs:problem:test", Status: http.StatusNotFound, Detail: "no such id",
			Errors: []api.FieldError{{Field: "id", Message: "unknown"}}})
	}))
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	ts := s.URL()
	if resp, _ := MustDo(t, http.MethodGet, ts+"/v1/things/42", nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("GET /v1/things/42: status = %d, want 204", resp.StatusCode)
	}
	resp, body := MustDo(t, http.MethodGet, ts+"/v1/broken", nil)
	if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") != api.ProblemContentType {
		t.Errorf("GET /v1/broken: %d %s, want a 500 problem", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if strings.Contains(body, "broken on purpose") {
		t.Errorf("the panic value reached the client: %s", body)
	}
	resp, body = MustDo(t, http.MethodGet, ts+"/v1/missing/7", nil)
	if want := `"errors":[{"field":"id","message":"unknown"}]`; resp.StatusCode != http.StatusNotFound || !strings.Contains(body, want) {
		t.Errorf("a handler's own 404 problem was replaced: %d %s", resp.StatusCode, body)
	}
	_, metrics := MustDo(t, http.MethodGet, ts+"/metrics", nil)
	for _, want := range []string{
		`subs_http_requests_total{code="204",method="GET",route="/v1/things/{id}"} 1`,
		`subs_http_requests_total{code="500",method="GET",route="/v1/broken"} 1`,
		`subs_http_requests_total{code="404",method="GET",route="/v1/missing/{id}"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(logs.String(), "http handler panicked") {
		t.Errorf("the panic was not logged:\n%s", logs.String())
	}
}

func TestServer_ShutdownDrainsInFlightRequests(t *testing.T) {
	t.Parallel()
	s, err := api.NewServer(api.ServerConfig{Addr: "127.0.0.1:0", DB: MustNewUnreachablePool(t)})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	s.Handle("GET /slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		_, _ = w.Write([]byte("done"))
	}))
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || strings.HasSuffix(s.Addr(), ":0") {
		t.Fatalf("URL = %q, Addr = %q: want the bound port", s.URL(), s.Addr())
	}
	type result struct {
		status int
		body   string
	}
	done := make(chan result, 1)
	go func() {
		resp, body := MustDo(t, http.MethodGet, s.URL()+"/slow", nil)
		done <- result{resp.StatusCode, body}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if r := <-done; r.status != http.StatusOK || r.body != "done" {
		t.Errorf("in-flight request got %d %q, want 200 done", r.status, r.body)
	}
	if _, err := http.Get(s.URL() + "/healthz"); err == nil {
		t.Error("the server still accepts connections after Shutdown")
	}
}

func TestServer_ShutdownTimesOut(t *testing.T) {
	t.Parallel()
	s, err := api.NewServer(api.ServerConfig{Addr: "127.0.0.1:0", DB: MustNewUnreachablePool(t)})
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	s.Handle("GET /stuck", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
	}))
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	go func() {
		resp, err := http.Get(s.URL() + "/stuck")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err == nil {
		t.Error("Shutdown returned nil with a request still in flight after its deadline")
	}
}

func TestNewServer_RejectsAnInvalidConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cfg       api.ServerConfig
		wantField string
	}{
		{"no database", api.ServerConfig{}, "DB"},
		{"negative schema version", api.ServerConfig{DB: MustNewUnreachablePool(t), SchemaVersion: -1}, "SchemaVersion"},
		{"negative readiness timeout", api.ServerConfig{DB: MustNewUnreachablePool(t), ReadinessTimeout: -time.Second}, "ReadinessTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := api.NewServer(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantField) {
				t.Errorf("NewServer error = %v, want one naming %s", err, tt.wantField)
			}
		})
	}
}
