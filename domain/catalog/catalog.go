// Package catalog is the reference data of DOMAIN.md §1: products with their
// seats, platforms, terms, extras and add-ons; prices per product, term and
// currency; storefronts; and the legacy conversion map (CNV-2). The data
// itself lives in files (the top-level catalog/ folder); Parse reads and
// validates them, and a Catalog is read-only afterwards, so it is safe for
// concurrent use.
package catalog

import (
	"slices"

	"github.com/subs-engine/subs/domain/money"
)

// Catalog is a validated, read-only catalog. Only Parse builds one.
type Catalog struct {
	products    []Product
	byCode      map[string]int
	addOns      []AddOn
	addOnByCode map[string]int
	currencies  []money.Currency
	prices      map[priceKey]money.Money
	storefronts []Storefront
	storeByCode map[string]int
	conversions map[string]Conversion
}

type priceKey struct {
	code string
	term Term
	cur  money.Currency
}

// Extra is a named feature a product includes beyond protection, such as
// "Premium Support" or the bootable recovery tool. Conversions record the
// extras they lose (CNV-5).
type Extra struct {
	code, name string
}

// Code returns the extra's stable identifier ("premium-support").
func (e Extra) Code() string { return e.code }

// Name returns the extra's display name ("Premium Support").
func (e Extra) Name() string { return e.name }

// Edition is one platform a product runs on, with the name the product has
// there when it differs (Norton AntiVirus for Mac is "NAV 12").
type Edition struct {
	platform Platform
	name     string
}

// Platform returns the edition's platform.
func (e Edition) Platform() Platform { return e.platform }

// Name returns the edition's own name, or "" when it is the product's name.
func (e Edition) Name() string { return e.name }

// Product is one product of the catalog.
type Product struct {
	code, name, family   string
	editions             []Edition
	seats                int
	terms                []Term
	legacy, registrable  bool
	extras               []Extra
	recoveryToolPlatform []Platform
	addOns               []string
}

// Code returns the product code ("NS-STD").
func (p Product) Code() string { return p.code }

// Name returns the product's display name ("Norton Security Standard").
func (p Product) Name() string { return p.name }

// Family returns the product line the product belongs to ("Norton
// Security"); legacy products are each their own family.
func (p Product) Family() string { return p.family }

// Editions returns the platforms the product runs on, each with its edition
// name where it has one.
func (p Product) Editions() []Edition { return slices.Clone(p.editions) }

// Platforms returns the platforms the product runs on.
func (p Product) Platforms() []Platform {
	out := make([]Platform, len(p.editions))
	for i, e := range p.editions {
		out[i] = e.platform
	}
	return out
}

// RunsOn reports whether the product runs on pl.
func (p Product) RunsOn(pl Platform) bool {
	for _, e := range p.editions {
		if e.platform == pl {
			return true
		}
	}
	return false
}

// Seats returns how many computers one subscription can activate (KEY-3).
func (p Product) Seats() int { return p.seats }

// Terms returns the terms the product is sold under.
func (p Product) Terms() []Term { return slices.Clone(p.terms) }

// Sells reports whether the product is sold under term t.
func (p Product) Sells(t Term) bool { return slices.Contains(p.terms, t) }

// Legacy reports whether the product belongs to the legacy line that
// converts to Norton Security (CNV-1, CNV-2).
func (p Product) Legacy() bool { return p.legacy }

// Registrable reports whether a key of the product can be registered in an
// account (CAT-1, KEY-2); a non-registrable one is reached through its order
// (PRD-5).
func (p Product) Registrable() bool { return p.registrable }

// Extras returns the extras the product includes.
func (p Product) Extras() []Extra { return slices.Clone(p.extras) }

// HasExtra reports whether the product includes the extra with this code.
func (p Product) HasExtra(code string) bool {
	return slices.ContainsFunc(p.extras, func(e Extra) bool { return e.code == code })
}

// RecoveryToolPlatforms returns the platforms on which the bootable
// recovery tool is offered with the product (PRD-3); empty if never.
func (p Product) RecoveryToolPlatforms() []Platform { return slices.Clone(p.recoveryToolPlatform) }

// OffersRecoveryTool reports whether the bootable recovery tool comes with
// the product on platform pl (PRD-3). Whether the subscription is paid and
// current is the subscription's business, not the catalog's.
func (p Product) OffersRecoveryTool(pl Platform) bool {
	return slices.Contains(p.recoveryToolPlatform, pl)
}

// AddOns returns the codes of the add-ons that can be bought on the product.
func (p Product) AddOns() []string { return slices.Clone(p.addOns) }

// AddOn is an option bought on top of a base product, such as additional
// backup storage (MON-3). It has its own prices.
type AddOn struct {
	code, name string
	bases      []string
	terms      []Term
}

// Code returns the add-on's code.
func (a AddOn) Code() string { return a.code }

// Name returns the add-on's display name.
func (a AddOn) Name() string { return a.name }

// BaseProducts returns the codes of the products the add-on can be bought on.
func (a AddOn) BaseProducts() []string { return slices.Clone(a.bases) }

// Terms returns the terms the add-on is sold under.
func (a AddOn) Terms() []Term { return slices.Clone(a.terms) }

// Sells reports whether the add-on is sold under term t.
func (a AddOn) Sells(t Term) bool { return slices.Contains(a.terms, t) }

// Storefront is an online store where orders are placed (ORD-1).
type Storefront struct {
	code, name string
	region     Region
	currency   money.Currency
	asian      bool
}

// Code returns the storefront's code, the ISO 3166-1 alpha-2 code of its
// country ("US", "JP").
func (s Storefront) Code() string { return s.code }

