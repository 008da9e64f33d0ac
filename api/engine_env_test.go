package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/subs-engine/subs/api"
	"github.com/subs-engine/subs/api/agentauth"
	catalogdata "github.com/subs-engine/subs/catalog"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/events"
	"github.com/subs-engine/subs/domain/order"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/eventstore/pgtest"
	"github.com/subs-engine/subs/projections"
	"github.com/subs-engine/subs/workers/gateway"
	"github.com/subs-engine/subs/workers/mail"
	"github.com/subs-engine/subs/workers/outbox"
	"github.com/subs-engine/subs/workers/renewal"
)

var engineSecret = []byte("test-secret-key-of-32-bytes-long")

// engineEnv is the engine as serve wires it for the /v1 endpoints:
// real PostgreSQL, projections, the in-process gateway sandbox, the e-mail
// outbox writing to a maildir, a simulated clock and a captured log.
type engineEnv struct {
	t        testing.TB
	server   *api.Server
	url      string
	clock    *clock.Simulated
	store    *eventstore.Store
	outbox   *outbox.Worker
	renewals *renewal.Worker
	runner   *projections.Runner
	maildir  string
	logs     *syncBuffer
}

// newEngineEnv starts the engine; opts adjust the server's configuration
// (an agent authenticator, say).
func newEngineEnv(t testing.TB, opts ...func(*api.ServerConfig)) *engineEnv {
	t.Helper()
	return newEngineEnvWithGateway(t, nil, opts...)
}

// newEngineEnvWithGateway is newEngineEnv whose engine reaches the sandbox
// gateway through wrap (a test double failing some calls), when not nil.
func newEngineEnvWithGateway(t testing.TB, wrap func(payment.Gateway) payment.Gateway, opts ...func(*api.ServerConfig)) *engineEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pool := pgtest.NewPool(t)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk := clock.NewSimulated(time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC))
	types := eventstore.NewEventTypes()
	types.Register(1, events.All()...)
	store := eventstore.New(pool, eventstore.Config{SecretKey: engineSecret})
	runner, err := projections.NewRunner(projections.RunnerConfig{Store: store, Types: types, Logger: logger,
		Projections: projections.All(), PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { runner.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	gw, err := gateway.NewSandbox(ctx, pool, gateway.SandboxConfig{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.ServerConfig{Addr: "127.0.0.1:0", DB: pool, Logger: logger, Clock: clk, Policy: testPolicy, SecretKey: engineSecret,
		Agents: agentauth.New(pool)}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := api.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var engineGateway payment.Gateway = gw
	if wrap != nil {
		engineGateway = wrap(gw)
	}
	renewals, err := renewal.New(renewal.Config{Store: store, Types: types, Gateway: engineGateway, Policy: testPolicy, Clock: clk, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.RegisterEngine(srv, api.Engine{Store: store, Types: types, Projections: runner, Gateway: engineGateway,
		Catalog: catalogdata.MustLoad(), Renewals: renewals, SecretKey: engineSecret}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	dir := t.TempDir()
	md, err := mail.NewMaildir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	templates, err := mail.NewTemplates()
	if err != nil {
		t.Fatal(err)
	}
	accounts, err := eventstore.NewCommandHandler(account.Decider, eventstore.HandlerConfig{Store: store, Types: types, Clock: clk, Policy: testPolicy})
	if err != nil {
		t.Fatal(err)
	}
	orders, err := eventstore.NewCommandHandler(order.Decider, eventstore.HandlerConfig{Store: store, Types: types, Clock: clk, Policy: testPolicy})
	if err != nil {
		t.Fatal(err)
	}
	subs, err := eventstore.NewCommandHandler(subscription.Decider, eventstore.HandlerConfig{Store: store, Types: types, Clock: clk, Policy: testPolicy})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.New(outbox.Config{Store: store, Accounts: accounts, Orders: orders, Subscriptions: subs, Sender: md, Templates: templates, Clock: clk,
		Policy: testPolicy, SecretKey: engineSecret, PublicURL: "https://account.example.com", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	return &engineEnv{t: t, server: srv, url: ts.URL, clock: clk, store: store, outbox: ob, renewals: renewals, runner: runner, maildir: dir, logs: logs}
}

// reply is an HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a map.
func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %s", r.status, r.body)
	}
	return m
}

// fields returns the field names of a problem's errors[].
func (r reply) fields(t testing.TB) []string {
	t.Helper()
	var p api.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("answer %d is not a problem: %s", r.status, r.body)
	}
	return fieldNames(p)
}

// call sends a request with a JSON body (or none when body is "") and the
// bearer token when given.
func (e *engineEnv) call(method, path, token, body string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// want fails the test unless r has status.
func (e *engineEnv) want(r reply, status int) reply {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// signUp opens an account and returns its id.
func (e *engineEnv) signUp(email, password string) string {
	e.t.Helper()
	r := e.want(e.call("POST", "/v1/accounts", "", `{"email":"`+email+`","password":"`+password+`","name":"Ann Lee","country":"US"}`), http.StatusCreated)
	return r.json(e.t)["account_id"].(string)
}

// signIn returns a session token.
func (e *engineEnv) signIn(email, password string) string {
	e.t.Helper()
	r := e.want(e.call("POST", "/v1/sessions", "", `{"email":"`+email+`","password":"`+password+`"}`), http.StatusCreated)
	return r.json(e.t)["token"].(string)
}

// eventCount is how many events the log holds.
func (e *engineEnv) eventCount() int {
	e.t.Helper()
	var n int
	if err := e.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// sendMail runs the outbox once and returns the messages in the maildir.
func (e *engineEnv) sendMail() []string {
	e.t.Helper()
	if _, err := e.outbox.RunOnce(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(e.maildir, "new", "*"))
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// caughtUp waits until the read models show every event in the log.
func (e *engineEnv) caughtUp() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	head, err := e.store.Head(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.runner.WaitFor(ctx, head); err != nil {
		e.t.Fatal(err)
	}
}

// runRenewals runs the renewal worker at the clock's instant, as the
// schedule would, through the sandbox gateway, and waits until the read
// models show what it did.
func (e *engineEnv) runRenewals() {
	e.t.Helper()
	e.caughtUp()
	res, err := e.renewals.Run(context.Background(), e.clock.Now())
	if err != nil || res.Failed > 0 {
		e.t.Fatalf("renewal run: %+v, %v", res, err)
	}
	e.caughtUp()
}
