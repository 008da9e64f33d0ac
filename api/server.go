package api

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/subs-engine/subs/api/password"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/policy"
)

// ServerConfig configures a Server. The zero value of every optional field
// takes the default its comment names.
type ServerConfig struct {
	// Addr is the TCP address to listen on, host:port. Port 0 picks a free
	// port; Server.Addr reports the one bound. Default "127.0.0.1:8080".
	Addr string
	// DB is the database the engine runs on: /readyz pings it and checks its
	// schema, /metrics exports its pool statistics. Required.
	DB *pgxpool.Pool
	// SchemaVersion is the migration version the database must have reached
	// for /readyz to answer 200. Zero requires at least one migration.
	SchemaVersion int
	// Logger receives one line per request and the server's errors. Default:
	// discard.
	Logger *slog.Logger
	// ReadinessTimeout bounds the database checks of one /readyz request.
	// Default 2s.
	ReadinessTimeout time.Duration
	// ReadHeaderTimeout bounds how long a client may take to send request
	// headers. Default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds how long a keep-alive connection waits for its next
	// request. Default 2m.
	IdleTimeout time.Duration

	// Clock is where the API reads the time: session expiry, idempotency
	// key expiry. Pass the engine's clock, simulated or not (TIM-1).
	// Default: the machine's clock, in UTC.
	Clock clock.Clock
	// Policy supplies the session lifetime (SessionTokenValidity) and the
	// password-hashing parameters (Argon2id). Zero fields take policy's
	// defaults (policy.New).
	Policy policy.Policy
	// SecretKey is 32 random bytes from which the server derives the key that
	// encrypts stored idempotent answers (which may hold session tokens,
	// SEC-3) and the key of request hashes. It must stay the same across
	// restarts and replicas for replays to work. Default: a random key made
	// at start, with a warning in the log: an answer stored before a restart
	// then cannot be decrypted, and a repeat of its request is answered 500
	// until the key expires (IdempotencyKeyTTL).
	SecretKey []byte
	// MaxBodyBytes limits every request body; a larger one is answered 413.
	// Default DefaultMaxBodyBytes (64 KiB).
	MaxBodyBytes int64
	// IdempotencyKeyTTL is how long an Idempotency-Key is remembered after
	// its first use; a later request with it runs as new. Default 24h.
	IdempotencyKeyTTL time.Duration
	// IdempotencyLockTimeout is how long a request may hold its
	// Idempotency-Key before a retry with the same request may take it over
	// (the first is presumed dead). It must exceed the slowest request.
	// Default 1m.
	IdempotencyLockTimeout time.Duration
	// Agents checks support agents' credentials for AuthAgent routes
	// (SEC-2). Default nil: every AuthAgent request is answered 401.
	Agents AgentAuthenticator
}

func (c *ServerConfig) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.ReadinessTimeout == 0 {
		c.ReadinessTimeout = 2 * time.Second
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.IdempotencyKeyTTL == 0 {
		c.IdempotencyKeyTTL = 24 * time.Hour
	}
	if c.IdempotencyLockTimeout == 0 {
		c.IdempotencyLockTimeout = time.Minute
	}
}

// systemClock is the default Clock. cmd/subs passes the engine's clock; this
// one serves tests and embedders that pass none.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now().UTC() }

// secretKeyLen is the length of ServerConfig.SecretKey: an AES-256 key's.
const secretKeyLen = 32

// Validate reports the first invalid field of c, naming it.
func (c ServerConfig) Validate() error {
	switch {
	case c.DB == nil:
		return errors.New("DB: required: pass the pgxpool.Pool the engine runs on")
	case c.SchemaVersion < 0:
		return fmt.Errorf("SchemaVersion: %d is negative", c.SchemaVersion)
	case c.ReadinessTimeout < 0:
		return fmt.Errorf("ReadinessTimeout: %s is negative", c.ReadinessTimeout)
	case c.ReadHeaderTimeout < 0:
		return fmt.Errorf("ReadHeaderTimeout: %s is negative", c.ReadHeaderTimeout)
	case c.IdleTimeout < 0:
		return fmt.Errorf("IdleTimeout: %s is negative", c.IdleTimeout)
	case c.SecretKey != nil && len(c.SecretKey) != secretKeyLen:
		return fmt.Errorf("SecretKey: %d bytes, want %d random bytes", len(c.SecretKey), secretKeyLen)
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("MaxBodyBytes: %d is negative", c.MaxBodyBytes)
	case c.IdempotencyKeyTTL < 0:
		return fmt.Errorf("IdempotencyKeyTTL: %s is negative", c.IdempotencyKeyTTL)
	case c.IdempotencyLockTimeout < 0:
		return fmt.Errorf("IdempotencyLockTimeout: %s is negative", c.IdempotencyLockTimeout)
	}
	if _, err := policy.New(c.Policy); err != nil {
		return fmt.Errorf("Policy: %w", err)
	}
	return nil
}

// Server is the engine's HTTP server. Register routes with Route (or Handle)
// before Open; Open serves in the background until Shutdown.
type Server struct {
	cfg      ServerConfig
	policy   policy.Policy
	sessions *Sessions
	idem     *idempotency
	log      *slog.Logger
	mux      *http.ServeMux
	registry *prometheus.Registry
	metrics  *httpMetrics
	http     *http.Server

	mu       sync.Mutex
	listener net.Listener
	serveErr chan error
	routes   []registeredRoute // guarded by mu
}

