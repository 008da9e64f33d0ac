package mail

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"
)

// Header line limits from RFC 5322 §2.1.1: lines SHOULD stay within 78
// characters and MUST stay within 998 (both without the CRLF).
const (
	foldAt      = 78
	maxLineLen  = 998
	maxPlainRun = 200 // longest run without a space a header keeps unencoded
)

// Render returns m as an RFC 5322 message with CRLF line endings, its
// Message-ID built from m and domain (an empty domain means DefaultDomain).
//
// Headers: Message-ID, Date, From, To, Subject, MIME-Version, Content-Type,
// Content-Transfer-Encoding (single-part only), X-Subs-Kind and
// X-Subs-Causation-Id. Non-ASCII subjects and display names are RFC 2047
// encoded; bodies are quoted-printable UTF-8, so the output is 7-bit and no
// line exceeds 998 characters. With HTML set the body is
// multipart/alternative, text part first; its boundary is derived from the
// content, so rendering is deterministic: the same Message and domain always
// give the same bytes.
//
// A field that cannot be rendered safely — a line break in a header value, an
// invalid address, invalid UTF-8, a missing required field — is refused with a
// *FieldError naming it.
func Render(m Message, domain string) ([]byte, error) {
	if domain == "" {
		domain = DefaultDomain
	}
	if err := validateDomain(domain); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}

	// Sized for the headers and the bodies as quoted-printable makes them
	// (a tenth or so longer): growing from empty copied each message's
	// bytes several times over, a tenth of the simulated year's allocations.
	var b bytes.Buffer
	b.Grow(renderedHeaders + qpSize(len(m.Text)) + qpSize(len(m.HTML)))
	msgID := m.MessageID(domain)
	writeHeader(&b, "Message-ID", msgID)
	writeHeader(&b, "Date", m.Date.Format(time.RFC1123Z))
	writeHeader(&b, "From", formatAddress(m.From))
	writeHeader(&b, "To", formatAddress(m.To))
	writeHeader(&b, "Subject", encodeText(m.Subject))
	writeHeader(&b, "MIME-Version", "1.0")

	if m.HTML == "" {
		writeHeader(&b, "Content-Type", "text/plain; charset=utf-8")
		writeHeader(&b, "Content-Transfer-Encoding", "quoted-printable")
		writeKindHeaders(&b, m)
		b.WriteString("\r\n")
		writeQP(&b, m.Text)
		return b.Bytes(), nil
	}

	// The boundary must not occur in either body; a hash over both is
	// infeasible to embed in them, and keeps the output deterministic.
	sum := sha256.Sum256([]byte(msgID + "\x00" + m.Text + "\x00" + m.HTML))
	boundary := "subs-" + hex.EncodeToString(sum[:16])
	writeHeader(&b, "Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": boundary}))
	writeKindHeaders(&b, m)
	b.WriteString("\r\n")

	mw := multipart.NewWriter(&b)
	if err := mw.SetBoundary(boundary); err != nil {
		return nil, err // cannot happen: the boundary is hex with a fixed prefix
	}
	var pb bytes.Buffer
	for _, part := range []struct{ contentType, body string }{
		{"text/plain; charset=utf-8", m.Text},
		{"text/html; charset=utf-8", m.HTML},
	} {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", part.contentType)
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		w, err := mw.CreatePart(h)
		if err != nil {
			return nil, err // cannot happen: writes go to a bytes.Buffer
		}
		pb.Reset()
		pb.Grow(qpSize(len(part.body)))
		writeQP(&pb, part.body)
		_, _ = w.Write(pb.Bytes())
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	b.WriteString("\r\n")
	return b.Bytes(), nil
}

func writeKindHeaders(b *bytes.Buffer, m Message) {
	writeHeader(b, "X-Subs-Kind", m.Kind)
	writeHeader(b, "X-Subs-Causation-Id", m.CausationID.String())
}

