package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"regexp"
	"slices"

	"github.com/subs-engine/subs/domain/money"
)

// The data files Parse reads, at the root of the file system it is given.
const (
	ProductsFile    = "products.json"
	PricesFile      = "prices.json"
	StorefrontsFile = "storefronts.json"
	ConversionsFile = "conversions.json"
)

// The wire forms of the data files. Plain strings, parsed by hand, so that
// every refusal can name its field.
type (
	productsDoc struct {
		Products []productDoc `json:"products"`
		AddOns   []addOnDoc   `json:"addOns"`
	}
	productDoc struct {
		Code                  string       `json:"code"`
		Name                  string       `json:"name"`
		Family                string       `json:"family"`
		Platforms             []editionDoc `json:"platforms"`
		Seats                 int          `json:"seats"`
		Terms                 []string     `json:"terms"`
		Legacy                bool         `json:"legacy"`
		Registrable           *bool        `json:"registrable"`
		Extras                []extraDoc   `json:"extras"`
		RecoveryToolPlatforms []string     `json:"recoveryToolPlatforms"`
	}
	editionDoc struct {
		Platform string `json:"platform"`
		Edition  string `json:"edition"`
	}
	extraDoc struct {
		Code string `json:"code"`
		Name string `json:"name"`
	}
	addOnDoc struct {
		Code         string   `json:"code"`
		Name         string   `json:"name"`
		BaseProducts []string `json:"baseProducts"`
		Terms        []string `json:"terms"`
	}
	pricesDoc struct {
		Currencies []string   `json:"currencies"`
		Prices     []priceDoc `json:"prices"`
	}
	priceDoc struct {
		Code    string            `json:"code"`
		Term    string            `json:"term"`
		Amounts map[string]string `json:"amounts"`
	}
	storefrontsDoc struct {
		Storefronts []storefrontDoc `json:"storefronts"`
	}
	storefrontDoc struct {
		Code       string `json:"code"`
		Name       string `json:"name"`
		Region     string `json:"region"`
		Currency   string `json:"currency"`
		AsianStore bool   `json:"asianStore"`
	}
	conversionsDoc struct {
		Conversions []conversionDoc `json:"conversions"`
	}
	conversionDoc struct {
		From             string   `json:"from"`
		Targets          []string `json:"targets"`
		DefaultOneSeat   string   `json:"defaultOneSeat"`
		DefaultMoreSeats string   `json:"defaultMoreSeats"`
		Loses            []string `json:"loses"`
	}
)

var (
	productCode   = regexp.MustCompile(`^[A-Z0-9]+(-[A-Z0-9]+)*$`)
	extraCode     = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	storefrontKey = regexp.MustCompile(`^[A-Z]{2}$`)
)

// problems collects the DataErrors of one Parse.
type problems struct{ errs []error }

func (p *problems) add(file, field, format string, args ...any) {
	p.errs = append(p.errs, &DataError{File: file, Field: field, Problem: fmt.Sprintf(format, args...)})
}

// Parse reads the catalog data files (ProductsFile, PricesFile,
// StorefrontsFile, ConversionsFile) at the root of fsys and validates all of
// them, together: codes well formed and unique, seats positive, terms and
// platforms known, every paid term of every product and add-on priced in
// every catalog currency, storefront currencies priced, conversion map
// entries pointing at known products and extras, and so on. Unknown JSON
// fields are refused, to catch typos. On failure the error joins one
// *DataError per problem found (each naming its file and field), and
// matches ErrInvalidData.
func Parse(fsys fs.FS) (*Catalog, error) {
	var pr problems
	var (
		pd productsDoc
		xd pricesDoc
		sd storefrontsDoc
		cd conversionsDoc
	)
	okP := decode(fsys, ProductsFile, &pd, &pr)
	okX := decode(fsys, PricesFile, &xd, &pr)
	okS := decode(fsys, StorefrontsFile, &sd, &pr)
	okC := decode(fsys, ConversionsFile, &cd, &pr)
	if !okP || !okX || !okS || !okC {
		return nil, errors.Join(pr.errs...)
	}
	c := &Catalog{
		byCode:      map[string]int{},
		addOnByCode: map[string]int{},
		prices:      map[priceKey]money.Money{},
		storeByCode: map[string]int{},
		conversions: map[string]Conversion{},
	}
	c.parseProducts(pd, &pr)
	c.parsePrices(xd, &pr)
	c.parseStorefronts(sd, &pr)
	c.parseConversions(cd, &pr)
	if len(pr.errs) > 0 {
		return nil, errors.Join(pr.errs...)
	}
	return c, nil
}

