package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/api"
	"github.com/subs-engine/subs/eventstore/pgtest"
)

// MustNewServer returns a server on pool, driven through httptest.
func MustNewServer(tb testing.TB, cfg api.ServerConfig) (*api.Server, *httptest.Server) {
	tb.Helper()
	s, err := api.NewServer(cfg)
	if err != nil {
		tb.Fatalf("NewServer: %v", err)
	}
	ts := httptest.NewServer(s.Handler())
	tb.Cleanup(ts.Close)
	return s, ts
}

// MustDo sends a request and returns the response with its body read.
func MustDo(tb testing.TB, method, url string, header http.Header) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader("request body: card 4242424242424242"))
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, string(body)
}

// MustNewEmptyPool returns a pool on a new database on the test server that
// has no migration applied, dropped when the test ends.
func MustNewEmptyPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	dbURL := pgtest.NewEmptyDatabase(tb)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// MustNewUnreachablePool returns a pool on an address where nothing listens.
func MustNewUnreachablePool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/subs?sslmode=disable&connect_timeout=2")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}
