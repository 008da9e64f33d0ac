package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/subs-engine/subs/api"
	"github.com/subs-engine/subs/api/agentauth"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/workers/natsserver"
	"github.com/subs-engine/subs/workers/publish"
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
	bus, err := m.openNATS()
	if err != nil {
		return err
	}
	defer bus.close() // after the publisher has stopped (defers run in reverse)
	secret, err := m.secretKey()
	if err != nil {
		return err
	}
	server, err := api.NewServer(api.ServerConfig{
		Addr:          m.Config.Addr,
		DB:            db.pool,
		SchemaVersion: version,
		Logger:        log,
		Clock:         m.Clock,
		Policy:        policy.Default(),
		SecretKey:     secret,
		Agents:        agentauth.New(db.pool),
	})
	if err != nil {
		return err
	}
	eng, err := m.openEngine(ctx, db, server, secret)
	if err != nil {
		return err
	}
	if err := server.Open(); err != nil {
		return err
	}
	publicURL := m.Config.PublicURL
	if publicURL == "" {
		publicURL = server.URL()
	}
	if err := m.startEngine(eng, server, secret, publicURL); err != nil {
		return err
	}
	defer eng.close() // before the pool closes (defers run in reverse)
	stopPublisher, err := m.startPublisher(ctx, db, bus, server)
	if err != nil {
		return err
	}
	defer stopPublisher()
	m.mu.Lock()
	m.server = server
	m.mu.Unlock()
	close(m.ready)
	m.announce(server, db, bus, eng)

	select {
	case <-ctx.Done():
		log.Info("shutting down: no new connections; waiting for in-flight requests",
			slog.Duration("timeout", m.Config.ShutdownTimeout))
	case err := <-server.Err():
		return err
	}
	stopPublisher() // it saves the checkpoint of what JetStream acked
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
func (m *Main) announce(server *api.Server, db *database, bus *natsBus, eng *engine) {
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
		slog.String("nats", bus.url),
		slog.String("mail", eng.mailDesc),
		slog.Bool("publisher", !m.Config.NoPublisher),
		slog.String("version", Version()),
	)
	fmt.Fprintf(m.Stderr, `
subs %s is serving at %s
  liveness:  %s/healthz
  readiness: %s/readyz
  metrics:   %s/metrics
  API:       %s/v1/openapi.json
  data dir:  %s
  database:  %s
  clock:     %s
  nats:      %s
  publisher: %s
  e-mail:    %s
Stop with Ctrl-C (SIGINT) or SIGTERM.

`, Version(), url, url, url, url, url, dataDir, db.shown, m.Config.Clock, bus.shown, m.publisherShown(), eng.mailDesc)
}

// natsBus is the NATS server events are published to: the one NATS_URL
// names, or an embedded one.
type natsBus struct {
	url      string                     // for clients outside the process
	shown    string                     // url, and for an embedded server where it keeps its data
	embedded *natsserver.Server         // nil with NATS_URL
	connect  func() (*nats.Conn, error) // a new connection per call
}

// close shuts the embedded server down, flushing JetStream's store.
func (b *natsBus) close() {
	if b.embedded != nil {
		b.embedded.Shutdown()
	}
}

// openNATS returns the NATS server Config.NATSURL names, or starts an
// embedded one with JetStream under DataDir/nats, on 127.0.0.1:NATSPort (a
// free port if that one is taken), connected to in-process.
func (m *Main) openNATS() (*natsBus, error) {
	if url := m.Config.NATSURL; url != "" {
		return &natsBus{url: url, shown: redactNATSURL(url), connect: func() (*nats.Conn, error) {
			// Reconnect for as long as it takes: the publisher retries
			// from its checkpoint meanwhile.
			return nats.Connect(url, nats.Name("subs publisher"), nats.MaxReconnects(-1))
		}}, nil
	}
	dir, err := filepath.Abs(filepath.Join(m.Config.DataDir, "nats"))
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	port := m.Config.NATSPort
	if port == 0 {
		port = -1
	}
	srv, err := natsserver.Start(natsserver.Config{StoreDir: dir, Port: port, Logger: m.logger()})
	if err != nil {
		return nil, fmt.Errorf("start the embedded NATS server (or set NATS_URL): %w", err)
	}
	shown := fmt.Sprintf("%s (embedded, JetStream in %s)", srv.ClientURL(), dir)
	if taken, asked := srv.PortTaken(); taken {
		shown += fmt.Sprintf("; port %d was taken", asked)
		m.logger().Warn("the embedded NATS server's port is taken: listening on another",
			slog.Int("asked", asked), slog.Int("port", srv.Port()))
	}
	m.mu.Lock()
	m.natsURL = srv.ClientURL()
	m.mu.Unlock()
	return &natsBus{url: srv.ClientURL(), shown: shown, embedded: srv, connect: func() (*nats.Conn, error) {
		return srv.Connect(nats.Name("subs publisher"))
	}}, nil
}

// NATSURL returns the URL of the NATS server serve publishes to, once serve
// is ready: the embedded server's (its port may have been chosen at start)
// or NATS_URL.
func (m *Main) NATSURL() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.natsURL == "" {
		return m.Config.NATSURL
	}
	return m.natsURL
}

// startPublisher runs the publisher (DESIGN §7) in the background unless
// Config.NoPublisher, and returns a function that stops it and waits, safe
// to call more than once.
func (m *Main) startPublisher(ctx context.Context, db *database, bus *natsBus, server *api.Server) (stop func(), err error) {
	if m.Config.NoPublisher {
		return func() {}, nil
	}
	store, err := m.openStore(db)
	if err != nil {
		return nil, err
	}
	p, err := publish.New(publish.Config{
		Store:   store,
		Connect: bus.connect,
		Metrics: server.Registry(),
	}, m.logger())
	if err != nil {
		return nil, err
	}
	// The stream exists before serve says it is ready, so that a consumer
	// started at once finds it; the publisher makes sure again each time it
	// connects, and a failure here only delays that.
	if nc, err := bus.connect(); err != nil {
		m.logger().Warn("cannot reach NATS yet; the publisher keeps trying", slog.Any("err", err))
	} else {
		ensureCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := publish.EnsureStream(ensureCtx, nc, publish.StreamConfig{}); err != nil {
			m.logger().Warn("cannot create the JetStream stream yet; the publisher keeps trying", slog.Any("err", err))
		}
		cancel()
		nc.Close()
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx) // it logs and retries every failure; nil once canceled
	}()
	return func() {
		cancel()
		<-done
	}, nil
}

func (m *Main) publisherShown() string {
	if m.Config.NoPublisher {
		return "off (--publisher=false): another process publishes"
	}
	return "every event to JetStream stream SUBS_EVENTS on subs.events.<category>.<type>"
}

// redactNATSURL returns a NATS URL, or a comma-separated list of them, with
// passwords and tokens (a user name without password) replaced.
func redactNATSURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(unparsable NATS URL, not shown)"
			continue
		}
		if u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), redacted)
			} else {
				u.User = url.User(redacted)
			}
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
