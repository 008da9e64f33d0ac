package pgcluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/eventstore/pgcluster"
)

// tempDir makes a directory the postgres system user can enter: when the
// tests run as root the cluster runs as that user, and t.TempDir's
// directories are 0700.
func tempDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "pgcluster-test-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// stopAtEnd stops whatever runs in dir at the end of the test, even if the
// test fails half-way, so that no server outlives its temporary directory.
func stopAtEnd(tb testing.TB, dir string) {
	tb.Cleanup(func() {
		if err := pgcluster.StopDir(context.Background(), dir); err != nil {
			tb.Errorf("StopDir: %v", err)
		}
	})
}

func mustStart(tb testing.TB, cfg pgcluster.Config) *pgcluster.Cluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, cfg)
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	return c
}

func mustConnect(tb testing.TB, url string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		tb.Fatalf("connect %s: %v", url, err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func port(tb testing.TB, c *pgcluster.Cluster) string {
	tb.Helper()
	u, err := url.Parse(c.URL())
	if err != nil {
		tb.Fatal(err)
	}
	if p := u.Query().Get("port"); p != "" { // over the Unix socket
		return p
	}
	return u.Port()
}

func TestStartStopRestartKeepsData(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(tempDir(t), "postgres")
	cfg := pgcluster.Config{Dir: dir, Database: "keeps"}
	stopAtEnd(t, dir)

	first := mustStart(t, cfg)
	// Over the Unix socket in its directory; TCP on 127.0.0.1 too.
	wantURL := fmt.Sprintf("postgres://postgres@/keeps?host=%s&port=%s&sslmode=disable", dir, port(t, first))
	if first.URL() != wantURL {
		t.Errorf("URL() = %q, want %q", first.URL(), wantURL)
	}
	if _, err := os.Stat(filepath.Join(dir, ".s.PGSQL."+port(t, first))); err != nil {
		t.Errorf("no socket in the data directory: %v", err)
	}
	mustConnect(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%s/keeps?sslmode=disable", port(t, first))).Close(ctx)
	conn := mustConnect(t, first.URL())
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	t.Run("a second Start reuses the running server and its Stop leaves it running", func(t *testing.T) {
		second := mustStart(t, cfg)
		if got, want := second.URL(), first.URL(); got != want {
			t.Errorf("reused URL = %q, want %q", got, want)
		}
		if err := second.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		mustConnect(t, first.URL()).Close(ctx)
	})

	if err := first.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if conn, err := pgx.Connect(ctx, first.URL()); err == nil {
		conn.Close(ctx)
		t.Fatal("the server still accepts connections after Stop")
	}

	// A crash leaves postmaster.pid naming a process that is gone, and
	// another program may take the port meanwhile: neither may block a start.
	writeStalePID(t, dir)
	taken, err := net.Listen("tcp", "127.0.0.1:"+port(t, first))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	third := mustStart(t, cfg)
	if port(t, third) == port(t, first) {
		t.Errorf("restarted on taken port %s", port(t, first))
	}
	var n int
	if err := mustConnect(t, third.URL()).QueryRow(ctx, "SELECT n FROM kept").Scan(&n); err != nil {
		t.Fatalf("data of the first start is gone: %v", err)
	}
	if n != 42 {
		t.Errorf("kept.n = %d, want 42", n)
	}

	if err := pgcluster.StopDir(ctx, dir); err != nil {
		t.Fatalf("StopDir: %v", err)
	}
	if err := pgcluster.StopDir(ctx, dir); err != nil {
		t.Errorf("StopDir on a stopped cluster = %v, want nil", err)
	}
	if err := third.Stop(ctx); err != nil {
		t.Errorf("Stop after StopDir = %v, want nil", err)
	}

	t.Run("a failed start reports the end of the server log", func(t *testing.T) {
		f, err := os.OpenFile(filepath.Join(dir, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("\nsubs_no_such_setting = 1\n")
		f.Close()
		_, err = pgcluster.Start(ctx, cfg)
		if err == nil || !strings.Contains(err.Error(), "subs_no_such_setting") || !strings.Contains(err.Error(), "postgres.log") {
			t.Fatalf("Start with a broken postgresql.conf = %v, want an error quoting the server log", err)
		}
	})
}

// writeStalePID leaves the postmaster.pid of a server that died: its pid
// belongs to a process that has exited.
func writeStalePID(tb testing.TB, dir string) {
	tb.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		tb.Fatal(err)
	}
	content := strconv.Itoa(cmd.Process.Pid) + "\n" + dir + "\n"
	path := filepath.Join(dir, "postmaster.pid")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	// The server's own user wrote the real one.
	fi, err := os.Stat(dir)
	if err != nil {
		tb.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if err := os.Chown(path, int(st.Uid), int(st.Gid)); err != nil {
		tb.Fatal(err)
	}
}

func TestConcurrentStartsInitializeOnce(t *testing.T) {
	dir := filepath.Join(tempDir(t), "postgres")
	cfg := pgcluster.Config{Dir: dir, NoFsync: true}
	stopAtEnd(t, dir)

	var wg sync.WaitGroup
	urls := make([]string, 3)
	errs := make([]error, 3)
	for i := range urls {
		wg.Go(func() {
			c, err := pgcluster.Start(context.Background(), cfg)
			errs[i] = err
			if err == nil {
				urls[i] = c.URL()
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Start %d: %v", i, err)
		}
	}
	for i := range urls {
		if urls[i] != urls[0] {
			t.Errorf("Start %d got %q, Start 0 got %q: want one shared cluster", i, urls[i], urls[0])
		}
	}
	mustConnect(t, urls[0]).Close(context.Background())
}

func TestNoBinariesNamesThePackageToInstall(t *testing.T) {
	empty := tempDir(t)
	t.Setenv("PG_BINDIR", empty)
	t.Setenv("PATH", empty)
	pgcluster.SetSearchGlobs(t, nil)

	_, err := pgcluster.Start(context.Background(), pgcluster.Config{Dir: filepath.Join(empty, "postgres")})
	var noBin *pgcluster.NoBinariesError
	if !errors.As(err, &noBin) {
		t.Fatalf("Start = %v, want a *NoBinariesError", err)
	}
	for _, want := range []string{"initdb", "pg_ctl", empty, "apt-get install postgresql", "dnf install postgresql-server", "brew install postgresql", "DATABASE_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := pgcluster.StopDir(context.Background(), filepath.Join(empty, "postgres")); err != nil {
		t.Errorf("StopDir of a directory without a cluster = %v, want nil", err)
	}
}

func TestRootNeedsATraversableParent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to the postgres user")
	}
	closed := filepath.Join(tempDir(t), "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := pgcluster.Start(context.Background(), pgcluster.Config{Dir: filepath.Join(closed, "postgres")})
	if err == nil || !strings.Contains(err.Error(), closed) {
		t.Fatalf("Start under a 0700 root directory = %v, want an error naming %s", err, closed)
	}
}

func TestConfigValidate(t *testing.T) {
	_, err := pgcluster.Start(context.Background(), pgcluster.Config{})
	if err == nil || !strings.Contains(err.Error(), "Dir is required") {
		t.Errorf("Start without Dir = %v, want an invalid config error", err)
	}
}
