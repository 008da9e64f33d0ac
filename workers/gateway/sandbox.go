// Package gateway is the sandbox payment gateway: a payment.Gateway that
// keeps its state in PostgreSQL under its own schema, behaves like Stripe's
// test mode (test card numbers that succeed, are refused or declined), and
// can be made slow, failing or forgetful on purpose (Latency, FailureRate,
// LostResponseRate) so that the engine's exactly-once charging (ARS-8) is
// tested against the failures a real gateway has. It runs in-process
// (Sandbox), over HTTP (NewHandler, served by `subs gateway`), and the
// engine reaches the HTTP face with HTTPClient.
package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	mathrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
)

// Test card numbers and IBANs (Stripe's, where Stripe has one). Any other
// valid card number or IBAN tokenizes and charges successfully.
const (
	// CardSucceeds tokenizes and every charge succeeds.
	CardSucceeds = "4242424242424242"
	// CardRefused is refused at tokenization with payment.CodeCardDeclined.
	CardRefused = "4000000000000002"
	// CardRefusedExpired is refused at tokenization with
	// payment.CodeExpiredCard, whatever expiry it is given.
	CardRefusedExpired = "4000000000000069"
	// CardChargeDeclined tokenizes, but every charge is declined with
	// payment.CodeCardDeclined.
	CardChargeDeclined = "4000000000000341"
	// CardInsufficientFunds tokenizes, but every charge is declined with
	// payment.CodeInsufficientFunds.
	CardInsufficientFunds = "4000000000009995"

	// IBANSucceedsDE, IBANSucceedsAT and IBANSucceedsNL tokenize and every
	// debit succeeds.
	IBANSucceedsDE = "DE89370400440532013000"
	IBANSucceedsAT = "AT611904300234573201"
	IBANSucceedsNL = "NL91ABNA0417164300"
	// IBANDebitDeclined is a valid IBAN that tokenizes, but every debit is
	// declined with payment.CodeInsufficientFunds.
	IBANDebitDeclined = "DE62370400440532013001"
)

// behaviour is what the sandbox does when a token is charged; it is stored
// with the token in place of the number that chose it.
type behaviour string

const (
	behaveSucceed           behaviour = "succeed"
	behaveDeclineCard       behaviour = "decline_card"
	behaveInsufficientFunds behaviour = "insufficient_funds"
)

//go:embed schema.sql
var schemaSQL string

// schemaLockID serialises concurrent NewSandbox calls on one database:
// CREATE … IF NOT EXISTS is not safe against itself running concurrently.
const schemaLockID = 0x6761746577617901

// SandboxConfig configures a Sandbox. The zero value of every field takes
// the default its comment names.
type SandboxConfig struct {
	// Clock is the gateway's time: it stamps charges and decides whether a
	// card has expired by the instant of a charge, so a simulated clock
	// moves cards past their expiry (ARS-6, TRI-6). Default: the machine's
	// clock.
	Clock clock.Clock
	// Latency is added to every call before it does anything, to make
	// timeouts and slow renewal runs observable. Default 0.
	Latency time.Duration
	// FailureRate is the probability, 0 to 1, that a call fails with
	// payment.ErrUnavailable before doing anything. Default 0.
	FailureRate float64
	// LostResponseRate is the probability, 0 to 1, that a Charge or Refund
	// that was recorded still returns payment.ErrUnavailable, as when a
	// response is lost or the caller crashes between the charge and its
	// record (ARS-8). A retry with the same key returns the recorded
	// outcome. Default 0.
	LostResponseRate float64
	// Seed seeds the random draws of FailureRate and LostResponseRate, so a
	// run can be repeated. Default 0, which is a seed like any other.
	Seed int64
}

func (c *SandboxConfig) setDefaults() {
	if c.Clock == nil {
		c.Clock = machineClock{}
	}
}

