package payment_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain/payment"
)

var now = time.Date(2026, 1, 31, 9, 0, 0, 0, time.UTC)

// MustCard returns a card built by NewCard at now, failing the test if it
// is refused.
func MustCard(tb testing.TB, number, cvv string) payment.Card {
	tb.Helper()
	c, err := payment.NewCard(number, cvv, "Ada Lovelace", 12, 2030, now)
	if err != nil {
		tb.Fatalf("NewCard: %v", err)
	}
	return c
}

func TestNewCard_Accepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, number, cvv string
		month, year       int
		wantBrand         payment.Brand
		wantLast4         string
	}{
		{"visa with spaces", "4242 4242 4242 4242", "123", 12, 2030, payment.Visa, "4242"},
		{"visa with dashes", "4000-0000-0000-0002", "123", 1, 2026, payment.Visa, "0002"},
		{"mastercard 5", "5555555555554444", "123", 6, 2027, payment.Mastercard, "4444"},
		{"mastercard 2", "2223003122003222", "123", 6, 2027, payment.Mastercard, "3222"},
		{"amex", "378282246310005", "1234", 6, 2027, payment.Amex, "0005"},
		{"discover", "6011111111111117", "123", 6, 2027, payment.Discover, "1117"},
		{"other 12 digits", "000000000000", "1234", 6, 2027, payment.OtherBrand, "0000"},
		{"expires this month", "4242424242424242", "123", 1, 2026, payment.Visa, "4242"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := payment.NewCard(tt.number, tt.cvv, "  Ada Lovelace ", tt.month, tt.year, now)
			if err != nil {
				t.Fatalf("NewCard: %v", err)
			}
			if c.Brand() != tt.wantBrand || c.LastFour() != tt.wantLast4 {
				t.Errorf("brand, last4 = %s, %s; want %s, %s", c.Brand(), c.LastFour(), tt.wantBrand, tt.wantLast4)
			}
			if got := c.HolderName(); got != "Ada Lovelace" {
				t.Errorf("holder = %q, want it trimmed", got)
			}
			if strings.ContainsAny(c.Number(), " -") || len(c.Number()) < 12 {
				t.Errorf("Number() = %q, want digits only", c.Number())
			}
			if c.CVV() != tt.cvv {
				t.Errorf("CVV() = %q, want %q", c.CVV(), tt.cvv)
			}
		})
	}
}

func TestNewCard_RefusesNamingTheField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, number, cvv, holder string
		month, year               int
		wantField                 string
	}{
		{"bad Luhn", "4242424242424241", "123", "A", 12, 2030, payment.FieldCardNumber},
		{"letters", "4242x42424242424", "123", "A", 12, 2030, payment.FieldCardNumber},
		{"too short", "42424242424", "123", "A", 12, 2030, payment.FieldCardNumber},
		{"too long", "42424242424242424242", "123", "A", 12, 2030, payment.FieldCardNumber},
		{"empty", "", "123", "A", 12, 2030, payment.FieldCardNumber},
		{"cvv letters", "4242424242424242", "12a", "A", 12, 2030, payment.FieldCardCVV},
		{"cvv short", "4242424242424242", "12", "A", 12, 2030, payment.FieldCardCVV},
		{"visa cvv of 4", "4242424242424242", "1234", "A", 12, 2030, payment.FieldCardCVV},
		{"amex cvv of 3", "378282246310005", "123", "A", 12, 2030, payment.FieldCardCVV},
		{"blank holder", "4242424242424242", "123", "  ", 12, 2030, payment.FieldCardHolder},
		{"control in holder", "4242424242424242", "123", "A\x00B", 12, 2030, payment.FieldCardHolder},
		{"long holder", "4242424242424242", "123", strings.Repeat("a", 201), 12, 2030, payment.FieldCardHolder},
		{"month 0", "4242424242424242", "123", "A", 0, 2030, payment.FieldCardExpiry},
		{"month 13", "4242424242424242", "123", "A", 13, 2030, payment.FieldCardExpiry},
		{"two-digit year", "4242424242424242", "123", "A", 12, 30, payment.FieldCardExpiry},
		{"expired last month", "4242424242424242", "123", "A", 12, 2025, payment.FieldCardExpiry},
		{"far future", "4242424242424242", "123", "A", 12, 2203, payment.FieldCardExpiry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := payment.NewCard(tt.number, tt.cvv, tt.holder, tt.month, tt.year, now)
			var fe *payment.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("NewCard error = %v, want a *FieldError", err)
			}
			if fe.Field != tt.wantField {
				t.Errorf("Field = %q, want %q (%v)", fe.Field, tt.wantField, err)
			}
			if fe.Problem == "" {
				t.Error("Problem is empty")
			}
			if digits := strings.NewReplacer(" ", "", "-", "").Replace(tt.number); len(digits) >= 12 && strings.Contains(err.Error(), digits) {
				t.Errorf("error quotes the number: %v", err)
			}
		})
	}
}