func decode(fsys fs.FS, file string, v any, pr *problems) bool {
	b, err := fs.ReadFile(fsys, file)
	if err != nil {
		pr.add(file, "", "cannot read: %v", err)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		pr.add(file, "", "not valid: %v", err)
		return false
	}
	if dec.More() {
		pr.add(file, "", "not valid: trailing data after the document")
		return false
	}
	return true
}

func parseTerms(file, field string, names []string, pr *problems) []Term {
	if len(names) == 0 {
		pr.add(file, field, "must list at least one term")
	}
	var out []Term
	for i, n := range names {
		t, err := ParseTerm(n)
		switch {
		case err != nil:
			pr.add(file, fmt.Sprintf("%s[%d]", field, i), "unknown term %q (want annual, monthly or trial)", n)
		case slices.Contains(out, t):
			pr.add(file, fmt.Sprintf("%s[%d]", field, i), "duplicate term %q", n)
		default:
			out = append(out, t)
		}
	}
	return out
}

func (c *Catalog) parseProducts(d productsDoc, pr *problems) {
	const file = ProductsFile
	if len(d.Products) == 0 {
		pr.add(file, "products", "must list at least one product")
	}
	for i, pd := range d.Products {
		at := fmt.Sprintf("products[%d]", i)
		p := Product{code: pd.Code, name: pd.Name, family: pd.Family, seats: pd.Seats, legacy: pd.Legacy}
		if !productCode.MatchString(pd.Code) {
			pr.add(file, at+".code", "%q is not a product code (upper-case letters, digits and dashes)", pd.Code)
		} else if _, dup := c.byCode[pd.Code]; dup {
			pr.add(file, at+".code", "duplicate product code %q", pd.Code)
			continue
		}
		if pd.Name == "" {
			pr.add(file, at+".name", "must not be empty (product %q)", pd.Code)
		}
		if pd.Family == "" {
			pr.add(file, at+".family", "must not be empty (product %q)", pd.Code)
		}
		if pd.Seats <= 0 {
			pr.add(file, at+".seats", "must be positive, got %d (product %q)", pd.Seats, pd.Code)
		}
		if pd.Registrable == nil {
			// Explicit, because a forgotten false would silently allow registration.
			pr.add(file, at+".registrable", "is required (product %q)", pd.Code)
		} else {
			p.registrable = *pd.Registrable
		}
		if len(pd.Platforms) == 0 {
			pr.add(file, at+".platforms", "must list at least one platform (product %q)", pd.Code)
		}
		for j, ed := range pd.Platforms {
			pl, err := ParsePlatform(ed.Platform)
			field := fmt.Sprintf("%s.platforms[%d].platform", at, j)
			switch {
			case err != nil:
				pr.add(file, field, "unknown platform %q (want windows or mac)", ed.Platform)
			case p.RunsOn(pl):
				pr.add(file, field, "duplicate platform %q", ed.Platform)
			default:
				p.editions = append(p.editions, Edition{platform: pl, name: ed.Edition})
			}
		}
		p.terms = parseTerms(file, at+".terms", pd.Terms, pr)
		for j, ed := range pd.Extras {
			field := fmt.Sprintf("%s.extras[%d]", at, j)
			switch {
			case !extraCode.MatchString(ed.Code):
				pr.add(file, field+".code", "%q is not an extra code (lower-case words joined by dashes)", ed.Code)
			case p.HasExtra(ed.Code):
				pr.add(file, field+".code", "duplicate extra %q", ed.Code)
			case ed.Name == "":
				pr.add(file, field+".name", "must not be empty (extra %q)", ed.Code)
			default:
				p.extras = append(p.extras, Extra{code: ed.Code, name: ed.Name})
			}
		}
		for j, name := range pd.RecoveryToolPlatforms {
			field := fmt.Sprintf("%s.recoveryToolPlatforms[%d]", at, j)
			pl, err := ParsePlatform(name)
			switch {
			case err != nil:
				pr.add(file, field, "unknown platform %q", name)
			case !p.RunsOn(pl):
				pr.add(file, field, "product %q does not run on %s", pd.Code, name)
			case p.OffersRecoveryTool(pl):
				pr.add(file, field, "duplicate platform %q", name)
			default:
				p.recoveryToolPlatform = append(p.recoveryToolPlatform, pl)
			}
		}
		c.byCode[p.code] = len(c.products)
		c.products = append(c.products, p)
	}
	for i, ad := range d.AddOns {
		at := fmt.Sprintf("addOns[%d]", i)
		_, dupProduct := c.byCode[ad.Code]
		_, dupAddOn := c.addOnByCode[ad.Code]
		switch {
		case !productCode.MatchString(ad.Code):
			pr.add(file, at+".code", "%q is not an add-on code (upper-case letters, digits and dashes)", ad.Code)
		case dupProduct || dupAddOn:
			// Prices are keyed by code, so add-ons and products share one namespace.
			pr.add(file, at+".code", "duplicate code %q", ad.Code)
			continue
		}
		if ad.Name == "" {
			pr.add(file, at+".name", "must not be empty (add-on %q)", ad.Code)
		}
		a := AddOn{code: ad.Code, name: ad.Name, terms: parseTerms(file, at+".terms", ad.Terms, pr)}
		if a.Sells(Trial) {
			pr.add(file, at+".terms", "an add-on has no trial (add-on %q)", ad.Code)
		}
		if len(ad.BaseProducts) == 0 {
			pr.add(file, at+".baseProducts", "must list at least one product (add-on %q)", ad.Code)
		}
		for j, base := range ad.BaseProducts {
			field := fmt.Sprintf("%s.baseProducts[%d]", at, j)
			k, ok := c.byCode[base]
			switch {
			case !ok:
				pr.add(file, field, "unknown product %q", base)
			case slices.Contains(a.bases, base):
				pr.add(file, field, "duplicate product %q", base)
			default:
				a.bases = append(a.bases, base)
				c.products[k].addOns = append(c.products[k].addOns, ad.Code)
			}
		}
		c.addOnByCode[a.code] = len(c.addOns)
		c.addOns = append(c.addOns, a)
	}
}

