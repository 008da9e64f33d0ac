package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
)

// maxBodyBytes bounds a request body; the largest legitimate one is a few
// hundred bytes.
const maxBodyBytes = 64 << 10

// NewHandler returns the sandbox's HTTP API, JSON in and out:
//
//	POST /v1/tokens/cards           {number, cvv, holder_name, exp_month, exp_year} → 201 payment method
//	POST /v1/tokens/direct-debits   {iban, holder_name} → 201 payment method
//	POST /v1/charges                Idempotency-Key header; {token, amount, description} → 200 outcome
//	POST /v1/refunds                Idempotency-Key header; {charge_id, amount} → 200 refund
//	GET  /v1/charges                ?from=&until= (RFC 3339) &idempotency_key= &after= &limit= → 200 {charges}
//	GET  /healthz                   → 200 {"status":"ok"} while the process runs
//
// A declined charge is a 200 with status "declined". Errors are
// application/problem+json with one of the Problem types: a refused card is
// 402 with code and field (a number that fails the Luhn check is refused
// as incorrect_number, an expired one as expired_card, as a real gateway
// does); bad input is 400 naming the field; ErrUnavailable is 503. logger
// (nil: discard) gets one line per failure and per token issued, with brand
// or country and last four only: never a card number, CVV or IBAN.
func NewHandler(s *Sandbox, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{s: s, log: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/tokens/cards", h.tokenizeCard)
	mux.HandleFunc("POST /v1/tokens/direct-debits", h.tokenizeDirectDebit)
	mux.HandleFunc("POST /v1/charges", h.charge)
	mux.HandleFunc("POST /v1/refunds", h.refund)
	mux.HandleFunc("GET /v1/charges", h.charges)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "No such endpoint in the sandbox gateway."})
	})
	return mux
}

type handler struct {
	s   *Sandbox
	log *slog.Logger
}

func (h *handler) tokenizeCard(w http.ResponseWriter, r *http.Request) {
	var req cardRequest
	if !h.decode(w, r, &req) {
		return
	}
	now := h.s.cfg.Clock.Now()
	card, err := payment.NewCard(req.Number, req.CVV, req.HolderName, req.ExpMonth, req.ExpYear, now)
	if err != nil {
		h.fail(w, r, "tokenize card", asCardError(err, req, now))
		return
	}
	method, err := h.s.TokenizeCard(r.Context(), card)
	if err != nil {
		h.fail(w, r, "tokenize card", err)
		return
	}
	h.log.InfoContext(r.Context(), "card tokenized", slog.String("token", method.Token()), slog.Any("card", card))
	writeJSON(w, http.StatusCreated, method)
}

// asCardError turns NewCard's refusals that a real gateway reports as card
// errors (a number it does not accept, a card that has expired) into
// *payment.CardError; other refusals stay bad input.
func asCardError(err error, req cardRequest, now time.Time) error {
	var fe *payment.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	switch {
	case fe.Field == payment.FieldCardNumber:
		return &payment.CardError{Code: payment.CodeIncorrectNumber, Field: payment.FieldCardNumber}
	case fe.Field == payment.FieldCardExpiry && req.ExpMonth >= 1 && req.ExpMonth <= 12 &&
		req.ExpYear >= 1000 && req.ExpYear <= 9999 && !now.Before(payment.ExpiryEnd(req.ExpMonth, req.ExpYear)):
		return &payment.CardError{Code: payment.CodeExpiredCard, Field: payment.FieldCardExpiry}
	}
	return err
}

func (h *handler) tokenizeDirectDebit(w http.ResponseWriter, r *http.Request) {
	var req directDebitRequest
	if !h.decode(w, r, &req) {
		return
	}
	account, err := payment.NewBankAccount(req.IBAN, req.HolderName)
	if err != nil {
		h.fail(w, r, "tokenize direct debit", err)
		return
	}
	method, err := h.s.TokenizeDirectDebit(r.Context(), account)
	if err != nil {
		h.fail(w, r, "tokenize direct debit", err)
		return
	}
	h.log.InfoContext(r.Context(), "direct debit tokenized", slog.String("token", method.Token()), slog.Any("account", account))
	writeJSON(w, http.StatusCreated, method)
}

func (h *handler) charge(w http.ResponseWriter, r *http.Request) {
	var body chargeRequest
	if !h.decode(w, r, &body) {
		return
	}
	amount, err := decodeAmount(body.Amount)
	if err != nil {
		h.fail(w, r, "charge", err)
		return
	}
	out, err := h.s.Charge(r.Context(), payment.ChargeRequest{
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		Token:          body.Token,
		Amount:         amount,
		Description:    body.Description,
	})
	if err != nil {
		h.fail(w, r, "charge", err)
		return
	}
	writeJSON(w, http.StatusOK, chargeResponse{
		ChargeID: out.ChargeID, Status: out.Status, DeclineCode: out.DeclineCode, Amount: out.Amount, IdempotencyKey: out.IdempotencyKey,
	})
}

