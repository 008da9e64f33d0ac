// Package natsserver runs an embedded NATS server with JetStream, for a
// `subs serve` that has no NATS_URL (DESIGN §7): the engine publishes to it
// in-process, and other local systems subscribe to it on a loopback port.
package natsserver

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Config configures an embedded server. The zero value of every optional
// field takes the default its comment names.
type Config struct {
	// StoreDir is where JetStream keeps its streams (the engine passes
	// <data-dir>/nats). A server started again on the same directory finds
	// its streams, messages and consumers again. Required.
	StoreDir string
	// Host is the interface the server listens on for clients. Default
	// "127.0.0.1": local systems may subscribe, the network may not.
	Host string
	// Port is the client port. When it is taken, Start picks a free port
	// instead and reports it (Server.PortTaken); -1 always picks a free
	// port. Default 4222, NATS's well-known port.
	Port int
	// MaxMemory bounds JetStream's memory storage in bytes. Without a bound
	// the server claims 75% of the machine's memory (DESIGN §11).
	// Default 256 MiB.
	MaxMemory int64
	// MaxStore bounds JetStream's file storage in bytes. Without a bound
	// the server claims 75% of the disk. Default 10 GiB.
	MaxStore int64
	// StartTimeout bounds how long Start waits for the server to accept
	// connections. Default 30s.
	StartTimeout time.Duration
	// Logger receives the server's notices, warnings and errors. Default:
	// discard.
	Logger *slog.Logger
}

// DefaultPort is the client port Config.Port defaults to.
const DefaultPort = 4222

func (c *Config) setDefaults() {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.MaxMemory == 0 {
		c.MaxMemory = 256 << 20
	}
	if c.MaxStore == 0 {
		c.MaxStore = 10 << 30
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate reports the first invalid field of c, naming it.
func (c Config) Validate() error {
	switch {
	case c.StoreDir == "":
		return errors.New("StoreDir: required: give the directory JetStream stores its streams in")
	case c.Port < -1 || c.Port > 65535:
		return fmt.Errorf("Port: %d is not a TCP port (0 for the default, -1 for any free port)", c.Port)
	case c.MaxMemory < 0:
		return fmt.Errorf("MaxMemory: %d is negative", c.MaxMemory)
	case c.MaxStore < 0:
		return fmt.Errorf("MaxStore: %d is negative", c.MaxStore)
	case c.StartTimeout < 0:
		return fmt.Errorf("StartTimeout: %s is negative", c.StartTimeout)
	}
	return nil
}

// Server is a running embedded NATS server with JetStream. It is safe for
// concurrent use.
type Server struct {
	srv       *server.Server
	portTaken bool
	askedPort int

	once sync.Once
}

// Start applies cfg's defaults, validates it, starts the server and waits
// until it accepts connections. The caller must Shutdown it.
func Start(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("natsserver: invalid config: %w", err)
	}
	port, taken := cfg.Port, false
	if port != server.RANDOM_PORT && !portFree(cfg.Host, port) {
		// Another process (often another NATS) has the port: run anyway on a
		// free one, and let the caller say so.
		port, taken = server.RANDOM_PORT, true
	}
	srv, err := start(cfg, port)
	if errors.Is(err, errListen) && port != server.RANDOM_PORT {
		// Taken between the probe and the bind.
		port, taken = server.RANDOM_PORT, true
		srv, err = start(cfg, port)
	}
	if err != nil {
		return nil, err
	}
	return &Server{srv: srv, portTaken: taken, askedPort: cfg.Port}, nil
}

// errListen is a server that could not listen on its port.
var errListen = errors.New("cannot listen")

func start(cfg Config, port int) (*server.Server, error) {
	opts := &server.Options{
		ServerName:         "subs-embedded",
		Host:               cfg.Host,
		Port:               port,
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		JetStreamMaxMemory: cfg.MaxMemory,
		JetStreamMaxStore:  cfg.MaxStore,
		NoSigs:             true, // the engine handles signals
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsserver: %w", err)
	}
	log := &slogAdapter{log: cfg.Logger, fatal: make(chan string, 1)}
	srv.SetLoggerV2(log, false, false, false)
	srv.Start()
	stop := func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(port))
	deadline := time.Now().Add(cfg.StartTimeout)
	for !srv.ReadyForConnections(50 * time.Millisecond) {
		select {
		case msg := <-log.fatal:
			// The server reports a failed listen through Fatalf and carries
			// on without a listener: waiting longer would not help.
			stop()
			if strings.Contains(msg, "listen") {
				return nil, fmt.Errorf("natsserver: %s: %w: %s", addr, errListen, msg)
			}
			return nil, fmt.Errorf("natsserver: %s: %s", addr, msg)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("natsserver: the server on %s did not accept connections within %s (see its log)", addr, cfg.StartTimeout)
		}
	}
	if !srv.JetStreamEnabled() {
		stop()
		return nil, fmt.Errorf("natsserver: JetStream did not start with store %s (see its log)", cfg.StoreDir)
	}
	return srv, nil
}

// portFree reports whether nothing listens on host:port now. A race with
// another process remains; then the server fails to start, with a clear error.
func portFree(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// ClientURL returns the nats:// URL clients outside the process connect to.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// Port returns the client port the server listens on.
func (s *Server) Port() int {
	if a, ok := s.srv.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// PortTaken reports whether the configured port was taken, so that the
// server listens on another (Port); the caller should tell the user.
func (s *Server) PortTaken() (taken bool, asked int) { return s.portTaken, s.askedPort }

// Connect returns a new in-process connection to the server (no TCP), with
// opts applied. Each call is a connection of its own: closing it closes
// nothing else. An in-process connection cannot outlive its server.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(s.srv), nats.Name("subs")}, opts...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("natsserver: connect in-process: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server and waits until it has stopped, flushing
// JetStream's store. It is safe to call more than once.
func (s *Server) Shutdown() {
	s.once.Do(func() {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	})
}

// slogAdapter lets the server log through slog. Fatalf logs an error and
// reports it on fatal instead of exiting: the server's own logger would end
// the whole process.
type slogAdapter struct {
	log   *slog.Logger
	fatal chan string
}

func (a *slogAdapter) Noticef(format string, v ...any) {
	a.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (a *slogAdapter) Warnf(format string, v ...any) {
	a.log.Warn("nats: " + fmt.Sprintf(format, v...))
}
func (a *slogAdapter) Errorf(format string, v ...any) {
	a.log.Error("nats: " + fmt.Sprintf(format, v...))
}
func (a *slogAdapter) Debugf(format string, v ...any) {
	a.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (a *slogAdapter) Tracef(string, ...any) {}

func (a *slogAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	a.log.Error("nats: " + msg)
	select {
	case a.fatal <- msg:
	default:
	}
}
