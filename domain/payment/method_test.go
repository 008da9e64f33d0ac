package payment_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain/payment"
)

func TestPaymentMethod_JSONRoundTrip(t *testing.T) {
	t.Parallel()
	card, err := payment.NewCardMethod("tok_1", payment.Visa, "4242", 12, 2030, "Ada")
	if err != nil {
		t.Fatal(err)
	}
	dd, err := payment.NewDirectDebitMethod("tok_2", "NL", "4300", "Ada")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []payment.PaymentMethod{card, dd} {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal(%s): %v", m, err)
		}
		var back payment.PaymentMethod
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if back != m {
			t.Errorf("round trip of %s = %+v, want %+v", b, back, m)
		}
	}
	if _, err := json.Marshal(payment.PaymentMethod{}); err == nil {
		t.Error("Marshal of the zero PaymentMethod succeeded")
	}
}

func TestPaymentMethod_Refusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, json, wantField string
	}{
		{"no kind", `{"token":"t","last4":"4242","holder_name":"A"}`, payment.FieldPaymentKind},
		{"unknown kind", `{"kind":"cash","token":"t","last4":"4242","holder_name":"A"}`, payment.FieldPaymentKind},
		{"no token", `{"kind":"card","token":"","brand":"visa","last4":"4242","exp_month":1,"exp_year":2030,"holder_name":"A"}`, payment.FieldToken},
		{"space in token", `{"kind":"card","token":"a b","brand":"visa","last4":"4242","exp_month":1,"exp_year":2030,"holder_name":"A"}`, payment.FieldToken},
		{"card without brand", `{"kind":"card","token":"t","last4":"4242","exp_month":1,"exp_year":2030,"holder_name":"A"}`, payment.FieldPaymentBrand},
		{"bad brand", `{"kind":"card","token":"t","brand":"diners","last4":"4242","exp_month":1,"exp_year":2030,"holder_name":"A"}`, payment.FieldPaymentBrand},
		{"full number as last4", `{"kind":"card","token":"t","brand":"visa","last4":"4242424242424242","exp_month":1,"exp_year":2030,"holder_name":"A"}`, payment.FieldPaymentLastFour},
		{"card month 13", `{"kind":"card","token":"t","brand":"visa","last4":"4242","exp_month":13,"exp_year":2030,"holder_name":"A"}`, payment.FieldPaymentExpiry},
		{"card holder blank", `{"kind":"card","token":"t","brand":"visa","last4":"4242","exp_month":1,"exp_year":2030,"holder_name":" "}`, payment.FieldPaymentHolder},
		{"direct debit bad country", `{"kind":"direct_debit","token":"t","country":"US","last4":"4300","holder_name":"A"}`, payment.FieldPaymentCountry},
		{"direct debit with expiry", `{"kind":"direct_debit","token":"t","country":"NL","last4":"4300","exp_month":1,"exp_year":2030,"holder_name":"A"}`, payment.FieldPaymentKind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var m payment.PaymentMethod
			err := json.Unmarshal([]byte(tt.json), &m)
			var fe *payment.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Fatalf("Unmarshal error = %v, want a *FieldError on %s", err, tt.wantField)
			}
			if !m.IsZero() {
				t.Errorf("a refused decode changed the value to %s", m)
			}
		})
	}
	var m payment.PaymentMethod
	if err := json.Unmarshal([]byte(`{"kind":"card","token":"t","brand":"visa","last4":"4242","exp_month":1,"exp_year":2030,"holder_name":"A","number":"4242424242424242"}`), &m); err == nil {
		t.Error("Unmarshal accepted an unknown field")
	}
}

func TestPaymentMethod_ExpiredAt(t *testing.T) {
	t.Parallel()
	card, _ := payment.NewCardMethod("tok_1", payment.Visa, "4242", 2, 2026, "Ada")
	dd, _ := payment.NewDirectDebitMethod("tok_2", "DE", "3000", "Ada")
	before := time.Date(2026, 2, 28, 12, 0, 0, 0, time.UTC)
	after := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if card.ExpiredAt(before) || !card.ExpiredAt(after) {
		t.Errorf("card 02/2026: ExpiredAt(%s) = %t, ExpiredAt(%s) = %t; want false, true", before, card.ExpiredAt(before), after, card.ExpiredAt(after))
	}
	if dd.ExpiredAt(after.AddDate(50, 0, 0)) {
		t.Error("a direct debit expired")
	}
}
