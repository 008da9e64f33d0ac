// Package order is the order aggregate (DOMAIN §4): what was bought at which
// storefront, how it was paid, the subscriptions and keys it yielded, and
// whether it is saved in an account.
package order

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
)

// NumberScope is the reservation scope of order numbers.
const NumberScope = "order-number"

// Number is an order number as customers see it: "N" and ten digits.
type Number struct{ s string }

// ParseNumber accepts an order number in any case, spaces trimmed.
func ParseNumber(s string) (Number, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if len(s) != 11 || s[0] != 'N' || strings.Trim(s[1:], "0123456789") != "" {
		return Number{}, errors.New(`is not an order number such as N0123456789`)
	}
	return Number{s: s}, nil
}

// NewNumber draws an order number at random from r.
func NewNumber(r io.Reader) (Number, error) {
	b := make([]byte, 10)
	if _, err := io.ReadFull(r, b); err != nil {
		return Number{}, fmt.Errorf("order: random source: %w", err)
	}
	digits := make([]byte, 10)
	for i, x := range b {
		digits[i] = '0' + x%10 // 256 % 10 biases a digit by 0.4%: harmless for a number that is unique by reservation
	}
	return Number{s: "N" + string(digits)}, nil
}

// String returns the number.
func (n Number) String() string { return n.s }

// MarshalText encodes the number.
func (n Number) MarshalText() ([]byte, error) { return []byte(n.s), nil }

// UnmarshalText decodes and validates a number.
func (n *Number) UnmarshalText(b []byte) error {
	v, err := ParseNumber(string(b))
	if err != nil {
		return fmt.Errorf("order number %w", err)
	}
	*n = v
	return nil
}

// Line is one product bought: Quantity seat packs of Product for Term, at
// UnitPrice each (ORD-1).
type Line struct {
	Product     string      `json:"product"`
	ProductName string      `json:"product_name"`
	Term        string      `json:"term"`
	Platform    string      `json:"platform"`
	Quantity    int         `json:"quantity"`
	UnitPrice   money.Money `json:"unit_price"`
	Amount      money.Money `json:"amount"`
	// RenewalPrice is what automatic renewal charges per term, when it is
	// not UnitPrice: a trial's year at the standard price (TRI-4).
	RenewalPrice money.Money `json:"renewal_price,omitzero"`
}

// Item is one subscription an order yielded, with its key and serial.
type Item struct {
	SubscriptionID uuid.UUID                 `json:"subscription_id"`
	Line           int                       `json:"line"`
	Product        string                    `json:"product"`
	Key            subscription.ProductKey   `json:"key"`
	Serial         subscription.SerialNumber `json:"serial"`
	Registrable    bool                      `json:"registrable"`
}

// Placed: an order was placed at a storefront (ORD-1). It is saved in
// SavedTo's account when the buyer was signed in or gave the account's
// password (ORD-2); otherwise it awaits the owner of BuyerEmail.
type Placed struct {
	OrderID    uuid.UUID   `json:"order_id"`
	Number     Number      `json:"number"`
	Storefront string      `json:"storefront"`
	Lines      []Line      `json:"lines"`
	Total      money.Money `json:"total"`
	BuyerEmail string      `json:"buyer_email"`
	SavedTo    uuid.UUID   `json:"saved_to,omitzero"`
	// PlacedAt is the instant of the Place command (set by the decider).
	PlacedAt time.Time `json:"placed_at"`
	// PaymentToken is the gateway token the order is charged to (never a
	// card number: SEC-3), so that a retried charge uses the same request
	// under the same idempotency key.
	PaymentToken string `json:"payment_token,omitempty"`
	// PaymentCard is the expiry of the card behind PaymentToken (none for a
	// direct debit), which its subscriptions' charges may fall back to
	// (TRI-6: warned of before a charge it will not outlive).
	PaymentCard *payment.CardExpiry `json:"payment_card,omitempty"`
	// Free marks a support agent's free order (CNV-4, AGT-1): its total is
	// zero, nothing is charged, and it counts as paid from its placement.
	Free bool `json:"free,omitempty"`
	// NoAutoRenewal: the subscriptions it yields start with automatic
	// renewal off, as a conversion's free order does for a subscription
	// whose renewal was off (ARS-3, CNV-4).
	NoAutoRenewal bool `json:"no_auto_renewal,omitempty"`
}

