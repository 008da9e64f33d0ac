package money

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrCurrencyMismatch is returned (wrapped) by arithmetic on two amounts in
// different currencies: there is no implicit conversion.
var ErrCurrencyMismatch = errors.New("money: currency mismatch")

// ErrOverflow is returned (wrapped) when a result does not fit in int64
// minor units.
var ErrOverflow = errors.New("money: amount overflows int64 minor units")

// ErrInvalidAmount is matched (errors.Is) by every refusal of ParseAmount and
// of JSON decoding.
var ErrInvalidAmount = errors.New("money: invalid amount")

// Money is an amount: an integer number of minor units (cents, yen) of one
// currency. Values are immutable. The zero Money has no currency and is not
// a valid amount; build amounts with New, Zero or ParseAmount.
type Money struct {
	amount int64
	cur    Currency
}

// New returns minor units of cur: New(4999, USD) is USD 49.99, New(5980, JPY)
// is JPY 5980. cur must be a valid currency; New panics on the zero Currency,
// which only a programming error can produce.
func New(minor int64, cur Currency) Money {
	if cur.IsZero() {
		panic("money.New: zero Currency")
	}
	return Money{amount: minor, cur: cur}
}

// Zero returns no money in cur (a trial's price, for instance).
func Zero(cur Currency) Money { return New(0, cur) }

// Amount returns the amount in minor units.
func (m Money) Amount() int64 { return m.amount }

// Currency returns the currency of m.
func (m Money) Currency() Currency { return m.cur }

// IsZero reports whether the amount is zero (whatever the currency).
func (m Money) IsZero() bool { return m.amount == 0 }

// Negative reports whether the amount is below zero.
func (m Money) Negative() bool { return m.amount < 0 }

// Equal reports whether m and o are the same amount in the same currency.
func (m Money) Equal(o Money) bool { return m == o }

// Add returns m+o. It refuses amounts in different currencies
// (ErrCurrencyMismatch) and results beyond int64 (ErrOverflow).
func (m Money) Add(o Money) (Money, error) {
	if err := m.sameCurrency(o); err != nil {
		return Money{}, err
	}
	s := m.amount + o.amount
	// Signed overflow happened iff both operands have the sign the result lacks.
	if (m.amount > 0 && o.amount > 0 && s < 0) || (m.amount < 0 && o.amount < 0 && s >= 0) {
		return Money{}, fmt.Errorf("%w: %s + %s", ErrOverflow, m, o)
	}
	return Money{amount: s, cur: m.cur}, nil
}

// Sub returns m-o, with the refusals of Add.
func (m Money) Sub(o Money) (Money, error) {
	if err := m.sameCurrency(o); err != nil {
		return Money{}, err
	}
	d := m.amount - o.amount
	// Signed overflow happened iff the operands' signs differ and the result
	// has the sign of the subtrahend.
	if (m.amount >= 0 && o.amount < 0 && d < 0) || (m.amount < 0 && o.amount > 0 && d >= 0) {
		return Money{}, fmt.Errorf("%w: %s - %s", ErrOverflow, m, o)
	}
	return Money{amount: d, cur: m.cur}, nil
}

// Mul returns m times n (an order line's price times its quantity), refusing
// results beyond int64 (ErrOverflow).
func (m Money) Mul(n int64) (Money, error) {
	if m.amount == 0 || n == 0 {
		return Money{amount: 0, cur: m.cur}, nil
	}
	p := m.amount * n
	if p/n != m.amount || (m.amount == -1 && n == math.MinInt64) || (n == -1 && m.amount == math.MinInt64) {
		return Money{}, fmt.Errorf("%w: %s * %d", ErrOverflow, m, n)
	}
	return Money{amount: p, cur: m.cur}, nil
}

func (m Money) sameCurrency(o Money) error {
	if m.cur.IsZero() || m.cur != o.cur {
		return fmt.Errorf("%w: %s and %s", ErrCurrencyMismatch, m.cur, o.cur)
	}
	return nil
}

