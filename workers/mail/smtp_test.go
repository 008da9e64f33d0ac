package mail_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/subs-engine/subs/workers/mail"
	"github.com/subs-engine/subs/workers/mail/mailtest"
)

const (
	testUser     = "subs"
	testPassword = "s3cret-Pa55word"
)

// mustSMTP builds an SMTP sender for rawURL with a short command timeout.
func mustSMTP(t *testing.T, rawURL string, cfg mail.SMTPConfig) *mail.SMTP {
	t.Helper()
	if cfg.CommandTimeout == 0 {
		cfg.CommandTimeout = 5 * time.Second
	}
	s, err := mail.NewSMTP(rawURL, mailtest.Domain, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSMTP_contract(t *testing.T) {
	t.Parallel()
	mailtest.Run(t, func(t *testing.T) (mail.Sender, func() []mailtest.Received) {
		srv := mailtest.NewServer(t, mailtest.ServerConfig{})
		return mustSMTP(t, srv.URL(), mail.SMTPConfig{}), srv.Received
	})
}

func TestSMTP_contractWithAuth(t *testing.T) {
	t.Parallel()
	mailtest.Run(t, func(t *testing.T) (mail.Sender, func() []mailtest.Received) {
		srv := mailtest.NewServer(t, mailtest.ServerConfig{Username: testUser, Password: testPassword})
		return mustSMTP(t, srv.URL(), mail.SMTPConfig{}), srv.Received
	})
}

func TestSMTP_sameMessageTwiceIsDeliveredTwice(t *testing.T) {
	t.Parallel()
	srv := mailtest.NewServer(t, mailtest.ServerConfig{})
	s := mustSMTP(t, srv.URL(), mail.SMTPConfig{})
	m := mailtest.Message(uuid.New())
	for range 2 {
		if err := s.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	// SMTP cannot deduplicate: the outbox records sends as events, so only a
	// crash between send and record resends, and then with the same
	// Message-ID, which lets the recipient's software tell the copies apart.
	got := srv.Received()
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want 2", len(got))
	}
	for i, r := range got {
		if id := mailtest.MustParse(t, r.Raw).Header.Get("Message-ID"); id != m.MessageID(mailtest.Domain) {
			t.Errorf("delivery %d: Message-ID = %q, want %q", i+1, id, m.MessageID(mailtest.Domain))
		}
	}
}

func TestSMTP_envelopeAndAuthOverLoopback(t *testing.T) {
	t.Parallel()
	srv := mailtest.NewServer(t, mailtest.ServerConfig{Username: testUser, Password: testPassword})
	s := mustSMTP(t, srv.URL(), mail.SMTPConfig{})
	m := mailtest.Message(uuid.New())
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := srv.Received()
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want 1", len(got))
	}
	r := got[0]
	if r.AuthUser != testUser || r.EnvelopeFrom != m.From.Address || len(r.EnvelopeTo) != 1 || r.EnvelopeTo[0] != m.To.Address {
		t.Errorf("session: user %q, MAIL FROM %q, RCPT TO %q", r.AuthUser, r.EnvelopeFrom, r.EnvelopeTo)
	}
	if strings.Contains(s.String(), testPassword) {
		t.Errorf("String() = %q shows the password", s)
	}
}

func TestSMTP_wrongPasswordFailsWithoutShowingIt(t *testing.T) {
	t.Parallel()
	srv := mailtest.NewServer(t, mailtest.ServerConfig{Username: testUser, Password: testPassword})
	s := mustSMTP(t, "smtp://"+testUser+":wrong-Pa55word@"+srv.Addr(), mail.SMTPConfig{})
	err := s.Send(context.Background(), mailtest.Message(uuid.New()))
	if err == nil || !strings.Contains(err.Error(), "AUTH") {
		t.Fatalf("Send = %v, want an AUTH error", err)
	}
	if strings.Contains(err.Error(), "wrong-Pa55word") {
		t.Errorf("error %q shows the password", err)
	}
	if n := len(srv.Received()); n != 0 {
		t.Errorf("%d deliveries, want 0", n)
	}
}

func TestSMTP_refusedRecipientIsNamed(t *testing.T) {
	t.Parallel()
	srv := mailtest.NewServer(t, mailtest.ServerConfig{RefuseRecipients: []string{"gone@example.com"}})
	s := mustSMTP(t, srv.URL(), mail.SMTPConfig{})
	m := mailtest.Message(uuid.New())
	m.To.Address = "gone@example.com"
	err := s.Send(context.Background(), m)
	refused, ok := errors.AsType[*mail.RecipientRefusedError](err)
	if !ok || refused.Recipient != "gone@example.com" || !strings.Contains(err.Error(), "gone@example.com") {
		t.Fatalf("Send = %v, want a RecipientRefusedError naming gone@example.com", err)
	}
	if tpErr, ok := errors.AsType[*textproto.Error](err); !ok || tpErr.Code != 550 {
		t.Errorf("server reply = %v, want code 550", err)
	}
	if n := len(srv.Received()); n != 0 {
		t.Errorf("%d deliveries, want 0", n)
	}
}

// hangingServer accepts connections on loopback and, after greet (nothing
// when empty) and an optional reply to each line, stops answering.
func hangingServer(t *testing.T, greet string, answers int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go func() {
				if greet == "" {
					return // hold the connection, say nothing
				}
				_, _ = c.Write([]byte(greet + "\r\n"))
				r := bufio.NewReader(c)
				for range answers {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					_, _ = c.Write([]byte("250 ok\r\n"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestSMTP_hangingServerTimesOut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		greet   string
		answers int
	}{
		{"no greeting", "", 0},
		{"no answer to EHLO", "220 hang.example ESMTP", 0},
		{"no answer to MAIL", "220 hang.example ESMTP", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := hangingServer(t, tt.greet, tt.answers)
			s := mustSMTP(t, "smtp://"+addr+"?starttls=off", mail.SMTPConfig{CommandTimeout: time.Second})
			start := time.Now()
			err := s.Send(context.Background(), mailtest.Message(uuid.New()))
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("Send = %v, want a timeout", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Send took %v with a 1s command timeout", d)
			}
		})
	}
}

func TestSMTP_contextDeadlineBoundsSend(t *testing.T) {
	t.Parallel()
	addr := hangingServer(t, "", 0)
	s := mustSMTP(t, "smtp://"+addr, mail.SMTPConfig{CommandTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, mailtest.Message(uuid.New()))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %v with a 300ms context", d)
	}
}

func TestSMTP_starttls(t *testing.T) {
	t.Parallel()
	serverTLS, clientTLS := testTLS(t)
	tests := []struct {
		name     string
		server   mailtest.ServerConfig
		query    string
		wantTLS  bool
		wantFail string
	}{
		{"upgrades when offered", mailtest.ServerConfig{TLSConfig: serverTLS}, "", true, ""},
		{"upgrades with credentials", mailtest.ServerConfig{TLSConfig: serverTLS, Username: testUser, Password: testPassword}, "", true, ""},
		{"required and offered", mailtest.ServerConfig{TLSConfig: serverTLS}, "?starttls=required", true, ""},
		{"off though offered", mailtest.ServerConfig{TLSConfig: serverTLS}, "?starttls=off", false, ""},
		{"plain when not offered", mailtest.ServerConfig{}, "", false, ""},
		{"required but not offered", mailtest.ServerConfig{}, "?starttls=required", false, "STARTTLS"},
		{"implicit TLS", mailtest.ServerConfig{TLSConfig: serverTLS, ImplicitTLS: true, Username: testUser, Password: testPassword}, "", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := mailtest.NewServer(t, tt.server)
			s := mustSMTP(t, srv.URL()+tt.query, mail.SMTPConfig{TLSConfig: clientTLS})
			err := s.Send(context.Background(), mailtest.Message(uuid.New()))
			if tt.wantFail != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantFail) {
					t.Errorf("Send = %v, want an error about %s", err, tt.wantFail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := srv.Received()
			if len(got) != 1 || got[0].TLS != tt.wantTLS {
				t.Errorf("deliveries %d, TLS %v; want 1, TLS %v", len(got), len(got) == 1 && got[0].TLS, tt.wantTLS)
			}
		})
	}
}

func TestSMTP_untrustedCertificateFails(t *testing.T) {
	t.Parallel()
	serverTLS, _ := testTLS(t)
	srv := mailtest.NewServer(t, mailtest.ServerConfig{TLSConfig: serverTLS})
	s := mustSMTP(t, srv.URL(), mail.SMTPConfig{}) // system roots only
	if err := s.Send(context.Background(), mailtest.Message(uuid.New())); err == nil {
		t.Error("Send over STARTTLS with an untrusted certificate succeeded")
	}
}

func TestNewSMTP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		url     string
		wantErr string // "" means valid
	}{
		{"plain", "smtp://mail.example:587", ""},
		{"default port", "smtp://mail.example", ""},
		{"credentials", "smtp://u:" + testPassword + "@mail.example:587", ""},
		{"required", "smtp://mail.example?starttls=required", ""},
		{"off on loopback with credentials", "smtp://u:" + testPassword + "@127.0.0.1:25?starttls=off", ""},
		{"smtps", "smtps://u:" + testPassword + "@mail.example", ""},
		{"ipv6 loopback", "smtp://[::1]:2525", ""},
		{"scheme", "http://mail.example", "scheme"},
		{"no host", "smtp://:25", "host"},
		{"path", "smtp://mail.example/x", "nothing more"},
		{"unknown query", "smtp://mail.example?tls=yes", "tls"},
		{"bad starttls", "smtp://mail.example?starttls=maybe", "starttls"},
		{"starttls on smtps", "smtps://mail.example?starttls=off", "smtps"},
		{"user without password", "smtp://u@mail.example", "password"},
		{"off to remote host with credentials", "smtp://u:" + testPassword + "@mail.example?starttls=off", "in clear"},
		{"unparsable", "smtp://u:" + testPassword + "@mail.example:port", "does not parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := mail.NewSMTP(tt.url, "", mail.SMTPConfig{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewSMTP(%q) = %v", tt.url, err)
				}
				if strings.Contains(s.String(), testPassword) {
					t.Errorf("String() = %q shows the password", s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewSMTP(%q) = %v, want an error about %q", tt.url, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
	if _, err := mail.NewSMTP("smtp://mail.example", "", mail.SMTPConfig{CommandTimeout: -time.Second}); err == nil || !strings.Contains(err.Error(), "CommandTimeout") {
		t.Errorf("negative CommandTimeout: %v, want an error naming it", err)
	}
}

func TestSMTP_connectErrorHidesPassword(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s := mustSMTP(t, "smtp://"+testUser+":"+testPassword+"@"+addr, mail.SMTPConfig{})
	err = s.Send(context.Background(), mailtest.Message(uuid.New()))
	if err == nil {
		t.Fatal("Send to a closed port succeeded")
	}
	if strings.Contains(err.Error(), testPassword) || !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q: want the address, not the password", err)
	}
}

// testTLS returns a server configuration with a fresh self-signed
// certificate for 127.0.0.1 and a client configuration trusting it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}