// Paid: the payment gateway charged the order's total.
type Paid struct {
	ChargeID string      `json:"charge_id"`
	Amount   money.Money `json:"amount"`
}

// PaymentDeclined: the charge was declined; nothing is delivered.
type PaymentDeclined struct {
	DeclineCode string `json:"decline_code"`
}

// Fulfilled: the order's subscriptions and keys exist (PRD-4).
type Fulfilled struct {
	Items []Item `json:"items"`
}

// Saved: the order was saved in an account after the fact (ORD-3).
type Saved struct {
	AccountID uuid.UUID `json:"account_id"`
	Via       string    `json:"via"` // "order_number" or "serial_number"
}

// Disowned: the account's owner does not recognize the order (ORD-4).
type Disowned struct {
	AccountID uuid.UUID `json:"account_id"`
}

// EmailSent: an e-mail about the order went out (EML-1), recorded on the
// order because its buyer may have no account. Its Message-ID derives from
// the causing event (EML-2).
type EmailSent struct {
	Kind      string    `json:"kind"`
	Cause     uuid.UUID `json:"cause"`
	MessageID string    `json:"message_id"`
}

// PersonalFields implements domain.Personal: the buyer's e-mail address
// (AUD-5), which reads as domain.ErasedText once erased.
func (Placed) PersonalFields() []domain.PersonalField {
	return []domain.PersonalField{{Path: "buyer_email", Erased: domain.ErasedText}}
}

// DataSubject implements domain.Personal: the account the order was saved
// in at placement; otherwise the buyer's address, whose data the erasure of
// the account with that address erases too (AUD-5).
func (e Placed) DataSubject() domain.DataSubject {
	if e.SavedTo != uuid.Nil {
		return domain.DataSubject{Account: e.SavedTo}
	}
	return domain.DataSubject{Email: e.BuyerEmail}
}

func (Placed) EventType() string          { return "order.placed" }
func (Paid) EventType() string            { return "order.paid" }
func (PaymentDeclined) EventType() string { return "order.payment_declined" }
func (Fulfilled) EventType() string       { return "order.fulfilled" }
func (Saved) EventType() string           { return "order.saved" }
func (Disowned) EventType() string        { return "order.disowned" }
func (EmailSent) EventType() string       { return "order.email_sent" }

// Claims reserves the order number.
func (e Placed) Claims() []domain.Claim {
	return []domain.Claim{{Scope: NumberScope, Key: e.Number.String()}}
}

// Events lists a zero value of every order event, for the codec.
func Events() []domain.Event {
	return []domain.Event{Placed{}, Paid{}, PaymentDeclined{}, Fulfilled{}, Saved{}, Disowned{}, EmailSent{}}
}

// Order is the state of one order.
type Order struct {
	placed   Placed
	exists   bool
	savedTo  uuid.UUID
	paid     bool
	chargeID string
	declined bool
	decline  string
	items    []Item
	disowned bool
	// disownedBy is the account that disowned the order (ORD-4).
	disownedBy uuid.UUID
	sent       map[string]bool // e-mail kind + "/" + cause
}

// Exists reports whether the order was placed.
func (o Order) Exists() bool { return o.exists }

// ChargeID returns the gateway's id of the order's charge, "" until paid.
func (o Order) ChargeID() string { return o.chargeID }

// Placement returns what the order was placed with.
func (o Order) Placement() Placed { return o.placed }

