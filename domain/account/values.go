package account

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/policy"
)

// Email is an account's user name (ACC-1): trimmed and lower-cased, so two
// spellings of one address are one Email.
type Email struct{ addr string }

// ParseEmail validates and normalizes an e-mail address.
func ParseEmail(s string) (Email, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "":
		return Email{}, errors.New("is required")
	case len(s) > 254:
		return Email{}, errors.New("must be at most 254 characters")
	case strings.IndexFunc(s, func(r rune) bool { return r > unicode.MaxASCII }) >= 0:
		// The mail transport speaks neither SMTPUTF8 nor IDN: an address
		// we cannot write to would be an account we cannot reach (ACC-6).
		return Email{}, errors.New("must use ASCII characters only")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return Email{}, errors.New("is not a valid e-mail address")
	}
	return Email{addr: s}, nil
}

// String returns the normalized address.
func (e Email) String() string { return e.addr }

// IsZero reports whether e was never set.
func (e Email) IsZero() bool { return e.addr == "" }

// MarshalText encodes the address.
func (e Email) MarshalText() ([]byte, error) { return []byte(e.addr), nil }

// UnmarshalText decodes and validates an address.
func (e *Email) UnmarshalText(b []byte) error {
	v, err := ParseEmail(string(b))
	if err != nil {
		return fmt.Errorf("email %w", err)
	}
	*e = v
	return nil
}

// Password is a password typed by a customer, checked against ACC-3. It only
// lives in memory between the request and the hasher: it prints, marshals
// and logs as a mask (SEC-3).
type Password struct{ plain string }

const mask = "[redacted]"

// NewPassword checks s against the policy's length bounds (ACC-3).
func NewPassword(s string, p policy.Policy) (Password, error) {
	n := utf8.RuneCountInString(s)
	switch {
	case n < p.PasswordMinLength:
		return Password{}, fmt.Errorf("must have at least %d characters", p.PasswordMinLength)
	case n > p.PasswordMaxLength:
		return Password{}, fmt.Errorf("must have at most %d characters", p.PasswordMaxLength)
	}
	return Password{plain: s}, nil
}

// NewPasswordTwice checks a new password typed twice (ACC-5, ACC-6): the
// first against ACC-3, the second against the first. Field errors name
// newField and againField.
func NewPasswordTwice(typed, again string, p policy.Policy, newField, againField string) (Password, error) {
	pw, err := NewPassword(typed, p)
	if err != nil {
		return Password{}, domain.Invalid(newField, err.Error())
	}
	if again != typed {
		return Password{}, domain.Invalid(againField, "does not match the new password")
	}
	return pw, nil
}

// Plain returns the password itself, for the hasher only.
func (p Password) Plain() string { return p.plain }

func (Password) String() string                  { return mask }
func (Password) GoString() string                { return mask }
func (Password) LogValue() slog.Value            { return slog.StringValue(mask) }
func (Password) MarshalJSON() ([]byte, error)    { return json.Marshal(mask) }
func (p Password) Format(f fmt.State, verb rune) { fmt.Fprint(f, mask) }

// Name is a person's name as they write it.
type Name struct{ s string }

// ParseName trims s and refuses an empty, overlong or control-character name.
func ParseName(s string) (Name, error) {
	s = strings.TrimSpace(s)
	if err := checkText(s, 200, true); err != nil {
		return Name{}, err
	}
	return Name{s: s}, nil
}

// String returns the name.
func (n Name) String() string { return n.s }

// MarshalText encodes the name.
func (n Name) MarshalText() ([]byte, error) { return []byte(n.s), nil }

// UnmarshalText decodes and validates a name.
func (n *Name) UnmarshalText(b []byte) error {
	v, err := ParseName(string(b))
	if err != nil {
		return fmt.Errorf("name %w", err)
	}
	*n = v
	return nil
}

func checkText(s string, max int, required bool) error {
	switch {
	case s == "" && required:
		return errors.New("is required")
	case !utf8.ValidString(s):
		return errors.New("is not valid UTF-8")
	case utf8.RuneCountInString(s) > max:
		return fmt.Errorf("must be at most %d characters", max)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return errors.New("must not contain control characters")
	}
	return nil
}