// Name returns the storefront's display name.
func (s Storefront) Name() string { return s.name }

// Region returns the storefront's sales region (ARS-4).
func (s Storefront) Region() Region { return s.region }

// Currency returns the currency the storefront sells in.
func (s Storefront) Currency() money.Currency { return s.currency }

// AsianStore reports whether the storefront is one of the Asian online
// stores, on which automatic-renewal settings are managed instead of here
// (ARS-5).
func (s Storefront) AsianStore() bool { return s.asian }

// Conversion is the CNV-2 entry of one legacy product: the products it may
// become, the default choice by seats, and the extras it loses (CNV-5).
type Conversion struct {
	from               string
	targets            []string
	oneSeat, moreSeats string
	loses              []Extra
}

// From returns the legacy product's code.
func (c Conversion) From() string { return c.from }

// Targets returns the codes of the products the legacy product may become.
func (c Conversion) Targets() []string { return slices.Clone(c.targets) }

// DefaultTarget returns the target chosen when the caller chooses none
// (CNV-2): the one-seat default for seats <= 1, the other otherwise.
func (c Conversion) DefaultTarget(seats int) string {
	if seats <= 1 {
		return c.oneSeat
	}
	return c.moreSeats
}

// Loses returns the extras the conversion takes away (CNV-5); a command
// must carry the customer's acknowledgement of them.
func (c Conversion) Loses() []Extra { return slices.Clone(c.loses) }

// ConversionPlan is a resolved conversion: the legacy product, the product
// it becomes, and the extras lost on the way.
type ConversionPlan struct {
	From  Product
	To    Product
	Loses []Extra
}

// Products returns every product, in the order of the data file.
func (c *Catalog) Products() []Product { return slices.Clone(c.products) }

// Product returns the product with this code, or a *NotFoundError.
func (c *Catalog) Product(code string) (Product, error) {
	i, ok := c.byCode[code]
	if !ok {
		return Product{}, &NotFoundError{Kind: "product", Code: code}
	}
	return c.products[i], nil
}

// AddOn returns the add-on with this code, or a *NotFoundError.
func (c *Catalog) AddOn(code string) (AddOn, error) {
	i, ok := c.addOnByCode[code]
	if !ok {
		return AddOn{}, &NotFoundError{Kind: "add-on", Code: code}
	}
	return c.addOns[i], nil
}

// Currencies returns the currencies every sold term is priced in.
func (c *Catalog) Currencies() []money.Currency { return slices.Clone(c.currencies) }

// Price returns the price of one term of a product or add-on in a currency.
// A trial costs zero (TRI-1). Errors: *NotFoundError for an unknown code,
// *TermNotSoldError for a term the product is not sold under,
// *PriceNotFoundError for a currency the catalog does not price in.
func (c *Catalog) Price(code string, term Term, cur money.Currency) (money.Money, error) {
	var sells bool
	if p, err := c.Product(code); err == nil {
		sells = p.Sells(term)
	} else if a, err := c.AddOn(code); err == nil {
		sells = a.Sells(term)
	} else {
		return money.Money{}, &NotFoundError{Kind: "product", Code: code}
	}
	if !sells {
		return money.Money{}, &TermNotSoldError{Code: code, Term: term}
	}
	if term == Trial && slices.Contains(c.currencies, cur) {
		return money.Zero(cur), nil
	}
	m, ok := c.prices[priceKey{code, term, cur}]
	if !ok {
		return money.Money{}, &PriceNotFoundError{Code: code, Term: term, Currency: cur}
	}
	return m, nil
}

// Storefronts returns every storefront, in the order of the data file.
func (c *Catalog) Storefronts() []Storefront { return slices.Clone(c.storefronts) }

// Storefront returns the storefront with this code, or a *NotFoundError.
func (c *Catalog) Storefront(code string) (Storefront, error) {
	i, ok := c.storeByCode[code]
	if !ok {
		return Storefront{}, &NotFoundError{Kind: "storefront", Code: code}
	}
	return c.storefronts[i], nil
}

// Conversion returns the CNV-2 entry of a legacy product: a *NotFoundError
// for an unknown code, a *NotConvertibleError for a product that is not in
// the map.
func (c *Catalog) Conversion(legacyCode string) (Conversion, error) {
	if _, err := c.Product(legacyCode); err != nil {
		return Conversion{}, err
	}
	conv, ok := c.conversions[legacyCode]
	if !ok {
		return Conversion{}, &NotConvertibleError{Code: legacyCode}
	}
	return conv, nil
}

// ConversionTarget resolves CNV-2 for a subscription of legacyCode with the
// given seats: chosen, when not empty, must be one of the allowed targets
// (a *TargetNotAllowedError otherwise); when empty the default by seats
// applies (1 seat: Norton Security Standard; more: Deluxe). The plan lists
// what the conversion loses (CNV-5). Other errors are those of Conversion.
func (c *Catalog) ConversionTarget(legacyCode string, seats int, chosen string) (ConversionPlan, error) {
	conv, err := c.Conversion(legacyCode)
	if err != nil {
		return ConversionPlan{}, err
	}
	target := chosen
	if target == "" {
		target = conv.DefaultTarget(seats)
	} else if !slices.Contains(conv.targets, target) {
		return ConversionPlan{}, &TargetNotAllowedError{From: legacyCode, Chosen: chosen, Allowed: conv.Targets()}
	}
	from, _ := c.Product(legacyCode) // both exist: Parse checked the map
	to, _ := c.Product(target)
	return ConversionPlan{From: from, To: to, Loses: conv.Loses()}, nil
}
