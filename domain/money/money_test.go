package money_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/subs-engine/subs/domain/money"
)

func mustCurrency(tb testing.TB, code string) money.Currency {
	tb.Helper()
	c, err := money.ParseCurrency(code)
	if err != nil {
		tb.Fatalf("ParseCurrency(%q): %v", code, err)
	}
	return c
}

func TestParseCurrency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		exp  int
	}{
		{"USD", 2}, {"CAD", 2}, {"EUR", 2}, {"GBP", 2}, {"JPY", 0}, {"BRL", 2}, {"AUD", 2},
		{"KRW", 0}, {"CNY", 2}, {"HKD", 2}, {"TWD", 2}, {"CHF", 2}, {"KWD", 3},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			c := mustCurrency(t, tt.code)
			if got := c.Code(); got != tt.code {
				t.Errorf("Code() = %q, want %q", got, tt.code)
			}
			if got := c.Exponent(); got != tt.exp {
				t.Errorf("Exponent() = %d, want %d", got, tt.exp)
			}
		})
	}
}

func TestParseCurrencyRefuses(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"", "usd", "US", "USDD", "XXX", " USD", "ZZZ"} {
		t.Run(code, func(t *testing.T) {
			_, err := money.ParseCurrency(code)
			if !errors.Is(err, money.ErrUnknownCurrency) {
				t.Fatalf("ParseCurrency(%q) error = %v, want ErrUnknownCurrency", code, err)
			}
			var uce *money.UnknownCurrencyError
			if !errors.As(err, &uce) || uce.Code != code {
				t.Fatalf("error %v does not carry the code %q", err, code)
			}
		})
	}
}

func TestPackageCurrenciesAreSupported(t *testing.T) {
	t.Parallel()
	for _, c := range []money.Currency{money.USD, money.CAD, money.EUR, money.GBP, money.JPY, money.BRL, money.AUD, money.KRW, money.CNY, money.HKD, money.TWD} {
		if got := mustCurrency(t, c.Code()); got != c {
			t.Errorf("ParseCurrency(%q) = %v, want %v", c.Code(), got, c)
		}
	}
	if len(money.Currencies()) < 7 {
		t.Errorf("Currencies() has %d entries, want at least 7", len(money.Currencies()))
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		m    money.Money
		want string
	}{
		{money.New(4999, money.USD), "USD 49.99"},
		{money.New(5980, money.JPY), "JPY 5980"},
		{money.New(5, money.EUR), "EUR 0.05"},
		{money.New(-300, money.GBP), "GBP -3.00"},
		{money.New(0, money.CAD), "CAD 0.00"},
		{money.New(1234, mustCurrency(t, "KWD")), "KWD 1.234"},
		{money.New(math.MinInt64, money.USD), "USD -92233720368547758.08"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.m.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestArithmetic(t *testing.T) {
	t.Parallel()
	usd := func(n int64) money.Money { return money.New(n, money.USD) }
	tests := []struct {
		name    string
		op      func() (money.Money, error)
		want    money.Money
		wantErr error
	}{
		{"add", func() (money.Money, error) { return usd(4999).Add(usd(1)) }, usd(5000), nil},
		{"sub to negative", func() (money.Money, error) { return usd(100).Sub(usd(250)) }, usd(-150), nil},
		{"mul", func() (money.Money, error) { return usd(4999).Mul(3) }, usd(14997), nil},
		{"add mismatch", func() (money.Money, error) { return usd(1).Add(money.New(1, money.EUR)) }, money.Money{}, money.ErrCurrencyMismatch},
		{"sub mismatch", func() (money.Money, error) { return usd(1).Sub(money.New(1, money.JPY)) }, money.Money{}, money.ErrCurrencyMismatch},
		{"add zero Money", func() (money.Money, error) { return money.Money{}.Add(money.Money{}) }, money.Money{}, money.ErrCurrencyMismatch},
		{"add overflow", func() (money.Money, error) { return usd(math.MaxInt64).Add(usd(1)) }, money.Money{}, money.ErrOverflow},
		{"sub overflow", func() (money.Money, error) { return usd(math.MinInt64).Sub(usd(1)) }, money.Money{}, money.ErrOverflow},
		{"sub min int", func() (money.Money, error) { return usd(-1).Sub(usd(math.MinInt64)) }, usd(math.MaxInt64), nil},
		{"mul overflow", func() (money.Money, error) { return usd(math.MaxInt64 / 2).Mul(3) }, money.Money{}, money.ErrOverflow},
		{"mul min int", func() (money.Money, error) { return usd(math.MinInt64).Mul(-1) }, money.Money{}, money.ErrOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.op()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if !got.Equal(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPredicates(t *testing.T) {
	t.Parallel()
	if !money.Zero(money.USD).IsZero() || money.New(1, money.USD).IsZero() {
		t.Error("IsZero is wrong")
	}
	if !money.New(-1, money.USD).Negative() || money.New(0, money.USD).Negative() {
		t.Error("Negative is wrong")
	}
	if got := money.New(7, money.JPY); got.Amount() != 7 || got.Currency() != money.JPY {
		t.Errorf("getters: %d %v", got.Amount(), got.Currency())
	}
}

func TestNewPanicsOnZeroCurrency(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("New with the zero Currency did not panic")
		}
	}()
	money.New(1, money.Currency{})
}

func TestParseAmount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		cur  money.Currency
		want int64
	}{
		{"49.99", money.USD, 4999},
		{"49.9", money.USD, 4990},
		{"49", money.USD, 4900},
		{"0.05", money.EUR, 5},
		{"-3.50", money.GBP, -350},
		{"007", money.USD, 700},
		{"5980", money.JPY, 5980},
		{"92233720368547758.07", money.USD, math.MaxInt64},
		{"-92233720368547758.08", money.USD, math.MinInt64},
		{"9223372036854775807", money.JPY, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.cur.Code()+" "+tt.in, func(t *testing.T) {
			got, err := money.ParseAmount(tt.in, tt.cur)
			if err != nil {
				t.Fatalf("ParseAmount: %v", err)
			}
			if want := money.New(tt.want, tt.cur); !got.Equal(want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestParseAmountRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in  string
		cur money.Currency
		why string
	}{
		{"49.999", money.USD, "too many decimals"},
		{"5980.0", money.JPY, "too many decimals"},
		{"5980.", money.JPY, "no digit after"},
		{"", money.USD, "no digit before"},
		{"-", money.USD, "no digit before"},
		{".5", money.USD, "no digit before"},
		{"1.", money.USD, "no digit after"},
		{"+1", money.USD, "not a decimal"},
		{" 1", money.USD, "not a decimal"},
		{"1,000", money.USD, "not a decimal"},
		{"1e3", money.USD, "not a decimal"},
		{"1.2.3", money.USD, "too many decimals"},
		{"1.a", money.USD, "not a decimal"},
		{"--1", money.USD, "not a decimal"},
		{"92233720368547758.08", money.USD, "too large"},
		{"9223372036854775808", money.JPY, "too large"},
		{"1", money.Currency{}, "no currency"},
	}
	for _, tt := range tests {
		t.Run(tt.cur.Code()+" "+tt.in, func(t *testing.T) {
			_, err := money.ParseAmount(tt.in, tt.cur)
			if !errors.Is(err, money.ErrInvalidAmount) {
				t.Fatalf("ParseAmount(%q) error = %v, want ErrInvalidAmount", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("error %q does not say %q", err, tt.why)
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range []money.Money{money.New(4999, money.USD), money.New(5980, money.JPY), money.New(-1, money.EUR)} {
		t.Run(m.String(), func(t *testing.T) {
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			var back money.Money
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if !back.Equal(m) {
				t.Errorf("round trip of %v gave %v", m, back)
			}
		})
	}
	b, err := json.Marshal(money.New(4999, money.USD))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"amount":4999,"currency":"USD"}`; got != want {
		t.Errorf("Marshal = %s, want %s", got, want)
	}
}

func TestJSONRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, field string
		want            error
	}{
		{"float amount", `{"amount":49.99,"currency":"USD"}`, "amount", money.ErrInvalidAmount},
		{"string amount", `{"amount":"4999","currency":"USD"}`, "amount", money.ErrInvalidAmount},
		{"missing amount", `{"currency":"USD"}`, "amount", money.ErrInvalidAmount},
		{"missing currency", `{"amount":1}`, "currency", money.ErrInvalidAmount},
		{"unknown currency", `{"amount":1,"currency":"XYZ"}`, "currency", money.ErrUnknownCurrency},
		{"lower-case currency", `{"amount":1,"currency":"usd"}`, "currency", money.ErrUnknownCurrency},
		{"extra field", `{"amount":1,"currency":"USD","rate":2}`, "rate", money.ErrInvalidAmount},
		{"null", `null`, "amount", money.ErrInvalidAmount},
		{"too large", `{"amount":9223372036854775808,"currency":"USD"}`, "amount", money.ErrInvalidAmount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m money.Money
			err := m.UnmarshalJSON([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("UnmarshalJSON(%s) error = %v, want %v", tt.in, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %q", err, tt.field)
			}
		})
	}
	if _, err := json.Marshal(money.Money{}); err == nil {
		t.Error("Marshal of the zero Money succeeded")
	}
}

func TestCurrencyText(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(map[string]money.Currency{"c": money.JPY})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"c":"JPY"}`; got != want {
		t.Errorf("Marshal = %s, want %s", got, want)
	}
	var back map[string]money.Currency
	if err := json.Unmarshal(b, &back); err != nil || back["c"] != money.JPY {
		t.Errorf("Unmarshal = %v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"c":"XXX"}`), &back); !errors.Is(err, money.ErrUnknownCurrency) {
		t.Errorf("Unmarshal unknown code error = %v", err)
	}
}
