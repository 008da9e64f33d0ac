package mail

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// DefaultDomain is the domain of Message-IDs when a sender is given none: a
// name under the reserved .localhost top-level domain, so it can never collide
// with a real mail domain.
const DefaultDomain = "subs.localhost"

// Message is one customer e-mail, before rendering. Its Message-ID is not a
// field: it is derived from CausationID, Kind and the sender's domain (see
// MessageID), so that the same cause always yields the same Message-ID.
type Message struct {
	// CausationID is the id of the event that caused the e-mail. Required.
	CausationID uuid.UUID
	// Kind names what the e-mail is, in lower_snake case, for example
	// "password_reset" or "order_confirmation". Required; at most 64
	// characters. One cause may lead to e-mails of several kinds, each with its
	// own Message-ID.
	Kind string
	// From is the sender. Its Address is required and must be plain ASCII.
	From mail.Address
	// To is the single recipient. Its Address is required and must be plain
	// ASCII.
	To mail.Address
	// Subject is the subject line, any valid UTF-8 without line breaks.
	// Required.
	Subject string
	// Text is the plain-text body, valid UTF-8. Required: every e-mail can be
	// read without HTML.
	Text string
	// HTML is an optional HTML body, valid UTF-8. When set, the message is
	// multipart/alternative with Text first.
	HTML string
	// Date is the message's date, from the engine's clock (never the wall
	// clock in this package), so a simulated clock yields simulated dates.
	// Required; its year must lie in 1900…9999.
	Date time.Time
}

// MessageID returns the Message-ID, angle brackets included, of the e-mail of
// the given kind caused by the given event: "<causation.kind@domain>". It is a
// pure function of its arguments, so a resend carries the first attempt's
// Message-ID (DOMAIN EML-2). An empty domain means DefaultDomain.
func MessageID(causation uuid.UUID, kind, domain string) string {
	if domain == "" {
		domain = DefaultDomain
	}
	return "<" + causation.String() + "." + kind + "@" + domain + ">"
}

// MessageID returns m's Message-ID for the given sender domain; see the
// package-level MessageID.
func (m Message) MessageID(domain string) string {
	return MessageID(m.CausationID, m.Kind, domain)
}

// Errors a FieldError wraps, to tell with errors.Is why a field was refused.
var (
	// ErrRequired means a required field is empty.
	ErrRequired = errors.New("required")
	// ErrHeaderInjection means a value bound for a header holds a CR or LF,
	// which would let it add headers of its own.
	ErrHeaderInjection = errors.New("contains a line break (CR or LF)")
	// ErrInvalidAddress means an e-mail address does not parse as a plain
	// addr-spec, or is not ASCII (internationalized addresses need SMTPUTF8,
	// which the engine does not use).
	ErrInvalidAddress = errors.New("not a valid ASCII e-mail address")
	// ErrInvalidUTF8 means a text field is not valid UTF-8, which every part
	// of the message declares as its charset.
	ErrInvalidUTF8 = errors.New("not valid UTF-8")
	// ErrInvalidKind means Kind is not lower_snake case of at most 64
	// characters.
	ErrInvalidKind = errors.New("must be lower_snake case ([a-z][a-z0-9_]*), at most 64 characters")
	// ErrInvalidDomain means a Message-ID domain is not a host name.
	ErrInvalidDomain = errors.New("must be a host name (letters, digits, '-' and '.')")
	// ErrInvalidDate means Date is zero or its year lies outside 1900…9999,
	// which RFC 5322's date syntax cannot express.
	ErrInvalidDate = errors.New("must be set, with a year in 1900…9999")
)

// FieldError reports a Message field (or the sender's domain) that cannot be
// rendered. Field names it the way the Go code does ("Subject", "To.Address",
// "To.Name"); Err is one of the Err* values above. The error never quotes the
// field's value: it may be a body that carries a secret link.
type FieldError struct {
	// Field names the refused field.
	Field string
	// Err says why.
	Err error
}

// Error returns "mail: <Field>: <reason>".
func (e *FieldError) Error() string { return "mail: " + e.Field + ": " + e.Err.Error() }

