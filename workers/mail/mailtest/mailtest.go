// Package mailtest is the behavioural contract every mail.Sender meets, run
// as one suite against each transport (Watermill's pubsub/tests style), and
// an in-process SMTP server for tests that check what was sent over SMTP.
package mailtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/subs-engine/subs/workers/mail"
)

// Domain is the Message-ID domain the senders under test must be built with,
// so the suite can expect exact Message-IDs.
const Domain = "mailtest.localhost"

// Received is one delivered message as the transport stored or received it.
type Received struct {
	// Raw is the message exactly as delivered.
	Raw []byte
	// EnvelopeFrom is the SMTP MAIL FROM address; empty for transports
	// without an envelope (Maildir).
	EnvelopeFrom string
	// EnvelopeTo lists the SMTP RCPT TO addresses; empty for transports
	// without an envelope.
	EnvelopeTo []string
	// AuthUser is the user name the SMTP session authenticated as, if any.
	AuthUser string
	// TLS reports whether the SMTP session ran over TLS.
	TLS bool
}

// NewSenderFunc builds a fresh sender, with Domain as its Message-ID domain,
// and a function that returns everything it has delivered so far. Each call
// must return a sender that shares no deliveries with any other, so cases
// can run in parallel.
type NewSenderFunc func(t *testing.T) (mail.Sender, func() []Received)

// Run runs the contract suite against the senders newSender builds. What a
// repeated Send delivers differs by transport (one file in a maildir, two
// messages over SMTP); the suite only requires that every delivery of one
// Message is the same bytes, and leaves the count to the transport's own
// tests.
func Run(t *testing.T, newSender NewSenderFunc) {
	cases := []struct {
		name string
		test func(t *testing.T, s mail.Sender, received func() []Received)
	}{
		{"PlainMessageArrivesWithExactHeaders", testPlain},
		{"UTF8SubjectNameAndBodySurvive", testUTF8},
		{"HTMLIsMultipartAlternative", testHTML},
		{"HeaderInjectionIsRefused", testHeaderInjection},
		{"InvalidAddressIsRefused", testInvalidAddress},
		{"RepeatedSendCarriesTheSameMessage", testRepeated},
		{"ConcurrentSendsAllArrive", testConcurrent},
		{"CancelledContextSendsNothing", testCancelled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, received := newSender(t)
			c.test(t, s, received)
		})
	}
}

// Message returns a valid plain-text message for cause, the suite's fixture;
// transport tests use it too.
func Message(cause uuid.UUID) mail.Message {
	return mail.Message{
		CausationID: cause,
		Kind:        "password_reset",
		From:        netmail.Address{Name: "Subs", Address: "no-reply@subs.example"},
		To:          netmail.Address{Name: "Ada Lovelace", Address: "ada@example.com"},
		Subject:     "Reset your password",
		Text:        "Hello Ada,\n\nopen https://subs.example/reset to choose a new password.\n",
		Date:        time.Date(2027, 3, 1, 9, 30, 0, 0, time.FixedZone("CET", 3600)),
	}
}

func testPlain(t *testing.T, s mail.Sender, received func() []Received) {
	m := Message(uuid.New())
	mustSend(t, s, m)
	got := mustReceive(t, received, 1)
	msg := MustParse(t, got[0].Raw)
	for _, h := range []struct{ name, want string }{
		{"Message-ID", mail.MessageID(m.CausationID, m.Kind, Domain)},
		{"Date", "Mon, 01 Mar 2027 09:30:00 +0100"},
		{"From", `"Subs" <no-reply@subs.example>`},
		{"To", `"Ada Lovelace" <ada@example.com>`},
		{"Subject", "Reset your password"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "quoted-printable"},
		{"X-Subs-Kind", "password_reset"},
		{"X-Subs-Causation-Id", m.CausationID.String()},
	} {
		if got := msg.Header.Get(h.name); got != h.want {
			t.Errorf("%s = %q, want %q", h.name, got, h.want)
		}
	}
	date, err := msg.Header.Date()
	if err != nil || !date.Equal(m.Date) {
		t.Errorf("Date parses as %v, %v; want %v", date, err, m.Date)
	}
	if got, want := qp(t, msg.Body), strings.ReplaceAll(m.Text, "\n", "\r\n"); got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
}

