package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/eventstore/pgcluster"
)

// stopClusterTimeout bounds how long stopping the private cluster may take.
const stopClusterTimeout = 30 * time.Second

// database is the PostgreSQL database a command runs against.
type database struct {
	pool *pgxpool.Pool
	// shown describes the database for people: its redacted URL, and for a
	// private cluster where it lives.
	shown string
}

// notMigrated explains err when it is a missing table: the database is not
// the engine's, or was never migrated; what names what is missing ("no
// event log"). Other errors come back as they are.
func (db *database) notMigrated(err error, what string) error {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "42P01" { // undefined_table
		return fmt.Errorf("the database %s holds %s: point DATABASE_URL at the engine's database, or run `subs migrate` first: %w", db.shown, what, err)
	}
	return err
}

// clusterDir is where the private PostgreSQL cluster lives.
func (c Config) clusterDir() string {
	return filepath.Join(c.DataDir, "postgres")
}

// openDatabase connects to Config.DatabaseURL, or, when it is empty, starts
// (or reuses) the private cluster under the data directory and connects to
// it. Close releases both. A missing PostgreSQL installation comes back as a
// *pgcluster.NoBinariesError.
func (m *Main) openDatabase(ctx context.Context) (*database, error) {
	url := m.Config.DatabaseURL
	shown := redactDatabaseURL(url)
	if url == "" {
		dir, err := filepath.Abs(m.Config.clusterDir())
		if err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		m.logger().Info("DATABASE_URL is not set: using a private PostgreSQL cluster", slog.String("dir", dir))
		cluster, err := pgcluster.Start(ctx, pgcluster.Config{Dir: dir, Logger: m.logger()})
		if err != nil {
			var noBinaries *pgcluster.NoBinariesError
			if errors.As(err, &noBinaries) {
				return nil, err
			}
			return nil, fmt.Errorf("start the private PostgreSQL cluster in %s (or set DATABASE_URL): %w", dir, err)
		}
		m.mu.Lock()
		m.cluster = cluster
		m.mu.Unlock()
		url = cluster.URL()
		shown = fmt.Sprintf("%s (private cluster in %s)", redactDatabaseURL(url), dir)
	}

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("the database URL (DATABASE_URL or --database-url) is not valid: %w", err)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "subs"
	}
	eventstore.ConfigurePool(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open the database %s: %w", redactDatabaseURL(url), err)
	}
	m.mu.Lock()
	m.pool = pool
	m.mu.Unlock()
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		return nil, fmt.Errorf("connect to the database %s: %w (check DATABASE_URL, or unset it to use a private cluster)", redactDatabaseURL(url), err)
	}
	return &database{pool: pool, shown: shown}, nil
}
