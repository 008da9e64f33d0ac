package payment_test

import (
	"errors"
	"testing"

	"github.com/subs-engine/subs/domain/payment"
)

func TestNewBankAccount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, iban, holder string
		wantField          string // "" for accepted
		wantCountry        string
		wantLast4          string
	}{
		{"DE", "DE89370400440532013000", "A", "", "DE", "3000"},
		{"DE grouped lower case", "de89 3704 0044 0532 0130 00", "A", "", "DE", "3000"},
		{"AT", "AT611904300234573201", "A", "", "AT", "3201"},
		{"NL", "NL91ABNA0417164300", "A", "", "NL", "4300"},
		{"DE declining test IBAN", "DE62370400440532013001", "A", "", "DE", "3001"},
		{"bad check digits", "DE88370400440532013000", "A", payment.FieldIBAN, "", ""},
		{"DE too short", "DE8937040044053201300", "A", payment.FieldIBAN, "", ""},
		{"AT too long", "AT6119043002345732011", "A", payment.FieldIBAN, "", ""},
		{"NL too short", "NL91ABNA041716430", "A", payment.FieldIBAN, "", ""},
		{"unknown country", "XX89370400440532013000", "A", payment.FieldIBAN, "", ""},
		{"punctuation", "DE89-3704-0044-0532-0130-00", "A", payment.FieldIBAN, "", ""},
		{"no check digits", "DEAB370400440532013000", "A", payment.FieldIBAN, "", ""},
		{"empty", "", "A", payment.FieldIBAN, "", ""},
		{"blank holder", "DE89370400440532013000", " ", payment.FieldBankHolder, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := payment.NewBankAccount(tt.iban, tt.holder)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("NewBankAccount: %v", err)
				}
				if a.Country() != tt.wantCountry || a.LastFour() != tt.wantLast4 {
					t.Errorf("country, last4 = %s, %s; want %s, %s", a.Country(), a.LastFour(), tt.wantCountry, tt.wantLast4)
				}
				return
			}
			var fe *payment.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Fatalf("NewBankAccount error = %v, want a *FieldError on %s", err, tt.wantField)
			}
		})
	}
}
