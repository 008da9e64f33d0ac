package catalog_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/subs-engine/subs/catalog"
	domaincatalog "github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/money"
)

func mustProduct(tb testing.TB, c *domaincatalog.Catalog, code string) domaincatalog.Product {
	tb.Helper()
	p, err := c.Product(code)
	if err != nil {
		tb.Fatalf("Product(%q): %v", code, err)
	}
	return p
}

func TestShippedDataLoads(t *testing.T) {
	t.Parallel()
	if _, err := catalog.Load(); err != nil {
		t.Fatalf("Load: %v", err)
	}
}

// rule CAT-1
func TestRule_CAT1_NortonUtilitiesIsNotRegistrable(t *testing.T) {
	t.Parallel()
	c := catalog.MustLoad()
	if mustProduct(t, c, "NU").Registrable() {
		t.Error("NU is registrable, want not registrable (CAT-1)")
	}
	for _, p := range c.Products() {
		if p.Code() != "NU" && !p.Registrable() {
			t.Errorf("%s is not registrable; only NU is in DOMAIN §1", p.Code())
		}
	}
}

// TestShippedProductsMatchDomainTable checks the products against DOMAIN.md
// §1, row by row.
func TestShippedProductsMatchDomainTable(t *testing.T) {
	t.Parallel()
	c := catalog.MustLoad()
	var (
		A, M, T = domaincatalog.Annual, domaincatalog.Monthly, domaincatalog.Trial
		W, Mac  = domaincatalog.Windows, domaincatalog.Mac
	)
	tests := []struct {
		code, family string
		platforms    []domaincatalog.Platform
		macEdition   string
		seats        int
		terms        []domaincatalog.Term
		legacy       bool
		extras       []string
		recoveryTool []domaincatalog.Platform
	}{
		{"NAV", "Norton AntiVirus", []domaincatalog.Platform{W, Mac}, "NAV 12", 1, []domaincatalog.Term{A, T}, true, []string{"bootable-recovery-tool"}, []domaincatalog.Platform{W}},
		{"NIS", "Norton Internet Security", []domaincatalog.Platform{W, Mac}, "NIS 5", 3, []domaincatalog.Term{A, T}, true, []string{"bootable-recovery-tool"}, []domaincatalog.Platform{W}},
		{"N360", "Norton 360", []domaincatalog.Platform{W}, "", 3, []domaincatalog.Term{A, T}, true, []string{"bootable-recovery-tool"}, []domaincatalog.Platform{W}},
		{"N1", "Norton One", []domaincatalog.Platform{W, Mac}, "", 5, []domaincatalog.Term{A}, true, []string{"premium-support", "anti-theft"}, nil},
		{"NS-STD", "Norton Security", []domaincatalog.Platform{W, Mac}, "", 1, []domaincatalog.Term{A, M, T}, false, nil, nil},
		{"NS-DLX", "Norton Security", []domaincatalog.Platform{W, Mac}, "", 5, []domaincatalog.Term{A, M, T}, false, nil, nil},
		{"NS-PRM", "Norton Security", []domaincatalog.Platform{W, Mac}, "", 10, []domaincatalog.Term{A, M, T}, false, []string{"backup-storage-add-on"}, nil},
		{"NU", "Norton Utilities", []domaincatalog.Platform{W}, "", 1, []domaincatalog.Term{A}, false, nil, nil},
	}
	if got, want := len(c.Products()), len(tests); got != want {
		t.Errorf("catalog has %d products, DOMAIN §1 has %d", got, want)
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			p := mustProduct(t, c, tt.code)
			if p.Family() != tt.family {
				t.Errorf("Family() = %q, want %q", p.Family(), tt.family)
			}
			if !slices.Equal(p.Platforms(), tt.platforms) {
				t.Errorf("Platforms() = %v, want %v", p.Platforms(), tt.platforms)
			}
			for _, e := range p.Editions() {
				if e.Platform() == Mac && e.Name() != tt.macEdition {
					t.Errorf("Mac edition = %q, want %q", e.Name(), tt.macEdition)
				}
			}
			if p.Seats() != tt.seats {
				t.Errorf("Seats() = %d, want %d", p.Seats(), tt.seats)
			}
			if !slices.Equal(p.Terms(), tt.terms) {
				t.Errorf("Terms() = %v, want %v", p.Terms(), tt.terms)
			}
			if p.Legacy() != tt.legacy {
				t.Errorf("Legacy() = %v, want %v", p.Legacy(), tt.legacy)
			}
			var extras []string
			for _, e := range p.Extras() {
				extras = append(extras, e.Code())
			}
			if !slices.Equal(extras, tt.extras) {
				t.Errorf("extras = %v, want %v", extras, tt.extras)
			}
			// rule PRD-3: the recovery tool is for NAV, NIS and N360 on Windows only.
			if !slices.Equal(p.RecoveryToolPlatforms(), tt.recoveryTool) {
				t.Errorf("RecoveryToolPlatforms() = %v, want %v", p.RecoveryToolPlatforms(), tt.recoveryTool)
			}
			if p.OffersRecoveryTool(Mac) {
				t.Error("OffersRecoveryTool(Mac) = true")
			}
		})
	}
}

