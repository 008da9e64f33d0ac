package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/eventstore/pgtest"
)

func TestNewDatabaseGivesEachTestItsOwnMigratedDatabase(t *testing.T) {
	ctx := context.Background()
	first, second := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	if first == second {
		t.Fatalf("NewDatabase returned %q twice", first)
	}
	a, b := connect(t, first), connect(t, second)
	for _, conn := range []*pgx.Conn{a, b} {
		var events *string
		if err := conn.QueryRow(ctx, "SELECT to_regclass('events')::text").Scan(&events); err != nil {
			t.Fatal(err)
		}
		if events == nil {
			t.Errorf("database %s has no events table", conn.Config().Database)
		}
	}
	if _, err := a.Exec(ctx, "CREATE TABLE only_in_first (n int)"); err != nil {
		t.Fatal(err)
	}
	var seen *string
	if err := b.QueryRow(ctx, "SELECT to_regclass('only_in_first')::text").Scan(&seen); err != nil {
		t.Fatal(err)
	}
	if seen != nil {
		t.Error("a table created in one test database shows in another")
	}
}

func TestNewDatabaseIsDroppedAtCleanup(t *testing.T) {
	ctx := context.Background()
	var leaked *pgx.Conn
	t.Run("owner", func(t *testing.T) {
		var err error
		// Left open past the test on purpose: the drop must end it.
		if leaked, err = pgx.Connect(ctx, pgtest.NewDatabase(t)); err != nil {
			t.Fatal(err)
		}
	})
	if leaked == nil {
		t.FailNow()
	}
	defer leaked.Close(ctx)
	name := leaked.Config().Database
	var exists bool
	if err := connect(t, pgtest.ServerURL(t)).QueryRow(ctx,
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestNewPoolInParallel(t *testing.T) {
	for i := range 4 {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			pool := pgtest.NewPool(t)
			var n int
			if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&n); err != nil {
				t.Fatalf("pool %d: %v", i, err)
			}
			if n != 0 {
				t.Errorf("a fresh database holds %d events, want 0", n)
			}
		})
	}
}

func connect(tb testing.TB, url string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		tb.Fatalf("connect %s: %v", url, err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