// writeHeader writes "name: value" folded at single spaces so lines stay
// within foldAt characters where a space allows it. It folds only before a
// space that sits between two non-space characters: unfolding then restores
// the value exactly, also for parsers (Go's net/textproto among them) that
// collapse the whitespace around a fold.
func writeHeader(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteString(":")
	lineLen := len(name) + 1
	// Each piece after the first starts with the space it may be folded at.
	start := 0
	for start < len(value) {
		end := nextFoldPoint(value, start+1)
		piece := value[start:end]
		if start > 0 && lineLen+len(piece) > foldAt {
			b.WriteString("\r\n")
			lineLen = 0
		} else if start == 0 {
			b.WriteString(" ")
			lineLen++
		}
		b.WriteString(piece)
		lineLen += len(piece)
		start = end
	}
	b.WriteString("\r\n")
}

// nextFoldPoint returns the index, at or after from, of the next space that
// has a non-space character on each side, or len(s).
func nextFoldPoint(s string, from int) int {
	for i := from; i < len(s)-1; i++ {
		if s[i] == ' ' && !isWSP(s[i-1]) && !isWSP(s[i+1]) {
			return i
		}
	}
	return len(s)
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }

// plainHeaderText reports whether s can go into a header as it is: printable
// ASCII and spaces only, no leading or trailing whitespace (parsers trim it),
// nothing a decoder would take for an encoded-word, and no run without a space
// long enough to make an unfoldable line.
func plainHeaderText(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' || strings.Contains(s, "=?") {
		return false
	}
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' {
			return false
		}
		if c == ' ' {
			run = 0
			continue
		}
		if run++; run > maxPlainRun {
			return false
		}
	}
	return true
}

// encodeText returns s ready for an unstructured header (Subject): as it is
// when plainHeaderText allows, else as RFC 2047 encoded-words. Q encoding
// keeps mostly Latin text readable in the raw message; it only applies when
// there is something to encode (non-ASCII or control characters), so plain
// ASCII that merely has a long run or an "=?" gets B encoding.
func encodeText(s string) string {
	if plainHeaderText(s) {
		return s
	}
	if enc := mime.QEncoding.Encode("utf-8", s); enc != s {
		return enc // split into words of at most 75 characters by mime
	}
	return bWords(s)
}

// bWords encodes all of s as RFC 2047 B-encoded words of at most 75
// characters, split between runes and separated by spaces (where the header
// may fold; decoders drop the whitespace between adjacent encoded-words).
func bWords(s string) string {
	const prefix, suffix = "=?utf-8?b?", "?="
	const maxRaw = (75 - len(prefix) - len(suffix)) / 4 * 3 // bytes per word
	var words []string
	for len(s) > 0 {
		n := 0
		for n < len(s) {
			_, size := utf8.DecodeRuneInString(s[n:])
			if n+size > maxRaw {
				break
			}
			n += size
		}
		words = append(words, prefix+base64.StdEncoding.EncodeToString([]byte(s[:n]))+suffix)
		s = s[n:]
	}
	return strings.Join(words, " ")
}

// formatAddress returns a for a From or To header. A printable ASCII name is
// quoted by net/mail. Any other name is B-encoded here: base64's alphabet is
// allowed in a display name (RFC 2047 §5), whereas net/mail's own choice of
// Q encoding leaves characters such as a backslash literal, which its parser then
// refuses — and it cannot fold long names.
func formatAddress(a mail.Address) string {
	if plainHeaderText(a.Name) {
		return a.String()
	}
	return bWords(a.Name) + " " + (&mail.Address{Address: a.Address}).String()
}

// renderedHeaders is room for a message's headers and its parts' own.
const renderedHeaders = 1 << 10

// qpSize is room for n bytes of text as quoted-printable: most of an
// e-mail's text is printable ASCII, which it keeps, plus a soft line break
// every 75 characters and an escape now and then.
func qpSize(n int) int { return n + n/8 + 16 }

// writeQP writes body as quoted-printable with CRLF line endings. Line breaks
// of any convention become CRLF first: the writer turns "\n" into CRLF, and a
// lone CR would otherwise survive as a bare CR.
func writeQP(b *bytes.Buffer, body string) {
	body = strings.ReplaceAll(body, "\r\n", "\n")
	body = strings.ReplaceAll(body, "\r", "\n")
	w := quotedprintable.NewWriter(b)
	_, _ = w.Write([]byte(body)) // cannot fail: writes go to a bytes.Buffer
	_ = w.Close()
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
}
