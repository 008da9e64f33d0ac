// Package catalog ships the catalog's reference data (DOMAIN.md §1) inside
// the binary: products.json (products, seats, platforms, terms, extras,
// add-ons), prices.json (the catalog currencies and a price per product or
// add-on, paid term and currency, as decimal strings in major units),
// storefronts.json and conversions.json (CNV-2). The rules that read them
// are in domain/catalog; changing the catalog is changing these files.
package catalog

import (
	"embed"

	domaincatalog "github.com/subs-engine/subs/domain/catalog"
)

//go:embed *.json
var files embed.FS

// Load parses and validates the embedded data files. An error means the
// shipped data is broken; it names each bad file and field.
func Load() (*domaincatalog.Catalog, error) {
	return domaincatalog.Parse(files)
}

// MustLoad is Load for program start-up and tests: it panics if the shipped
// data is invalid, which only a broken commit can cause.
func MustLoad() *domaincatalog.Catalog {
	c, err := Load()
	if err != nil {
		panic(err)
	}
	return c
}