// Validate reports every invalid field of c, each error naming the field.
func (c SandboxConfig) Validate() error {
	var errs []error
	if c.Latency < 0 {
		errs = append(errs, fmt.Errorf("field Latency: %s is negative", c.Latency))
	}
	if !validRate(c.FailureRate) {
		errs = append(errs, fmt.Errorf("field FailureRate: %v is not a probability from 0 to 1", c.FailureRate))
	}
	if !validRate(c.LostResponseRate) {
		errs = append(errs, fmt.Errorf("field LostResponseRate: %v is not a probability from 0 to 1", c.LostResponseRate))
	}
	return errors.Join(errs...)
}

func validRate(r float64) bool { return !math.IsNaN(r) && r >= 0 && r <= 1 }

// machineClock is the default Clock: the sandbox stands for a service
// outside the engine, which has its own clock.
type machineClock struct{}

func (machineClock) Now() time.Time { return time.Now().UTC() }

// Sandbox is the in-process sandbox gateway. It implements payment.Gateway
// with the contract's guarantees, its state in PostgreSQL (schema
// gateway_sandbox), so several processes on one database share one gateway.
// It is safe for concurrent use.
type Sandbox struct {
	pool *pgxpool.Pool
	cfg  SandboxConfig

	mu  sync.Mutex // guards rng
	rng *mathrand.Rand

	tokensMu sync.Mutex
	tokens   map[string]tokenFacts // known tokens, at most maxKnownTokens
}

// tokenFacts is what a charge's outcome depends on of its token, which
// never changes once made (the sandbox deletes no token): a charge of a
// token the process knows is one statement.
type tokenFacts struct {
	kind, behaviour   string
	expMonth, expYear int // a card's
}

// maxKnownTokens bounds the tokens a Sandbox keeps in memory: past it, it
// forgets them all and reads each again on its next charge.
const maxKnownTokens = 200_000

// outcome is the outcome of a first charge of the token at now: declined
// for a card past its expiry month (CodeExpiredCard) or a method whose test
// behaviour declines it, succeeded otherwise.
func (t tokenFacts) outcome(now time.Time) (payment.ChargeStatus, string) {
	switch {
	case t.kind == payment.KindCard.String() && !now.Before(payment.ExpiryEnd(t.expMonth, t.expYear)):
		return payment.Declined, payment.CodeExpiredCard
	case behaviour(t.behaviour) == behaveDeclineCard:
		return payment.Declined, payment.CodeCardDeclined
	case behaviour(t.behaviour) == behaveInsufficientFunds:
		return payment.Declined, payment.CodeInsufficientFunds
	}
	return payment.Succeeded, ""
}

// knownToken returns the facts of a token the process has made or read.
func (s *Sandbox) knownToken(token string) (tokenFacts, bool) {
	s.tokensMu.Lock()
	defer s.tokensMu.Unlock()
	t, ok := s.tokens[token]
	return t, ok
}

// keepToken keeps a token's facts.
func (s *Sandbox) keepToken(token string, t tokenFacts) {
	s.tokensMu.Lock()
	defer s.tokensMu.Unlock()
	if len(s.tokens) >= maxKnownTokens {
		clear(s.tokens)
	}
	s.tokens[token] = t
}

var _ payment.Gateway = (*Sandbox)(nil)

// NewSandbox applies cfg's defaults, validates it, creates the sandbox's
// schema and tables in pool's database if they do not exist, and returns
// the sandbox. An invalid cfg is refused with an error wrapping
// "invalid config".
func NewSandbox(ctx context.Context, pool *pgxpool.Pool, cfg SandboxConfig) (*Sandbox, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway: invalid config: %w", err)
	}
	if pool == nil {
		return nil, errors.New("gateway: pool is nil: pass the database the sandbox keeps its state in")
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(schemaLockID)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schemaSQL)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: create the sandbox schema: %w", err)
	}
	seed := uint64(cfg.Seed)
	return &Sandbox{pool: pool, cfg: cfg, rng: mathrand.New(mathrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), tokens: map[string]tokenFacts{}}, nil
}

