package pgtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/eventstore/pgcluster"
)

// probeTimeout bounds each attempt to reach a server that may not be there.
const probeTimeout = 2 * time.Second

// resolveServer chooses the server, as the package documentation describes,
// and says in words which one it chose.
func resolveServer(ctx context.Context) (serverURL, description string, err error) {
	if !forcePrivate() {
		for _, name := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
			u := os.Getenv(name)
			if u == "" {
				continue
			}
			if err := probe(ctx, u); err != nil {
				return "", "", fmt.Errorf("%s is set (%s) but unusable for tests: %v; fix it, or unset it to let pgtest use a local server or start a private one", name, redact(u), err)
			}
			return u, fmt.Sprintf("the server in %s (%s)", name, redact(u)), nil
		}
		for _, u := range localCandidates() {
			if probe(ctx, u) == nil {
				return u, fmt.Sprintf("the local server at %s", redact(u)), nil
			}
		}
	}
	return startPrivate(ctx)
}

// forcePrivate reports SUBS_TEST_FORCE_PRIVATE: any value but "", "0" and
// "false" forces the private cluster.
func forcePrivate() bool {
	v := os.Getenv("SUBS_TEST_FORCE_PRIVATE")
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	return err != nil || b
}

// localSocketDirs are where the distributions' servers put their Unix
// socket (Debian and Red Hat; Homebrew and source builds).
var localSocketDirs = []string{"/var/run/postgresql", "/tmp"}

// localCandidates are the URLs of a server on this machine's default port,
// as the user postgres and then as the current OS user: each over the Unix
// sockets first, whose round trips cost both sides less than TCP's, then
// over TCP on 127.0.0.1.
func localCandidates() []string {
	users := []string{"postgres"}
	if u, err := user.Current(); err == nil && u.Username != "postgres" {
		users = append(users, u.Username)
	}
	var candidates []string
	for _, name := range users {
		for _, dir := range localSocketDirs {
			candidates = append(candidates, fmt.Sprintf("postgres://%s@/postgres?host=%s&port=5432&sslmode=disable", url.PathEscape(name), url.QueryEscape(dir)))
		}
		candidates = append(candidates, fmt.Sprintf("postgres://%s@127.0.0.1:5432/postgres?sslmode=disable", url.PathEscape(name)))
	}
	return candidates
}

// probe checks that the server answers and lets us create databases.
func probe(ctx context.Context, serverURL string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var mayCreate bool
	err = conn.QueryRow(ctx, "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&mayCreate)
	if err != nil {
		return err
	}
	if !mayCreate {
		return errors.New("the user may not create databases (needs CREATEDB)")
	}
	return nil
}

// startPrivate starts, or reuses, the private test cluster.
func startPrivate(ctx context.Context) (serverURL, description string, err error) {
	dir, err := privateDir()
	if err != nil {
		return "", "", err
	}
	c, err := pgcluster.Start(ctx, pgcluster.Config{
		Dir:      dir,
		Database: "postgres", // test databases are made on demand
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		NoFsync:  true,
	})
	if err != nil {
		var noBin *pgcluster.NoBinariesError
		if errors.As(err, &noBin) {
			return "", "", fmt.Errorf("no PostgreSQL server answered (TEST_DATABASE_URL, DATABASE_URL, port 5432 over /var/run/postgresql, /tmp or 127.0.0.1) and none can be started: %w", err)
		}
		return "", "", fmt.Errorf("start the private test cluster in %s: %w (set SUBS_TEST_PGDIR to put it elsewhere, or TEST_DATABASE_URL to use an existing server)", dir, err)
	}
	return c.URL(), fmt.Sprintf("a private cluster in %s at %s, left running for other test processes (stop it with `subs postgres stop --data-dir %s`)",
		dir, redact(c.URL()), filepath.Dir(dir)), nil
}

// privateDir is $SUBS_TEST_PGDIR, or .cache/pgtest/postgres in the module
// root (.cache is ignored by git).
func privateDir() (string, error) {
	if dir := os.Getenv("SUBS_TEST_PGDIR"); dir != "" {
		return filepath.Abs(dir)
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "pgtest", "postgres"), nil
}

// moduleRoot is the nearest directory above the working directory (the
// package's directory under go test) that holds a go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if dir == filepath.Dir(dir) {
			return "", fmt.Errorf("no go.mod above %s to put the private test cluster under: set SUBS_TEST_PGDIR", wd)
		}
	}
}

// redact hides a password for logs and messages.
func redact(serverURL string) string {
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme == "" {
		return "a keyword/value connection string"
	}
	return u.Redacted()
}