func (h *handler) refund(w http.ResponseWriter, r *http.Request) {
	var body refundRequest
	if !h.decode(w, r, &body) {
		return
	}
	amount, err := decodeAmount(body.Amount)
	if err != nil {
		h.fail(w, r, "refund", err)
		return
	}
	out, err := h.s.Refund(r.Context(), payment.RefundRequest{
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		ChargeID:       body.ChargeID,
		Amount:         amount,
	})
	if err != nil {
		h.fail(w, r, "refund", err)
		return
	}
	writeJSON(w, http.StatusOK, refundResponse{RefundID: out.RefundID, ChargeID: out.ChargeID, Amount: out.Amount})
}

func (h *handler) charges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := payment.ChargeFilter{IdempotencyKey: q.Get("idempotency_key"), After: q.Get("after")}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				h.fail(w, r, "list charges", &payment.FieldError{Field: p.name, Problem: "not an RFC 3339 time such as 2026-01-31T09:00:00Z"})
				return
			}
			*p.dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			h.fail(w, r, "list charges", &payment.FieldError{Field: "limit", Problem: "not an integer"})
			return
		}
		f.Limit = n
	}
	entries, err := h.s.Charges(r.Context(), f)
	if err != nil {
		h.fail(w, r, "list charges", err)
		return
	}
	resp := ledgerResponse{Charges: make([]ledgerEntry, 0, len(entries))}
	for _, e := range entries {
		resp.Charges = append(resp.Charges, ledgerEntry{
			ChargeID: e.ChargeID, IdempotencyKey: e.IdempotencyKey, Token: e.Token, Amount: e.Amount,
			Status: e.Status, DeclineCode: e.DeclineCode, Refunded: e.Refunded, CreatedAt: e.CreatedAt,
		})
	}
	writeJSON(w, http.StatusOK, resp)
}

// decode reads r's JSON body into dst strictly (size-limited, no unknown
// fields, nothing after the object), answering 400 itself when it cannot.
func (h *handler) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err != nil {
		field := "body"
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			field = typeErr.Field
		}
		// The decoder's message may quote input (a card number in the wrong
		// type); it is not echoed.
		h.fail(w, r, "decode", &payment.FieldError{Field: field, Problem: "the request body is not the expected JSON object"})
		return false
	}
	return true
}

func decodeAmount(raw json.RawMessage) (money.Money, error) {
	var m money.Money
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return m, &payment.FieldError{Field: payment.FieldAmount, Problem: `an amount is required: {"amount": <minor units>, "currency": "EUR"}`}
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, &payment.FieldError{Field: payment.FieldAmount, Problem: err.Error()}
	}
	return m, nil
}

// fail answers err as a problem and logs it: unexpected failures at error
// level with their cause, refusals at info. Nothing logged quotes a card
// number, CVV or IBAN: errors from the payment package never do.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	p := problemFor(err)
	level := slog.LevelInfo
	switch {
	case p.Status == http.StatusServiceUnavailable:
		level = slog.LevelWarn
	case p.Status >= 500:
		level = slog.LevelError
	}
	h.log.LogAttrs(r.Context(), level, "gateway request refused",
		slog.String("op", op), slog.Int("status", p.Status), slog.String("type", p.Type), slog.String("error", err.Error()))
	writeProblem(w, p)
}

// problemFor maps an error of the payment package to its problem: the one
// place where the sandbox's errors meet HTTP statuses.
func problemFor(err error) problem {
	var (
		cardErr  *payment.CardError
		fieldErr *payment.FieldError
	)
	switch {
	case errors.As(err, &cardErr):
		return problem{Type: ProblemCardError, Status: http.StatusPaymentRequired, Code: cardErr.Code, Field: cardErr.Field,
			Detail: fmt.Sprintf("The card was refused: %s.", cardErr.Code)}
	case errors.As(err, &fieldErr):
		return problem{Type: ProblemInvalidRequest, Status: http.StatusBadRequest, Detail: "The request has an invalid field.",
			Errors: []problemField{{Field: fieldErr.Field, Message: fieldErr.Problem}}}
	case errors.Is(err, payment.ErrUnavailable):
		return problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable,
			Detail: "The gateway could not complete the request; its outcome is unknown. Retry with the same Idempotency-Key."}
	case errors.Is(err, payment.ErrIdempotencyMismatch):
		return problem{Type: ProblemIdempotencyMismatch, Status: http.StatusConflict, Detail: "This Idempotency-Key was used for a different request."}
	case errors.Is(err, payment.ErrUnknownToken):
		return problem{Type: ProblemUnknownToken, Status: http.StatusNotFound, Field: payment.FieldToken, Detail: "No payment method has this token."}
	case errors.Is(err, payment.ErrUnknownCharge):
		return problem{Type: ProblemUnknownCharge, Status: http.StatusNotFound, Field: payment.FieldChargeID, Detail: "No successful charge has this id."}
	case errors.Is(err, payment.ErrRefundExceedsCharge):
		return problem{Type: ProblemRefundExceedsCharge, Status: http.StatusConflict, Field: payment.FieldAmount, Detail: "The refund exceeds what remains of the charge."}
	}
	return problem{Type: ProblemInternal, Status: http.StatusInternalServerError, Detail: "The sandbox gateway failed; the cause is in its log."}
}

func writeProblem(w http.ResponseWriter, p problem) {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	body, _ := json.Marshal(p) // strings and ints only
	w.Header().Set("Content-Type", problemContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, problem{Type: ProblemInternal, Status: http.StatusInternalServerError, Detail: "The sandbox could not encode its answer."})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
