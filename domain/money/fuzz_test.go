package money_test

import (
	"testing"

	"github.com/subs-engine/subs/domain/money"
)

// FuzzParseAmount feeds ParseAmount arbitrary outside input: it must never
// panic, and whatever it accepts must print back (Decimal) to a string that
// parses to the same amount.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"49.99", "5980", "-0.05", "1.", ".5", "92233720368547758.07", "9223372036854775808", "1e3", "-", ""} {
		f.Add(s, "USD")
		f.Add(s, "JPY")
	}
	f.Add("1.234", "KWD")
	f.Fuzz(func(t *testing.T, s, code string) {
		cur, err := money.ParseCurrency(code)
		if err != nil {
			return
		}
		m, err := money.ParseAmount(s, cur)
		if err != nil {
			return
		}
		back, err := money.ParseAmount(m.Decimal(), cur)
		if err != nil {
			t.Fatalf("ParseAmount(%q) = %v, but its Decimal %q does not parse: %v", s, m, m.Decimal(), err)
		}
		if !back.Equal(m) {
			t.Fatalf("ParseAmount(%q) = %v, reparsed %v", s, m, back)
		}
	})
}