func TestCard_ExpiredAt(t *testing.T) {
	t.Parallel()
	c, err := payment.NewCard("4242424242424242", "123", "A", 2, 2026, now)
	if err != nil {
		t.Fatal(err)
	}
	last := time.Date(2026, 2, 28, 23, 59, 59, 0, time.UTC)
	if c.ExpiredAt(last) {
		t.Errorf("expired at %s, want valid through the end of its month", last)
	}
	if end := payment.ExpiryEnd(2, 2026); !c.ExpiredAt(end) || !end.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ExpiryEnd = %s, ExpiredAt(it) = %t; want 2026-03-01 and true", end, c.ExpiredAt(end))
	}
	if got := payment.ExpiryEnd(12, 2026); !got.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ExpiryEnd(12, 2026) = %s, want 2027-01-01", got)
	}
}

// holder embeds cards the ways callers might: exported, unexported, by
// pointer, in a slice.
type holder struct {
	Card    payment.Card
	card    payment.Card
	ptr     *payment.Card
	Cards   []payment.Card
	Account payment.BankAccount
	account payment.BankAccount
}

// rule SEC-3
func TestRule_SEC3_CardAndAccountNeverShowTheirSecrets(t *testing.T) {
	t.Parallel()
	const number, cvv = "4000056655665556", "937"
	card, err := payment.NewCard(number, cvv, "Ada Lovelace", 12, 2030, now)
	if err != nil {
		t.Fatal(err)
	}
	const iban = "DE89370400440532013000"
	acct, err := payment.NewBankAccount("de89 3704 0044 0532 0130 00", "Ada Lovelace")
	if err != nil {
		t.Fatal(err)
	}
	if acct.IBAN() != iban {
		t.Fatalf("IBAN() = %q, want %q", acct.IBAN(), iban)
	}
	h := holder{Card: card, card: card, ptr: &card, Cards: []payment.Card{card}, Account: acct, account: acct}

	var outputs []string
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X", "%T"} {
		outputs = append(outputs,
			fmt.Sprintf(format, card), fmt.Sprintf(format, &card),
			fmt.Sprintf(format, acct), fmt.Sprintf(format, h), fmt.Sprintf(format, &h))
	}
	outputs = append(outputs, card.String(), card.GoString(), acct.String(), acct.GoString(), fmt.Sprint(card, acct), fmt.Sprintln(h))
	for _, v := range []any{card, &card, acct, h} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%T): %v", v, err)
		}
		outputs = append(outputs, string(b))
	}
	var logs bytes.Buffer
	for _, handler := range []slog.Handler{slog.NewJSONHandler(&logs, nil), slog.NewTextHandler(&logs, nil)} {
		log := slog.New(handler)
		log.Info("card", "card", card, "ptr", &card, "account", acct, "holder", h)
		log.Info("attrs", slog.Any("card", card), slog.Any("account", acct))
	}
	outputs = append(outputs, logs.String())

	all := strings.Join(outputs, "\n")
	for _, secret := range []string{number, iban, "0532013000", "5665556"} {
		if strings.Contains(all, secret) {
			t.Errorf("output shows secret %q:\n%s", secret, all)
		}
	}
	if !strings.Contains(all, "visa ending 5556") || !strings.Contains(all, "DE ending 3000") || !strings.Contains(logs.String(), `"last4":"5556"`) {
		t.Errorf("output lacks the redacted forms:\n%s", all)
	}
	// The CVV is three digits that may occur by chance (in a pointer, say):
	// look for it where a CVV would be labelled.
	for _, label := range []string{"cvv", "CVV"} {
		if strings.Contains(all, label+":"+cvv) || strings.Contains(all, label+"\":\""+cvv) || strings.Contains(all, label+"="+cvv) {
			t.Errorf("output shows the CVV:\n%s", all)
		}
	}
	if strings.Contains(all, " "+cvv+" ") || strings.Contains(all, "{"+cvv) || strings.Contains(all, ":"+cvv+"}") {
		t.Errorf("output shows the CVV:\n%s", all)
	}
}

// FuzzNewCard feeds NewCard's number parsing arbitrary input: it must never
// panic; what it accepts has 12 to 19 digits, passes Luhn, keeps the input's
// digits in order and its last four; what it refuses names card.number and
// never quotes the digits.
func FuzzNewCard(f *testing.F) {
	for _, s := range []string{"4242 4242 4242 4242", "4242-4242-4242-4241", "", " ", "378282246310005", "0000000000000", "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢", "4242424242424242\x00", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, number string) {
		c, err := payment.NewCard(number, "1234", "A", 12, 2030, now)
		if err != nil {
			var fe *payment.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("NewCard(%q) error %v is not a *FieldError", number, err)
			}
			if fe.Field != payment.FieldCardNumber && fe.Field != payment.FieldCardCVV {
				t.Fatalf("NewCard(%q) refused field %q", number, fe.Field)
			}
			return
		}
		var digits strings.Builder
		for _, r := range number {
			if r >= '0' && r <= '9' {
				digits.WriteRune(r)
			} else if r != ' ' && r != '-' {
				t.Fatalf("NewCard(%q) accepted the character %q", number, r)
			}
		}
		if got := c.Number(); got != digits.String() {
			t.Fatalf("NewCard(%q).Number() = %q, want %q", number, got, digits.String())
		}
		if n := len(c.Number()); n < 12 || n > 19 {
			t.Fatalf("NewCard(%q) accepted %d digits", number, n)
		}
		if c.LastFour() != c.Number()[len(c.Number())-4:] {
			t.Fatalf("LastFour = %q for %q", c.LastFour(), c.Number())
		}
		if strings.Contains(c.String(), c.Number()) {
			t.Fatalf("String() shows the number: %s", c)
		}
	})
}
