package payment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// maxTokenLength bounds a gateway token; real gateways use a few dozen
// characters.
const maxTokenLength = 255

// PaymentMethod is what the engine keeps of a card or bank account once the
// gateway has tokenized it (ACC-8): the gateway's token, and what the
// customer needs to recognise the method — brand, last four and expiry for a
// card; country and last four of the IBAN for a direct debit; the holder's
// name. It never holds a full number, CVV or IBAN, so it may go in events
// and read models. Build one with NewCardMethod or NewDirectDebitMethod (or
// decode it from JSON, which applies the same checks); the zero
// PaymentMethod is not a method.
type PaymentMethod struct {
	kind     MethodKind
	token    string
	brand    Brand
	country  string
	last4    string
	expMonth int
	expYear  int
	holder   string
}

// NewCardMethod returns a card payment method: token is the gateway's
// (printable ASCII without spaces, at most 255 bytes), brand non-zero, last4
// exactly four digits, expMonth 1 to 12 and expYear four digits, holder not
// blank. It does not refuse an expired card: a kept method may expire later
// (TRI-6); ask ExpiredAt. Refusals are *FieldError.
func NewCardMethod(token string, brand Brand, last4 string, expMonth, expYear int, holder string) (PaymentMethod, error) {
	if err := checkToken(token); err != nil {
		return PaymentMethod{}, err
	}
	if brand.IsZero() {
		return PaymentMethod{}, fieldError(FieldPaymentBrand, "a card method needs its brand")
	}
	if len(last4) != 4 || !allDigits(last4) {
		return PaymentMethod{}, fieldError(FieldPaymentLastFour, "a card's last four are four digits")
	}
	if expMonth < 1 || expMonth > 12 || expYear < 1000 || expYear > 9999 {
		return PaymentMethod{}, fieldError(FieldPaymentExpiry, fmt.Sprintf("expiry %d/%d is not a month 1-12 and a four-digit year", expMonth, expYear))
	}
	holder, err := parseHolder(holder, FieldPaymentHolder)
	if err != nil {
		return PaymentMethod{}, err
	}
	return PaymentMethod{kind: KindCard, token: token, brand: brand, last4: last4, expMonth: expMonth, expYear: expYear, holder: holder}, nil
}

// NewDirectDebitMethod returns a direct debit payment method: token as for
// NewCardMethod, country a country code of an IBAN NewBankAccount accepts,
// last4 the IBAN's last four letters or digits, holder not blank. Refusals
// are *FieldError.
func NewDirectDebitMethod(token, country, last4, holder string) (PaymentMethod, error) {
	if err := checkToken(token); err != nil {
		return PaymentMethod{}, err
	}
	if _, ok := ibanLengths[country]; !ok {
		return PaymentMethod{}, fieldError(FieldPaymentCountry, fmt.Sprintf("%q is not the country code of an accepted IBAN", country))
	}
	if len(last4) != 4 || !allAlnumUpper(last4) {
		return PaymentMethod{}, fieldError(FieldPaymentLastFour, "an IBAN's last four are four upper-case letters or digits")
	}
	holder, err := parseHolder(holder, FieldPaymentHolder)
	if err != nil {
		return PaymentMethod{}, err
	}
	return PaymentMethod{kind: KindDirectDebit, token: token, country: country, last4: last4, holder: holder}, nil
}

func checkToken(token string) error {
	if token == "" {
		return fieldError(FieldToken, "the gateway token is required")
	}
	if len(token) > maxTokenLength {
		return fieldError(FieldToken, fmt.Sprintf("a gateway token has at most %d characters", maxTokenLength))
	}
	for i := 0; i < len(token); i++ {
		if token[i] <= ' ' || token[i] > '~' {
			return fieldError(FieldToken, "a gateway token has only printable ASCII characters and no spaces")
		}
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func allAlnumUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'A' || s[i] > 'Z') {
			return false
		}
	}
	return true
}

// Kind returns KindCard or KindDirectDebit.
func (m PaymentMethod) Kind() MethodKind { return m.kind }

// Token returns the gateway's token, which Gateway.Charge takes.
func (m PaymentMethod) Token() string { return m.token }

// Brand returns a card's brand, or the zero Brand for a direct debit.
func (m PaymentMethod) Brand() Brand { return m.brand }

// Country returns a direct debit's IBAN country, or "" for a card.
func (m PaymentMethod) Country() string { return m.country }

// LastFour returns the last four digits of the card number or characters of
// the IBAN.
func (m PaymentMethod) LastFour() string { return m.last4 }

// ExpMonth returns a card's expiry month, or 0 for a direct debit.
func (m PaymentMethod) ExpMonth() int { return m.expMonth }