// roll reports whether an event of probability rate happens this time.
func (s *Sandbox) roll(rate float64) bool {
	switch {
	case rate <= 0:
		return false
	case rate >= 1:
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64() < rate
}

// enter waits the configured latency and draws the configured failure:
// what every call goes through before it does anything.
func (s *Sandbox) enter(ctx context.Context, op string) error {
	if err := s.wait(ctx, op); err != nil {
		return err
	}
	return s.fail(op)
}

// wait waits the configured latency, the time a call takes to arrive.
func (s *Sandbox) wait(ctx context.Context, op string) error {
	if s.cfg.Latency > 0 {
		t := time.NewTimer(s.cfg.Latency)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: %w", payment.ErrUnavailable, op, ctx.Err())
		case <-t.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %s: %w", payment.ErrUnavailable, op, err)
	}
	return nil
}

// fail draws the configured failure of a request.
func (s *Sandbox) fail(op string) error {
	if s.roll(s.cfg.FailureRate) {
		return fmt.Errorf("%w: %s: simulated failure (FailureRate)", payment.ErrUnavailable, op)
	}
	return nil
}

// unavailable reports a database failure: whether the work was done is
// unknown to the caller, which is what ErrUnavailable says.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", payment.ErrUnavailable, op, err)
}

// TokenizeCard stores the card's brand, last four, expiry, holder and test
// behaviour under a new token; never its number or CVV. CardRefused and
// CardRefusedExpired are refused with a *payment.CardError, as is a card
// that has expired by the sandbox clock.
func (s *Sandbox) TokenizeCard(ctx context.Context, card payment.Card) (payment.PaymentMethod, error) {
	if err := s.enter(ctx, "tokenize card"); err != nil {
		return payment.PaymentMethod{}, err
	}
	if card.IsZero() {
		return payment.PaymentMethod{}, &payment.FieldError{Field: payment.FieldCardNumber, Problem: "no card given"}
	}
	now := s.cfg.Clock.Now()
	switch {
	case card.Number() == CardRefused:
		return payment.PaymentMethod{}, &payment.CardError{Code: payment.CodeCardDeclined, Field: payment.FieldCardNumber}
	case card.Number() == CardRefusedExpired, card.ExpiredAt(now):
		return payment.PaymentMethod{}, &payment.CardError{Code: payment.CodeExpiredCard, Field: payment.FieldCardExpiry}
	}
	behave := behaveSucceed
	switch card.Number() {
	case CardChargeDeclined:
		behave = behaveDeclineCard
	case CardInsufficientFunds:
		behave = behaveInsufficientFunds
	}
	token := newID("tok_")
	method, err := payment.NewCardMethod(token, card.Brand(), card.LastFour(), card.ExpMonth(), card.ExpYear(), card.HolderName())
	if err != nil {
		return payment.PaymentMethod{}, fmt.Errorf("gateway: tokenize card: %w", err)
	}
	_, err = s.pool.Exec(ctx, `
		INSERT INTO gateway_sandbox.tokens (token, kind, brand, last4, exp_month, exp_year, holder_name, behaviour, created_at)
		VALUES ($1, 'card', $2, $3, $4, $5, $6, $7, $8)`,
		token, card.Brand().String(), card.LastFour(), card.ExpMonth(), card.ExpYear(), card.HolderName(), string(behave), now)
	if err != nil {
		return payment.PaymentMethod{}, unavailable("tokenize card", err)
	}
	s.keepToken(token, tokenFacts{kind: payment.KindCard.String(), behaviour: string(behave), expMonth: card.ExpMonth(), expYear: card.ExpYear()})
	return method, nil
}

// TokenizeDirectDebit stores the account's country, last four, holder and
// test behaviour under a new token; never the IBAN. Every valid IBAN is
// accepted; IBANDebitDeclined's debits are declined.
func (s *Sandbox) TokenizeDirectDebit(ctx context.Context, account payment.BankAccount) (payment.PaymentMethod, error) {
	if err := s.enter(ctx, "tokenize direct debit"); err != nil {
		return payment.PaymentMethod{}, err
	}
	if account.IsZero() {
		return payment.PaymentMethod{}, &payment.FieldError{Field: payment.FieldIBAN, Problem: "no bank account given"}
	}
	behave := behaveSucceed
	if account.IBAN() == IBANDebitDeclined {
		behave = behaveInsufficientFunds
	}
	token := newID("tok_")
	method, err := payment.NewDirectDebitMethod(token, account.Country(), account.LastFour(), account.HolderName())
	if err != nil {
		return payment.PaymentMethod{}, fmt.Errorf("gateway: tokenize direct debit: %w", err)
	}
	_, err = s.pool.Exec(ctx, `
		INSERT INTO gateway_sandbox.tokens (token, kind, country, last4, holder_name, behaviour, created_at)
		VALUES ($1, 'direct_debit', $2, $3, $4, $5, $6)`,
		token, account.Country(), account.LastFour(), account.HolderName(), string(behave), s.cfg.Clock.Now())
	if err != nil {
		return payment.PaymentMethod{}, unavailable("tokenize direct debit", err)
	}
	s.keepToken(token, tokenFacts{kind: payment.KindDirectDebit.String(), behaviour: string(behave)})
	return method, nil
}

