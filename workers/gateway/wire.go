package gateway

import (
	"encoding/json"
	"time"

	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
)

// The JSON bodies of the sandbox's HTTP API, shared by NewHandler and
// HTTPClient so that the two cannot drift apart.

// cardRequest is the body of POST /v1/tokens/cards. It carries the full
// number and CVV over the wire, as a real gateway's tokenization endpoint
// does; neither is ever logged or stored.
type cardRequest struct {
	Number     string `json:"number"`
	CVV        string `json:"cvv"`
	HolderName string `json:"holder_name"`
	ExpMonth   int    `json:"exp_month"`
	ExpYear    int    `json:"exp_year"`
}

// directDebitRequest is the body of POST /v1/tokens/direct-debits.
type directDebitRequest struct {
	IBAN       string `json:"iban"`
	HolderName string `json:"holder_name"`
}

// chargeRequest is the body of POST /v1/charges; the idempotency key is
// the Idempotency-Key header. Amount stays raw so that a bad amount is
// reported as the field "amount".
type chargeRequest struct {
	Token       string          `json:"token"`
	Amount      json.RawMessage `json:"amount"`
	Description string          `json:"description"`
}

// chargeResponse is the answer to POST /v1/charges, 200 for a succeeded or
// a declined charge alike.
type chargeResponse struct {
	ChargeID       string               `json:"charge_id"`
	Status         payment.ChargeStatus `json:"status"`
	DeclineCode    string               `json:"decline_code,omitempty"`
	Amount         money.Money          `json:"amount"`
	IdempotencyKey string               `json:"idempotency_key"`
}

// refundRequest is the body of POST /v1/refunds, with the key in the
// Idempotency-Key header.
type refundRequest struct {
	ChargeID string          `json:"charge_id"`
	Amount   json.RawMessage `json:"amount"`
}

// refundResponse is the answer to POST /v1/refunds.
type refundResponse struct {
	RefundID string      `json:"refund_id"`
	ChargeID string      `json:"charge_id"`
	Amount   money.Money `json:"amount"`
}

// ledgerEntry is one element of GET /v1/charges's "charges".
type ledgerEntry struct {
	ChargeID       string               `json:"charge_id"`
	IdempotencyKey string               `json:"idempotency_key"`
	Token          string               `json:"token"`
	Amount         money.Money          `json:"amount"`
	Status         payment.ChargeStatus `json:"status"`
	DeclineCode    string               `json:"decline_code,omitempty"`
	Refunded       money.Money          `json:"refunded"`
	CreatedAt      time.Time            `json:"created_at"`
}

// ledgerResponse is the answer to GET /v1/charges.
type ledgerResponse struct {
	Charges []ledgerEntry `json:"charges"`
}

// Problem types of the sandbox's HTTP API: stable identifiers HTTPClient
// maps back to the payment package's errors.
const (
	// ProblemCardError (402) is a *payment.CardError; the problem's code and
	// field members carry its Code and Field.
	ProblemCardError = "urn:subs:gateway:problem:card-error"
	// ProblemInvalidRequest (400) is a *payment.FieldError; errors[] names
	// the field.
	ProblemInvalidRequest = "urn:subs:gateway:problem:invalid-request"
	// ProblemIdempotencyMismatch (409) is payment.ErrIdempotencyMismatch.
	ProblemIdempotencyMismatch = "urn:subs:gateway:problem:idempotency-mismatch"
	// ProblemUnknownToken (404) is payment.ErrUnknownToken.
	ProblemUnknownToken = "urn:subs:gateway:problem:unknown-token"
	// ProblemUnknownCharge (404) is payment.ErrUnknownCharge.
	ProblemUnknownCharge = "urn:subs:gateway:problem:unknown-charge"
	// ProblemRefundExceedsCharge (409) is payment.ErrRefundExceedsCharge.
	ProblemRefundExceedsCharge = "urn:subs:gateway:problem:refund-exceeds-charge"
	// ProblemUnavailable (503) is payment.ErrUnavailable: retry with the
	// same Idempotency-Key.
	ProblemUnavailable = "urn:subs:gateway:problem:unavailable"
	// ProblemNotFound (404) means no route matches the path.
	ProblemNotFound = "urn:subs:gateway:problem:not-found"
	// ProblemInternal (500) means the sandbox failed; HTTPClient reports it
	// as payment.ErrUnavailable.
	ProblemInternal = "urn:subs:gateway:problem:internal"
)

// problem is an RFC 9457 problem details object with the sandbox's
// extension members.
type problem struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Status int            `json:"status"`
	Detail string         `json:"detail,omitempty"`
	Code   string         `json:"code,omitempty"`
	Field  string         `json:"field,omitempty"`
	Errors []problemField `json:"errors,omitempty"`
}

// problemField names one rejected input field.
type problemField struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

const problemContentType = "application/problem+json"
