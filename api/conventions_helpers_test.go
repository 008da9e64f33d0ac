package api_test

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/api"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/eventstore/pgtest"
)

// testPolicy has cheap argon2id parameters: production's cost ~360 ms.
var testPolicy = policy.Policy{Argon2id: policy.Argon2idParams{Time: 1, MemoryKiB: 64, Threads: 1, KeyLength: 32, SaltLength: 16}}

// testStart is the simulated clock's first instant in these tests.
var testStart = time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)

// apiEnv is a server under test with its clock and log.
type apiEnv struct {
	Server *api.Server
	URL    string
	Clock  *clock.Simulated
	DB     *pgxpool.Pool // the server's database, for tests that look at its tables
	Log    *syncBuffer
}

// MustNewAPIEnv returns a server on a fresh migrated database (pgtest) with a
// simulated clock, a fixed secret key and cheap password parameters; cfg's
// non-zero fields override those. routes registers the test's routes before
// the server starts serving.
func MustNewAPIEnv(tb testing.TB, cfg api.ServerConfig, routes func(*api.Server)) *apiEnv {
	tb.Helper()
	env := &apiEnv{Clock: clock.NewSimulated(testStart), Log: &syncBuffer{}}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.DB == nil {
		cfg.DB = pgtest.NewPool(tb)
	}
	if cfg.Clock == nil {
		cfg.Clock = env.Clock
	}
	if cfg.SecretKey == nil {
		cfg.SecretKey = make([]byte, 32)
		_, _ = rand.Read(cfg.SecretKey)
	}
	if cfg.Policy.Argon2id == (policy.Argon2idParams{}) {
		cfg.Policy.Argon2id = testPolicy.Argon2id
	}
	cfg.Logger = slog.New(slog.NewTextHandler(env.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := api.NewServer(cfg)
	if err != nil {
		tb.Fatalf("NewServer: %v", err)
	}
	if routes != nil {
		routes(s)
	}
	if err := s.Open(); err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Shutdown(tb.Context()) })
	env.Server, env.URL, env.DB = s, s.URL(), cfg.DB
	return env
}

// response is an answer with its body read.
type response struct {
	Status int
	Header http.Header
	Body   string
}

// Problem decodes the body as a problem, failing the test if it is not one.
func (r response) Problem(tb testing.TB) api.Problem {
	tb.Helper()
	if ct := r.Header.Get("Content-Type"); ct != api.ProblemContentType {
		tb.Fatalf("Content-Type = %q, want %q; status %d, body %s", ct, api.ProblemContentType, r.Status, r.Body)
	}
	var p api.Problem
	if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
		tb.Fatalf("body %q is not a problem: %v", r.Body, err)
	}
	if p.Status != r.Status {
		tb.Errorf("problem status %d, response status %d", p.Status, r.Status)
	}
	return p
}

// MustSend sends method url with body (no body when "") as JSON and returns
// the answer. header values override the defaults.
func MustSend(tb testing.TB, method, url, body string, header map[string]string) response {
	tb.Helper()
	var rd io.Reader = http.NoBody
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// fieldNames lists a problem's errors[].field values.
func fieldNames(p api.Problem) []string {
	var out []string
	for _, f := range p.Errors {
		out = append(out, f.Field)
	}
	return out
}