// ExpYear returns a card's expiry year, or 0 for a direct debit.
func (m PaymentMethod) ExpYear() int { return m.expYear }

// HolderName returns the card or account holder's name.
func (m PaymentMethod) HolderName() string { return m.holder }

// IsZero reports whether m is the zero PaymentMethod, which is not a method.
func (m PaymentMethod) IsZero() bool { return m.kind.IsZero() }

// ExpiredAt reports whether the method cannot be charged at t because it is
// a card past its expiry month (ARS-6: a card that will have expired before
// the charge date; TRI-6). A direct debit never expires.
func (m PaymentMethod) ExpiredAt(t time.Time) bool {
	if m.kind != KindCard {
		return false
	}
	return !t.Before(ExpiryEnd(m.expMonth, m.expYear))
}

// String describes the method for people: "visa ending 4242 (12/2030)" or
// "direct debit DE ending 3000".
func (m PaymentMethod) String() string {
	switch m.kind {
	case KindCard:
		return fmt.Sprintf("%s ending %s (%02d/%d)", m.brand, m.last4, m.expMonth, m.expYear)
	case KindDirectDebit:
		return "direct debit " + m.country + " ending " + m.last4
	}
	return "<no payment method>"
}

// methodJSON is PaymentMethod's wire form.
type methodJSON struct {
	Kind       MethodKind `json:"kind"`
	Token      string     `json:"token"`
	Brand      *Brand     `json:"brand,omitempty"`
	Country    string     `json:"country,omitempty"`
	LastFour   string     `json:"last4"`
	ExpMonth   int        `json:"exp_month,omitempty"`
	ExpYear    int        `json:"exp_year,omitempty"`
	HolderName string     `json:"holder_name"`
}

// MarshalJSON encodes the method as
// {"kind":"card","token":…,"brand":"visa","last4":"4242","exp_month":12,"exp_year":2030,"holder_name":…}
// or {"kind":"direct_debit","token":…,"country":"DE","last4":"3000","holder_name":…}.
// The zero PaymentMethod is refused.
func (m PaymentMethod) MarshalJSON() ([]byte, error) {
	if m.IsZero() {
		return nil, fieldError(FieldPaymentKind, "zero payment method")
	}
	w := methodJSON{Kind: m.kind, Token: m.token, Country: m.country, LastFour: m.last4, ExpMonth: m.expMonth, ExpYear: m.expYear, HolderName: m.holder}
	if !m.brand.IsZero() {
		b := m.brand
		w.Brand = &b
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes MarshalJSON's form with the checks of
// NewCardMethod or NewDirectDebitMethod (by kind), refusing unknown fields
// and fields of the other kind.
func (m *PaymentMethod) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w methodJSON
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("payment: decode payment method: %w", err)
	}
	var (
		v   PaymentMethod
		err error
	)
	switch w.Kind {
	case KindCard:
		if w.Country != "" {
			return fieldError(FieldPaymentCountry, "a card method has no country")
		}
		var brand Brand
		if w.Brand != nil {
			brand = *w.Brand
		}
		v, err = NewCardMethod(w.Token, brand, w.LastFour, w.ExpMonth, w.ExpYear, w.HolderName)
	case KindDirectDebit:
		if w.Brand != nil || w.ExpMonth != 0 || w.ExpYear != 0 {
			return fieldError(FieldPaymentKind, "a direct debit method has no brand or expiry")
		}
		v, err = NewDirectDebitMethod(w.Token, w.Country, w.LastFour, w.HolderName)
	default:
		return fieldError(FieldPaymentKind, "kind is required: card or direct_debit")
	}
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// CardExpiry is what a subscription keeps of the card its order was paid
// with, so that it can warn before a charge the card will not outlive
// (TRI-6, ARS-6) when the charge falls back to that card: its last four
// digits and its expiry month. No token, no holder. Take one from a card
// method (PaymentMethod.CardExpiry).
type CardExpiry struct {
	LastFour string `json:"last4"`
	Month    int    `json:"exp_month"`
	Year     int    `json:"exp_year"`
}

// CardExpiry returns a card method's CardExpiry, and false for a direct
// debit or the zero method, which do not expire.
func (m PaymentMethod) CardExpiry() (CardExpiry, bool) {
	if m.kind != KindCard {
		return CardExpiry{}, false
	}
	return CardExpiry{LastFour: m.last4, Month: m.expMonth, Year: m.expYear}, true
}

// ExpiredAt reports whether the card is past its expiry month at t.
func (c CardExpiry) ExpiredAt(t time.Time) bool { return !t.Before(ExpiryEnd(c.Month, c.Year)) }

// String is the expiry as a card shows it: "MM/YYYY".
func (c CardExpiry) String() string { return fmt.Sprintf("%02d/%04d", c.Month, c.Year) }
