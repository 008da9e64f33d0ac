package payment

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/subs-engine/subs/domain/money"
)

// Limits on request strings, so that a key or description cannot grow a
// gateway's tables without bound.
const (
	maxIdempotencyKeyLength = 255
	maxDescriptionLength    = 500
)

// ChargeRequest asks a gateway to take Amount from the payment method
// Token. IdempotencyKey identifies what is paid for (DESIGN §6: the
// subscription and renewal period), so that every retry of the same payment
// carries the same key.
type ChargeRequest struct {
	// IdempotencyKey makes the charge happen at most once: 1 to 255
	// printable ASCII characters without spaces.
	IdempotencyKey string
	// Token is the PaymentMethod's gateway token.
	Token string
	// Amount is positive, in any supported currency.
	Amount money.Money
	// Description says what is paid for (it shows on statements); at most
	// 500 characters.
	Description string
}

// Validate reports the first invalid field of r as a *FieldError. Gateways
// call it before anything else; a caller may call it earlier.
func (r ChargeRequest) Validate() error {
	if err := checkKey(r.IdempotencyKey); err != nil {
		return err
	}
	if err := checkToken(r.Token); err != nil {
		return err
	}
	if err := checkAmount(r.Amount); err != nil {
		return err
	}
	if !utf8.ValidString(r.Description) || utf8.RuneCountInString(r.Description) > maxDescriptionLength {
		return fieldError(FieldDescription, fmt.Sprintf("a description is UTF-8 text of at most %d characters", maxDescriptionLength))
	}
	return nil
}

// ChargeOutcome is how a charge ended. A declined charge is an outcome, not
// an error: Status is Declined and DeclineCode says why.
type ChargeOutcome struct {
	// ChargeID is the gateway's id of the charge, succeeded or declined;
	// Refund takes it.
	ChargeID string
	// Status is Succeeded or Declined.
	Status ChargeStatus
	// DeclineCode is "" when Status is Succeeded, else one of
	// CodeCardDeclined, CodeExpiredCard, CodeInsufficientFunds (or another
	// code a gateway documents).
	DeclineCode string
	// Amount is the amount requested (taken, if Succeeded).
	Amount money.Money
	// IdempotencyKey is the request's key.
	IdempotencyKey string
}

// RefundRequest asks a gateway to give back Amount of a succeeded charge.
type RefundRequest struct {
	// IdempotencyKey makes the refund happen at most once, as for
	// ChargeRequest.
	IdempotencyKey string
	// ChargeID is the ChargeOutcome.ChargeID of a succeeded charge.
	ChargeID string
	// Amount is positive, in the charge's currency, and at most what remains
	// of the charge after earlier refunds.
	Amount money.Money
}

// Validate reports the first invalid field of r as a *FieldError.
func (r RefundRequest) Validate() error {
	if err := checkKey(r.IdempotencyKey); err != nil {
		return err
	}
	if r.ChargeID == "" || len(r.ChargeID) > maxTokenLength {
		return fieldError(FieldChargeID, "the charge id is required (at most 255 characters)")
	}
	return checkAmount(r.Amount)
}

// RefundOutcome is a refund the gateway made.
type RefundOutcome struct {
	// RefundID is the gateway's id of the refund.
	RefundID string
	// ChargeID is the refunded charge.
	ChargeID string
	// Amount is the amount given back.
	Amount money.Money
}

// ChargeFilter selects entries of a gateway's ledger. The zero filter
// selects the first page of every charge.
type ChargeFilter struct {
	// From, when not zero, keeps charges made at or after it.
	From time.Time
	// Until, when not zero, keeps charges made before it.
	Until time.Time
	// IdempotencyKey, when not empty, keeps the charge made with this key.
	IdempotencyKey string
	// After, when not empty, keeps the charges listed after the charge with
	// this id: pass the last ChargeID of a page to get the next page.
	After string
	// Limit is the most entries returned: 0 means 100; at most 1000.
	Limit int
}

// MaxChargeFilterLimit is the largest ChargeFilter.Limit gateways accept.
const MaxChargeFilterLimit = 1000

// Validate refuses a negative or too large Limit and an Until before From.
func (f ChargeFilter) Validate() error {
	if f.Limit < 0 || f.Limit > MaxChargeFilterLimit {
		return fieldError("limit", fmt.Sprintf("limit %d: use 0 (the default, 100) to %d", f.Limit, MaxChargeFilterLimit))
	}
	if !f.From.IsZero() && !f.Until.IsZero() && f.Until.Before(f.From) {
		return fieldError("until", "until is before from")
	}
	return nil
}

