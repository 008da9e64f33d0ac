package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/eventstore/pgcluster"
	"github.com/subs-engine/subs/eventstore/pgtest"
)

func TestServe_EndToEnd(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	m, out := MustParse(t, map[string]string{"DATABASE_URL": dbURL},
		"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--shutdown-timeout", "5s",
		"--clock", "simulated", "--clock-start", "2026-01-31T09:00:00Z")
	srv := MustStartServe(t, m, out, time.Minute)

	tests := []struct {
		path        string
		wantStatus  int
		wantType    string
		wantInBody  []string
		wantNoStore bool
	}{
		{"/healthz", http.StatusOK, "application/json", []string{`"ok"`}, false},
		{"/readyz", http.StatusOK, "application/json", []string{`"ready"`}, true},
		{"/no/such/route", http.StatusNotFound, "application/problem+json", []string{`"status":404`, `"type":"urn:subs:problem:not-found"`}, false},
		{"/metrics", http.StatusOK, "text/plain", []string{
			"go_goroutines ",
			`subs_http_requests_total{code="200",method="GET",route="/healthz"} 1`,
			`subs_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
			"subs_http_request_duration_seconds_bucket",
			"subs_db_pool_total_connections ",
		}, false},
	}
	for _, tt := range tests { // in order: /metrics counts the requests before it
		resp, body := MustGet(t, srv.base+tt.path)
		if resp.StatusCode != tt.wantStatus {
			t.Errorf("GET %s: status = %d, want %d; body %s", tt.path, resp.StatusCode, tt.wantStatus, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.wantType) {
			t.Errorf("GET %s: Content-Type = %q, want %s", tt.path, ct, tt.wantType)
		}
		for _, want := range tt.wantInBody {
			if !strings.Contains(body, want) {
				t.Errorf("GET %s: body lacks %q:\n%s", tt.path, want, body)
			}
		}
	}

	if got, want := m.Clock.Now(), time.Date(2026, 1, 31, 9, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("clock shows %s, want the simulated start %s", got, want)
	}
	if _, ok := m.Clock.(*clock.Simulated); !ok {
		t.Errorf("clock is a %T, want *clock.Simulated", m.Clock)
	}
	banner := out.stderr.String()
	for _, want := range []string{srv.base + "/healthz", srv.base + "/readyz", srv.base + "/metrics", "data dir:", "database:"} {
		if !strings.Contains(banner, want) {
			t.Errorf("stderr lacks %q:\n%s", want, banner)
		}
	}
	if u, err := url.Parse(dbURL); err == nil {
		if pw, ok := u.User.Password(); ok && strings.Contains(banner, pw) {
			t.Errorf("stderr shows the database password:\n%s", banner)
		}
	}

	srv.MustStop(t, 5*time.Second+2*time.Second)
	if _, err := http.Get(srv.base + "/healthz"); err == nil {
		t.Error("the server still accepts connections after shutdown")
	}
}

func TestMigrate_AppliesOnceAndReports(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": pgtest.NewEmptyDatabase(t)}

	m, out := MustParse(t, env, "migrate")
	MustRun(t, m)
	if got := out.stdout.String(); !strings.Contains(got, "migrated to schema version") || !strings.Contains(got, "applied 1") {
		t.Errorf("first migrate printed %q, want the versions it applied", got)
	}

	m, out = MustParse(t, env, "migrate")
	MustRun(t, m)
	if got := out.stdout.String(); !strings.Contains(got, "is up to date") {
		t.Errorf("second migrate printed %q, want that it is up to date", got)
	}
}

func TestServe_FailsClearlyWhenTheDatabaseDoesNotAnswer(t *testing.T) {
	t.Parallel()
	m, _ := MustParse(t, map[string]string{"DATABASE_URL": "postgres://subs:hunter2@127.0.0.1:1/subs?connect_timeout=2"},
		"serve", "--addr", "127.0.0.1:0")
	err := m.Run(context.Background())
	if err == nil {
		t.Fatal("Run = nil, want an error")
	}
	if msg := err.Error(); strings.Contains(msg, "hunter2") || !strings.Contains(msg, "DATABASE_URL") {
		t.Errorf("Run = %q: want it to name DATABASE_URL and never the password", msg)
	}
}

// TestServe_PrivateCluster boots serve with no DATABASE_URL: it must create
// a PostgreSQL cluster under the data dir, stop it on shutdown, and reuse it
// (schema included) on the next start. Slow: initdb takes seconds.
func TestServe_PrivateCluster(t *testing.T) {
	t.Parallel()
	dataDir := MustMkdirTemp0755(t)
	clusterDir := filepath.Join(dataDir, "postgres")
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--log-format", "json", "--shutdown-timeout", "5s"}

	for i, wantApplied := range []bool{true, false} {
		m, out := MustParse(t, nil, args...)
		srv := MustStartServe(t, m, out, 3*time.Minute)
		if resp, body := MustGet(t, srv.base+"/readyz"); resp.StatusCode != http.StatusOK {
			t.Fatalf("start %d: /readyz = %d %s", i+1, resp.StatusCode, body)
		}
		if now := m.Clock.Now(); now.Location() != time.UTC || time.Since(now).Abs() > time.Minute {
			t.Errorf("start %d: system clock shows %s, want the current time in UTC", i+1, now)
		}
		if !strings.Contains(out.stderr.String(), "private cluster in "+clusterDir) {
			t.Errorf("start %d: stderr does not say which database it uses:\n%s", i+1, out.stderr)
		}
		srv.MustStop(t, 5*time.Second+time.Minute)

		applied := MustLogAttr(t, out.stderr.String(), "database migrated", "applied")
		if got := applied != nil && len(applied.([]any)) > 0; got != wantApplied {
			t.Errorf("start %d: migrations applied = %v, want applied: %v (the data must be reused)", i+1, applied, wantApplied)
		}
		if _, err := os.Stat(filepath.Join(clusterDir, "postmaster.pid")); !os.IsNotExist(err) {
			t.Fatalf("start %d: the cluster still runs after shutdown (postmaster.pid: %v)", i+1, err)
		}
	}

	// The postgres subcommand manages the same cluster.
	for _, step := range []struct{ action, want string }{
		{"status", "is stopped"},
		{"start", "DATABASE_URL=postgres://"},
		{"status", "is running on 127.0.0.1:"},
		{"stop", "stopped the PostgreSQL cluster"},
		{"status", "is stopped"},
		{"stop", "no PostgreSQL cluster is running"},
	} {
		m, out := MustParse(t, nil, "postgres", step.action, "--data-dir", dataDir)
		MustRun(t, m)
		if got := out.stdout.String(); !strings.Contains(got, step.want) {
			t.Errorf("postgres %s printed %q, want %q", step.action, got, step.want)
		}
	}
}

// MustMkdirTemp0755 returns a fresh directory the postgres system user can
// enter (t.TempDir is 0700), removed when the test ends, after stopping any
// cluster left running in it.
func MustMkdirTemp0755(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "subs-test-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := pgcluster.StopDir(ctx, filepath.Join(dir, "postgres")); err != nil {
			tb.Errorf("stop the cluster left in %s: %v", dir, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			tb.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}

// MustLogAttr returns attribute attr of the first JSON log record whose
// message is msg.
func MustLogAttr(tb testing.TB, logs, msg, attr string) any {
	tb.Helper()
	s := bufio.NewScanner(strings.NewReader(logs))
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		var rec map[string]any
		if json.Unmarshal(s.Bytes(), &rec) != nil || rec["msg"] != msg {
			continue
		}
		v, ok := rec[attr]
		if !ok {
			tb.Fatalf("log record %q has no %q: %s", msg, attr, s.Text())
		}
		return v
	}
	tb.Fatalf("no JSON log record %q in:\n%s", msg, logs)
	return nil
}
