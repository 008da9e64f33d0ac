package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/subs-engine/subs/domain/payment"
)

// defaultClientTimeout bounds a call when NewHTTPClient is given no
// *http.Client: a gateway that does not answer is unavailable, and the
// caller retries with the same key.
const defaultClientTimeout = 30 * time.Second

// HTTPClient is a payment.Gateway that calls the sandbox's HTTP API
// (NewHandler, `subs gateway`). It maps the answers back to the payment
// package's errors, so that code written against the in-process Sandbox
// behaves the same over the wire: problem types to their errors; a 5xx, a
// timeout, a connection failure, a canceled context or an unreadable
// answer to payment.ErrUnavailable. It is safe for concurrent use.
type HTTPClient struct {
	base *url.URL
	hc   *http.Client
}

var _ payment.Gateway = (*HTTPClient)(nil)

// NewHTTPClient returns a client of the sandbox at baseURL (an absolute
// http or https URL such as http://127.0.0.1:8090). hc carries the
// transport and timeout; nil means a client with a 30-second timeout.
func NewHTTPClient(baseURL string, hc *http.Client) (*HTTPClient, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gateway: base URL %q is not an absolute http(s) URL such as http://127.0.0.1:8090", baseURL)
	}
	if hc == nil {
		hc = &http.Client{Timeout: defaultClientTimeout}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &HTTPClient{base: u, hc: hc}, nil
}

// TokenizeCard sends the card to POST /v1/tokens/cards.
func (c *HTTPClient) TokenizeCard(ctx context.Context, card payment.Card) (payment.PaymentMethod, error) {
	if card.IsZero() {
		return payment.PaymentMethod{}, &payment.FieldError{Field: payment.FieldCardNumber, Problem: "no card given"}
	}
	var m payment.PaymentMethod
	err := c.do(ctx, http.MethodPost, "/v1/tokens/cards", "", cardRequest{
		Number: card.Number(), CVV: card.CVV(), HolderName: card.HolderName(), ExpMonth: card.ExpMonth(), ExpYear: card.ExpYear(),
	}, &m)
	return m, err
}

// TokenizeDirectDebit sends the account to POST /v1/tokens/direct-debits.
func (c *HTTPClient) TokenizeDirectDebit(ctx context.Context, account payment.BankAccount) (payment.PaymentMethod, error) {
	if account.IsZero() {
		return payment.PaymentMethod{}, &payment.FieldError{Field: payment.FieldIBAN, Problem: "no bank account given"}
	}
	var m payment.PaymentMethod
	err := c.do(ctx, http.MethodPost, "/v1/tokens/direct-debits", "", directDebitRequest{IBAN: account.IBAN(), HolderName: account.HolderName()}, &m)
	return m, err
}

// Charge sends req to POST /v1/charges with its key in Idempotency-Key.
func (c *HTTPClient) Charge(ctx context.Context, req payment.ChargeRequest) (payment.ChargeOutcome, error) {
	if err := req.Validate(); err != nil {
		return payment.ChargeOutcome{}, err
	}
	amount, err := json.Marshal(req.Amount)
	if err != nil {
		return payment.ChargeOutcome{}, &payment.FieldError{Field: payment.FieldAmount, Problem: err.Error()}
	}
	var resp chargeResponse
	if err := c.do(ctx, http.MethodPost, "/v1/charges", req.IdempotencyKey, chargeRequest{Token: req.Token, Amount: amount, Description: req.Description}, &resp); err != nil {
		return payment.ChargeOutcome{}, err
	}
	if resp.ChargeID == "" || resp.Status.IsZero() {
		return payment.ChargeOutcome{}, fmt.Errorf("%w: the gateway's answer to a charge lacks its id or status", payment.ErrUnavailable)
	}
	return payment.ChargeOutcome{ChargeID: resp.ChargeID, Status: resp.Status, DeclineCode: resp.DeclineCode, Amount: resp.Amount, IdempotencyKey: resp.IdempotencyKey}, nil
}