// SavedTo returns the account the order is saved in, or uuid.Nil.
func (o Order) SavedTo() uuid.UUID { return o.savedTo }

// Paid reports whether the order's charge succeeded.
func (o Order) Paid() bool { return o.paid }

// Declined reports whether the order's charge was declined.
func (o Order) Declined() bool { return o.declined }

// DeclineCode returns why the order's charge was declined, or "".
func (o Order) DeclineCode() string { return o.decline }

// Items returns the subscriptions the order yielded.
func (o Order) Items() []Item { return append([]Item(nil), o.items...) }

// Disowned reports whether the buyer's account disowned the order.
func (o Order) Disowned() bool { return o.disowned }

// DisownedBy returns the account that disowned the order, or uuid.Nil.
func (o Order) DisownedBy() uuid.UUID { return o.disownedBy }

// EmailSent reports whether the e-mail of kind caused by cause was sent.
func (o Order) EmailSent(kind string, cause uuid.UUID) bool {
	return o.sent[kind+"/"+cause.String()]
}

// Pending reports whether the order awaits its buyer's account: not saved,
// not disowned (ORD-2: "action required").
func (o Order) Pending() bool { return o.exists && o.savedTo == uuid.Nil && !o.disowned }

// Commands of the order aggregate.
type (
	// Command is any order command.
	Command interface{ orderCommand() }

	// Place records a priced order (the caller prices its lines from the
	// catalog; Place checks they add up).
	Place struct{ Placed Placed }

	// RecordCharge records the gateway's answer to the order's charge.
	RecordCharge struct {
		ChargeID    string
		Succeeded   bool
		DeclineCode string
	}

	// Fulfill records the subscriptions the paid order yielded.
	Fulfill struct{ Items []Item }

	// Recognize saves a pending order in the account of its buyer's e-mail,
	// given its order number or the serial number of one of its products
	// (ORD-3).
	Recognize struct {
		AccountID    uuid.UUID
		AccountEmail string
		Answer       string
	}

	// Disown records that the account does not recognize the order (ORD-4).
	Disown struct {
		AccountID    uuid.UUID
		AccountEmail string
	}

	// RecordEmailSent records that an e-mail about the order went out
	// (EML-1, EML-2); recording it twice is a no-op.
	RecordEmailSent struct {
		Kind      string
		Cause     uuid.UUID
		MessageID string
	}
)

func (Place) orderCommand()           {}
func (RecordCharge) orderCommand()    {}
func (Fulfill) orderCommand()         {}
func (Recognize) orderCommand()       {}
func (Disown) orderCommand()          {}
func (RecordEmailSent) orderCommand() {}

// Errors of the order aggregate.
var (
	// ErrNotFound: no such order for the caller (SEC-1).
	ErrNotFound error = domain.NotFound("no such order")
	// ErrNotPending: the order is saved or disowned already.
	ErrNotPending error = domain.Conflict("this order is not awaiting an answer: it is saved or disowned already")
	// ErrWrongAnswer: neither the order number nor a serial number of the
	// order (ORD-3).
	ErrWrongAnswer error = domain.Invalid("answer", "is neither this order's number nor the serial number of one of its products")
	// ErrNotPaid: only a paid order yields subscriptions.
	ErrNotPaid error = domain.Conflict("the order is not paid")
)

// Decider is the order aggregate's behaviour.
var Decider = domain.Decider[Order, Command]{Decide: decide, Evolve: evolve}

