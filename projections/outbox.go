package projections

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/eventstore"
)

// Email kinds (EML-1), as the outbox and the templates name them.
const (
	EmailPasswordReset = "password_reset"
)

// EmailOutbox lists the e-mails events call for until each is recorded as
// sent (EML-1): table email_outbox, which workers/outbox drains.
type EmailOutbox struct{}

// Name implements Projection.
func (EmailOutbox) Name() string { return "email_outbox" }

// PasswordResetData is what the password reset e-mail needs besides the
// account: never the token, which the sender derives from the reset id.
type PasswordResetData struct {
	ResetID   string `json:"reset_id"`
	ExpiresAt string `json:"expires_at"`
}

// Apply implements Projection.
func (EmailOutbox) Apply(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, e domain.Event) error {
	switch e := e.(type) {
	case account.PasswordResetRequested:
		data, err := json.Marshal(PasswordResetData{ResetID: e.ResetID.String(), ExpiresAt: e.ExpiresAt.Format("2006-01-02T15:04:05Z07:00")})
		if err != nil {
			return err
		}
		return enqueue(ctx, tx, rec, EmailPasswordReset, data)
	case account.EmailSent:
		_, err := tx.Exec(ctx, `UPDATE email_outbox SET sent_at = $3 WHERE cause = $1 AND kind = $2`, e.Cause, e.Kind, rec.RecordedAt)
		return err
	}
	return nil
}

func enqueue(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, kind string, data []byte) error {
	_, err := tx.Exec(ctx, `INSERT INTO email_outbox (cause, kind, account_id, data, created_at) VALUES ($1, $2, $3, $4, $5)`,
		rec.ID, kind, accountID(rec), data, rec.RecordedAt)
	return err
}
