package mail

import (
	"context"
	"errors"
	"path/filepath"
)

// Sender delivers rendered e-mails.
//
// Send renders m (see Render) and delivers it; a nil error means the
// transport accepted the message — the caller may then record the send as an
// event (DOMAIN EML-1). A message Render refuses returns its *FieldError and
// nothing is delivered; a context that ends first returns an error wrapping
// ctx.Err(). Any other error means the message may or may not have been
// delivered, and the caller retries with the same Message (hence the same
// Message-ID, EML-2).
//
// Implementations are safe for concurrent use. Where the transport allows,
// Send is idempotent per Message-ID (Maildir keeps one file); where it does
// not (SMTP), a repeated Send delivers again with the same Message-ID, and
// recipients' mail software may show both. Sending at most once per cause is
// the outbox's job, recorded as events, not the transport's.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// DeliversOnce reports whether s delivers each Message-ID at most once
// however often it is sent (Maildir): a send repeated after a crash then
// delivers nothing again, so a caller may record several sends together.
// Where it does not (SMTP), each send should be recorded before the next,
// so that a crash repeats at most the one message in between (EML-2).
func DeliversOnce(s Sender) bool {
	o, ok := s.(interface{ DeliversOnce() bool })
	return ok && o.DeliversOnce()
}

// NewSender returns the engine's sender (DESIGN §8): an SMTP sender when
// smtpURL is set (see NewSMTP, with SMTPConfig's defaults), else a Maildir at
// <dataDir>/mail. The domain is the Message-IDs' domain; empty means
// DefaultDomain.
func NewSender(smtpURL, dataDir, domain string) (Sender, error) {
	if smtpURL != "" {
		return NewSMTP(smtpURL, domain, SMTPConfig{})
	}
	if dataDir == "" {
		return nil, errors.New("mail: no SMTP URL and no data directory: nowhere to send e-mails")
	}
	return NewMaildir(filepath.Join(dataDir, "mail"), domain)
}
