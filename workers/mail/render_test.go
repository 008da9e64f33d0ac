package mail_test

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/subs-engine/subs/workers/mail"
)

var (
	testCause = uuid.MustParse("01890a5d-ac96-774b-bcce-b302099a8057")
	testDate  = time.Date(2027, 3, 1, 9, 30, 0, 0, time.UTC)
)

func plainMessage() mail.Message {
	return mail.Message{
		CausationID: testCause,
		Kind:        "password_reset",
		From:        netmail.Address{Name: "Subs", Address: "no-reply@subs.example"},
		To:          netmail.Address{Name: "Ada Lovelace", Address: "ada@example.com"},
		Subject:     "Reset your password",
		Text:        "Hello Ada,\n\nopen the link.\n",
		Date:        testDate,
	}
}

// MustParse parses raw as an RFC 5322 message, failing the test if it does not.
func MustParse(tb testing.TB, raw []byte) *netmail.Message {
	tb.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		tb.Fatalf("ReadMessage: %v\n%s", err, raw)
	}
	return msg
}

// MustQPBody decodes a quoted-printable body.
func MustQPBody(tb testing.TB, r io.Reader) string {
	tb.Helper()
	b, err := io.ReadAll(quotedprintable.NewReader(r))
	if err != nil {
		tb.Fatalf("quoted-printable body: %v", err)
	}
	return string(b)
}

func TestMessageID(t *testing.T) {
	t.Parallel()
	if got, want := mail.MessageID(testCause, "password_reset", "mail.example"), "<01890a5d-ac96-774b-bcce-b302099a8057.password_reset@mail.example>"; got != want {
		t.Errorf("MessageID = %q, want %q", got, want)
	}
	if got, want := plainMessage().MessageID(""), "<01890a5d-ac96-774b-bcce-b302099a8057.password_reset@subs.localhost>"; got != want {
		t.Errorf("Message.MessageID(\"\") = %q, want %q", got, want)
	}
}

func TestRender_plainHeaders(t *testing.T) {
	t.Parallel()
	raw, err := mail.Render(plainMessage(), "mail.example")
	if err != nil {
		t.Fatal(err)
	}
	want := "Message-ID: <01890a5d-ac96-774b-bcce-b302099a8057.password_reset@mail.example>\r\n" +
		"Date: Mon, 01 Mar 2027 09:30:00 +0000\r\n" +
		"From: \"Subs\" <no-reply@subs.example>\r\n" +
		"To: \"Ada Lovelace\" <ada@example.com>\r\n" +
		"Subject: Reset your password\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"X-Subs-Kind: password_reset\r\n" +
		"X-Subs-Causation-Id: 01890a5d-ac96-774b-bcce-b302099a8057\r\n" +
		"\r\n" +
		"Hello Ada,\r\n\r\nopen the link.\r\n"
	if string(raw) != want {
		t.Errorf("Render =\n%s\nwant\n%s", raw, want)
	}
	again, _ := mail.Render(plainMessage(), "mail.example")
	if !bytes.Equal(raw, again) {
		t.Error("Render is not deterministic")
	}
}

func TestRender_utf8(t *testing.T) {
	t.Parallel()
	m := plainMessage()
	m.Subject = "Passwort zurücksetzen — Schritt 1 von 2 ✓ " + strings.Repeat("ä", 60)
	m.To.Name = "Jürgen Müller, \"Jü\""
	m.Text = "Grüße,\r\nline two\rline three\n" + strings.Repeat("x", 2000) + "\n"
	raw, err := mail.Render(m, "")
	if err != nil {
		t.Fatal(err)
	}
	checkWire(t, raw)
	msg := MustParse(t, raw)
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != m.Subject {
		t.Errorf("Subject = %q, %v; want %q", subject, err, m.Subject)
	}
	to, err := msg.Header.AddressList("To")
	if err != nil || len(to) != 1 || *to[0] != m.To {
		t.Errorf("To = %v, %v; want %v", to, err, m.To)
	}
	if got, want := MustQPBody(t, msg.Body), "Grüße,\r\nline two\r\nline three\r\n"+strings.Repeat("x", 2000)+"\r\n"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
}

func TestRender_html(t *testing.T) {
	t.Parallel()
	m := plainMessage()
	m.HTML = "<p>Hello <b>Ada</b> — ✓</p>"
	raw, err := mail.Render(m, "")
	if err != nil {
		t.Fatal(err)
	}
	checkWire(t, raw)
	msg := MustParse(t, raw)
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q, %v", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var got []string
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if cte := p.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
			t.Errorf("part Content-Transfer-Encoding = %q", cte)
		}
		got = append(got, p.Header.Get("Content-Type")+"|"+MustQPBody(t, p))
	}
	want := []string{
		"text/plain; charset=utf-8|" + strings.ReplaceAll(m.Text, "\n", "\r\n"),
		"text/html; charset=utf-8|" + m.HTML + "\r\n",
	}
	if strings.Join(got, "\n--\n") != strings.Join(want, "\n--\n") {
		t.Errorf("parts =\n%q\nwant\n%q", got, want)
	}
}

