package api_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
	dbURL := MustNewEmptyDatabase(tb)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// MustNewEmptyDatabase creates a database with no schema on pgtest's server
// and returns its URL; it is dropped when the test ends.
func MustNewEmptyDatabase(tb testing.TB) string {
	tb.Helper()
	serverURL := pgtest.ServerURL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		tb.Fatalf("connect to the test server: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name := "empty_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		tb.Fatalf("create an empty database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			tb.Errorf("drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop %s: %v", name, err)
		}
	})
	if !strings.Contains(serverURL, "://") {
		return serverURL + " dbname=" + name
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
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