// Country is an ISO 3166-1 alpha-2 country or region code.
type Country struct{ code string }

// ParseCountry accepts an assigned ISO 3166-1 alpha-2 code, in either case.
func ParseCountry(s string) (Country, error) {
	c := strings.ToUpper(strings.TrimSpace(s))
	if c == "" {
		return Country{}, errors.New("is required")
	}
	if len(c) != 2 || !strings.Contains(iso3166, " "+c+" ") {
		return Country{}, fmt.Errorf("%q is not an ISO 3166-1 alpha-2 country code", s)
	}
	return Country{code: c}, nil
}

// String returns the code.
func (c Country) String() string { return c.code }

// IsZero reports whether c was never set.
func (c Country) IsZero() bool { return c.code == "" }

// MarshalText encodes the code.
func (c Country) MarshalText() ([]byte, error) { return []byte(c.code), nil }

// UnmarshalText decodes and validates a code.
func (c *Country) UnmarshalText(b []byte) error {
	v, err := ParseCountry(string(b))
	if err != nil {
		return fmt.Errorf("country %w", err)
	}
	*c = v
	return nil
}

// Language is a BCP 47 language tag of the simple form "en" or "pt-BR".
type Language struct{ tag string }

var languagePattern = regexp.MustCompile(`^[a-z]{2,3}(-[A-Z]{2})?$`)

// DefaultLanguage is an account's language until the customer picks one.
var DefaultLanguage = Language{tag: "en"}

// ParseLanguage accepts "xx" or "xx-YY" (case-insensitive, normalized).
func ParseLanguage(s string) (Language, error) {
	s = strings.TrimSpace(s)
	lang, region, hasRegion := strings.Cut(s, "-")
	tag := strings.ToLower(lang)
	if hasRegion {
		tag += "-" + strings.ToUpper(region)
	}
	if !languagePattern.MatchString(tag) {
		return Language{}, fmt.Errorf("%q is not a language tag such as en or pt-BR", s)
	}
	return Language{tag: tag}, nil
}

// String returns the tag.
func (l Language) String() string { return l.tag }

// MarshalText encodes the tag.
func (l Language) MarshalText() ([]byte, error) { return []byte(l.tag), nil }

// UnmarshalText decodes and validates a tag.
func (l *Language) UnmarshalText(b []byte) error {
	v, err := ParseLanguage(string(b))
	if err != nil {
		return fmt.Errorf("language %w", err)
	}
	*l = v
	return nil
}

// Address is a postal address; every line is optional but City and
// PostalCode come with Line1.
type Address struct {
	Line1      string `json:"line1,omitempty"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city,omitempty"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
}

// ParseAddress trims and checks an address; field errors name its parts.
func ParseAddress(a Address) (Address, error) {
	a = Address{
		Line1: strings.TrimSpace(a.Line1), Line2: strings.TrimSpace(a.Line2), City: strings.TrimSpace(a.City),
		Region: strings.TrimSpace(a.Region), PostalCode: strings.TrimSpace(a.PostalCode),
	}
	var v domain.Validation
	v.Check("line1", checkText(a.Line1, 200, false))
	v.Check("line2", checkText(a.Line2, 200, false))
	v.Check("city", checkText(a.City, 100, a.Line1 != ""))
	v.Check("region", checkText(a.Region, 100, false))
	v.Check("postal_code", checkText(a.PostalCode, 20, false))
	if a.Line1 == "" && (a.Line2 != "" || a.City != "" || a.PostalCode != "") {
		v.Check("line1", errors.New("is required with the rest of the address"))
	}
	return a, v.Err()
}

// iso3166 lists the assigned ISO 3166-1 alpha-2 codes, space-separated.
const iso3166 = " AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ" +
	" CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR" +
	" GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP" +
	" KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT" +
	" MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW" +
	" SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG" +
	" UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW "
