package payment

import (
	"errors"
	"fmt"
)

// Field names that FieldError and CardError use: the JSON path of the input
// an API puts in a problem's errors[].
const (
	FieldCardNumber      = "card.number"
	FieldCardCVV         = "card.cvv"
	FieldCardHolder      = "card.holder_name"
	FieldCardExpiry      = "card.expiry"
	FieldIBAN            = "bank_account.iban"
	FieldBankHolder      = "bank_account.holder_name"
	FieldIdempotencyKey  = "idempotency_key"
	FieldToken           = "token"
	FieldAmount          = "amount"
	FieldDescription     = "description"
	FieldChargeID        = "charge_id"
	FieldPaymentKind     = "kind"
	FieldPaymentBrand    = "brand"
	FieldPaymentLastFour = "last4"
	FieldPaymentCountry  = "country"
	FieldPaymentExpiry   = "expiry"
	FieldPaymentHolder   = "holder_name"
)

// FieldError is a refused input value: Field names it (one of the Field
// constants) and Problem says, in a sentence for the customer, what is wrong
// and what is accepted. Problem never quotes a card number, CVV or IBAN.
type FieldError struct {
	// Field is the JSON path of the refused input, e.g. "card.number".
	Field string
	// Problem says what is wrong with the value and what is accepted.
	Problem string
}

// Error returns "payment: <field>: <problem>".
func (e *FieldError) Error() string {
	return "payment: " + e.Field + ": " + e.Problem
}

func fieldError(field, problem string) *FieldError {
	return &FieldError{Field: field, Problem: problem}
}

// Codes a gateway gives when it refuses a card (CardError.Code) or declines
// a charge (ChargeOutcome.DeclineCode). They are stable strings, Stripe's
// names, that callers may switch on.
const (
	// CodeIncorrectNumber: the gateway does not accept the card number.
	// Only a CardError carries it.
	CodeIncorrectNumber = "incorrect_number"
	// CodeExpiredCard: the card has expired (at tokenization, or by the
	// charge's instant).
	CodeExpiredCard = "expired_card"
	// CodeCardDeclined: the issuer refused, with no more precise reason.
	CodeCardDeclined = "card_declined"
	// CodeInsufficientFunds: the account cannot cover the amount. Only a
	// declined charge carries it.
	CodeInsufficientFunds = "insufficient_funds"
	// CodeNoPaymentMethod: there was no payment method to charge; the
	// engine records it without calling a gateway.
	CodeNoPaymentMethod = "no_payment_method"
)

// CardError is a gateway's refusal to tokenize a card or bank account: Code
// is one of CodeIncorrectNumber, CodeExpiredCard or CodeCardDeclined and
// Field names the input at fault (FieldCardNumber, FieldCardExpiry,
// FieldIBAN). Callers check for it with errors.As and ask the customer for
// another card; retrying the same card gets the same refusal.
type CardError struct {
	// Code says why the card was refused.
	Code string
	// Field names the input the customer should correct.
	Field string
}

// Error returns "payment: card refused: <code> (<field>)".
func (e *CardError) Error() string {
	return fmt.Sprintf("payment: card refused: %s (%s)", e.Code, e.Field)
}

// ErrUnavailable means the gateway could not be reached or did not answer:
// the outcome of the call is unknown (a charge may or may not have been
// made). The caller must retry the same request with the same idempotency
// key, which returns the first outcome if there was one. Gateways wrap it
// with the cause, so check with errors.Is.
var ErrUnavailable = errors.New("payment: gateway unavailable: outcome unknown, retry with the same idempotency key")

// ErrIdempotencyMismatch means an idempotency key was used again with a
// different request (another token, amount, description or charge). Nothing
// was charged or refunded by the second request; it is a programming error
// of the caller, which must derive keys from what the request pays for.
var ErrIdempotencyMismatch = errors.New("payment: idempotency key reused with a different request")

// ErrUnknownToken means a charge names a token the gateway never issued.
var ErrUnknownToken = errors.New("payment: unknown payment method token")

// ErrUnknownCharge means a refund names a charge the gateway does not have,
// or one that did not succeed and so has nothing to refund.
var ErrUnknownCharge = errors.New("payment: no successful charge with this id")

// ErrRefundExceedsCharge means a refund asks for more than what remains of
// the charge after its earlier refunds. Nothing was refunded.
var ErrRefundExceedsCharge = errors.New("payment: refund exceeds what remains of the charge")