// Refund sends req to POST /v1/refunds with its key in Idempotency-Key.
func (c *HTTPClient) Refund(ctx context.Context, req payment.RefundRequest) (payment.RefundOutcome, error) {
	if err := req.Validate(); err != nil {
		return payment.RefundOutcome{}, err
	}
	amount, err := json.Marshal(req.Amount)
	if err != nil {
		return payment.RefundOutcome{}, &payment.FieldError{Field: payment.FieldAmount, Problem: err.Error()}
	}
	var resp refundResponse
	if err := c.do(ctx, http.MethodPost, "/v1/refunds", req.IdempotencyKey, refundRequest{ChargeID: req.ChargeID, Amount: amount}, &resp); err != nil {
		return payment.RefundOutcome{}, err
	}
	if resp.RefundID == "" {
		return payment.RefundOutcome{}, fmt.Errorf("%w: the gateway's answer to a refund lacks its id", payment.ErrUnavailable)
	}
	return payment.RefundOutcome{RefundID: resp.RefundID, ChargeID: resp.ChargeID, Amount: resp.Amount}, nil
}

// Charges reads GET /v1/charges with f as query parameters.
func (c *HTTPClient) Charges(ctx context.Context, f payment.ChargeFilter) ([]payment.LedgerEntry, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	q := url.Values{}
	if !f.From.IsZero() {
		q.Set("from", f.From.Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.Format(time.RFC3339Nano))
	}
	if f.IdempotencyKey != "" {
		q.Set("idempotency_key", f.IdempotencyKey)
	}
	if f.After != "" {
		q.Set("after", f.After)
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	path := "/v1/charges"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var resp ledgerResponse
	if err := c.do(ctx, http.MethodGet, path, "", nil, &resp); err != nil {
		return nil, err
	}
	out := make([]payment.LedgerEntry, 0, len(resp.Charges))
	for _, e := range resp.Charges {
		out = append(out, payment.LedgerEntry{
			ChargeID: e.ChargeID, IdempotencyKey: e.IdempotencyKey, Token: e.Token, Amount: e.Amount,
			Status: e.Status, DeclineCode: e.DeclineCode, Refunded: e.Refunded, CreatedAt: e.CreatedAt.UTC(),
		})
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// do sends one request and decodes a 2xx answer into out, or returns the
// error the answer stands for.
func (c *HTTPClient) do(ctx context.Context, method, path, key string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("gateway: encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return fmt.Errorf("gateway: build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// Whether the gateway acted is unknown: the request may have
		// arrived and the answer been lost.
		return fmt.Errorf("%w: %s %s: %w", payment.ErrUnavailable, method, stripQuery(path), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%w: %s %s: read the answer: %w", payment.ErrUnavailable, method, stripQuery(path), err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%w: %s %s: unreadable answer: %w", payment.ErrUnavailable, method, stripQuery(path), err)
		}
		return nil
	}
	return errorFor(resp, data)
}

func stripQuery(path string) string {
	p, _, _ := strings.Cut(path, "?")
	return p
}

// errorFor maps a non-2xx answer back to the payment package's error:
// the inverse of problemFor.
func errorFor(resp *http.Response, data []byte) error {
	var p problem
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != problemContentType || json.Unmarshal(data, &p) != nil {
		p = problem{}
	}
	if resp.StatusCode >= 500 || p.Type == ProblemUnavailable {
		return fmt.Errorf("%w: the gateway answered %d %s", payment.ErrUnavailable, resp.StatusCode, p.Detail)
	}
	switch p.Type {
	case ProblemCardError:
		return &payment.CardError{Code: p.Code, Field: p.Field}
	case ProblemInvalidRequest:
		if len(p.Errors) > 0 {
			return &payment.FieldError{Field: p.Errors[0].Field, Problem: p.Errors[0].Message}
		}
	case ProblemIdempotencyMismatch:
		return fmt.Errorf("gateway: %s: %w", p.Detail, payment.ErrIdempotencyMismatch)
	case ProblemUnknownToken:
		return fmt.Errorf("gateway: %s: %w", p.Detail, payment.ErrUnknownToken)
	case ProblemUnknownCharge:
		return fmt.Errorf("gateway: %s: %w", p.Detail, payment.ErrUnknownCharge)
	case ProblemRefundExceedsCharge:
		return fmt.Errorf("gateway: %s: %w", p.Detail, payment.ErrRefundExceedsCharge)
	}
	return fmt.Errorf("gateway: unexpected answer %d (%s): %s", resp.StatusCode, p.Type, p.Detail)
}
