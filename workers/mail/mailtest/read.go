package mailtest

import (
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/textproto"
	"strings"
	"testing"
)

// PlainText returns the decoded text/plain part of a raw RFC 5322 message,
// as a mail client shows it: quoted-printable undone, the text part picked
// out of a multipart/alternative.
func PlainText(tb testing.TB, raw string) string {
	tb.Helper()
	msg, err := netmail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		tb.Fatal(err)
	}
	decode := func(h textproto.MIMEHeader, body io.Reader) string {
		if strings.EqualFold(h.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(body)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			tb.Fatal(err)
		}
		return string(b)
	}
	if !strings.HasPrefix(mediaType, "multipart/") {
		return decode(textproto.MIMEHeader(msg.Header), msg.Body)
	}
	parts := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := parts.NextPart()
		if err != nil {
			tb.Fatalf("no text/plain part: %v", err)
		}
		if strings.HasPrefix(part.Header.Get("Content-Type"), "text/plain") {
			return decode(part.Header, part)
		}
	}
}
