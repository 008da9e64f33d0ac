package projections

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/eventstore"
)

// Accounts is the account and billing summary (ACC-7, ACC-8): one row per
// account in table accounts.
type Accounts struct{}

// Name implements Projection.
func (Accounts) Name() string { return "accounts" }

// Tables implements Projection.
func (Accounts) Tables() []string { return []string{"accounts"} }

// Apply implements Projection.
func (Accounts) Apply(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, e domain.Event) error {
	id := accountID(rec)
	var err error
	switch e := e.(type) {
	case account.Registered:
		_, err = tx.Exec(ctx, `INSERT INTO accounts (account_id, email, name, country, language, registered_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $6)`, e.AccountID, e.Email.String(), e.Name.String(), e.Country.String(), e.Language.String(), rec.RecordedAt)
	case account.ProfileUpdated:
		var addr []byte
		if addr, err = json.Marshal(e.Address); err == nil {
			_, err = tx.Exec(ctx, `UPDATE accounts SET name = $2, country = $3, language = $4, address = $5, updated_at = $6
WHERE account_id = $1`, id, e.Name.String(), e.Country.String(), e.Language.String(), addr, rec.RecordedAt)
		}
	case account.BillingUpdated:
		var method []byte
		if method, err = json.Marshal(e.Method); err == nil {
			_, err = tx.Exec(ctx, `UPDATE accounts SET billing_country = $2, billing_method = $3, updated_at = $4
WHERE account_id = $1`, id, e.Country.String(), method, rec.RecordedAt)
		}
	case account.Erased:
		// AUD-5: the row is personal data through and through.
		_, err = tx.Exec(ctx, `DELETE FROM accounts WHERE account_id = $1`, id)
	}
	return err
}

// accountID is the id in an account stream's name ("account-<id>").
func accountID(rec eventstore.RecordedEvent) string {
	return string(rec.StreamID)[len("account-"):]
}