// Charge charges req.Token, at most once per idempotency key. The first
// request with a key decides the outcome — Declined for a card past its
// expiry month at the sandbox clock's instant (CodeExpiredCard), for
// CardChargeDeclined, CardInsufficientFunds and IBANDebitDeclined; Succeeded
// otherwise — and records it in the same transaction that claims the key.
// Later requests with the key, concurrent or not, get that outcome back.
func (s *Sandbox) Charge(ctx context.Context, req payment.ChargeRequest) (payment.ChargeOutcome, error) {
	if err := s.enter(ctx, "charge"); err != nil {
		return payment.ChargeOutcome{}, err
	}
	if err := req.Validate(); err != nil {
		return payment.ChargeOutcome{}, err
	}
	r := s.lose(s.charge(ctx, req, chargeHash(req)))
	return r.Outcome, r.Err
}

var _ payment.BatchCharger = (*Sandbox)(nil)

// ChargeBatch makes the charges reqs ask for as Charge makes each one
// (payment.BatchCharger): the call waits the configured latency once, each
// request draws its own failure and lost response, and the charges of
// tokens the process knows are inserted in one statement, whose conflicts
// (a key charged before, or twice in the batch) are then read one by one.
func (s *Sandbox) ChargeBatch(ctx context.Context, reqs []payment.ChargeRequest) []payment.ChargeResult {
	results := make([]payment.ChargeResult, len(reqs))
	if err := s.wait(ctx, "charge"); err != nil {
		for i := range results {
			results[i].Err = err
		}
		return results
	}
	var together batchedCharges
	for i, req := range reqs {
		if err := s.fail("charge"); err != nil {
			results[i].Err = err
			continue
		}
		if err := req.Validate(); err != nil {
			results[i].Err = err
			continue
		}
		t, known := s.knownToken(req.Token)
		if !known {
			results[i] = s.lose(s.charge(ctx, req, chargeHash(req)))
			continue
		}
		together.add(i, req, chargeHash(req), t, s.cfg.Clock.Now())
	}
	recorded, err := together.insert(ctx, s.pool)
	for j, i := range together.index {
		switch {
		case err != nil:
			results[i].Err = unavailable("charge", err)
		case recorded[j]:
			results[i] = s.lose(together.outcomes[j], true, nil)
		default:
			out, found, err := s.chargeByKey(ctx, reqs[i].IdempotencyKey, together.hashes[j])
			if err == nil && !found {
				err = unavailable("charge", errors.New("the idempotency key conflicted but its charge is not visible"))
			}
			results[i] = payment.ChargeResult{Outcome: out, Err: err}
		}
	}
	return results
}

// lose is a charge's answer, lost on its way back when it was recorded and
// the LostResponseRate draw says so.
func (s *Sandbox) lose(out payment.ChargeOutcome, recorded bool, err error) payment.ChargeResult {
	if err != nil {
		return payment.ChargeResult{Err: err}
	}
	if recorded && s.roll(s.cfg.LostResponseRate) {
		return payment.ChargeResult{Err: fmt.Errorf("%w: charge %s was made but its response was lost (LostResponseRate)", payment.ErrUnavailable, out.ChargeID)}
	}
	return payment.ChargeResult{Outcome: out}
}