func TestRender_refuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*mail.Message)
		domain string
		field  string
		reason error
	}{
		{"subject with CRLF", func(m *mail.Message) { m.Subject = "hi\r\nBcc: eve@example.com" }, "", "Subject", mail.ErrHeaderInjection},
		{"subject with LF", func(m *mail.Message) { m.Subject = "hi\nBcc: eve@example.com" }, "", "Subject", mail.ErrHeaderInjection},
		{"to name with CR", func(m *mail.Message) { m.To.Name = "Eve\rBcc: x@example.com" }, "", "To.Name", mail.ErrHeaderInjection},
		{"from address with LF", func(m *mail.Message) { m.From.Address = "a@example.com\nBcc: x@example.com" }, "", "From.Address", mail.ErrHeaderInjection},
		{"to address invalid", func(m *mail.Message) { m.To.Address = "not an address" }, "", "To.Address", mail.ErrInvalidAddress},
		{"to address with a name", func(m *mail.Message) { m.To.Address = "Eve <eve@example.com>" }, "", "To.Address", mail.ErrInvalidAddress},
		{"to address not ASCII", func(m *mail.Message) { m.To.Address = "jürgen@example.com" }, "", "To.Address", mail.ErrInvalidAddress},
		{"to address without domain", func(m *mail.Message) { m.To.Address = "eve" }, "", "To.Address", mail.ErrInvalidAddress},
		{"to address missing", func(m *mail.Message) { m.To.Address = "" }, "", "To.Address", mail.ErrRequired},
		{"subject missing", func(m *mail.Message) { m.Subject = " " }, "", "Subject", mail.ErrRequired},
		{"subject invalid UTF-8", func(m *mail.Message) { m.Subject = "\xff" }, "", "Subject", mail.ErrInvalidUTF8},
		{"text missing", func(m *mail.Message) { m.Text = "" }, "", "Text", mail.ErrRequired},
		{"html invalid UTF-8", func(m *mail.Message) { m.HTML = "<p>\xc3</p>" }, "", "HTML", mail.ErrInvalidUTF8},
		{"no causation", func(m *mail.Message) { m.CausationID = uuid.Nil }, "", "CausationID", mail.ErrRequired},
		{"kind not snake", func(m *mail.Message) { m.Kind = "PasswordReset" }, "", "Kind", mail.ErrInvalidKind},
		{"kind with dot", func(m *mail.Message) { m.Kind = "a.b" }, "", "Kind", mail.ErrInvalidKind},
		{"no date", func(m *mail.Message) { m.Date = time.Time{} }, "", "Date", mail.ErrInvalidDate},
		{"bad domain", func(m *mail.Message) {}, "a b.example", "domain", mail.ErrInvalidDomain},
		{"domain with CRLF", func(m *mail.Message) {}, "x.example\r\nBcc: e@x", "domain", mail.ErrInvalidDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := plainMessage()
			tt.change(&m)
			raw, err := mail.Render(m, tt.domain)
			fe, ok := errors.AsType[*mail.FieldError](err)
			if !ok {
				t.Fatalf("Render = %q, %v; want a *FieldError", raw, err)
			}
			if fe.Field != tt.field || !errors.Is(err, tt.reason) {
				t.Errorf("error = %v (field %q); want field %q, reason %v", err, fe.Field, tt.field, tt.reason)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %q", err, tt.field)
			}
		})
	}
}

func TestMessage_String_hidesBodies(t *testing.T) {
	t.Parallel()
	m := plainMessage()
	m.Text = "https://subs.example/reset?token=SECRET"
	m.HTML = m.Text
	for _, s := range []string{m.String(), m.GoString()} {
		if strings.Contains(s, "SECRET") || strings.Contains(s, m.Subject) {
			t.Errorf("%s shows the body or subject", s)
		}
	}
}

// checkWire asserts what every rendered message must satisfy on the wire:
// CRLF line endings only, 7-bit, no line over 998 characters.
func checkWire(tb testing.TB, raw []byte) {
	tb.Helper()
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if bytes.ContainsAny(line, "\r\n") {
			tb.Fatalf("line %d has a bare CR or LF: %q", i+1, line)
		}
		if len(line) > 998 {
			tb.Fatalf("line %d is %d characters long", i+1, len(line))
		}
		for _, c := range line {
			if c >= 0x80 {
				tb.Fatalf("line %d is not 7-bit: %q", i+1, line)
			}
		}
	}
}

func FuzzRender(f *testing.F) {
	f.Add("Reset your password", "Hello,\nbye\n", "Ada Lovelace", "")
	f.Add("Passwort zurücksetzen", "Grüße\r\n", "Jürgen \"Jü\" Müller", "<p>ü</p>")
	f.Add(strings.Repeat("a", 1200), strings.Repeat("b ", 700), strings.Repeat("c", 1100), "")
	f.Add(" =?utf-8?q?x?= ", ".\r\n.\n\r", "  ", "--x")
	f.Add("a\tb  c", "\x00\x7f", "a,b@c <d>", "")
	f.Fuzz(func(t *testing.T, subject, text, name, html string) {
		m := plainMessage()
		m.Subject, m.Text, m.To.Name, m.HTML = subject, text, name, html
		raw, err := mail.Render(m, "")
		if err != nil {
			if _, ok := errors.AsType[*mail.FieldError](err); !ok {
				t.Fatalf("Render error is not a *FieldError: %v", err)
			}
			return
		}
		checkWire(t, raw)
		msg := MustParse(t, raw)
		got, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if err != nil || got != subject {
			t.Errorf("Subject = %q, %v; want %q", got, err, subject)
		}
		to, err := msg.Header.AddressList("To")
		if err != nil || len(to) != 1 || to[0].Address != m.To.Address {
			t.Fatalf("To = %v, %v", to, err)
		}
		if to[0].Name != name {
			t.Errorf("To name = %q, want %q", to[0].Name, name)
		}
		if got := msg.Header.Get("Message-ID"); got != m.MessageID("") {
			t.Errorf("Message-ID = %q", got)
		}
	})
}
