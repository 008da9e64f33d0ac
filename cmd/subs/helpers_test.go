package main_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	main "github.com/subs-engine/subs/cmd/subs"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers (the logger and
// the banner).
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

// output is what a Main wrote.
type output struct{ stdout, stderr *syncBuffer }

// NewMain returns a Main that reads env instead of the process environment
// and writes into buffers, closed when the test ends.
func NewMain(tb testing.TB, env map[string]string) (*main.Main, output) {
	tb.Helper()
	out := output{&syncBuffer{}, &syncBuffer{}}
	m := main.NewMain()
	m.Stdout, m.Stderr = out.stdout, out.stderr
	m.Getenv = func(name string) string { return env[name] }
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return m, out
}

// testSecretKey is the engine's secret key in tests that write the log
// themselves and read it with subs (SUBS_SECRET_KEY): personal fields are
// encrypted under keys wrapped with it (AUD-5).
var testSecretKey = []byte("subs-cmd-test-secret-of-32-bytes")

// dbEnv is the environment of a subs command on the database at url, with
// testSecretKey.
func dbEnv(url string) map[string]string {
	return map[string]string{"DATABASE_URL": url, "SUBS_SECRET_KEY": hex.EncodeToString(testSecretKey)}
}

// MustParse returns a Main that parsed args successfully.
func MustParse(tb testing.TB, env map[string]string, args ...string) (*main.Main, output) {
	tb.Helper()
	m, out := NewMain(tb, env)
	if err := m.ParseFlags(context.Background(), args); err != nil {
		tb.Fatalf("ParseFlags(%q): %v", args, err)
	}
	return m, out
}

// MustRun runs m and fails the test if Run fails.
func MustRun(tb testing.TB, m *main.Main) {
	tb.Helper()
	if err := m.Run(context.Background()); err != nil {
		tb.Fatalf("Run: %v", err)
	}
}

// running is a Main whose Run is in progress in a goroutine.
type running struct {
	m      *main.Main
	cancel context.CancelFunc
	done   chan error
	base   string
}

// MustStartServe runs m (parsed as serve) and waits until it accepts HTTP
// connections.
func MustStartServe(tb testing.TB, m *main.Main, out output, within time.Duration) *running {
	tb.Helper()
	r := mustStart(tb, m, out, within, "serve")
	r.base = "http://" + m.HTTPAddr()
	return r
}

// mustStart runs m (parsed as the command what) until the test ends, and
// waits until it says it is ready.
func mustStart(tb testing.TB, m *main.Main, out output, within time.Duration, what string) *running {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{m: m, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		<-r.done
	})
	select {
	case <-m.Ready():
	case err := <-r.done:
		r.done <- err
		tb.Fatalf("%s ended before it was ready: %v\nstderr:\n%s", what, err, out.stderr)
	case <-time.After(within):
		tb.Fatalf("%s not ready after %s\nstderr:\n%s", what, within, out.stderr)
	}
	return r
}

// MustStop cancels serve's context, as SIGTERM does, and requires Run to
// return nil within the given time.
func (r *running) MustStop(tb testing.TB, within time.Duration) {
	tb.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		if err != nil {
			tb.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(within):
		tb.Fatalf("Run did not return within %s of the cancel", within)
	}
}

// MustGet sends GET url and returns the response with its body read.
func MustGet(tb testing.TB, url string) (*http.Response, string) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, string(body)
}