// batchedCharges are a batch's charges to insert together: each one's
// outcome as it will be recorded, and its request in the batch (index).
type batchedCharges struct {
	index    []int
	outcomes []payment.ChargeOutcome
	tokens   []string
	descs    []string
	hashes   [][]byte
	ats      []time.Time
}

func (b *batchedCharges) add(i int, req payment.ChargeRequest, hash []byte, t tokenFacts, now time.Time) {
	status, code := t.outcome(now)
	b.index = append(b.index, i)
	b.outcomes = append(b.outcomes, payment.ChargeOutcome{ChargeID: newID("ch_"), Status: status, DeclineCode: code, Amount: req.Amount,
		IdempotencyKey: req.IdempotencyKey})
	b.tokens, b.descs, b.hashes, b.ats = append(b.tokens, req.Token), append(b.descs, req.Description), append(b.hashes, hash), append(b.ats, now)
}

// insert records the charges, in their order, except those whose key has a
// charge already (recorded[j] false: an earlier one, or one before in the
// batch).
func (b *batchedCharges) insert(ctx context.Context, pool *pgxpool.Pool) (recorded []bool, err error) {
	if len(b.index) == 0 {
		return nil, nil
	}
	n := len(b.outcomes)
	ids, keys, currencies, statuses, codes := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	minors := make([]int64, n)
	for j, o := range b.outcomes {
		ids[j], keys[j], statuses[j], codes[j] = o.ChargeID, o.IdempotencyKey, o.Status.String(), o.DeclineCode
		minors[j], currencies[j] = o.Amount.Amount(), o.Amount.Currency().Code()
	}
	rows, err := pool.Query(ctx, `
		INSERT INTO gateway_sandbox.charges
			(charge_id, idempotency_key, request_hash, token, amount_minor, currency, description, status, decline_code, created_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::timestamptz[])
		ON CONFLICT (idempotency_key) DO NOTHING
		RETURNING charge_id`,
		ids, keys, b.hashes, b.tokens, minors, currencies, b.descs, statuses, codes, b.ats)
	if err != nil {
		return nil, err
	}
	made, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	inserted := make(map[string]bool, len(made))
	for _, id := range made {
		inserted[id] = true
	}
	recorded = make([]bool, n)
	for j, id := range ids {
		recorded[j] = inserted[id]
	}
	return recorded, nil
}

// charge makes the charge, or finds the one made with its key. recorded
// reports whether this call made it. No transaction: the insert is atomic
// by itself, and a charge already made with the key (earlier, or by a
// concurrent request that inserts first) is found by reading the key. A
// token the process knows costs one round trip; another, two (one
// statement reads the key's charge and the token first).
func (s *Sandbox) charge(ctx context.Context, req payment.ChargeRequest, hash []byte) (out payment.ChargeOutcome, recorded bool, err error) {
	if t, ok := s.knownToken(req.Token); ok {
		return s.insertCharge(ctx, req, hash, t)
	}
	var (
		stored            storedCharge
		kind, behave      *string
		expMonth, expYear *int
	)
	err = s.pool.QueryRow(ctx, `
		SELECT c.charge_id, c.request_hash, c.amount_minor, c.currency, c.status, c.decline_code,
		       t.kind, t.behaviour, t.exp_month, t.exp_year
		FROM (SELECT) AS one
		LEFT JOIN gateway_sandbox.charges c ON c.idempotency_key = $1
		LEFT JOIN gateway_sandbox.tokens t ON t.token = $2`, req.IdempotencyKey, req.Token).
		Scan(&stored.id, &stored.hash, &stored.minor, &stored.currency, &stored.status, &stored.code, &kind, &behave, &expMonth, &expYear)
	if err != nil {
		return out, false, unavailable("charge", err)
	}
	if stored.id != nil {
		out, err := stored.outcome(req.IdempotencyKey, hash)
		return out, false, err
	}
	if kind == nil {
		return out, false, fmt.Errorf("gateway: charge: %w", payment.ErrUnknownToken)
	}
	t := tokenFacts{kind: *kind, behaviour: *behave}
	if expMonth != nil && expYear != nil {
		t.expMonth, t.expYear = *expMonth, *expYear
	}
	s.keepToken(req.Token, t)
	return s.insertCharge(ctx, req, hash, t)
}

