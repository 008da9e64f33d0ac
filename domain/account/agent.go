package account

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/subs-engine/subs/domain"
)

// OwnershipVerified: a support agent verified that the caller owns the
// account (CNV-4 step 1, AGT-1), by Method.
type OwnershipVerified struct {
	Method string    `json:"method"`
	At     time.Time `json:"at"`
}

func (OwnershipVerified) EventType() string { return "account.ownership_verified" }

// VerifyOwnership records a support agent's verification of account
// ownership (the seed's "basic" policy: one of OwnershipMethods).
type VerifyOwnership struct{ Method string }

func (VerifyOwnership) accountCommand() {}

// OwnershipMethods are the ways a support agent verifies that the caller
// owns the account: the address and name on the account, an order number of
// the account, or the serial number of one of its products.
var OwnershipMethods = []string{"email_and_name", "order_number", "serial_number"}

// ParseOwnershipMethod accepts one of OwnershipMethods.
func ParseOwnershipMethod(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !slices.Contains(OwnershipMethods, s) {
		return "", errors.New("must be one of " + strings.Join(OwnershipMethods, ", "))
	}
	return s, nil
}

func decideVerifyOwnership(c VerifyOwnership, now time.Time) ([]domain.Event, error) {
	m, err := ParseOwnershipMethod(c.Method)
	if err != nil {
		return nil, domain.Invalid("method", err.Error())
	}
	return []domain.Event{OwnershipVerified{Method: m, At: now}}, nil
}
