package catalog

import (
	"errors"
	"fmt"
	"strings"

	"github.com/subs-engine/subs/domain/money"
)

// ErrInvalidValue is matched (errors.Is) by the refusals of ParseTerm,
// ParsePlatform, ParseRegion and their UnmarshalText methods.
var ErrInvalidValue = errors.New("catalog: invalid value")

// ErrNotFound is matched (errors.Is) by *NotFoundError and *PriceNotFoundError.
var ErrNotFound = errors.New("catalog: not found")

// NotFoundError says that the catalog has no entry of this kind with this
// code. It matches ErrNotFound.
type NotFoundError struct {
	// Kind is "product", "add-on", "storefront" or "conversion".
	Kind string
	// Code is the code that was looked up.
	Code string
}

// Error names the kind and the code.
func (e *NotFoundError) Error() string {
	return fmt.Sprintf("catalog: no %s with code %q", e.Kind, e.Code)
}

// Is reports whether target is ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// PriceNotFoundError says that the catalog has no price for this product (or
// add-on), term and currency. It matches ErrNotFound.
type PriceNotFoundError struct {
	Code     string
	Term     Term
	Currency money.Currency
}

// Error names the product, term and currency.
func (e *PriceNotFoundError) Error() string {
	return fmt.Sprintf("catalog: no %s price for %s %s", e.Currency, e.Code, e.Term)
}

// Is reports whether target is ErrNotFound.
func (e *PriceNotFoundError) Is(target error) bool { return target == ErrNotFound }

// ErrTermNotSold is matched (errors.Is) by *TermNotSoldError.
var ErrTermNotSold = errors.New("catalog: term not sold")

// TermNotSoldError says that a product (or add-on) is not sold under a term
// (a monthly Norton AntiVirus, for instance). It matches ErrTermNotSold.
type TermNotSoldError struct {
	Code string
	Term Term
}

// Error names the product and the term.
func (e *TermNotSoldError) Error() string {
	return fmt.Sprintf("catalog: %s is not sold with a %s term", e.Code, e.Term)
}

// Is reports whether target is ErrTermNotSold.
func (e *TermNotSoldError) Is(target error) bool { return target == ErrTermNotSold }

// ErrNotConvertible is matched (errors.Is) by *NotConvertibleError.
var ErrNotConvertible = errors.New("catalog: product has no conversion")

// NotConvertibleError says that the product is not in the conversion map
// (CNV-2): it is not a legacy product. It matches ErrNotConvertible.
type NotConvertibleError struct {
	Code string
}

// Error names the product.
func (e *NotConvertibleError) Error() string {
	return fmt.Sprintf("catalog: %s cannot be converted (CNV-2 maps only legacy products)", e.Code)
}

// Is reports whether target is ErrNotConvertible.
func (e *NotConvertibleError) Is(target error) bool { return target == ErrNotConvertible }

// ErrTargetNotAllowed is matched (errors.Is) by *TargetNotAllowedError.
var ErrTargetNotAllowed = errors.New("catalog: conversion target not allowed")

// TargetNotAllowedError says that the chosen conversion target is not one
// CNV-2 allows for the legacy product. It matches ErrTargetNotAllowed.
type TargetNotAllowedError struct {
	From    string
	Chosen  string
	Allowed []string
}

// Error names the legacy product, the refused target and the allowed ones.
func (e *TargetNotAllowedError) Error() string {
	return fmt.Sprintf("catalog: %s converts to %s, not %q (CNV-2)", e.From, strings.Join(e.Allowed, " or "), e.Chosen)
}

// Is reports whether target is ErrTargetNotAllowed.
func (e *TargetNotAllowedError) Is(target error) bool { return target == ErrTargetNotAllowed }

// ErrInvalidData is matched (errors.Is) by every *DataError Parse returns.
var ErrInvalidData = errors.New("catalog: invalid data")

// DataError says which file and field of the catalog data is wrong and why.
// It matches ErrInvalidData.
type DataError struct {
	// File is the data file's name, e.g. "products.json".
	File string
	// Field is the path of the bad field in that file, e.g.
	// "products[2].seats"; empty when the whole file is unreadable.
	Field string
	// Problem says what is wrong.
	Problem string
}

// Error names the file, the field and the problem.
func (e *DataError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("catalog: %s: %s", e.File, e.Problem)
	}
	return fmt.Sprintf("catalog: %s: %s: %s", e.File, e.Field, e.Problem)
}

// Is reports whether target is ErrInvalidData.
func (e *DataError) Is(target error) bool { return target == ErrInvalidData }