// insertCharge records the first charge with req's key, of token t, unless
// one is recorded already: then that one is the answer.
func (s *Sandbox) insertCharge(ctx context.Context, req payment.ChargeRequest, hash []byte, t tokenFacts) (out payment.ChargeOutcome, recorded bool, err error) {
	now := s.cfg.Clock.Now()
	status, code := t.outcome(now)
	id := newID("ch_")
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO gateway_sandbox.charges
			(charge_id, idempotency_key, request_hash, token, amount_minor, currency, description, status, decline_code, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (idempotency_key) DO NOTHING`,
		id, req.IdempotencyKey, hash, req.Token, req.Amount.Amount(), req.Amount.Currency().Code(), req.Description,
		status.String(), code, now)
	if err != nil {
		return out, false, unavailable("charge", err)
	}
	if tag.RowsAffected() == 0 {
		// A charge with the key was made before, or by a concurrent
		// request that committed first; this new statement sees its row.
		out, found, err := s.chargeByKey(ctx, req.IdempotencyKey, hash)
		if err == nil && !found {
			err = unavailable("charge", errors.New("the idempotency key conflicted but its charge is not visible"))
		}
		return out, false, err
	}
	return payment.ChargeOutcome{ChargeID: id, Status: status, DeclineCode: code, Amount: req.Amount, IdempotencyKey: req.IdempotencyKey}, true, nil
}

// storedCharge is a charge's row as read; id is nil when there is none.
type storedCharge struct {
	id, currency, status, code *string
	minor                      *int64
	hash                       []byte
}

// outcome is the stored charge as the answer to a request with key and
// hash, refused with ErrIdempotencyMismatch when it was made for another
// request.
func (c storedCharge) outcome(key string, hash []byte) (payment.ChargeOutcome, error) {
	if string(c.hash) != string(hash) {
		return payment.ChargeOutcome{}, fmt.Errorf("gateway: charge %s was made with this key for another request: %w", *c.id, payment.ErrIdempotencyMismatch)
	}
	amount, err := storedMoney(*c.minor, *c.currency)
	if err != nil {
		return payment.ChargeOutcome{}, err
	}
	st, err := payment.ParseChargeStatus(*c.status)
	if err != nil {
		return payment.ChargeOutcome{}, fmt.Errorf("gateway: stored charge %s: %w", *c.id, err)
	}
	return payment.ChargeOutcome{ChargeID: *c.id, Status: st, DeclineCode: *c.code, Amount: amount, IdempotencyKey: key}, nil
}

// chargeByKey returns the charge recorded under key, as storedCharge's
// outcome answers it, and false if there is none.
func (s *Sandbox) chargeByKey(ctx context.Context, key string, hash []byte) (payment.ChargeOutcome, bool, error) {
	var c storedCharge
	err := s.pool.QueryRow(ctx, `
		SELECT charge_id, request_hash, amount_minor, currency, status, decline_code
		FROM gateway_sandbox.charges WHERE idempotency_key = $1`, key).
		Scan(&c.id, &c.hash, &c.minor, &c.currency, &c.status, &c.code)
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.ChargeOutcome{}, false, nil
	}
	if err != nil {
		return payment.ChargeOutcome{}, false, unavailable("charge", err)
	}
	out, err := c.outcome(key, hash)
	return out, err == nil, err
}

// Refund gives back req.Amount of a succeeded charge, at most once per
// idempotency key. It locks the charge's row so that concurrent refunds
// with different keys cannot together exceed the charge.
func (s *Sandbox) Refund(ctx context.Context, req payment.RefundRequest) (payment.RefundOutcome, error) {
	if err := s.enter(ctx, "refund"); err != nil {
		return payment.RefundOutcome{}, err
	}
	if err := req.Validate(); err != nil {
		return payment.RefundOutcome{}, err
	}
	out, recorded, err := s.refund(ctx, req, refundHash(req))
	if err != nil {
		return payment.RefundOutcome{}, err
	}
	if recorded && s.roll(s.cfg.LostResponseRate) {
		return payment.RefundOutcome{}, fmt.Errorf("%w: refund %s was made but its response was lost (LostResponseRate)", payment.ErrUnavailable, out.RefundID)
	}
	return out, nil
}

func (s *Sandbox) refund(ctx context.Context, req payment.RefundRequest, hash []byte) (out payment.RefundOutcome, recorded bool, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return out, false, unavailable("refund", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	if out, found, err := refundByKey(ctx, tx, req.IdempotencyKey, hash); err != nil || found {
		return out, false, err
	}
	var (
		status, currency string
		minor            int64
	)
	err = tx.QueryRow(ctx, `
		SELECT status, amount_minor, currency FROM gateway_sandbox.charges WHERE charge_id = $1 FOR UPDATE`, req.ChargeID).
		Scan(&status, &minor, &currency)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && status != payment.Succeeded.String()) {
		return out, false, fmt.Errorf("gateway: refund of charge %q: %w", req.ChargeID, payment.ErrUnknownCharge)
	}
	if err != nil {
		return out, false, unavailable("refund", err)
	}
	// A concurrent request with this key may have committed while we waited
	// for the charge's lock: it wins, and we answer with its outcome.
	if out, found, err := refundByKey(ctx, tx, req.IdempotencyKey, hash); err != nil || found {
		return out, false, err
	}
	if currency != req.Amount.Currency().Code() {
		return out, false, &payment.FieldError{Field: payment.FieldAmount, Problem: fmt.Sprintf("the charge is in %s; refund it in %s", currency, currency)}
	}
	var refunded int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount_minor), 0) FROM gateway_sandbox.refunds WHERE charge_id = $1`, req.ChargeID).Scan(&refunded); err != nil {
		return out, false, unavailable("refund", err)
	}
	if req.Amount.Amount() > minor-refunded {
		return out, false, fmt.Errorf("gateway: refund of %s from charge %s, of which %d minor units remain: %w", req.Amount, req.ChargeID, minor-refunded, payment.ErrRefundExceedsCharge)
	}
	id := newID("re_")
	tag, err := tx.Exec(ctx, `
		INSERT INTO gateway_sandbox.refunds (refund_id, idempotency_key, request_hash, charge_id, amount_minor, currency, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (idempotency_key) DO NOTHING`,
		id, req.IdempotencyKey, hash, req.ChargeID, req.Amount.Amount(), currency, s.cfg.Clock.Now())
	if err != nil {
		return out, false, unavailable("refund", err)
	}
	if tag.RowsAffected() == 0 {
		// The same key, used concurrently to refund another charge, won:
		// this finds it and reports the mismatch.
		out, found, err := refundByKey(ctx, tx, req.IdempotencyKey, hash)
		if err == nil && !found {
			err = unavailable("refund", errors.New("the idempotency key conflicted but its refund is not visible"))
		}
		return out, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return out, false, unavailable("refund", err)
	}
	return payment.RefundOutcome{RefundID: id, ChargeID: req.ChargeID, Amount: req.Amount}, true, nil
}

