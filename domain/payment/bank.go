package payment

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
)

// ibanLengths is the length of an IBAN per country (ISO 13616 registry) for
// the SEPA countries a direct debit could come from. DOMAIN ACC-8's policy
// decides which of them the engine offers direct debit in (DE, AT, NL).
var ibanLengths = map[string]int{
	"AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22,
	"DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27,
	"HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20,
	"LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28,
	"PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
}

// BankAccount is a bank account for SEPA direct debit: a valid IBAN and the
// holder's name. Only NewBankAccount builds one; the zero BankAccount is not
// an account and gateways refuse it.
//
// Like Card, a BankAccount never shows its IBAN: String, GoString, every
// fmt verb, MarshalJSON and LogValue give the country and the last four
// characters only (SEC-3). IBAN exists for gateway adapters only. A
// BankAccount is not comparable with ==.
type BankAccount struct {
	country string
	last4   string
	holder  string
	secret  func() string // a closure, out of reflection's reach, as in Card
}

// NewBankAccount validates an IBAN and the account holder's name. Spaces in
// iban are ignored and letters may be lower case. The IBAN must start with a
// country code this package knows, have that country's length (DE 22, AT 20,
// NL 18, …) and pass the ISO 7064 mod-97 check. holder must not be blank.
// Refusals are *FieldError on FieldIBAN or FieldBankHolder; none quotes the
// IBAN.
func NewBankAccount(iban, holder string) (BankAccount, error) {
	norm, err := parseIBAN(iban)
	if err != nil {
		return BankAccount{}, err
	}
	holder, err = parseHolder(holder, FieldBankHolder)
	if err != nil {
		return BankAccount{}, err
	}
	return BankAccount{
		country: norm[:2],
		last4:   norm[len(norm)-4:],
		holder:  holder,
		secret:  func() string { return norm },
	}, nil
}

func parseIBAN(iban string) (string, error) {
	norm := strings.ToUpper(strings.ReplaceAll(iban, " ", ""))
	for i := 0; i < len(norm); i++ {
		c := norm[i]
		if (c < '0' || c > '9') && (c < 'A' || c > 'Z') {
			return "", fieldError(FieldIBAN, "an IBAN has only letters and digits (spaces between groups are allowed)")
		}
	}
	if len(norm) < 4 || norm[0] < 'A' || norm[1] < 'A' || norm[2] > '9' || norm[3] > '9' {
		return "", fieldError(FieldIBAN, "an IBAN starts with a two-letter country code and two check digits, e.g. DE89…")
	}
	want, ok := ibanLengths[norm[:2]]
	if !ok {
		return "", fieldError(FieldIBAN, fmt.Sprintf("IBANs of country %s are not accepted for direct debit", norm[:2]))
	}
	if len(norm) != want {
		return "", fieldError(FieldIBAN, fmt.Sprintf("an IBAN from %s has %d characters, this one has %d", norm[:2], want, len(norm)))
	}
	if !mod97Valid(norm) {
		return "", fieldError(FieldIBAN, "this is not a valid IBAN (its check digits are wrong): check it for a typo")
	}
	return norm, nil
}

// mod97Valid applies ISO 7064 MOD 97-10 to a normalised IBAN: move the first
// four characters to the end, read letters as 10..35, and the number must
// leave 1 modulo 97. It works digit by digit so that no big integer is needed.
func mod97Valid(iban string) bool {
	rearranged := iban[4:] + iban[:4]
	rem := 0
	for i := 0; i < len(rearranged); i++ {
		c := rearranged[i]
		if c >= 'A' {
			v := int(c-'A') + 10
			rem = (rem*100 + v) % 97
		} else {
			rem = (rem*10 + int(c-'0')) % 97
		}
	}
	return rem == 1
}

// Country returns the IBAN's two-letter country code, e.g. "DE".
func (a BankAccount) Country() string { return a.country }

// LastFour returns the last four characters of the IBAN, the only part of it
// that may be shown, logged or stored.
func (a BankAccount) LastFour() string { return a.last4 }

// HolderName returns the account holder's name, trimmed.
func (a BankAccount) HolderName() string { return a.holder }

// IsZero reports whether a is the zero BankAccount, which is not an account.
func (a BankAccount) IsZero() bool { return a.secret == nil }

// IBAN returns the full IBAN, upper case without spaces. It exists for
// gateway adapters, which hand it to the gateway and nowhere else: never log,
// store or put it in an event or error (SEC-3). It is "" for the zero value.
func (a BankAccount) IBAN() string {
	if a.secret == nil {
		return ""
	}
	return a.secret()
}

// String returns the country and last four characters, "DE ending 3000"; the
// zero BankAccount is "<no bank account>".
func (a BankAccount) String() string {
	if a.IsZero() {
		return "<no bank account>"
	}
	return a.country + " ending " + a.last4
}

// GoString returns a Go-syntax-like form without the IBAN.
func (a BankAccount) GoString() string {
	return fmt.Sprintf("payment.BankAccount{Country: %q, LastFour: %q}", a.country, a.last4)
}

// Format prints the account for every fmt verb: GoString for %#v, String
// otherwise, so that no verb reaches the IBAN.
func (a BankAccount) Format(f fmt.State, verb rune) {
	s := a.String()
	if verb == 'v' && f.Flag('#') {
		s = a.GoString()
	}
	_, _ = f.Write([]byte(s))
}

// MarshalJSON encodes the account without its IBAN:
// {"country":"DE","last4":"3000"}. There is deliberately no UnmarshalJSON.
func (a BankAccount) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Country  string `json:"country"`
		LastFour string `json:"last4"`
	}{a.country, a.last4})
}

// LogValue logs the account as a group of country and last four characters
// (slog.LogValuer), never the IBAN.
func (a BankAccount) LogValue() slog.Value {
	return slog.GroupValue(slog.String("country", a.country), slog.String("last4", a.last4))
}