func (c *Catalog) parsePrices(d pricesDoc, pr *problems) {
	const file = PricesFile
	if len(d.Currencies) == 0 {
		pr.add(file, "currencies", "must list at least one currency")
	}
	for i, code := range d.Currencies {
		field := fmt.Sprintf("currencies[%d]", i)
		cur, err := money.ParseCurrency(code)
		switch {
		case err != nil:
			pr.add(file, field, "unknown currency %q", code)
		case slices.Contains(c.currencies, cur):
			pr.add(file, field, "duplicate currency %q", code)
		default:
			c.currencies = append(c.currencies, cur)
		}
	}
	type entry struct {
		code string
		term Term
	}
	seen := map[entry]bool{}
	for i, xd := range d.Prices {
		at := fmt.Sprintf("prices[%d]", i)
		term, err := ParseTerm(xd.Term)
		if err != nil {
			pr.add(file, at+".term", "unknown term %q (want annual or monthly)", xd.Term)
			continue
		}
		var sells bool
		if p, err := c.Product(xd.Code); err == nil {
			sells = p.Sells(term)
		} else if a, err := c.AddOn(xd.Code); err == nil {
			sells = a.Sells(term)
		} else {
			pr.add(file, at+".code", "unknown product or add-on %q", xd.Code)
			continue
		}
		switch {
		case term == Trial:
			pr.add(file, at+".term", "a trial is free and has no price (%s)", xd.Code)
			continue
		case !sells:
			pr.add(file, at+".term", "%s is not sold with a %s term", xd.Code, term)
			continue
		case seen[entry{xd.Code, term}]:
			pr.add(file, at, "duplicate price for %s %s", xd.Code, term)
			continue
		}
		seen[entry{xd.Code, term}] = true
		for _, code := range slices.Sorted(maps.Keys(xd.Amounts)) {
			s := xd.Amounts[code]
			field := fmt.Sprintf("%s.amounts.%s", at, code)
			cur, err := money.ParseCurrency(code)
			if err != nil || !slices.Contains(c.currencies, cur) {
				pr.add(file, field, "currency %q is not in currencies", code)
				continue
			}
			m, err := money.ParseAmount(s, cur)
			if err != nil {
				pr.add(file, field, "%v", err)
				continue
			}
			if m.Negative() || m.IsZero() {
				pr.add(file, field, "a paid term must cost more than zero, got %s", m)
				continue
			}
			c.prices[priceKey{xd.Code, term, cur}] = m
		}
	}
	// Every paid term sold must be priced in every currency.
	check := func(code string, ts []Term) {
		for _, t := range ts {
			if !t.Paid() {
				continue
			}
			for _, cur := range c.currencies {
				if _, ok := c.prices[priceKey{code, t, cur}]; !ok && seen[entry{code, t}] {
					pr.add(file, "prices", "%s %s has no %s amount", code, t, cur)
				}
			}
			if !seen[entry{code, t}] {
				pr.add(file, "prices", "%s is sold with a %s term but has no price", code, t)
			}
		}
	}
	for _, p := range c.products {
		check(p.code, p.terms)
	}
	for _, a := range c.addOns {
		check(a.code, a.terms)
	}
}