func TestEverySoldTermIsPricedInTheCatalogCurrencies(t *testing.T) {
	t.Parallel()
	c := catalog.MustLoad()
	required := []money.Currency{money.USD, money.CAD, money.EUR, money.GBP, money.JPY, money.BRL, money.AUD}
	for _, cur := range required {
		if !slices.Contains(c.Currencies(), cur) {
			t.Errorf("catalog does not price in %s (DOMAIN §1 policy)", cur)
		}
	}
	for _, p := range c.Products() {
		for _, term := range p.Terms() {
			for _, cur := range required {
				t.Run(p.Code()+" "+term.String()+" "+cur.Code(), func(t *testing.T) {
					m, err := c.Price(p.Code(), term, cur)
					if err != nil {
						t.Fatalf("Price: %v", err)
					}
					if m.Currency() != cur {
						t.Errorf("currency = %v, want %v", m.Currency(), cur)
					}
					if term == domaincatalog.Trial && !m.IsZero() {
						t.Errorf("trial price = %v, want zero (TRI-1)", m)
					}
					if term.Paid() && (m.IsZero() || m.Negative()) {
						t.Errorf("paid price = %v, want positive", m)
					}
				})
			}
		}
	}
}

func TestShippedListPrices(t *testing.T) {
	t.Parallel()
	c := catalog.MustLoad()
	tests := []struct {
		code string
		term domaincatalog.Term
		want string
	}{
		{"NS-STD", domaincatalog.Annual, "USD 39.99"},
		{"NS-STD", domaincatalog.Monthly, "USD 4.99"},
		{"NS-PRM-STORAGE", domaincatalog.Monthly, "USD 1.99"},
	}
	for _, tt := range tests {
		got, err := c.Price(tt.code, tt.term, money.USD)
		if err != nil || got.String() != tt.want {
			t.Errorf("Price(%s, %s, USD) = %v, %v; want %s", tt.code, tt.term, got, err, tt.want)
		}
	}
	jpy, err := c.Price("NS-STD", domaincatalog.Annual, money.JPY)
	if err != nil || jpy.String() != "JPY 5980" {
		t.Errorf("Price(NS-STD, annual, JPY) = %v, %v; want JPY 5980", jpy, err)
	}
	if _, err := c.Price("NAV", domaincatalog.Monthly, money.USD); !errors.Is(err, domaincatalog.ErrTermNotSold) {
		t.Errorf("Price(NAV, monthly) error = %v, want ErrTermNotSold", err)
	}
}

