package subscription

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/calendar"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/policy"
)

// StreamPrefix starts the name of every subscription stream:
// "subscription-<uuid>" (DESIGN §3).
const StreamPrefix = "subscription-"

// StreamName returns the name of subscription id's stream.
func StreamName(id uuid.UUID) string { return StreamPrefix + id.String() }

// Origin is where a subscription comes from: a retailer's batch of boxed
// keys (the zero Origin) or an order placed at a storefront.
type Origin struct {
	// OrderID is the order that bought the subscription; uuid.Nil for a
	// boxed retail key.
	OrderID uuid.UUID
	// Storefront is the store the order was placed at; the zero Storefront
	// for a boxed retail key. An Asian store keeps the automatic-renewal
	// settings to itself (ARS-5).
	Storefront catalog.Storefront
	// AutoRenew says whether automatic renewal starts on. A boxed key is
	// renewed by hand, so a retail batch leaves it off.
	AutoRenew bool
	// Price is what automatic renewal charges per term (Created.Price).
	Price money.Money
	// PaymentToken is the order's payment method (Created.PaymentToken),
	// and PaymentCard its card's expiry (Created.PaymentCard).
	PaymentToken string
	PaymentCard  *payment.CardExpiry
	// InitialChargeID and InitialCharge are the order's charge and this
	// subscription's part of it (Created.InitialCharge, MON-2).
	InitialChargeID string
	InitialCharge   money.Money
}

// NewCreated builds the Created event of a new subscription of product for
// term on platform, with a key and serial the caller drew (and reserves
// through the event's claims), starting at start and expiring one term
// later (TermEnd). It is pure, so that a retail batch and an order's
// fulfilment create subscriptions the same way. The product's facts are
// copied from the catalog as they are now (seats, registrable, legacy, the
// recovery tool on platform). A zero platform means the product's first
// platform. Errors name the field: "product" for a zero product, "term"
// for a term the product is not sold under, "platform" for a platform it
// does not run on; a zero id, key, serial or start is a programming error.
func NewCreated(id uuid.UUID, product catalog.Product, term catalog.Term, platform catalog.Platform,
	key ProductKey, serial SerialNumber, start time.Time, p policy.Policy, origin Origin) (Created, error) {
	switch {
	case id == uuid.Nil:
		return Created{}, errors.New("subscription: NewCreated needs a subscription id")
	case key.IsZero() || serial.IsZero():
		return Created{}, errors.New("subscription: NewCreated needs a product key and a serial number")
	case start.IsZero():
		return Created{}, errors.New("subscription: NewCreated needs a start instant")
	case product.Code() == "":
		return Created{}, domain.Invalid("product", "is required")
	}
	var v domain.Validation
	if term.IsZero() || !product.Sells(term) {
		v.Check("term", fmt.Errorf("%s is sold under %v, not %s", product.Code(), product.Terms(), term))
	}
	if platform.IsZero() && len(product.Platforms()) > 0 {
		platform = product.Platforms()[0]
	}
	if !product.RunsOn(platform) {
		v.Check("platform", fmt.Errorf("%s runs on %v, not %s", product.Code(), product.Platforms(), platform))
	}
	if err := v.Err(); err != nil {
		return Created{}, err
	}
	start = start.UTC()
	return Created{
		SubscriptionID:  id,
		Product:         product.Code(),
		ProductName:     product.Name(),
		Term:            term.String(),
		Platform:        platform.String(),
		Seats:           product.Seats(),
		Registrable:     product.Registrable(),
		Legacy:          product.Legacy(),
		RecoveryTool:    product.OffersRecoveryTool(platform),
		Key:             key,
		Serial:          serial,
		StartsAt:        start,
		ExpiresAt:       TermEnd(term, start, p),
		AutoRenew:       origin.AutoRenew,
		Storefront:      origin.Storefront.Code(),
		AsianStore:      origin.Storefront.AsianStore(),
		OrderID:         origin.OrderID,
		Price:           origin.Price,
		PaymentToken:    origin.PaymentToken,
		PaymentCard:     origin.PaymentCard,
		InitialChargeID: origin.InitialChargeID,
		InitialCharge:   origin.InitialCharge,
	}, nil
}

// TermEnd returns when one term that starts at start ends: a year or a
// month later in calendar terms (a term from January 31 ends on the last
// day of February, ARS-1's arithmetic), or the policy's TrialLength for a
// trial (TRI-1). The zero Term ends at once.
func TermEnd(term catalog.Term, start time.Time, p policy.Policy) time.Time {
	switch term {
	case catalog.Annual:
		return calendar.AddMonths(start, 12)
	case catalog.Monthly:
		return calendar.AddMonths(start, 1)
	case catalog.Trial:
		return start.Add(p.TrialLength)
	}
	return start
}

// RecoveryToolAvailable reports whether the bootable recovery tool is
// offered for a registered subscription whose product offers it on its
// platform (Created.RecoveryTool) and that stands at st: only a paid,
// non-expired subscription, not a trial (PRD-3).
func RecoveryToolAvailable(offered bool, st Status) bool {
	return offered && st == StatusActive
}
