package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"
)

// SMTPConfig holds the SMTP sender's settings beyond its URL. The zero value
// is usable: NewSMTP fills in the defaults.
type SMTPConfig struct {
	// DialTimeout bounds connecting to the server, the TLS handshake of
	// smtps:// included. Default 10s.
	DialTimeout time.Duration
	// CommandTimeout bounds each step of the conversation: the greeting, each
	// command and its reply, and writing the message with the server's final
	// reply. A server that stops answering fails the Send after this long
	// instead of holding a worker. Default 30s.
	CommandTimeout time.Duration
	// TLSConfig is the base TLS configuration for STARTTLS and smtps://, for
	// example to trust a private CA (RootCAs). Its ServerName defaults to the
	// URL's host. Nil means the system's roots and Go's defaults.
	TLSConfig *tls.Config
}

func (c *SMTPConfig) setDefaults() {
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = 30 * time.Second
	}
}

// Validate reports a setting that cannot work, naming the field.
func (c SMTPConfig) Validate() error {
	if c.DialTimeout < 0 {
		return errors.New("DialTimeout must not be negative")
	}
	if c.CommandTimeout < 0 {
		return errors.New("CommandTimeout must not be negative")
	}
	return nil
}

// How the sender uses STARTTLS on an smtp:// URL.
type starttlsMode int

const (
	starttlsOpportunistic starttlsMode = iota // when the server offers it
	starttlsRequired                          // fail when the server does not offer it
	starttlsOff                               // never
)

// SMTP is a Sender that submits each e-mail to one SMTP server over a new
// connection. It is safe for concurrent use. SMTP has no idempotency: sending
// the same Message twice delivers it twice, with the same Message-ID (see
// Sender).
type SMTP struct {
	cfg         SMTPConfig
	domain      string
	host        string // as in the URL, for TLS and the loopback check
	addr        string // host:port to dial
	implicitTLS bool
	starttls    starttlsMode
	username    string
	password    string
	redacted    string // the URL without its password, for errors
}

var _ Sender = (*SMTP)(nil)

// NewSMTP returns a sender for the server rawURL names:
//
//	smtp://[user:pass@]host[:port][?starttls=required|off]   (port 587 by default)
//	smtps://[user:pass@]host[:port]                          (implicit TLS, port 465 by default)
//
// On smtp:// the sender upgrades with STARTTLS whenever the server offers it;
// starttls=required fails a Send when it does not, starttls=off never
// upgrades. With credentials it authenticates with AUTH PLAIN, and only over
// TLS unless the host is a loopback address or "localhost": a password never
// crosses a network in clear. Message-IDs use domain (empty means
// DefaultDomain), which is also the name the sender gives in EHLO.
//
// Errors, here and from Send, show the URL with its password replaced by
// "xxxxx"; a URL that does not parse is not shown at all.
func NewSMTP(rawURL, domain string, cfg SMTPConfig) (*SMTP, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mail: invalid config: %w", err)
	}
	if domain == "" {
		domain = DefaultDomain
	}
	if err := validateDomain(domain); err != nil {
		return nil, fmt.Errorf("mail: invalid config: %w", err)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error quotes the whole URL, password included: say less.
		return nil, errors.New("mail: invalid SMTP URL: it does not parse (not shown: it may hold a password)")
	}
	s := &SMTP{cfg: cfg, domain: domain, redacted: u.Redacted()}
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("mail: invalid SMTP URL %s: %s", s.redacted, fmt.Sprintf(format, args...))
	}
	port := ""
	switch u.Scheme {
	case "smtp":
		port = "587"
	case "smtps":
		port, s.implicitTLS = "465", true
	default:
		return nil, invalid("scheme must be smtp or smtps")
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return nil, invalid("want scheme://[user:pass@]host[:port][?starttls=required|off], nothing more")
	}
	s.host = u.Hostname()
	if s.host == "" {
		return nil, invalid("host is missing")
	}
	if p := u.Port(); p != "" {
		port = p
	}
	s.addr = net.JoinHostPort(s.host, port)
	for key, values := range u.Query() {
		if key != "starttls" || len(values) != 1 {
			return nil, invalid("unknown or repeated query parameter %q (only starttls=required|off)", key)
		}
		switch values[0] {
		case "required":
			s.starttls = starttlsRequired
		case "off":
			s.starttls = starttlsOff
		default:
			return nil, invalid("starttls must be required or off")
		}
		if s.implicitTLS {
			return nil, invalid("starttls does not apply to smtps://, which is TLS from the start")
		}
	}
	if u.User != nil {
		pass, ok := u.User.Password()
		if u.User.Username() == "" || !ok || pass == "" {
			return nil, invalid("credentials need both a user name and a password")
		}
		s.username, s.password = u.User.Username(), pass
		if s.starttls == starttlsOff && !s.loopback() {
			return nil, invalid("starttls=off would send the password in clear to a host that is not loopback")
		}
	}
	return s, nil
}

// String returns the server's URL without its password.
func (s *SMTP) String() string { return s.redacted }

func (s *SMTP) loopback() bool {
	if s.host == "localhost" {
		return true
	}
	ip := net.ParseIP(s.host)
	return ip != nil && ip.IsLoopback()
}

func (s *SMTP) tlsConfig() *tls.Config {
	var c *tls.Config
	if s.cfg.TLSConfig != nil {
		c = s.cfg.TLSConfig.Clone()
	} else {
		c = &tls.Config{}
	}
	if c.ServerName == "" {
		c.ServerName = s.host
	}
	return c
}

// RecipientRefusedError reports that the server refused the recipient at
// RCPT TO. Err is the server's reply (a *textproto.Error carrying its code:
// 5xx is permanent, 4xx may pass on a later try).
type RecipientRefusedError struct {
	// Server is the server's URL, without its password.
	Server string
	// Recipient is the refused address.
	Recipient string
	// Err is the server's reply.
	Err error
}

// Error names the recipient and quotes the server's reply.
func (e *RecipientRefusedError) Error() string {
	return "mail: SMTP " + e.Server + " refused recipient " + e.Recipient + ": " + e.Err.Error()
}

// Unwrap returns the server's reply.
func (e *RecipientRefusedError) Unwrap() error { return e.Err }

// Send submits m over a new connection; see Sender for the contract. A
// recipient the server refuses gives a *RecipientRefusedError. A server that
// does not answer within the configured timeouts gives an error wrapping
// os.ErrDeadlineExceeded. Send counts the message as sent once the server has
// accepted its data: a failing QUIT after that does not fail it, since a
// retry would deliver it again.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	raw, err := Render(m, s.domain)
	if err != nil {
		return err
	}
	if err := s.send(ctx, m, raw); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			return fmt.Errorf("mail: SMTP %s: %w (%v)", s.redacted, ctxErr, err)
		}
		return err
	}
	return nil
}

func (s *SMTP) send(ctx context.Context, m Message, raw []byte) error {
	fail := func(step string, err error) error {
		return fmt.Errorf("mail: SMTP %s: %s: %w", s.redacted, step, err)
	}
	d := net.Dialer{Timeout: s.cfg.DialTimeout}
	dialCtx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	conn, err := d.DialContext(dialCtx, "tcp", s.addr)
	if err != nil {
		return fail("connect", err)
	}
	defer conn.Close()
	// A cancelled context interrupts whatever I/O is under way.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if s.implicitTLS {
		tc := tls.Client(conn, s.tlsConfig())
		if err := tc.HandshakeContext(dialCtx); err != nil {
			return fail("TLS handshake", err)
		}
		conn = tc
	}

	// net/smtp has no timeouts of its own; each step gets a fresh deadline
	// on the connection underneath it (a TLS layer included). Deadlines are
	// I/O timeouts, so they use the wall clock, not the engine's.
	step := func(name string, f func() error) error {
		// The context's own deadline is left to the AfterFunc above, which
		// runs once ctx.Err() is set, so Send can report it as such.
		_ = conn.SetDeadline(time.Now().Add(s.cfg.CommandTimeout))
		if ctx.Err() != nil {
			// The context ended meanwhile: keep the AfterFunc's verdict.
			_ = conn.SetDeadline(time.Unix(1, 0))
		}
		if err := f(); err != nil {
			return fail(name, err)
		}
		return nil
	}

	var c *smtp.Client
	if err := step("greeting", func() (err error) { c, err = smtp.NewClient(conn, s.host); return err }); err != nil {
		return err
	}
	defer c.Close()
	if err := step("EHLO", func() error { return c.Hello(s.domain) }); err != nil {
		return err
	}
	if !s.implicitTLS && s.starttls != starttlsOff {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := step("STARTTLS", func() error { return c.StartTLS(s.tlsConfig()) }); err != nil {
				return err
			}
		} else if s.starttls == starttlsRequired {
			return fail("STARTTLS", errors.New("the server does not offer STARTTLS and the URL says starttls=required"))
		}
	}
	if s.username != "" {
		_, isTLS := c.TLSConnectionState()
		if !isTLS && !s.loopback() {
			return fail("AUTH", errors.New("refusing to send the password without TLS to a host that is not loopback"))
		}
		if ok, mechs := c.Extension("AUTH"); !ok || !slices.Contains(strings.Fields(strings.ToUpper(mechs)), "PLAIN") {
			return fail("AUTH", errors.New("the server does not offer AUTH PLAIN"))
		}
		if err := step("AUTH", func() error { return c.Auth(plainAuth{s.username, s.password}) }); err != nil {
			return err
		}
	}
	if err := step("MAIL FROM", func() error { return c.Mail(m.From.Address) }); err != nil {
		return err
	}
	var rcptErr error
	if err := step("RCPT TO", func() error { rcptErr = c.Rcpt(m.To.Address); return rcptErr }); err != nil {
		if _, refused := errors.AsType[*textproto.Error](rcptErr); refused {
			return &RecipientRefusedError{Server: s.redacted, Recipient: m.To.Address, Err: rcptErr}
		}
		return err
	}
	if err := step("DATA", func() error {
		w, err := c.Data()
		if err != nil {
			return err
		}
		if _, err := w.Write(raw); err != nil {
			return err
		}
		return w.Close() // reads the server's verdict on the message
	}); err != nil {
		return err
	}
	_ = step("QUIT", c.Quit) // the message is accepted: see Send
	return nil
}

// plainAuth is AUTH PLAIN (RFC 4616). net/smtp's PlainAuth would do, but it
// only knows "localhost", 127.0.0.1 and ::1 as loopback and decides by a
// server name it must be told again; Send already decided, with the same
// rule for every loopback address.
type plainAuth struct{ username, password string }

func (a plainAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	return "PLAIN", []byte("\x00" + a.username + "\x00" + a.password), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected server challenge during AUTH PLAIN")
	}
	return nil, nil
}
