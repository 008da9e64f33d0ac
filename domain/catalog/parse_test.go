package catalog_test

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/money"
)

// A small valid catalog; each refusal case breaks one thing in it.
const (
	products = `{
  "products": [
    {"code": "OLD", "name": "Old", "family": "Old", "platforms": [{"platform": "windows"}, {"platform": "mac", "edition": "Old 2"}],
     "seats": 1, "terms": ["annual", "trial"], "legacy": true, "registrable": true,
     "extras": [{"code": "gadget", "name": "Gadget"}], "recoveryToolPlatforms": ["windows"]},
    {"code": "NEW", "name": "New", "family": "New", "platforms": [{"platform": "windows"}],
     "seats": 5, "terms": ["annual", "monthly"], "legacy": false, "registrable": false}
  ],
  "addOns": [{"code": "NEW-ADD", "name": "Add", "baseProducts": ["NEW"], "terms": ["monthly"]}]
}`
	prices = `{
  "currencies": ["USD", "JPY"],
  "prices": [
    {"code": "OLD", "term": "annual", "amounts": {"USD": "39.99", "JPY": "5980"}},
    {"code": "NEW", "term": "annual", "amounts": {"USD": "49.99", "JPY": "7480"}},
    {"code": "NEW", "term": "monthly", "amounts": {"USD": "4.99", "JPY": "750"}},
    {"code": "NEW-ADD", "term": "monthly", "amounts": {"USD": "1.99", "JPY": "300"}}
  ]
}`
	storefronts = `{"storefronts": [
    {"code": "US", "name": "US store", "region": "united-states", "currency": "USD", "asianStore": false},
    {"code": "JP", "name": "Japan store", "region": "asia-pacific", "currency": "JPY", "asianStore": true}
]}`
	conversions = `{"conversions": [{"from": "OLD", "targets": ["NEW"], "loses": ["gadget"]}]}`
)

func validFS() fstest.MapFS {
	return fstest.MapFS{
		"products.json":    {Data: []byte(products)},
		"prices.json":      {Data: []byte(prices)},
		"storefronts.json": {Data: []byte(storefronts)},
		"conversions.json": {Data: []byte(conversions)},
	}
}

func mustParse(tb testing.TB) *catalog.Catalog {
	tb.Helper()
	c, err := catalog.Parse(validFS())
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return c
}

func TestParseValid(t *testing.T) {
	t.Parallel()
	c := mustParse(t)
	p, err := c.Product("OLD")
	if err != nil {
		t.Fatal(err)
	}
	if p.Seats() != 1 || !p.Legacy() || !p.Registrable() || !p.OffersRecoveryTool(catalog.Windows) || !p.RunsOn(catalog.Mac) {
		t.Errorf("OLD parsed wrong: %+v", p)
	}
	if n, _ := c.Product("NEW"); n.Registrable() || len(n.AddOns()) != 1 || n.AddOns()[0] != "NEW-ADD" {
		t.Errorf("NEW parsed wrong: registrable %v, add-ons %v", n.Registrable(), n.AddOns())
	}
	if m, err := c.Price("NEW-ADD", catalog.Monthly, money.JPY); err != nil || m.String() != "JPY 300" {
		t.Errorf("add-on price = %v, %v", m, err)
	}
	if m, err := c.Price("OLD", catalog.Trial, money.USD); err != nil || !m.IsZero() || m.Currency() != money.USD {
		t.Errorf("trial price = %v, %v; want USD 0.00", m, err)
	}
	var pnf *catalog.PriceNotFoundError
	if _, err := c.Price("OLD", catalog.Annual, money.EUR); !errors.As(err, &pnf) || !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("EUR price error = %v, want PriceNotFoundError", err)
	}
	var nf *catalog.NotFoundError
	if _, err := c.Product("NOPE"); !errors.As(err, &nf) || nf.Code != "NOPE" || !strings.Contains(err.Error(), "NOPE") {
		t.Errorf("Product(NOPE) error = %v, want NotFoundError naming NOPE", err)
	}
	if _, err := c.AddOn("NOPE"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("AddOn(NOPE) error = %v", err)
	}
	if _, err := c.Price("NOPE", catalog.Annual, money.USD); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Price(NOPE) error = %v", err)
	}
	plan, err := c.ConversionTarget("OLD", 1, "")
	if err != nil || plan.To.Code() != "NEW" || len(plan.Loses) != 1 || plan.Loses[0].Name() != "Gadget" {
		t.Errorf("ConversionTarget(OLD) = %+v, %v", plan, err)
	}
	if s, err := c.Storefront("JP"); err != nil || !s.AsianStore() || s.Currency() != money.JPY {
		t.Errorf("Storefront(JP) = %+v, %v", s, err)
	}
}

