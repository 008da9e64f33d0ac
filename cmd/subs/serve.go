package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/subs-engine/subs/api"
)

// runServe is `subs serve`: it opens and migrates the database, serves HTTP
// until ctx is canceled, then stops accepting connections, lets in-flight
// requests finish within Config.ShutdownTimeout, closes the pool and stops
// the private cluster if it started one.
func (m *Main) runServe(ctx context.Context) (err error) {
	defer func() { err = errors.Join(err, m.Close()) }()
	log := m.logger()
	m.Clock = newClock(m.Config)

	db, err := m.openDatabase(ctx)
	if err != nil {
		return err
	}
	_, version, err := m.migrateDatabase(ctx, db)
	if err != nil {
		return err
	}
	server, err := api.NewServer(api.ServerConfig{
		Addr:          m.Config.Addr,
		DB:            db.pool,
		SchemaVersion: version,
		Logger:        log,
	})
	if err != nil {
		return err
	}
	if err := server.Open(); err != nil {
		return err
	}
	m.mu.Lock()
	m.server = server
	m.mu.Unlock()
	close(m.ready)
	m.announce(server, db)

	select {
	case <-ctx.Done():
		log.Info("shutting down: no new connections; waiting for in-flight requests",
			slog.Duration("timeout", m.Config.ShutdownTimeout))
	case err := <-server.Err():
		return err
	}
	return m.shutdownServer(ctx, server)
}

// shutdownServer drains the HTTP server within Config.ShutdownTimeout.
func (m *Main) shutdownServer(ctx context.Context, server *api.Server) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.Config.ShutdownTimeout)
	defer cancel()
	if err := server.Shutdown(ctx); err != nil {
		return err
	}
	m.logger().Info("HTTP server stopped")
	return nil
}

// announce logs and prints where to look: the URL, the operational
// endpoints, the data directory and the database (password redacted).
func (m *Main) announce(server *api.Server, db *database) {
	url := server.URL()
	dataDir, err := filepath.Abs(m.Config.DataDir)
	if err != nil {
		dataDir = m.Config.DataDir
	}
	m.logger().Info("serving",
		slog.String("url", url),
		slog.String("data_dir", dataDir),
		slog.String("database", db.shown),
		slog.String("clock", m.Config.Clock),
		slog.String("version", Version()),
	)
	fmt.Fprintf(m.Stderr, `
subs %s is serving at %s
  liveness:  %s/healthz
  readiness: %s/readyz
  metrics:   %s/metrics
  data dir:  %s
  database:  %s
  clock:     %s
Stop with Ctrl-C (SIGINT) or SIGTERM.

`, Version(), url, url, url, url, dataDir, db.shown, m.Config.Clock)
}
