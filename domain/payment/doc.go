// Package payment is the engine's view of paying: the card and bank account
// a customer types in, the payment method the engine keeps in their place,
// and the Gateway that tokenizes, charges and refunds (ACC-8, ARS-8).
//
// The package is pure: no I/O, no clock reads, no goroutines. Card and
// BankAccount hold the full card number, CVV and IBAN only so that an
// adapter can hand them to a gateway; every way of printing, logging or
// encoding them shows the brand (or country) and the last four characters
// only (SEC-3). What the engine stores and puts in events is a
// PaymentMethod: a gateway token plus what a customer needs to recognise
// the method.
package payment