func testUTF8(t *testing.T, s mail.Sender, received func() []Received) {
	m := Message(uuid.New())
	m.Subject = "Passwort zurücksetzen — schnell ✓ " + strings.Repeat("äöü ", 30)
	m.To.Name = "Jürgen Müller-Lüdenscheidt"
	m.Text = "Hallo Jürgen,\n\n" + strings.Repeat("Grüße aus Köln. ", 80) + "\n.\n.. a line with dots\n"
	mustSend(t, s, m)
	got := mustReceive(t, received, 1)
	msg := MustParse(t, got[0].Raw)
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != m.Subject {
		t.Errorf("Subject = %q, %v; want %q", subject, err, m.Subject)
	}
	to, err := msg.Header.AddressList("To")
	if err != nil || len(to) != 1 || *to[0] != m.To {
		t.Errorf("To = %v, %v; want %v", to, err, m.To)
	}
	if got, want := qp(t, msg.Body), strings.ReplaceAll(m.Text, "\n", "\r\n"); got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
}

func testHTML(t *testing.T, s mail.Sender, received func() []Received) {
	m := Message(uuid.New())
	m.HTML = "<p>Hello <b>Ada</b>, open <a href=\"https://subs.example/reset\">this link</a> ✓</p>\n"
	mustSend(t, s, m)
	got := mustReceive(t, received, 1)
	msg := MustParse(t, got[0].Raw)
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v), want multipart/alternative", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	want := []struct{ contentType, body string }{
		{"text/plain; charset=utf-8", m.Text},
		{"text/html; charset=utf-8", m.HTML},
	}
	for i, w := range want {
		p, err := mr.NextRawPart()
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		if got := p.Header.Get("Content-Type"); got != w.contentType {
			t.Errorf("part %d Content-Type = %q, want %q", i+1, got, w.contentType)
		}
		if got, want := qp(t, p), strings.ReplaceAll(w.body, "\n", "\r\n"); got != want {
			t.Errorf("part %d body = %q, want %q", i+1, got, want)
		}
	}
	if _, err := mr.NextRawPart(); err != io.EOF {
		t.Errorf("after two parts: %v, want io.EOF", err)
	}
}

func testHeaderInjection(t *testing.T, s mail.Sender, received func() []Received) {
	for _, tt := range []struct {
		field  string
		change func(*mail.Message)
	}{
		{"Subject", func(m *mail.Message) { m.Subject = "Hello\r\nBcc: eve@example.com" }},
		{"Subject", func(m *mail.Message) { m.Subject = "Hello\nBcc: eve@example.com" }},
		{"To.Name", func(m *mail.Message) { m.To.Name = "Ada\r\nBcc: eve@example.com" }},
		{"From.Name", func(m *mail.Message) { m.From.Name = "Subs\rBcc: eve@example.com" }},
		{"To.Address", func(m *mail.Message) { m.To.Address = "ada@example.com\r\nBcc: eve@example.com" }},
	} {
		m := Message(uuid.New())
		tt.change(&m)
		err := s.Send(context.Background(), m)
		mustFieldError(t, err, tt.field, mail.ErrHeaderInjection)
	}
	if got := received(); len(got) != 0 {
		t.Errorf("%d messages delivered, want none", len(got))
	}
}

func testInvalidAddress(t *testing.T, s mail.Sender, received func() []Received) {
	for _, tt := range []struct {
		field  string
		change func(*mail.Message)
	}{
		{"To.Address", func(m *mail.Message) { m.To.Address = "ada at example.com" }},
		{"To.Address", func(m *mail.Message) { m.To.Address = "Ada <ada@example.com>" }},
		{"From.Address", func(m *mail.Message) { m.From.Address = "" }},
	} {
		m := Message(uuid.New())
		tt.change(&m)
		mustFieldError(t, s.Send(context.Background(), m), tt.field, nil)
	}
	if got := received(); len(got) != 0 {
		t.Errorf("%d messages delivered, want none", len(got))
	}
}