// rule CNV-2
func TestRule_CNV2_ConversionMap(t *testing.T) {
	t.Parallel()
	c := catalog.MustLoad()
	tests := []struct {
		from   string
		seats  int
		chosen string
		want   string
	}{
		{"NAV", 1, "", "NS-STD"},
		{"NAV", 1, "NS-DLX", "NS-DLX"},
		{"NIS", 3, "", "NS-DLX"},
		{"NIS", 1, "", "NS-STD"},
		{"NIS", 3, "NS-STD", "NS-STD"},
		{"N360", 3, "", "NS-PRM"},
		{"N1", 5, "", "NS-PRM"},
	}
	for _, tt := range tests {
		t.Run(tt.from+"/"+tt.chosen, func(t *testing.T) {
			plan, err := c.ConversionTarget(tt.from, tt.seats, tt.chosen)
			if err != nil {
				t.Fatalf("ConversionTarget: %v", err)
			}
			if plan.To.Code() != tt.want || plan.From.Code() != tt.from {
				t.Errorf("plan %s -> %s, want %s -> %s", plan.From.Code(), plan.To.Code(), tt.from, tt.want)
			}
		})
	}
	var tna *domaincatalog.TargetNotAllowedError
	if _, err := c.ConversionTarget("N360", 3, "NS-STD"); !errors.As(err, &tna) || tna.Chosen != "NS-STD" {
		t.Errorf("N360 -> NS-STD error = %v, want TargetNotAllowedError", err)
	}
	if _, err := c.ConversionTarget("NS-STD", 1, ""); !errors.Is(err, domaincatalog.ErrNotConvertible) {
		t.Errorf("NS-STD conversion error = %v, want ErrNotConvertible", err)
	}
	if _, err := c.ConversionTarget("NOPE", 1, ""); !errors.Is(err, domaincatalog.ErrNotFound) {
		t.Errorf("unknown product error = %v, want ErrNotFound", err)
	}
}

// rule CNV-5
func TestRule_CNV5_NortonOneLosesPremiumSupportAndAntiTheft(t *testing.T) {
	t.Parallel()
	c := catalog.MustLoad()
	for _, tt := range []struct {
		from string
		want []string
	}{{"N1", []string{"premium-support", "anti-theft"}}, {"N360", nil}, {"NAV", nil}, {"NIS", nil}} {
		plan, err := c.ConversionTarget(tt.from, 1, "")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range plan.Loses {
			got = append(got, e.Code())
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s loses %v, want %v", tt.from, got, tt.want)
		}
	}
}

// rule ARS-5
func TestRule_ARS5_AsianStores(t *testing.T) {
	t.Parallel()
	c := catalog.MustLoad()
	asian := []string{"JP", "KR", "CN", "HK", "TW"}
	for _, s := range c.Storefronts() {
		if got, want := s.AsianStore(), slices.Contains(asian, s.Code()); got != want {
			t.Errorf("%s AsianStore() = %v, want %v", s.Code(), got, want)
		}
	}
	for _, code := range asian {
		s, err := c.Storefront(code)
		if err != nil {
			t.Fatalf("Storefront(%s): %v", code, err)
		}
		if s.Name() == "" || s.Region() != domaincatalog.RegionAsiaPacific {
			t.Errorf("%s: name %q region %v", code, s.Name(), s.Region())
		}
	}
}

// rule ARS-4
func TestRule_ARS4_StorefrontsCoverEveryRegion(t *testing.T) {
	t.Parallel()
	c := catalog.MustLoad()
	for _, r := range []domaincatalog.Region{domaincatalog.RegionUnitedStates, domaincatalog.RegionCanada, domaincatalog.RegionEurope, domaincatalog.RegionMiddleEast, domaincatalog.RegionAfrica, domaincatalog.RegionLatinAmerica, domaincatalog.RegionAsiaPacific} {
		if !slices.ContainsFunc(c.Storefronts(), func(s domaincatalog.Storefront) bool { return s.Region() == r }) {
			t.Errorf("no storefront in region %v", r)
		}
	}
	for _, code := range []string{"US", "CA", "GB", "DE", "FR", "NL", "AT", "BR", "AU"} {
		if _, err := c.Storefront(code); err != nil {
			t.Errorf("Storefront(%s): %v", code, err)
		}
	}
	var nf *domaincatalog.NotFoundError
	if _, err := c.Storefront("XX"); !errors.As(err, &nf) || nf.Code != "XX" || nf.Kind != "storefront" {
		t.Errorf("Storefront(XX) error = %v, want NotFoundError naming XX", err)
	}
}
