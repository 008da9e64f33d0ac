// Package mail renders the engine's customer e-mails and hands them to a
// transport.
//
// Every e-mail is caused by an event (DOMAIN EML-1), and its Message-ID is
// derived from that event's id and the e-mail's kind (EML-2), so a resend after
// a crash carries the same Message-ID as the first attempt. Render turns a
// Message into RFC 5322 bytes; a Sender delivers them, either to an SMTP server
// (SMTP) or into a local maildir (Maildir), as NewSender chooses from the
// engine's configuration (DESIGN §8).
//
// Sending at most once per cause is the outbox's job, not the transport's: the
// outbox records each send as an event, and only a crash between the send and
// that record resends — then with the same Message-ID. Maildir additionally
// keeps a single file per Message-ID; an SMTP server has no such guarantee and
// may deliver a resend twice.
//
// Nothing in this package logs, and no error it returns carries a message
// body: bodies may hold a password-reset link (DOMAIN SEC-3).
package mail
