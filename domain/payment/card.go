package payment

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxHolderLength bounds a holder name, in characters, so that a stored
// method and the events that carry it stay small.
const maxHolderLength = 200

// maxExpiryYearsAhead refuses expiry years no issuer prints: a typo such as
// 2203 for 2023 is caught at the edge rather than stored.
const maxExpiryYearsAhead = 30

// Card is a credit or debit card as the customer typed it: a Luhn-valid
// number, a CVV, the holder's name and an expiry month not in the past. Only
// NewCard builds one; the zero Card is not a card and gateways refuse it.
//
// A Card never shows its number or CVV: String, GoString, every fmt verb,
// MarshalJSON and LogValue give the brand and the last four digits only
// (SEC-3). The number and CVV are held by a closure, which reflection cannot
// look into: fmt printing a struct that holds a Card in an unexported field
// (where it cannot call Format), or a mistaken verb, shows a function
// address, never the digits. Number and CVV exist for gateway adapters only.
// A Card is not comparable with ==.
type Card struct {
	brand    Brand
	last4    string
	holder   string
	expMonth int
	expYear  int
	secret   func() (number, cvv string)
}

// NewCard validates a card as typed by the customer, at the instant now, and
// returns it. Spaces and dashes in number are ignored; what remains must be
// 12 to 19 digits passing the Luhn check. cvv must be 3 digits (4 for
// American Express; either for brands NewCard does not know). holder must
// not be blank. expMonth must be 1 to 12 and expYear a four-digit year; the
// card is valid through the last day of that month (UTC) and is refused if
// that is before now. Each refusal is a *FieldError naming the field
// (FieldCardNumber, FieldCardCVV, FieldCardHolder, FieldCardExpiry); the
// first refused field in that order is reported. No error quotes the number
// or the CVV.
func NewCard(number, cvv, holder string, expMonth, expYear int, now time.Time) (Card, error) {
	digits, err := parseCardNumber(number)
	if err != nil {
		return Card{}, err
	}
	brand := brandOf(digits)
	if err := checkCVV(cvv, brand); err != nil {
		return Card{}, err
	}
	holder, err = parseHolder(holder, FieldCardHolder)
	if err != nil {
		return Card{}, err
	}
	if err := checkExpiry(expMonth, expYear, now); err != nil {
		return Card{}, err
	}
	return Card{
		brand:    brand,
		last4:    digits[len(digits)-4:],
		holder:   holder,
		expMonth: expMonth,
		expYear:  expYear,
		secret:   func() (string, string) { return digits, cvv },
	}, nil
}

// parseCardNumber strips spaces and dashes and checks what remains: 12 to 19
// digits with a valid Luhn check digit.
func parseCardNumber(number string) (string, error) {
	var b strings.Builder
	b.Grow(len(number))
	for _, r := range number {
		switch {
		case r == ' ' || r == '-':
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			return "", fieldError(FieldCardNumber, "a card number has only digits (spaces and dashes between groups are allowed)")
		}
	}
	digits := b.String()
	if n := len(digits); n < 12 || n > 19 {
		return "", fieldError(FieldCardNumber, fmt.Sprintf("a card number has 12 to 19 digits, this one has %d", n))
	}
	if !luhnValid(digits) {
		return "", fieldError(FieldCardNumber, "this is not a valid card number (its check digit is wrong): check it for a typo")
	}
	return digits, nil
}

// luhnValid reports whether digits (ASCII digits only) pass the Luhn check.
func luhnValid(digits string) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// brandOf tells the network from the number's issuer prefix and length.
func brandOf(d string) Brand {
	n := len(d)
	prefix := func(k int) int {
		v := 0
		for i := 0; i < k && i < n; i++ {
			v = v*10 + int(d[i]-'0')
		}
		return v
	}
	switch {
	case (prefix(2) == 34 || prefix(2) == 37) && n == 15:
		return Amex
	case d[0] == '4' && (n == 13 || n == 16 || n == 19):
		return Visa
	case ((prefix(2) >= 51 && prefix(2) <= 55) || (prefix(4) >= 2221 && prefix(4) <= 2720)) && n == 16:
		return Mastercard
	case (prefix(4) == 6011 || prefix(2) == 65 || (prefix(3) >= 644 && prefix(3) <= 649)) && n >= 16:
		return Discover
	}
	return OtherBrand
}

func checkCVV(cvv string, brand Brand) error {
	for i := 0; i < len(cvv); i++ {
		if cvv[i] < '0' || cvv[i] > '9' {
			return fieldError(FieldCardCVV, "the security code (CVV) has only digits")
		}
	}
	switch n := len(cvv); {
	case brand == Amex && n != 4:
		return fieldError(FieldCardCVV, "an American Express security code has 4 digits (on the front of the card)")
	case (brand == Visa || brand == Mastercard || brand == Discover) && n != 3:
		return fieldError(FieldCardCVV, "the security code (CVV) has 3 digits (on the back of the card)")
	case n < 3 || n > 4:
		return fieldError(FieldCardCVV, "the security code (CVV) has 3 or 4 digits")
	}
	return nil
}

