package payment_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/subs-engine/subs/domain/payment"
)

// FuzzNewBankAccount: never a panic; an accepted IBAN keeps its country and
// last four, and its String never shows it.
func FuzzNewBankAccount(f *testing.F) {
	for _, s := range []string{"DE89370400440532013000", "de89 3704 0044 0532 0130 00", "NL91ABNA0417164300", "XX00", "", "DE00000000000000000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, iban string) {
		a, err := payment.NewBankAccount(iban, "A")
		if err != nil {
			return
		}
		if a.Country() != a.IBAN()[:2] || a.LastFour() != a.IBAN()[len(a.IBAN())-4:] || strings.Contains(a.String(), a.IBAN()) {
			t.Fatalf("NewBankAccount(%q) = %s with IBAN %s", iban, a, a.IBAN())
		}
	})
}

// FuzzPaymentMethodJSON: decoding outside JSON never panics, and what it
// accepts encodes back to a value that decodes to the same method.
func FuzzPaymentMethodJSON(f *testing.F) {
	f.Add(`{"kind":"card","token":"tok_1","brand":"visa","last4":"4242","exp_month":12,"exp_year":2030,"holder_name":"Ada"}`)
	f.Add(`{"kind":"direct_debit","token":"tok_2","country":"DE","last4":"3000","holder_name":"Ada"}`)
	f.Add(`{"kind":"card"}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, data string) {
		var m payment.PaymentMethod
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("accepted %s but cannot encode it: %v", data, err)
		}
		var back payment.PaymentMethod
		if err := json.Unmarshal(b, &back); err != nil || back != m {
			t.Fatalf("round trip of %s: %+v, %v; want %+v", b, back, err, m)
		}
	})
}
