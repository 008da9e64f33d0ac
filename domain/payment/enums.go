package payment

import "fmt"

// Brand is a card network. The zero Brand is not a brand; the members are
// the package variables, and ParseBrand reads their names.
type Brand struct{ name string }

// The card brands NewCard recognises from the number's prefix and length.
var (
	Visa       = Brand{"visa"}
	Mastercard = Brand{"mastercard"}
	Amex       = Brand{"amex"}
	Discover   = Brand{"discover"}
	// OtherBrand is any card whose number no other brand claims.
	OtherBrand = Brand{"other"}
)

var brands = []Brand{Visa, Mastercard, Amex, Discover, OtherBrand}

// ParseBrand returns the brand named s ("visa", "mastercard", "amex",
// "discover", "other"), or a *FieldError on FieldPaymentBrand.
func ParseBrand(s string) (Brand, error) {
	for _, b := range brands {
		if b.name == s {
			return b, nil
		}
	}
	return Brand{}, fieldError(FieldPaymentBrand, fmt.Sprintf("%q is not a card brand: use visa, mastercard, amex, discover or other", s))
}

// String returns the brand's name, or "<no brand>" for the zero Brand.
func (b Brand) String() string {
	if b.name == "" {
		return "<no brand>"
	}
	return b.name
}

// IsZero reports whether b is the zero Brand, which is not a brand.
func (b Brand) IsZero() bool { return b.name == "" }

// MarshalText encodes the brand's name; the zero Brand is refused.
func (b Brand) MarshalText() ([]byte, error) {
	if b.name == "" {
		return nil, fieldError(FieldPaymentBrand, "no brand")
	}
	return []byte(b.name), nil
}

// UnmarshalText decodes a brand's name with the rules of ParseBrand.
func (b *Brand) UnmarshalText(text []byte) error {
	v, err := ParseBrand(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MethodKind is the kind of a payment method: a card or a direct debit. The
// zero MethodKind is not a kind.
type MethodKind struct{ name string }

// The kinds of payment method (ACC-8): cards everywhere, direct debit where
// the policy allows it.
var (
	KindCard        = MethodKind{"card"}
	KindDirectDebit = MethodKind{"direct_debit"}
)

// ParseMethodKind returns the kind named s ("card", "direct_debit"), or a
// *FieldError on FieldPaymentKind.
func ParseMethodKind(s string) (MethodKind, error) {
	switch s {
	case KindCard.name:
		return KindCard, nil
	case KindDirectDebit.name:
		return KindDirectDebit, nil
	}
	return MethodKind{}, fieldError(FieldPaymentKind, fmt.Sprintf("%q is not a payment method kind: use card or direct_debit", s))
}

// String returns the kind's name, or "<no kind>" for the zero MethodKind.
func (k MethodKind) String() string {
	if k.name == "" {
		return "<no kind>"
	}
	return k.name
}

// IsZero reports whether k is the zero MethodKind, which is not a kind.
func (k MethodKind) IsZero() bool { return k.name == "" }

// MarshalText encodes the kind's name; the zero MethodKind is refused.
func (k MethodKind) MarshalText() ([]byte, error) {
	if k.name == "" {
		return nil, fieldError(FieldPaymentKind, "no kind")
	}
	return []byte(k.name), nil
}

// UnmarshalText decodes a kind's name with the rules of ParseMethodKind.
func (k *MethodKind) UnmarshalText(text []byte) error {
	v, err := ParseMethodKind(string(text))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// ChargeStatus is how a charge ended: Succeeded or Declined. The zero
// ChargeStatus is not a status.
type ChargeStatus struct{ name string }

// The outcomes of a charge.
var (
	// Succeeded: the amount was taken.
	Succeeded = ChargeStatus{"succeeded"}
	// Declined: nothing was taken; ChargeOutcome.DeclineCode says why.
	Declined = ChargeStatus{"declined"}
)

// ParseChargeStatus returns the status named s ("succeeded", "declined").
func ParseChargeStatus(s string) (ChargeStatus, error) {
	switch s {
	case Succeeded.name:
		return Succeeded, nil
	case Declined.name:
		return Declined, nil
	}
	return ChargeStatus{}, fmt.Errorf("payment: %q is not a charge status: want succeeded or declined", s)
}

// String returns the status's name, or "<no status>" for the zero value.
func (s ChargeStatus) String() string {
	if s.name == "" {
		return "<no status>"
	}
	return s.name
}

// IsZero reports whether s is the zero ChargeStatus, which is not a status.
func (s ChargeStatus) IsZero() bool { return s.name == "" }

// MarshalText encodes the status's name; the zero ChargeStatus is refused.
func (s ChargeStatus) MarshalText() ([]byte, error) {
	if s.name == "" {
		return nil, fmt.Errorf("payment: zero charge status")
	}
	return []byte(s.name), nil
}

// UnmarshalText decodes a status's name with the rules of ParseChargeStatus.
func (s *ChargeStatus) UnmarshalText(text []byte) error {
	v, err := ParseChargeStatus(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