func TestParseRefusesBrokenData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		file      string
		old, new  string // replaced once in file; old == "" deletes the file
		wantField string
	}{
		{"missing file", "conversions.json", "", "", ""},
		{"not json", "prices.json", `{`, `[`, ""},
		{"unknown field", "products.json", `"seats": 5`, `"seats": 5, "seat": 5`, ""},
		{"seats zero", "products.json", `"seats": 5`, `"seats": 0`, "products[1].seats"},
		{"seats negative", "products.json", `"seats": 1`, `"seats": -1`, "products[0].seats"},
		{"duplicate product", "products.json", `"code": "NEW", "name"`, `"code": "OLD", "name"`, "products[1].code"},
		{"bad product code", "products.json", `"code": "NEW", "name"`, `"code": "new", "name"`, "products[1].code"},
		{"registrable missing", "products.json", `, "registrable": false`, ``, "products[1].registrable"},
		{"unknown term", "products.json", `["annual", "monthly"]`, `["annual", "weekly"]`, "products[1].terms[1]"},
		{"no terms", "products.json", `["annual", "monthly"]`, `[]`, "products[1].terms"},
		{"unknown platform", "products.json", `{"platform": "mac", "edition"`, `{"platform": "linux", "edition"`, "products[0].platforms[1].platform"},
		{"recovery tool off platform", "products.json", `"recoveryToolPlatforms": ["windows"]`, `"recoveryToolPlatforms": ["windows", "plan9"]`, "products[0].recoveryToolPlatforms[1]"},
		{"add-on unknown base", "products.json", `"baseProducts": ["NEW"]`, `"baseProducts": ["GONE"]`, "addOns[0].baseProducts[0]"},
		{"unknown currency", "prices.json", `["USD", "JPY"]`, `["USD", "JPY", "XYZ"]`, "currencies[2]"},
		{"missing currency for sold term", "prices.json", `"USD": "4.99", "JPY": "750"`, `"USD": "4.99"`, "prices"},
		{"missing price for sold term", "prices.json", `{"code": "NEW", "term": "monthly", "amounts": {"USD": "4.99", "JPY": "750"}},`, ``, "prices"},
		{"too many decimals", "prices.json", `"JPY": "5980"`, `"JPY": "5980.5"`, "prices[0].amounts.JPY"},
		{"float-like amount", "prices.json", `"USD": "39.99"`, `"USD": "3.999e1"`, "prices[0].amounts.USD"},
		{"zero price", "prices.json", `"USD": "49.99"`, `"USD": "0"`, "prices[1].amounts.USD"},
		{"price for unknown product", "prices.json", `{"code": "OLD", "term"`, `{"code": "GONE", "term"`, "prices[0].code"},
		{"price for term not sold", "prices.json", `{"code": "OLD", "term": "annual"`, `{"code": "OLD", "term": "monthly"`, "prices[0].term"},
		{"price for trial", "prices.json", `{"code": "OLD", "term": "annual"`, `{"code": "OLD", "term": "trial"`, "prices[0].term"},
		{"storefront currency unknown", "storefronts.json", `"currency": "JPY"`, `"currency": "YEN"`, "storefronts[1].currency"},
		{"storefront currency not priced", "storefronts.json", `"currency": "JPY"`, `"currency": "EUR"`, "storefronts[1].currency"},
		{"storefront region unknown", "storefronts.json", `"region": "asia-pacific"`, `"region": "mars"`, "storefronts[1].region"},
		{"duplicate storefront", "storefronts.json", `"code": "JP"`, `"code": "US"`, "storefronts[1].code"},
		{"conversion from unknown product", "conversions.json", `"from": "OLD"`, `"from": "GONE"`, "conversions[0].from"},
		{"conversion to unknown product", "conversions.json", `"targets": ["NEW"]`, `"targets": ["GONE"]`, "conversions[0].targets[0]"},
		{"conversion to legacy product", "conversions.json", `"targets": ["NEW"]`, `"targets": ["OLD"]`, "conversions[0].targets[0]"},
		{"conversion loses unknown extra", "conversions.json", `"loses": ["gadget"]`, `"loses": ["widget"]`, "conversions[0].loses[0]"},
		{"conversion default not a target", "conversions.json", `"targets": ["NEW"]`, `"targets": ["NEW"], "defaultOneSeat": "OLD"`, "conversions[0].defaultOneSeat"},
		{"legacy product without conversion", "conversions.json", `{"from": "OLD", "targets": ["NEW"], "loses": ["gadget"]}`, ``, "conversions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fsys := validFS()
			if tt.old == "" {
				delete(fsys, tt.file)
			} else {
				data := string(fsys[tt.file].Data)
				if !strings.Contains(data, tt.old) {
					t.Fatalf("test is broken: %q not in %s", tt.old, tt.file)
				}
				fsys[tt.file] = &fstest.MapFile{Data: []byte(strings.Replace(data, tt.old, tt.new, 1))}
			}
			c, err := catalog.Parse(fsys)
			if err == nil {
				t.Fatalf("Parse accepted broken data (catalog %v)", c)
			}
			if !errors.Is(err, catalog.ErrInvalidData) {
				t.Errorf("error %v does not match ErrInvalidData", err)
			}
			var de *catalog.DataError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a DataError", err)
			}
			// The first DataError is the one the change caused; others may follow.
			if de.File != tt.file || de.Field != tt.wantField {
				t.Errorf("DataError names %s %q, want %s %q (error: %v)", de.File, de.Field, tt.file, tt.wantField, err)
			}
			if !strings.Contains(err.Error(), tt.file) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestEnums(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want catalog.Term
	}{{"annual", catalog.Annual}, {"monthly", catalog.Monthly}, {"trial", catalog.Trial}} {
		got, err := catalog.ParseTerm(tt.in)
		if err != nil || got != tt.want || got.String() != tt.in {
			t.Errorf("ParseTerm(%q) = %v, %v", tt.in, got, err)
		}
	}
	for _, in := range []string{"", "Annual", "weekly"} {
		if _, err := catalog.ParseTerm(in); !errors.Is(err, catalog.ErrInvalidValue) {
			t.Errorf("ParseTerm(%q) error = %v, want ErrInvalidValue", in, err)
		}
	}
	if !(catalog.Term{}).IsZero() || catalog.Annual.IsZero() {
		t.Error("Term.IsZero is wrong")
	}
	if _, err := (catalog.Term{}).MarshalText(); err == nil {
		t.Error("the zero Term marshals")
	}
	if p, err := catalog.ParsePlatform("mac"); err != nil || p != catalog.Mac {
		t.Errorf("ParsePlatform(mac) = %v, %v", p, err)
	}
	if _, err := catalog.ParsePlatform("linux"); !errors.Is(err, catalog.ErrInvalidValue) {
		t.Errorf("ParsePlatform(linux) error = %v", err)
	}
	if r, err := catalog.ParseRegion("middle-east"); err != nil || r != catalog.RegionMiddleEast {
		t.Errorf("ParseRegion(middle-east) = %v, %v", r, err)
	}
	var term catalog.Term
	if err := term.UnmarshalText([]byte("monthly")); err != nil || term != catalog.Monthly {
		t.Errorf("UnmarshalText(monthly) = %v, %v", term, err)
	}
}