// LedgerEntry is one charge as the gateway recorded it: what reconciliation
// compares with the engine's events.
type LedgerEntry struct {
	// ChargeID is the gateway's id of the charge.
	ChargeID string
	// IdempotencyKey is the key the charge was made with.
	IdempotencyKey string
	// Token is the payment method charged.
	Token string
	// Amount is the amount requested.
	Amount money.Money
	// Status is Succeeded or Declined.
	Status ChargeStatus
	// DeclineCode is "" for a succeeded charge.
	DeclineCode string
	// Refunded is the sum of the charge's refunds (zero in its currency if
	// none).
	Refunded money.Money
	// CreatedAt is the gateway's clock when it made the charge.
	CreatedAt time.Time
}

// Gateway is a payment service provider: it turns cards and bank accounts
// into tokens, charges and refunds them, and lists its own ledger.
//
// The contract every implementation keeps (the gatewaytest suite checks it):
//
//   - It is safe for concurrent use.
//   - TokenizeCard and TokenizeDirectDebit return a PaymentMethod whose token
//     Charge accepts. A refusal is a *CardError (errors.As) with its code and
//     field; the card or account is not stored then.
//   - A declined charge is an outcome (Status Declined, a DeclineCode),
//     never an error. A card past its expiry month at the instant of the
//     charge is declined with CodeExpiredCard.
//   - A Charge or Refund repeated with the same idempotency key returns the
//     first outcome — also a first decline — and never charges or refunds
//     twice, including when the first attempt returned an error after the
//     gateway had acted. Keys of charges and of refunds are separate. A
//     retry after a decline needs a new key.
//   - A key used again with a different request returns an error matching
//     ErrIdempotencyMismatch and does nothing.
//   - An error matching ErrUnavailable means the outcome is unknown: the
//     caller retries the same request with the same key (ARS-8). Any
//     transport failure, timeout or canceled context is reported so.
//   - Invalid requests are *FieldError; a charge with an unknown token is
//     ErrUnknownToken; a refund of a charge that does not exist or did not
//     succeed is ErrUnknownCharge; one beyond what remains of the charge is
//     ErrRefundExceedsCharge.
//   - Charges lists the ledger in the order the charges were made,
//     succeeded and declined, one entry per idempotency key.
//   - No full card number, CVV or IBAN is ever stored, logged or returned.
type Gateway interface {
	// TokenizeCard stores what the gateway needs to charge card later and
	// returns the method to keep in its place.
	TokenizeCard(ctx context.Context, card Card) (PaymentMethod, error)
	// TokenizeDirectDebit does the same for a SEPA direct debit mandate on
	// account.
	TokenizeDirectDebit(ctx context.Context, account BankAccount) (PaymentMethod, error)
	// Charge takes req.Amount from req.Token, at most once per
	// req.IdempotencyKey.
	Charge(ctx context.Context, req ChargeRequest) (ChargeOutcome, error)
	// Refund gives back req.Amount of a succeeded charge, at most once per
	// req.IdempotencyKey.
	Refund(ctx context.Context, req RefundRequest) (RefundOutcome, error)
	// Charges lists the gateway's own ledger, filtered.
	Charges(ctx context.Context, filter ChargeFilter) ([]LedgerEntry, error)
}

// BatchCharger is a Gateway that also takes several charges in one call,
// for a gateway whose every call costs more than a charge does (the
// sandbox's round trip to its database). ChargeBatch answers each request
// as Charge would answer it alone, under the same contract: results[i] is
// reqs[i]'s outcome or error, a request's error is its own and the others
// still go through, and requests with one key are answered as if made one
// after the other, in their order.
type BatchCharger interface {
	Gateway
	ChargeBatch(ctx context.Context, reqs []ChargeRequest) []ChargeResult
}

// ChargeResult is one request's answer in a batch: what Charge would have
// returned for it.
type ChargeResult struct {
	Outcome ChargeOutcome
	Err     error
}

func checkKey(key string) error {
	if key == "" {
		return fieldError(FieldIdempotencyKey, "an idempotency key is required")
	}
	if len(key) > maxIdempotencyKeyLength {
		return fieldError(FieldIdempotencyKey, fmt.Sprintf("an idempotency key has at most %d characters", maxIdempotencyKeyLength))
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] > '~' {
			return fieldError(FieldIdempotencyKey, "an idempotency key has only printable ASCII characters and no spaces")
		}
	}
	return nil
}

func checkAmount(m money.Money) error {
	if m.Currency().IsZero() {
		return fieldError(FieldAmount, "an amount needs a currency")
	}
	if m.Amount() <= 0 {
		return fieldError(FieldAmount, "the amount must be positive")
	}
	return nil
}