// parseHolder trims a holder name and refuses a blank, overlong or
// control-character one.
func parseHolder(holder, field string) (string, error) {
	holder = strings.TrimSpace(holder)
	switch {
	case holder == "":
		return "", fieldError(field, "the holder's name is required, as printed on the card or account")
	case !utf8.ValidString(holder):
		return "", fieldError(field, "the holder's name is not valid UTF-8 text")
	case utf8.RuneCountInString(holder) > maxHolderLength:
		return "", fieldError(field, fmt.Sprintf("the holder's name has at most %d characters", maxHolderLength))
	case strings.IndexFunc(holder, unicode.IsControl) >= 0:
		return "", fieldError(field, "the holder's name cannot contain control characters")
	}
	return holder, nil
}

func checkExpiry(month, year int, now time.Time) error {
	if month < 1 || month > 12 {
		return fieldError(FieldCardExpiry, fmt.Sprintf("expiry month %d is not a month: use 1 to 12", month))
	}
	if year < 1000 || year > 9999 {
		return fieldError(FieldCardExpiry, fmt.Sprintf("expiry year %d is not a four-digit year such as 2030", year))
	}
	if !now.Before(ExpiryEnd(month, year)) {
		return fieldError(FieldCardExpiry, fmt.Sprintf("the card expired at the end of %02d/%d: use a card that has not expired", month, year))
	}
	if year > now.UTC().Year()+maxExpiryYearsAhead {
		return fieldError(FieldCardExpiry, fmt.Sprintf("expiry year %d is more than %d years ahead: check it for a typo", year, maxExpiryYearsAhead))
	}
	return nil
}

// ExpiryEnd returns the first instant at which a card printed with the
// given expiry month and year is no longer valid: the start of the next
// month, UTC. Cards are valid through the last day of their expiry month;
// gateways and the engine both compare with this one instant so that they
// agree on when a card expires (ARS-6, TRI-6).
func ExpiryEnd(month, year int) time.Time {
	return time.Date(year, time.Month(month)+1, 1, 0, 0, 0, 0, time.UTC)
}

// Brand returns the card's network.
func (c Card) Brand() Brand { return c.brand }

// LastFour returns the last four digits of the number, the only part of it
// that may be shown, logged or stored.
func (c Card) LastFour() string { return c.last4 }

// HolderName returns the holder's name, trimmed.
func (c Card) HolderName() string { return c.holder }

// ExpMonth returns the expiry month, 1 to 12.
func (c Card) ExpMonth() int { return c.expMonth }

// ExpYear returns the four-digit expiry year.
func (c Card) ExpYear() int { return c.expYear }

// ExpiredAt reports whether the card is no longer valid at t.
func (c Card) ExpiredAt(t time.Time) bool { return !t.Before(ExpiryEnd(c.expMonth, c.expYear)) }

// IsZero reports whether c is the zero Card, which is not a card.
func (c Card) IsZero() bool { return c.secret == nil }

// Number returns the full card number, digits only. It exists for gateway
// adapters, which hand it to the gateway and nowhere else: never log,
// store or put it in an event or error (SEC-3). It is "" for the zero Card.
func (c Card) Number() string {
	if c.secret == nil {
		return ""
	}
	number, _ := c.secret()
	return number
}

// CVV returns the security code, for gateway adapters only, under the same
// rules as Number. It is "" for the zero Card.
func (c Card) CVV() string {
	if c.secret == nil {
		return ""
	}
	_, cvv := c.secret()
	return cvv
}

// String returns the brand and last four digits, "visa ending 4242"; the
// zero Card is "<no card>".
func (c Card) String() string {
	if c.IsZero() {
		return "<no card>"
	}
	return c.brand.String() + " ending " + c.last4
}

// GoString returns a Go-syntax-like form without the number or CVV.
func (c Card) GoString() string {
	return fmt.Sprintf("payment.Card{Brand: %q, LastFour: %q, Expiry: \"%02d/%d\"}", c.brand.name, c.last4, c.expMonth, c.expYear)
}

// Format prints the card for every fmt verb: GoString for %#v, String
// otherwise. It exists so that no verb (%d, %x, %+v …) can reach the number
// through reflection.
func (c Card) Format(f fmt.State, verb rune) {
	s := c.String()
	if verb == 'v' && f.Flag('#') {
		s = c.GoString()
	}
	_, _ = f.Write([]byte(s))
}

// redactedCard is the JSON and log form of a Card.
type redactedCard struct {
	Brand    string `json:"brand"`
	LastFour string `json:"last4"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
}

// MarshalJSON encodes the card without its number or CVV:
// {"brand":"visa","last4":"4242","exp_month":12,"exp_year":2030}. There is
// deliberately no UnmarshalJSON: a Card is built by NewCard only.
func (c Card) MarshalJSON() ([]byte, error) {
	return json.Marshal(redactedCard{Brand: c.brand.name, LastFour: c.last4, ExpMonth: c.expMonth, ExpYear: c.expYear})
}

// LogValue logs the card as a group of brand and last four digits
// (slog.LogValuer), never its number or CVV.
func (c Card) LogValue() slog.Value {
	return slog.GroupValue(slog.String("brand", c.brand.name), slog.String("last4", c.last4))
}