// NewServer applies cfg's defaults, validates it and returns a server with
// the operational routes registered (GET /healthz, GET /readyz, GET /metrics)
// and the OpenAPI document (GET /v1/openapi.json). It prepares the dummy
// password hash for the policy's parameters (password.PrepareDummy), which
// costs one hash. It does not listen yet: call Open.
func NewServer(cfg ServerConfig) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("api: invalid config: %w", err)
	}
	pol, _ := policy.New(cfg.Policy) // Validate checked it
	if cfg.SecretKey == nil {
		cfg.SecretKey = make([]byte, secretKeyLen)
		if _, err := rand.Read(cfg.SecretKey); err != nil {
			return nil, fmt.Errorf("api: make a secret key: %w", err)
		}
		cfg.Logger.Warn("api: no secret key configured; using a random one: answers stored for Idempotency-Key replays cannot be read after a restart or by another replica")
	}
	idem, err := newIdempotency(cfg.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if err := password.PrepareDummy(pol.Argon2id); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		policy:   pol,
		sessions: NewSessions(cfg.DB),
		idem:     idem,
		log:      cfg.Logger,
		mux:      http.NewServeMux(),
		registry: prometheus.NewRegistry(),
		serveErr: make(chan error, 1),
	}
	s.metrics = newHTTPMetrics()
	s.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		s.metrics,
		newPoolCollector(cfg.DB),
	)
	s.routeOpenAPI()
	s.mux.HandleFunc("GET /healthz", s.handleHealthz)
	s.mux.HandleFunc("GET /readyz", s.handleReadyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
	}))
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Handle registers h for pattern, an http.ServeMux pattern such as
// "POST /v1/accounts". The route gets the server's logging, metrics,
// body-limit and problem+json middleware, and a POST route the
// Idempotency-Key middleware. Prefer Route for API endpoints: it also
// documents the route in the OpenAPI document and applies authentication.
// A route registered here under /v1/ is undocumented until a Route with the
// same method and path exists, and UndocumentedRoutes lists it. It panics, as
// ServeMux does, when pattern is invalid or conflicts with a registered one.
// Call it before Open.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.register(pattern, h, nil)
}

// Sessions returns the server's customer session store, for the sign-in,
// sign-out and password endpoints.
func (s *Server) Sessions() *Sessions {
	return s.sessions
}

// Policy returns the policy the server was configured with, defaults
// applied.
func (s *Server) Policy() policy.Policy {
	return s.policy
}

// Clock returns the clock the server reads the time from.
func (s *Server) Clock() clock.Clock {
	return s.cfg.Clock
}

// Registry is where the engine's other parts register their Prometheus
// collectors so that /metrics exports them.
func (s *Server) Registry() prometheus.Registerer {
	return s.registry
}

// Handler returns the server's root handler with all middleware applied,
// for tests that drive it with httptest.
func (s *Server) Handler() http.Handler {
	return s.withEnv(s.observe(s.recoverPanics(http.HandlerFunc(s.route))))
}

// Open listens on the configured address and serves in the background. It
// returns once the listener is bound, so Addr is valid and connections are
// accepted. An error that ends serving later is sent on Err.
func (s *Server) Open() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w (choose another address with --addr or SUBS_ADDR)", s.cfg.Addr, err)
	}
	s.mu.Lock()
	s.listener = ln
	s.mu.Unlock()
	go func() {
		if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.serveErr <- fmt.Errorf("api: serve: %w", err)
		}
	}()
	return nil
}

// Err returns a channel that receives the error that stopped serving, if
// serving stops for any reason other than Shutdown.
func (s *Server) Err() <-chan error {
	return s.serveErr
}

// Addr returns the bound address (host:port) once Open has returned, or ""
// before.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// URL returns the base URL clients reach the server at once Open has
// returned, or "" before. An unspecified listen host (0.0.0.0, ::) is shown
// as localhost.
func (s *Server) URL() string {
	addr := s.Addr()
	if addr == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Shutdown stops accepting connections and waits for in-flight requests to
// finish. When ctx ends first, it closes the remaining connections and
// returns ctx's error. It is safe to call on a server that was never opened.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		_ = s.http.Close()
		return fmt.Errorf("api: shutdown: in-flight requests did not finish in time: %w", err)
	}
	return nil
}

// route dispatches to the mux and answers its own 404 and 405 errors as
// problem+json instead of text/plain.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(&muxErrorWriter{ResponseWriter: w, r: r}, r)
}

// muxErrorWriter replaces the response ServeMux writes when no route
// matches. ServeMux sets r.Pattern before calling any handler, so an empty
// pattern at WriteHeader time means the mux's own error handler is writing.
type muxErrorWriter struct {
	http.ResponseWriter
	r        *http.Request
	replaced bool
}

func (w *muxErrorWriter) WriteHeader(code int) {
	if w.r.Pattern == "" && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		w.replaced = true
		w.Header().Del("Content-Type")
		if code == http.StatusNotFound {
			WriteProblem(w.ResponseWriter, notFound())
		} else {
			WriteProblem(w.ResponseWriter, methodNotAllowed(w.Header().Get("Allow")))
		}
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *muxErrorWriter) Write(p []byte) (int, error) {
	if w.replaced {
		return len(p), nil // drop the mux's text/plain body
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *muxErrorWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}

// routeLabel returns the path part of the route pattern that served r, or
// "unmatched": a bounded label set for metrics and logs, free of path
// parameters such as product keys.
func routeLabel(r *http.Request) string {
	if r.Pattern == "" {
		return "unmatched"
	}
	if _, path, ok := strings.Cut(r.Pattern, " "); ok {
		return path
	}
	return r.Pattern
}
