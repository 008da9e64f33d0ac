// Package money holds amounts of money as an integer number of minor units
// plus an ISO 4217 currency. There are no floats anywhere in this package:
// amounts are added, compared, parsed and printed with integer arithmetic
// only, so a price never drifts by a fraction of a cent.
package money

import (
	"errors"
	"fmt"
	"sort"
)

// ErrUnknownCurrency is matched (errors.Is) by every error that refuses a
// currency code this package does not support.
var ErrUnknownCurrency = errors.New("money: unknown currency")

// UnknownCurrencyError says which code was refused. It matches
// ErrUnknownCurrency.
type UnknownCurrencyError struct {
	Code string
}

// Error names the refused code.
func (e *UnknownCurrencyError) Error() string {
	return fmt.Sprintf("money: unknown currency %q (want a supported ISO 4217 code such as USD)", e.Code)
}

// Is reports whether target is ErrUnknownCurrency.
func (e *UnknownCurrencyError) Is(target error) bool { return target == ErrUnknownCurrency }

// Currency is an ISO 4217 currency this package supports. The zero value is
// not a currency: valid ones come from ParseCurrency or the package
// variables (USD, EUR, ...), so outsiders cannot invent a currency or give
// one the wrong number of decimals.
type Currency struct {
	code string
}

// exponents maps each supported code to its ISO 4217 minor-unit exponent
// (the number of decimals: 2 for cents, 0 for yen, 3 for fils).
var exponents = map[string]int{
	"AED": 2, "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2,
	"CZK": 2, "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "INR": 2, "JPY": 0,
	"KRW": 0, "KWD": 3, "MXN": 2, "NOK": 2, "NZD": 2, "PLN": 2, "SAR": 2,
	"SEK": 2, "SGD": 2, "TWD": 2, "USD": 2, "ZAR": 2,
}

// The currencies the catalog prices in at least (DOMAIN §1, policy), plus
// those of the Asian online stores (ARS-5). Treat them as constants.
var (
	USD = Currency{"USD"}
	CAD = Currency{"CAD"}
	EUR = Currency{"EUR"}
	GBP = Currency{"GBP"}
	JPY = Currency{"JPY"}
	BRL = Currency{"BRL"}
	AUD = Currency{"AUD"}
	KRW = Currency{"KRW"}
	CNY = Currency{"CNY"}
	HKD = Currency{"HKD"}
	TWD = Currency{"TWD"}
)

// ParseCurrency returns the currency with the given ISO 4217 code. The code
// must be exactly three upper-case letters and supported; otherwise the
// error is an *UnknownCurrencyError. It does not fold case or trim: codes
// come from data we control or from input validated at the edge.
func ParseCurrency(code string) (Currency, error) {
	if _, ok := exponents[code]; !ok {
		return Currency{}, &UnknownCurrencyError{Code: code}
	}
	return Currency{code: code}, nil
}

// Currencies returns every supported currency, sorted by code.
func Currencies() []Currency {
	out := make([]Currency, 0, len(exponents))
	for code := range exponents {
		out = append(out, Currency{code: code})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].code < out[j].code })
	return out
}

// Code returns the ISO 4217 code ("USD"), or "" for the zero Currency.
func (c Currency) Code() string { return c.code }

// Exponent returns the number of decimal digits of the minor unit: 2 for
// USD (cents), 0 for JPY. It returns 0 for the zero Currency.
func (c Currency) Exponent() int { return exponents[c.code] }

// IsZero reports whether c is the zero Currency, which is not a currency.
func (c Currency) IsZero() bool { return c.code == "" }

// String returns the ISO code, or "<no currency>" for the zero Currency.
func (c Currency) String() string {
	if c.code == "" {
		return "<no currency>"
	}
	return c.code
}

// MarshalText encodes c as its ISO code. The zero Currency is refused so
// that an invalid value never reaches an event or a response.
func (c Currency) MarshalText() ([]byte, error) {
	if c.code == "" {
		return nil, &UnknownCurrencyError{Code: ""}
	}
	return []byte(c.code), nil
}

// UnmarshalText decodes an ISO code with the rules of ParseCurrency.
func (c *Currency) UnmarshalText(b []byte) error {
	parsed, err := ParseCurrency(string(b))
	if err != nil {
		return err
	}
	*c = parsed
	return nil
}