// Unwrap returns the reason, for errors.Is.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field string, err error) error { return &FieldError{Field: field, Err: err} }

// Validate reports the first field of m that Render would refuse, as a
// *FieldError, or nil. The domain is not checked here (see Render).
func (m Message) Validate() error {
	if m.CausationID == uuid.Nil {
		return fieldErr("CausationID", ErrRequired)
	}
	if err := validateKind(m.Kind); err != nil {
		return err
	}
	if err := validateAddress("From", m.From); err != nil {
		return err
	}
	if err := validateAddress("To", m.To); err != nil {
		return err
	}
	if err := validateHeaderText("Subject", m.Subject, true); err != nil {
		return err
	}
	if err := validateBody("Text", m.Text, true); err != nil {
		return err
	}
	if err := validateBody("HTML", m.HTML, false); err != nil {
		return err
	}
	if m.Date.IsZero() || m.Date.Year() < 1900 || m.Date.Year() > 9999 {
		return fieldErr("Date", ErrInvalidDate)
	}
	return nil
}

func validateKind(kind string) error {
	if kind == "" {
		return fieldErr("Kind", ErrRequired)
	}
	if len(kind) > 64 || kind[0] < 'a' || kind[0] > 'z' {
		return fieldErr("Kind", ErrInvalidKind)
	}
	for _, c := range []byte(kind) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return fieldErr("Kind", ErrInvalidKind)
		}
	}
	return nil
}

// validateDomain accepts a host name: dot-separated labels of letters, digits
// and inner hyphens. That is a strict subset of RFC 5322's dot-atom, so the
// Message-ID needs no quoting.
func validateDomain(domain string) error {
	if domain == "" || len(domain) > 253 {
		return fieldErr("domain", ErrInvalidDomain)
	}
	for label := range strings.SplitSeq(domain, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fieldErr("domain", ErrInvalidDomain)
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fieldErr("domain", ErrInvalidDomain)
			}
		}
	}
	return nil
}

func validateAddress(field string, a mail.Address) error {
	if err := validateHeaderText(field+".Name", a.Name, false); err != nil {
		return err
	}
	if strings.ContainsAny(a.Address, "\r\n") {
		return fieldErr(field+".Address", ErrHeaderInjection)
	}
	if a.Address == "" {
		return fieldErr(field+".Address", ErrRequired)
	}
	if len(a.Address) > 254 {
		return fieldErr(field+".Address", ErrInvalidAddress)
	}
	for _, c := range []byte(a.Address) {
		if c <= ' ' || c >= 0x7f {
			return fieldErr(field+".Address", ErrInvalidAddress)
		}
	}
	// A bare addr-spec must parse back to itself: anything else (a display
	// name, a group, a comment, a route) is not an address we send to.
	parsed, err := mail.ParseAddress(a.Address)
	if err != nil || parsed.Name != "" || parsed.Address != a.Address || !strings.Contains(a.Address, "@") {
		return fieldErr(field+".Address", ErrInvalidAddress)
	}
	return nil
}

func validateHeaderText(field, s string, required bool) error {
	if strings.ContainsAny(s, "\r\n") {
		return fieldErr(field, ErrHeaderInjection)
	}
	if !utf8.ValidString(s) {
		return fieldErr(field, ErrInvalidUTF8)
	}
	if required && strings.TrimSpace(s) == "" {
		return fieldErr(field, ErrRequired)
	}
	return nil
}

func validateBody(field, s string, required bool) error {
	if !utf8.ValidString(s) {
		return fieldErr(field, ErrInvalidUTF8)
	}
	if required && strings.TrimSpace(s) == "" {
		return fieldErr(field, ErrRequired)
	}
	return nil
}

// String describes m for logs and errors without its bodies or subject:
// kind, Message-ID parts and recipient only (DOMAIN SEC-3).
func (m Message) String() string {
	return fmt.Sprintf("mail.Message{Kind: %q, CausationID: %s, To: %q}", m.Kind, m.CausationID, m.To.Address)
}

// GoString is String, so that %#v does not print the bodies either.
func (m Message) GoString() string { return m.String() }
