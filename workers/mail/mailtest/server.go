package mailtest

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// ServerConfig shapes a Server. The zero value accepts every message without
// authentication or TLS.
type ServerConfig struct {
	// Username and Password, when Username is set, are the only credentials
	// the server accepts (AUTH PLAIN, allowed without TLS), and MAIL is
	// refused until a session has authenticated.
	Username, Password string
	// RefuseRecipients lists addresses the server refuses at RCPT TO with
	// "550 5.1.1".
	RefuseRecipients []string
	// TLSConfig, when set, makes the server offer STARTTLS with it.
	TLSConfig *tls.Config
	// ImplicitTLS makes the server speak TLS from the first byte (smtps://)
	// with TLSConfig, which it then requires.
	ImplicitTLS bool
}

// Server is an in-process SMTP server (emersion/go-smtp) on 127.0.0.1 that
// records every message it accepts. It is for tests: other packages use it
// to check the e-mails their flows send over SMTP.
type Server struct {
	cfg ServerConfig
	srv *smtp.Server
	ln  net.Listener

	mu       sync.Mutex
	received []Received
}

// NewServer starts a Server on a free port of 127.0.0.1; it stops when tb's
// test ends.
func NewServer(tb testing.TB, cfg ServerConfig) *Server {
	tb.Helper()
	s := &Server{cfg: cfg}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{server: s, conn: c}, nil
	}))
	s.srv.Domain = "mailtest.localhost"
	s.srv.AllowInsecureAuth = true // credentials over loopback are what the tests exercise
	s.srv.TLSConfig = cfg.TLSConfig
	s.srv.ErrorLog = log.New(io.Discard, "", 0) // clients that hang up early are what some tests do
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("mailtest: listen: %v", err)
	}
	if cfg.ImplicitTLS {
		if cfg.TLSConfig == nil {
			tb.Fatal("mailtest: ImplicitTLS needs a TLSConfig")
		}
		ln = tls.NewListener(ln, cfg.TLSConfig)
		s.srv.TLSConfig = nil // no STARTTLS inside TLS
	}
	s.ln = ln
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.srv.Serve(ln)
	}()
	tb.Cleanup(func() {
		_ = s.srv.Close()
		// Close only closes the listeners Serve has registered: a test that
		// ends before Serve got going would leave it accepting forever.
		_ = ln.Close()
		<-done
	})
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns an smtp:// URL for the server (smtps:// with ImplicitTLS),
// with the configured credentials when there are any.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr()}
	if s.cfg.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if s.cfg.Username != "" {
		u.User = url.UserPassword(s.cfg.Username, s.cfg.Password)
	}
	return u.String()
}

// Received returns a copy of the messages accepted so far, in order.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received)
}

type session struct {
	server *Server
	conn   *smtp.Conn
	user   string
	from   string
	to     []string
}

var _ smtp.AuthSession = (*session)(nil)

func (se *session) AuthMechanisms() []string {
	if se.server.cfg.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (se *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != se.server.cfg.Username || password != se.server.cfg.Password {
			return smtp.ErrAuthFailed
		}
		se.user = username
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.server.cfg.Username != "" && se.user == "" {
		return smtp.ErrAuthRequired
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if slices.Contains(se.server.cfg.RefuseRecipients, to) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if se.from == "" || len(se.to) == 0 {
		return errors.New("mailtest: DATA without MAIL and RCPT")
	}
	se.server.mu.Lock()
	defer se.server.mu.Unlock()
	se.server.received = append(se.server.received, Received{
		Raw:          raw,
		EnvelopeFrom: se.from,
		EnvelopeTo:   slices.Clone(se.to),
		AuthUser:     se.user,
		TLS:          se.tls(),
	})
	return nil
}

func (se *session) tls() bool {
	if se.server.cfg.ImplicitTLS {
		return true
	}
	_, ok := se.conn.TLSConnectionState()
	return ok
}

func (se *session) Reset() { se.from, se.to = "", nil }

func (se *session) Logout() error { return nil }