func (c *Catalog) parseStorefronts(d storefrontsDoc, pr *problems) {
	const file = StorefrontsFile
	if len(d.Storefronts) == 0 {
		pr.add(file, "storefronts", "must list at least one storefront")
	}
	for i, sd := range d.Storefronts {
		at := fmt.Sprintf("storefronts[%d]", i)
		s := Storefront{code: sd.Code, name: sd.Name, asian: sd.AsianStore}
		if !storefrontKey.MatchString(sd.Code) {
			pr.add(file, at+".code", "%q is not an ISO 3166-1 alpha-2 country code", sd.Code)
		} else if _, dup := c.storeByCode[sd.Code]; dup {
			pr.add(file, at+".code", "duplicate storefront %q", sd.Code)
			continue
		}
		if sd.Name == "" {
			pr.add(file, at+".name", "must not be empty (storefront %q)", sd.Code)
		}
		r, err := ParseRegion(sd.Region)
		if err != nil {
			pr.add(file, at+".region", "unknown region %q", sd.Region)
		}
		s.region = r
		cur, err := money.ParseCurrency(sd.Currency)
		switch {
		case err != nil:
			pr.add(file, at+".currency", "unknown currency %q (storefront %q)", sd.Currency, sd.Code)
		case !slices.Contains(c.currencies, cur):
			pr.add(file, at+".currency", "%s is not a currency of %s (storefront %q)", sd.Currency, PricesFile, sd.Code)
		}
		s.currency = cur
		c.storeByCode[s.code] = len(c.storefronts)
		c.storefronts = append(c.storefronts, s)
	}
}

func (c *Catalog) parseConversions(d conversionsDoc, pr *problems) {
	const file = ConversionsFile
	for i, cd := range d.Conversions {
		at := fmt.Sprintf("conversions[%d]", i)
		from, err := c.Product(cd.From)
		switch {
		case err != nil:
			pr.add(file, at+".from", "unknown product %q", cd.From)
			continue
		case !from.legacy:
			pr.add(file, at+".from", "%s is not a legacy product (CNV-2 converts legacy products)", cd.From)
		}
		if _, dup := c.conversions[cd.From]; dup {
			pr.add(file, at+".from", "duplicate conversion of %q", cd.From)
			continue
		}
		conv := Conversion{from: cd.From, oneSeat: cd.DefaultOneSeat, moreSeats: cd.DefaultMoreSeats}
		if len(cd.Targets) == 0 {
			pr.add(file, at+".targets", "must list at least one product (from %s)", cd.From)
		}
		for j, code := range cd.Targets {
			field := fmt.Sprintf("%s.targets[%d]", at, j)
			to, err := c.Product(code)
			switch {
			case err != nil:
				pr.add(file, field, "unknown product %q", code)
			case to.legacy:
				pr.add(file, field, "%s is a legacy product; a conversion leads to the new line", code)
			case slices.Contains(conv.targets, code):
				pr.add(file, field, "duplicate target %q", code)
			default:
				conv.targets = append(conv.targets, code)
			}
		}
		// With one target the defaults may be left out; with several both are required.
		if len(cd.Targets) == 1 {
			if conv.oneSeat == "" {
				conv.oneSeat = cd.Targets[0]
			}
			if conv.moreSeats == "" {
				conv.moreSeats = cd.Targets[0]
			}
		}
		if !slices.Contains(conv.targets, conv.oneSeat) {
			pr.add(file, at+".defaultOneSeat", "%q is not one of the targets (from %s)", conv.oneSeat, cd.From)
		}
		if !slices.Contains(conv.targets, conv.moreSeats) {
			pr.add(file, at+".defaultMoreSeats", "%q is not one of the targets (from %s)", conv.moreSeats, cd.From)
		}
		for j, code := range cd.Loses {
			field := fmt.Sprintf("%s.loses[%d]", at, j)
			k := slices.IndexFunc(from.extras, func(e Extra) bool { return e.code == code })
			switch {
			case k < 0:
				pr.add(file, field, "%s has no extra %q to lose", cd.From, code)
			case slices.ContainsFunc(conv.loses, func(e Extra) bool { return e.code == code }):
				pr.add(file, field, "duplicate extra %q", code)
			default:
				conv.loses = append(conv.loses, from.extras[k])
			}
		}
		c.conversions[cd.From] = conv
	}
	// Every legacy product must say where it goes (CNV-2), or a conversion
	// command would find nothing for a product the rule book says converts.
	for _, p := range c.products {
		if _, ok := c.conversions[p.code]; p.legacy && !ok {
			pr.add(file, "conversions", "legacy product %s has no conversion", p.code)
		}
	}
}