func testRepeated(t *testing.T, s mail.Sender, received func() []Received) {
	m := Message(uuid.New())
	mustSend(t, s, m)
	mustSend(t, s, m)
	got := received()
	if len(got) < 1 || len(got) > 2 {
		t.Fatalf("%d deliveries, want 1 (deduplicated) or 2", len(got))
	}
	want := mail.MessageID(m.CausationID, m.Kind, Domain)
	for i, r := range got {
		if id := MustParse(t, r.Raw).Header.Get("Message-ID"); id != want {
			t.Errorf("delivery %d: Message-ID = %q, want %q", i+1, id, want)
		}
		if !bytes.Equal(r.Raw, got[0].Raw) {
			t.Errorf("delivery %d differs from the first", i+1)
		}
	}
}

func testConcurrent(t *testing.T, s mail.Sender, received func() []Received) {
	const n = 8
	want := map[string]bool{}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		m := Message(uuid.New())
		want[m.MessageID(Domain)] = true
		wg.Go(func() { errs[i] = s.Send(context.Background(), m) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got := mustReceive(t, received, n)
	for _, r := range got {
		id := MustParse(t, r.Raw).Header.Get("Message-ID")
		if !want[id] {
			t.Errorf("unexpected or repeated Message-ID %q", id)
		}
		delete(want, id)
	}
}

func testCancelled(t *testing.T, s mail.Sender, received func() []Received) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Send(ctx, Message(uuid.New()))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Send with a cancelled context = %v, want an error wrapping context.Canceled", err)
	}
	if got := received(); len(got) != 0 {
		t.Errorf("%d messages delivered, want none", len(got))
	}
}

func mustSend(t *testing.T, s mail.Sender, m mail.Message) {
	t.Helper()
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// mustReceive returns the deliveries, failing unless there are exactly n.
func mustReceive(t *testing.T, received func() []Received, n int) []Received {
	t.Helper()
	got := received()
	if len(got) != n {
		t.Fatalf("%d deliveries, want %d", len(got), n)
	}
	for _, r := range got {
		CheckWire(t, r.Raw)
	}
	return got
}

func mustFieldError(t *testing.T, err error, field string, reason error) {
	t.Helper()
	fe, ok := errors.AsType[*mail.FieldError](err)
	if !ok {
		t.Errorf("Send = %v, want a *mail.FieldError for %s", err, field)
		return
	}
	if fe.Field != field || (reason != nil && !errors.Is(err, reason)) {
		t.Errorf("Send = %v, want field %s (%v)", err, field, reason)
	}
}

// MustParse parses raw as an RFC 5322 message, failing tb if it does not.
func MustParse(tb testing.TB, raw []byte) *netmail.Message {
	tb.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		tb.Fatalf("mailtest: message does not parse: %v", err)
	}
	return msg
}

// CheckWire fails tb unless raw has CRLF line endings only, is 7-bit, and
// has no line over 998 characters (RFC 5322 §2.1.1).
func CheckWire(tb testing.TB, raw []byte) {
	tb.Helper()
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		tb.Errorf("mailtest: message does not end with CRLF")
	}
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if bytes.ContainsAny(line, "\r\n") {
			tb.Fatalf("mailtest: line %d has a bare CR or LF", i+1)
		}
		if len(line) > 998 {
			tb.Fatalf("mailtest: line %d is %d characters long", i+1, len(line))
		}
		for _, c := range line {
			if c >= 0x80 {
				tb.Fatalf("mailtest: line %d is not 7-bit", i+1)
			}
		}
	}
}

func qp(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(quotedprintable.NewReader(r))
	if err != nil {
		t.Fatalf("quoted-printable body: %v", err)
	}
	return string(b)
}