func refundByKey(ctx context.Context, tx pgx.Tx, key string, hash []byte) (payment.RefundOutcome, bool, error) {
	var (
		id, chargeID, currency string
		minor                  int64
		storedHash             []byte
	)
	err := tx.QueryRow(ctx, `
		SELECT refund_id, charge_id, request_hash, amount_minor, currency
		FROM gateway_sandbox.refunds WHERE idempotency_key = $1`, key).
		Scan(&id, &chargeID, &storedHash, &minor, &currency)
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.RefundOutcome{}, false, nil
	}
	if err != nil {
		return payment.RefundOutcome{}, false, unavailable("refund", err)
	}
	if string(storedHash) != string(hash) {
		return payment.RefundOutcome{}, false, fmt.Errorf("gateway: refund %s was made with this key for another request: %w", id, payment.ErrIdempotencyMismatch)
	}
	amount, err := storedMoney(minor, currency)
	if err != nil {
		return payment.RefundOutcome{}, false, err
	}
	return payment.RefundOutcome{RefundID: id, ChargeID: chargeID, Amount: amount}, true, nil
}

// Charges lists the sandbox's charges in the order they were made, with the
// sum of each one's refunds. An After naming no charge selects nothing.
func (s *Sandbox) Charges(ctx context.Context, f payment.ChargeFilter) ([]payment.LedgerEntry, error) {
	if err := s.enter(ctx, "list charges"); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	// Only the filters given are in the statement: a condition that a
	// parameter turns off ("$1 = '' OR …") keeps a generic plan from
	// starting at the page's place in the index on seq: each page of a
	// large ledger scanned it from its start (55 ms a page of 1,000 at the
	// end of 400,000 charges).
	var where []string
	var args []any
	filter := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if !f.From.IsZero() {
		filter("c.created_at >= $%d", f.From)
	}
	if !f.Until.IsZero() {
		filter("c.created_at < $%d", f.Until)
	}
	if f.IdempotencyKey != "" {
		filter("c.idempotency_key = $%d", f.IdempotencyKey)
	}
	if f.After != "" {
		filter("c.seq > (SELECT a.seq FROM gateway_sandbox.charges a WHERE a.charge_id = $%d)", f.After)
	}
	sql := `SELECT c.charge_id, c.idempotency_key, c.token, c.amount_minor, c.currency, c.status, c.decline_code, c.created_at,
       coalesce((SELECT sum(r.amount_minor) FROM gateway_sandbox.refunds r WHERE r.charge_id = c.charge_id), 0)
FROM gateway_sandbox.charges c`
	if len(where) > 0 {
		sql += "\nWHERE " + strings.Join(where, " AND ")
	}
	// The limit is in the text, so that the plan's cost is the page's: as a
	// parameter it is a tenth of the table to the planner, whose cost then
	// calls for JIT compilation (5 ms, five times the page's work).
	rows, err := s.pool.Query(ctx, sql+fmt.Sprintf("\nORDER BY c.seq\nLIMIT %d", limit), args...)
	if err != nil {
		return nil, unavailable("list charges", err)
	}
	defer rows.Close()
	var out []payment.LedgerEntry
	for rows.Next() {
		var (
			e                payment.LedgerEntry
			currency, status string
			minor, refunded  int64
		)
		if err := rows.Scan(&e.ChargeID, &e.IdempotencyKey, &e.Token, &minor, &currency, &status, &e.DeclineCode, &e.CreatedAt, &refunded); err != nil {
			return nil, unavailable("list charges", err)
		}
		if e.Amount, err = storedMoney(minor, currency); err != nil {
			return nil, err
		}
		e.Refunded = money.New(refunded, e.Amount.Currency())
		if e.Status, err = payment.ParseChargeStatus(status); err != nil {
			return nil, fmt.Errorf("gateway: stored charge %s: %w", e.ChargeID, err)
		}
		e.CreatedAt = e.CreatedAt.UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("list charges", err)
	}
	return out, nil
}

