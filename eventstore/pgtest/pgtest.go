// Package pgtest gives every test its own PostgreSQL database, with the
// event store's migrations applied, on whatever server the machine offers —
// and starts a private one when it offers none, so that database tests never
// skip.
//
// The server is chosen once per test process, in this order:
//
//  1. TEST_DATABASE_URL, if set;
//  2. DATABASE_URL, if set;
//  3. a server on port 5432, as the user postgres and then as the current
//     OS user, each over the Unix socket in /var/run/postgresql or /tmp
//     first, then over TCP on 127.0.0.1, if it answers within about two
//     seconds and the user may create databases;
//  4. otherwise a private cluster (package pgcluster) in $SUBS_TEST_PGDIR,
//     by default <module root>/.cache/pgtest/postgres, started with the
//     machine's PostgreSQL binaries.
//
// A URL set in TEST_DATABASE_URL or DATABASE_URL must work: if it does not,
// tests fail rather than quietly run somewhere else. The user it names must be
// allowed to create databases. Setting SUBS_TEST_FORCE_PRIVATE=1 skips steps
// 1 to 3, which proves the no-server path on a machine that has a server.
//
// The private cluster runs with fsync off and is left running when the test
// process exits, so the other packages of the same `go test ./...` (separate
// processes, in parallel) reuse it; `make test` stops it afterwards with
// `subs postgres stop --data-dir .cache/pgtest`.
//
// Migrations are applied once per server and schema to a template database,
// subs_tmpl_<first 16 hex digits of eventstore.MigrationsChecksum()>; each
// NewDatabase is a CREATE DATABASE … TEMPLATE of it, which takes tens of
// milliseconds, and is dropped when its test ends. PostgreSQL 13 or later is
// required (DROP DATABASE … WITH (FORCE)).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/eventstore"
)

// ServerURL returns the URL of a server on which the helper may create
// databases, chosen as the package documentation describes, once per
// process. It fails the test if no server can be found or started; it never
// skips.
func ServerURL(tb testing.TB) string {
	tb.Helper()
	s := theServer()
	if s.err != nil {
		tb.Fatalf("pgtest: %v", s.err)
	}
	s.logOnce.Do(func() { tb.Logf("pgtest: using %s", s.description) })
	return s.url
}

// NewDatabase creates a database for this test alone, holding the event
// store's schema with every migration applied, and returns its URL. The
// database is dropped, ending any session still connected to it, when the
// test and its subtests have finished. Safe to call from parallel tests.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmpl, err := theServer().template(ctx)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return newDatabase(tb, tmpl)
}

// NewEmptyDatabase returns the URL of a fresh database with no schema at
// all (no migration applied), for tests of what the engine does with one.
// It is dropped when the test has finished.
func NewEmptyDatabase(tb testing.TB) string {
	tb.Helper()
	return newDatabase(tb, "template0")
}

func newDatabase(tb testing.TB, tmpl string) string {
	tb.Helper()
	serverURL := ServerURL(tb)
	s := theServer()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := "t_" + randomHex(8)
	if err := s.createFromTemplate(ctx, name, tmpl); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.drop(ctx, name); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return withDatabase(serverURL, name)
}

// NewPool returns a pool on a fresh database from NewDatabase. The pool is
// closed, then the database dropped, when the test has finished.
func NewPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	dbURL := NewDatabase(tb)
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		tb.Fatalf("pgtest: the test database's URL: %v", err)
	}
	eventstore.ConfigurePool(cfg)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("pgtest: open a pool on the test database: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// server is the process-wide choice of server and what hangs off it.
type server struct {
	url         string
	description string
	err         error
	logOnce     sync.Once

	adminOnce sync.Once
	admin     *pgxpool.Pool // on url; never closed: it lives as long as the process
	adminErr  error

	tmplOnce sync.Once
	tmpl     string
	tmplErr  error
}

var (
	serverOnce sync.Once
	current    *server
)

func theServer() *server {
	serverOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		current = &server{}
		current.url, current.description, current.err = resolveServer(ctx)
	})
	return current
}

// pool returns the process-wide pool on the server's own database, used to
// create and drop test databases.
func (s *server) pool(ctx context.Context) (*pgxpool.Pool, error) {
	s.adminOnce.Do(func() {
		cfg, err := pgxpool.ParseConfig(s.url)
		if err != nil {
			s.adminErr = fmt.Errorf("parse the server URL: %w", err)
			return
		}
		cfg.MaxConns = 4 // parallel test processes share the server's connection limit
		s.admin, s.adminErr = pgxpool.NewWithConfig(ctx, cfg)
	})
	return s.admin, s.adminErr
}

// createFromTemplate creates database name as a copy of tmpl. PostgreSQL
// refuses to copy a database others are connected to; nobody should be
// (the template allows no connections), but a server-side session may
// outlive its client by a moment, so it retries a few times.
func (s *server) createFromTemplate(ctx context.Context, name, tmpl string) error {
	pool, err := s.pool(ctx)
	if err != nil {
		return err
	}
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " TEMPLATE " + pgx.Identifier{tmpl}.Sanitize()
	for attempt := 1; ; attempt++ {
		_, err = pool.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" || attempt == 5 { // 55006: object_in_use
			break
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("create test database %s from template %s: %w", name, tmpl, err)
	}
	return nil
}

func (s *server) drop(ctx context.Context, name string) error {
	pool, err := s.pool(ctx)
	if err != nil {
		return err
	}
	// FORCE ends sessions the test left open (a leaked pool, a listener).
	if _, err := pool.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop test database %s: %w", name, err)
	}
	return nil
}

// withDatabase returns serverURL pointed at another database. It accepts
// both connection string forms pgx does: URLs and keyword/value strings.
func withDatabase(serverURL, database string) string {
	if strings.HasPrefix(serverURL, "postgres://") || strings.HasPrefix(serverURL, "postgresql://") {
		u, err := url.Parse(serverURL)
		if err == nil {
			u.Path, u.RawPath = "/"+database, ""
			q := u.Query()
			if q.Has("dbname") {
				q.Del("dbname") // it would override the path
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
	}
	// In keyword/value form the last occurrence of a keyword wins.
	return serverURL + " dbname=" + database
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