func decide(o Order, cmd Command, now time.Time, _ policy.Policy) ([]domain.Event, error) {
	if c, ok := cmd.(Place); ok {
		if o.exists {
			return nil, domain.Conflict("the order exists already")
		}
		if err := checkLines(c.Placed); err != nil {
			return nil, err
		}
		if c.Placed.Free && !c.Placed.Total.IsZero() {
			return nil, domain.Invalid("total", "a free order costs nothing")
		}
		placed := c.Placed
		placed.PlacedAt = now // the command's instant, whatever the caller read (TIM-1)
		return []domain.Event{placed}, nil
	}
	if !o.exists {
		return nil, ErrNotFound
	}
	switch c := cmd.(type) {
	case RecordCharge:
		if o.paid || o.declined {
			return nil, nil
		}
		if c.Succeeded {
			return []domain.Event{Paid{ChargeID: c.ChargeID, Amount: o.placed.Total}}, nil
		}
		return []domain.Event{PaymentDeclined{DeclineCode: c.DeclineCode}}, nil
	case Fulfill:
		if !o.paid {
			return nil, ErrNotPaid
		}
		if len(o.items) > 0 {
			return nil, nil
		}
		return []domain.Event{Fulfilled(c)}, nil
	case Recognize:
		if !strings.EqualFold(c.AccountEmail, o.placed.BuyerEmail) {
			return nil, ErrNotFound
		}
		if !o.Pending() {
			return nil, ErrNotPending
		}
		if n, err := ParseNumber(c.Answer); err == nil && n == o.placed.Number {
			return []domain.Event{Saved{AccountID: c.AccountID, Via: "order_number"}}, nil
		}
		if sn, err := subscription.ParseSerialNumber(c.Answer); err == nil {
			for _, it := range o.items {
				if it.Serial == sn {
					return []domain.Event{Saved{AccountID: c.AccountID, Via: "serial_number"}}, nil
				}
			}
		}
		return nil, ErrWrongAnswer
	case Disown:
		if !strings.EqualFold(c.AccountEmail, o.placed.BuyerEmail) {
			return nil, ErrNotFound
		}
		if !o.Pending() {
			return nil, ErrNotPending
		}
		return []domain.Event{Disowned{AccountID: c.AccountID}}, nil
	case RecordEmailSent:
		if o.EmailSent(c.Kind, c.Cause) {
			return nil, nil
		}
		return []domain.Event{EmailSent(c)}, nil
	}
	return nil, fmt.Errorf("order: unknown command %T", cmd)
}

// checkLines refuses an order whose lines do not add up.
func checkLines(p Placed) error {
	if len(p.Lines) == 0 {
		return domain.Invalid("lines", "an order needs at least one line")
	}
	var v domain.Validation
	total := money.Zero(p.Total.Currency())
	for i, l := range p.Lines {
		field := fmt.Sprintf("lines[%d]", i)
		if l.Quantity < 1 || l.Quantity > 100 {
			v.Check(field+".quantity", errors.New("must be 1 to 100"))
			continue
		}
		want, err := l.UnitPrice.Mul(int64(l.Quantity))
		if err != nil || !want.Equal(l.Amount) {
			v.Check(field+".amount", errors.New("is not quantity times unit price"))
			continue
		}
		if total, err = total.Add(l.Amount); err != nil {
			v.Check(field+".unit_price", err)
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	if !total.Equal(p.Total) {
		return domain.Invalid("total", "is not the sum of the lines")
	}
	return nil
}

func evolve(o Order, e domain.Event) Order {
	switch e := e.(type) {
	case Placed:
		o.placed, o.exists, o.savedTo, o.paid = e, true, e.SavedTo, e.Free
	case Paid:
		o.paid, o.chargeID = true, e.ChargeID
	case PaymentDeclined:
		o.declined, o.decline = true, e.DeclineCode
	case Fulfilled:
		o.items = e.Items
	case Saved:
		o.savedTo = e.AccountID
	case Disowned:
		o.disowned, o.disownedBy = true, e.AccountID
	case EmailSent:
		sent := make(map[string]bool, len(o.sent)+1) // a fresh map: earlier states stay as they were
		for k, v := range o.sent {
			sent[k] = v
		}
		sent[e.Kind+"/"+e.Cause.String()] = true
		o.sent = sent
	}
	return o
}