func storedMoney(minor int64, code string) (money.Money, error) {
	cur, err := money.ParseCurrency(code)
	if err != nil {
		return money.Money{}, fmt.Errorf("gateway: stored currency: %w", err)
	}
	return money.New(minor, cur), nil
}

// chargeHash fingerprints what a charge request asks for, so that a key
// reused for something else is told apart from a retry.
func chargeHash(r payment.ChargeRequest) []byte {
	return fingerprint("charge", r.Token, r.Amount.Currency().Code(), r.Description, r.Amount.Amount())
}

func refundHash(r payment.RefundRequest) []byte {
	return fingerprint("refund", r.ChargeID, r.Amount.Currency().Code(), "", r.Amount.Amount())
}

func fingerprint(kind, a, b, c string, n int64) []byte {
	h := sha256.New()
	for _, s := range []string{kind, a, b, c} {
		var l [8]byte
		binary.BigEndian.PutUint64(l[:], uint64(len(s))) // length-prefixed: no ambiguity between fields
		h.Write(l[:])
		h.Write([]byte(s))
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(n))
	h.Write(v[:])
	return h.Sum(nil)
}

// newID returns prefix and 24 random hex digits: ids must not collide across
// sandboxes sharing a database, so they do not come from the seeded source.
func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return prefix + hex.EncodeToString(b)
}