// Decimal returns the amount as a decimal string in major units with exactly
// the currency's number of decimals: "49.99", "-0.05", "5980". ParseAmount
// reads it back.
func (m Money) Decimal() string {
	exp := m.cur.Exponent()
	neg := m.amount < 0
	// Work on the magnitude as uint64 so that MinInt64 has a magnitude too.
	mag := uint64(m.amount)
	if neg {
		mag = -mag
	}
	digits := strconv.FormatUint(mag, 10)
	if exp > 0 {
		if len(digits) <= exp {
			digits = strings.Repeat("0", exp-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-exp] + "." + digits[len(digits)-exp:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// String returns the currency code and the decimal amount: "USD 49.99",
// "JPY 5980", "EUR -3.00".
func (m Money) String() string { return m.cur.String() + " " + m.Decimal() }

// ParseAmount reads a decimal amount in major units of cur ("49.99", "5980",
// "-3.5") with integer arithmetic only. It accepts an optional leading '-',
// at least one digit before an optional '.', and at most the currency's
// number of decimals after it ("49.999" in USD and "5980.0" in JPY are
// refused rather than rounded). Signs other than '-', spaces, exponents and
// thousands separators are refused. Every refusal matches ErrInvalidAmount.
func ParseAmount(s string, cur Currency) (Money, error) {
	if cur.IsZero() {
		return Money{}, fmt.Errorf("%w: %q: no currency", ErrInvalidAmount, s)
	}
	fail := func(why string) (Money, error) {
		return Money{}, fmt.Errorf("%w: %q in %s: %s", ErrInvalidAmount, s, cur, why)
	}
	rest := s
	neg := strings.HasPrefix(rest, "-")
	if neg {
		rest = rest[1:]
	}
	whole, frac, hasDot := strings.Cut(rest, ".")
	if whole == "" {
		return fail("no digit before the decimal point")
	}
	exp := cur.Exponent()
	if hasDot && frac == "" {
		return fail("no digit after the decimal point")
	}
	if len(frac) > exp {
		return fail(fmt.Sprintf("too many decimals (%s has %d)", cur, exp))
	}
	// Accumulate the magnitude as a negative number: int64 has one more
	// negative value than positive ones, so MinInt64 parses too.
	var acc int64
	push := func(c byte) bool {
		if c < '0' || c > '9' {
			return false
		}
		d := int64(c - '0')
		if acc < (math.MinInt64+d)/10 {
			return false
		}
		acc = acc*10 - d
		return true
	}
	for i := 0; i < len(whole); i++ {
		if whole[i] < '0' || whole[i] > '9' {
			return fail("not a decimal number")
		}
		if !push(whole[i]) {
			return fail("too large")
		}
	}
	for i := 0; i < exp; i++ {
		c := byte('0')
		if i < len(frac) {
			c = frac[i]
		}
		if c < '0' || c > '9' {
			return fail("not a decimal number")
		}
		if !push(c) {
			return fail("too large")
		}
	}
	if !neg {
		if acc == math.MinInt64 {
			return fail("too large")
		}
		acc = -acc
	}
	return Money{amount: acc, cur: cur}, nil
}

// jsonMoney is the wire form: {"amount":4999,"currency":"USD"}, amount in
// minor units. Pointers tell a missing field from a zero one.
type jsonMoney struct {
	Amount   *int64  `json:"amount"`
	Currency *string `json:"currency"`
}

// MarshalJSON encodes m as {"amount":<minor units>,"currency":"<ISO code>"}.
// The zero Money (no currency) is refused.
func (m Money) MarshalJSON() ([]byte, error) {
	if m.cur.IsZero() {
		return nil, fmt.Errorf("%w: no currency", ErrInvalidAmount)
	}
	code := m.cur.code
	return json.Marshal(jsonMoney{Amount: &m.amount, Currency: &code})
}

// UnmarshalJSON decodes {"amount":<integer minor units>,"currency":"<ISO
// code>"}. Both fields are required, the amount must be an integer, the
// currency supported (an *UnknownCurrencyError otherwise), and no other
// field is accepted. Other refusals match ErrInvalidAmount and name the field.
func (m *Money) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w jsonMoney
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidAmount, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the object", ErrInvalidAmount)
	}
	if w.Amount == nil {
		return fmt.Errorf("%w: field amount is missing", ErrInvalidAmount)
	}
	if w.Currency == nil {
		return fmt.Errorf("%w: field currency is missing", ErrInvalidAmount)
	}
	cur, err := ParseCurrency(*w.Currency)
	if err != nil {
		return fmt.Errorf("field currency: %w", err)
	}
	*m = Money{amount: *w.Amount, cur: cur}
	return nil
}
