// Package subscription is the subscription aggregate: one product key, its
// term and expiration, the account it is registered in, the computers it is
// activated on, and its automatic renewal setting (DOMAIN §3, §5).
package subscription

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/policy"
)

// Reservation scopes: a key and a serial number each name one subscription
// across the store (KEY-1).
const (
	KeyScope    = "product-key"
	SerialScope = "product-serial"
)

// Status is where a subscription stands at an instant (PRD-1, PRD-2).
type Status string

// The statuses of a subscription.
const (
	StatusTrial    Status = "trial"
	StatusActive   Status = "active"
	StatusGrace    Status = "grace"
	StatusExpired  Status = "expired"
	StatusRefunded Status = "refunded"
	StatusDisabled Status = "disabled"
)

// Current reports whether the product may be downloaded and used (PRD-2):
// active, trial, or grace while a renewal charge is pending (ARS-2).
func (s Status) Current() bool { return s == StatusTrial || s == StatusActive || s == StatusGrace }

// Created: a subscription came to be, with its key, from a retail batch or
// an order. The product's facts are copied from the catalog as they were,
// so a later catalog change does not rewrite history.
type Created struct {
	SubscriptionID uuid.UUID    `json:"subscription_id"`
	Product        string       `json:"product"`
	ProductName    string       `json:"product_name"`
	Term           string       `json:"term"`
	Platform       string       `json:"platform"`
	Seats          int          `json:"seats"`
	Registrable    bool         `json:"registrable"`
	Legacy         bool         `json:"legacy"`
	RecoveryTool   bool         `json:"recovery_tool"` // the product offers the bootable recovery tool on Platform (PRD-3)
	Key            ProductKey   `json:"key"`
	Serial         SerialNumber `json:"serial"`
	StartsAt       time.Time    `json:"starts_at"`
	ExpiresAt      time.Time    `json:"expires_at"`
	AutoRenew      bool         `json:"auto_renew"`
	Storefront     string       `json:"storefront,omitempty"`
	AsianStore     bool         `json:"asian_store,omitempty"`
	OrderID        uuid.UUID    `json:"order_id,omitzero"`
	// Price is what one more term costs when automatic renewal charges it:
	// the term's price, or the annual price for a trial (TRI-4). Zero for
	// a boxed key, which is renewed by buying a new key (ARS-4).
	Price money.Money `json:"price,omitzero"`
	// PaymentToken is the gateway token the order was paid (or, for a
	// trial, secured) with: the charges fall back to it when the account
	// has no billing information.
	PaymentToken string `json:"payment_token,omitempty"`
	// PaymentCard is the expiry of the card behind PaymentToken, if it is
	// a card: a charge that falls back to it is warned of when the card
	// will have expired by then (TRI-6, ARS-6).
	PaymentCard *payment.CardExpiry `json:"payment_card,omitempty"`
	// InitialChargeID and InitialCharge are the order's charge and this
	// subscription's part of it, which a monthly plan cancelled early
	// refunds (MON-2).
	InitialChargeID string      `json:"initial_charge_id,omitempty"`
	InitialCharge   money.Money `json:"initial_charge,omitzero"`
}

// Registered: the key was saved into an account (KEY-2).
type Registered struct {
	AccountID uuid.UUID `json:"account_id"`
	At        time.Time `json:"at"`
}

// SavedWithOrder: the order that bought a non-registrable product was
// saved in an account (ORD-2, ORD-3). The product stays out of the account's
// products view (PRD-5), but the account now manages its automatic renewal
// (ORD-5) and gets its e-mails.
type SavedWithOrder struct {
	AccountID uuid.UUID `json:"account_id"`
	OrderID   uuid.UUID `json:"order_id"`
	At        time.Time `json:"at"`
}

// Activated: a computer uses one seat (KEY-3).
type Activated struct {
	Device DeviceID  `json:"device"`
	At     time.Time `json:"at"`
}

// Deactivated: a computer freed its seat (KEY-5).
type Deactivated struct {
	Device DeviceID  `json:"device"`
	At     time.Time `json:"at"`
}

// Disabled: the key no longer registers or activates (a support agent's
// action, or a conversion's).
type Disabled struct {
	At time.Time `json:"at"`
}

// Replaced: a support-assisted conversion moved the disabled key's term,
// up to Through (the key's expiry then), to subscription By (CNV-4), so
// that the charges that paid for it are not refunded (ARS-7): the term
// goes on there.
type Replaced struct {
	By      uuid.UUID `json:"by"`
	Through time.Time `json:"through"`
	At      time.Time `json:"at"`
}

// AutoRenewalChanged: automatic renewal turned on or off (ARS-3, ORD-4).
// Price is the price renewals will charge, set when a boxed key, which has
// none of its own, is enrolled.
type AutoRenewalChanged struct {
	On    bool        `json:"on"`
	Price money.Money `json:"price,omitzero"`
	At    time.Time   `json:"at"`
}

func (Created) EventType() string            { return "subscription.created" }
func (Registered) EventType() string         { return "subscription.registered" }
func (SavedWithOrder) EventType() string     { return "subscription.saved_with_order" }
func (Activated) EventType() string          { return "subscription.activated" }
func (Deactivated) EventType() string        { return "subscription.deactivated" }
func (Disabled) EventType() string           { return "subscription.disabled" }
func (Replaced) EventType() string           { return "subscription.replaced" }
func (AutoRenewalChanged) EventType() string { return "subscription.auto_renewal_changed" }

// Claims reserves the key and the serial number store-wide (KEY-1).
func (e Created) Claims() []domain.Claim {
	return []domain.Claim{{Scope: KeyScope, Key: e.Key.String()}, {Scope: SerialScope, Key: e.Serial.String()}}
}

// Events lists a zero value of every subscription event, for the codec.
func Events() []domain.Event {
	return append([]domain.Event{Created{}, Registered{}, SavedWithOrder{}, Activated{}, Deactivated{}, Disabled{}, Replaced{}, AutoRenewalChanged{}, DaysAdjusted{}, Converted{},
		EmailSent{}},
		renewalEvents()...)
}

// Subscription is the state of one subscription. Its fields are in an
// unexported struct so that no caller can build an invalid one; it encodes
// to JSON (MarshalJSON) so that a projection can keep it between events
// (the due-work schedule folds each subscription once per event).
type Subscription struct{ st state }

type state struct {
	Created Created   `json:"created"`
	Exists  bool      `json:"exists"`
	Account uuid.UUID `json:"account,omitzero"`
	// OrderAccount is the account the order of a non-registrable product
	// was saved in (SavedWithOrder).
	OrderAccount uuid.UUID  `json:"order_account,omitzero"`
	Devices      []DeviceID `json:"devices,omitempty"`
	Disabled     bool       `json:"disabled,omitempty"`
	// ReplacedBy is the subscription a conversion moved the disabled key's
	// term to, up to ReplacedThrough (Replaced).
	ReplacedBy      uuid.UUID    `json:"replaced_by,omitzero"`
	ReplacedThrough time.Time    `json:"replaced_through,omitzero"`
	AutoRenew       bool         `json:"auto_renew,omitempty"`
	Renewal         renewalState `json:"renewal"`
	// RetiredKeys are the keys a conversion replaced (CNV-3).
	RetiredKeys []ProductKey `json:"retired_keys,omitempty"`
	// EmailsSent are the e-mails sent about the subscription, as kind/cause
	// (EML-2).
	EmailsSent []string `json:"emails_sent,omitempty"`
}

// MarshalJSON encodes the state, for projections that keep it.
func (s Subscription) MarshalJSON() ([]byte, error) { return json.Marshal(s.st) }

// UnmarshalJSON decodes what MarshalJSON encoded.
func (s *Subscription) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &s.st) }

// Exists reports whether the subscription was created.
func (s Subscription) Exists() bool { return s.st.Exists }

// Facts returns what the subscription was created with.
func (s Subscription) Facts() Created { return s.st.Created }

// Account returns the account the key is registered in, or uuid.Nil.
func (s Subscription) Account() uuid.UUID { return s.st.Account }

// Owner returns the account that manages the subscription's renewal, pays
// for it and gets its e-mails: the one the key is registered in, else, for
// a non-registrable product, the one its order was saved in (ORD-5); or
// uuid.Nil.
func (s Subscription) Owner() uuid.UUID {
	if s.st.Account != uuid.Nil {
		return s.st.Account
	}
	return s.st.OrderAccount
}

// Devices returns the computers the subscription is activated on.
func (s Subscription) Devices() []DeviceID { return append([]DeviceID(nil), s.st.Devices...) }

// AutoRenew reports whether automatic renewal is on.
func (s Subscription) AutoRenew() bool { return s.st.AutoRenew }

// Disabled reports whether the key was disabled.
func (s Subscription) Disabled() bool { return s.st.Disabled }

// Replacement returns the subscription a conversion moved the disabled
// key's term to and the expiry it moved it up to (Replaced), or uuid.Nil.
func (s Subscription) Replacement() (by uuid.UUID, through time.Time) {
	return s.st.ReplacedBy, s.st.ReplacedThrough
}

// Commands of the subscription aggregate.
type (
	// Command is any subscription command.
	Command interface{ subscriptionCommand() }

	// Create makes the subscription; the caller draws the key and serial
	// and reads the product's facts from the catalog.
	Create struct{ Created Created }

	// Register saves the key into an account (KEY-2).
	Register struct{ AccountID uuid.UUID }

	// RegisterFromOrder saves an order's subscription into the account that
	// saved the order; a non-registrable product stays reachable through
	// the order only (PRD-5).
	RegisterFromOrder struct {
		AccountID uuid.UUID
		OrderID   uuid.UUID
	}

	// Activate uses a seat for a computer (KEY-3).
	Activate struct {
		AccountID uuid.UUID
		Device    DeviceID
	}

	// Deactivate frees a computer's seat (KEY-5).
	Deactivate struct {
		AccountID uuid.UUID
		Device    DeviceID
	}

	// Disable stops the key from registering or activating. ReplacedBy
	// names the subscription a support-assisted conversion moved its term,
	// up to its expiry now, to (CNV-4), if that is why: recorded also when
	// the key was disabled already (by hand, during the conversion).
	Disable struct{ ReplacedBy uuid.UUID }

	// SetAutoRenewal turns automatic renewal on or off for the account that
	// holds the subscription (ARS-3, ARS-5, ORD-5). Price is what a boxed
	// key, bought with no online-store price, renews at: the catalog's
	// price of its term at the account's storefront; ignored otherwise.
	SetAutoRenewal struct {
		AccountID uuid.UUID
		On        bool
		Price     money.Money
	}

	// StopAutoRenewalForOrder turns automatic renewal off because the
	// account AccountID does not recognize the order the subscription came
	// from (ORD-4): the order's subscriptions in no account, or in that one.
	StopAutoRenewalForOrder struct {
		OrderID   uuid.UUID
		AccountID uuid.UUID
	}

	// StopAutoRenewalForErasure turns automatic renewal off because the
	// account AccountID is erased (AUD-5): no one is left to tell before a
	// charge (ARS-2) or to ask for its refund. It touches the account's
	// subscriptions, and those in no account from order OrderID, placed
	// with the account's address (ORD-2).
	StopAutoRenewalForErasure struct {
		AccountID uuid.UUID
		OrderID   uuid.UUID
	}
)

func (Create) subscriptionCommand()                    {}
func (Register) subscriptionCommand()                  {}
func (RegisterFromOrder) subscriptionCommand()         {}
func (Activate) subscriptionCommand()                  {}
func (Deactivate) subscriptionCommand()                {}
func (Disable) subscriptionCommand()                   {}
func (SetAutoRenewal) subscriptionCommand()            {}
func (StopAutoRenewalForOrder) subscriptionCommand()   {}
func (StopAutoRenewalForErasure) subscriptionCommand() {}

// Errors of the subscription aggregate.
var (
	// ErrNotFound: no such subscription in the caller's account (SEC-1).
	ErrNotFound error = domain.NotFound("no such subscription")
	// ErrUnknownKey: no subscription has this key (KEY-2).
	ErrUnknownKey error = domain.Invalid("key", "no product has this key; check it and type it again")
	// ErrKeyDisabled: the key was disabled (KEY-2, KEY-3).
	ErrKeyDisabled error = domain.Invalid("key", "this product key is disabled")
	// ErrRegisteredElsewhere: the key is in another account (KEY-2).
	ErrRegisteredElsewhere error = domain.Invalid("key", "this product key is registered to another account")
	// ErrNotRegistrable: the product is not registered in accounts; it is
	// reached through the order that bought it (CAT-1, PRD-5).
	ErrNotRegistrable error = domain.Invalid("key", "this product cannot be registered in an account: download it from the order that bought it")
	// ErrDeactivationNotAllowed: the policy forbids deactivation (KEY-5).
	ErrDeactivationNotAllowed error = domain.Conflict("computers cannot be deactivated")
	// ErrNotActivated: the computer does not use a seat of this subscription.
	ErrNotActivated error = domain.NotFound("this computer is not activated on this subscription")
)

// SeatsExhaustedError: every seat is in use (KEY-3); the way out is another
// key (KEY-4) or a deactivation (KEY-5).
type SeatsExhaustedError struct{ Seats int }

func (e *SeatsExhaustedError) Error() string {
	return fmt.Sprintf("all %d seats of this subscription are in use: buy an additional product key, or deactivate a computer", e.Seats)
}

// Conflict marks the error's kind for the API.
func (e *SeatsExhaustedError) Conflict() bool { return true }

// NotCurrentError: an expired, refunded or disabled subscription cannot
// activate (KEY-3).
type NotCurrentError struct{ Status Status }

func (e *NotCurrentError) Error() string {
	return fmt.Sprintf("this subscription is %s: it cannot activate a computer", e.Status)
}

// Conflict marks the error's kind for the API.
func (e *NotCurrentError) Conflict() bool { return true }

// AsianStoreError: the subscription's settings are managed on the Asian
// online store it was bought at (ARS-5).
type AsianStoreError struct{ Storefront string }

func (e *AsianStoreError) Error() string {
	return fmt.Sprintf("automatic renewal of this subscription is managed on the %s online store where it was bought", e.Storefront)
}

// Conflict marks the error's kind for the API.
func (e *AsianStoreError) Conflict() bool { return true }

// Decider is the subscription aggregate's behaviour.
var Decider = domain.Decider[Subscription, Command]{Decide: decide, Evolve: evolve}

func decide(s Subscription, cmd Command, now time.Time, p policy.Policy) ([]domain.Event, error) {
	if c, ok := cmd.(Create); ok {
		if s.st.Exists {
			return nil, domain.Conflict("the subscription exists already")
		}
		return []domain.Event{c.Created}, nil
	}
	if !s.st.Exists {
		return nil, ErrNotFound
	}
	if events, handled, err := decideRenewal(s, cmd, now, p); handled {
		return events, err
	}
	switch c := cmd.(type) {
	case Register:
		switch {
		case s.st.Disabled:
			return nil, ErrKeyDisabled
		case !s.st.Created.Registrable:
			return nil, ErrNotRegistrable
		case s.st.Account == c.AccountID:
			return nil, nil // the same key twice in one account is a no-op
		case s.st.Account != uuid.Nil:
			return nil, ErrRegisteredElsewhere
		}
		return []domain.Event{Registered{AccountID: c.AccountID, At: now}}, nil
	case RegisterFromOrder:
		switch {
		case s.st.Created.OrderID != c.OrderID || s.Owner() == c.AccountID:
			return nil, nil
		case !s.st.Created.Registrable && s.st.OrderAccount == uuid.Nil:
			return []domain.Event{SavedWithOrder{AccountID: c.AccountID, OrderID: c.OrderID, At: now}}, nil
		case !s.st.Created.Registrable:
			return nil, nil // an order is saved in one account only
		case s.st.Account != uuid.Nil:
			// The key's holder registered it while the order awaited its
			// account (KEY-2): it stays there, and the order is saved all
			// the same (a refusal would stall the order's saving for good).
			return nil, nil
		}
		return []domain.Event{Registered{AccountID: c.AccountID, At: now}}, nil
	case Activate:
		if s.st.Account != c.AccountID {
			return nil, ErrNotFound
		}
		if st := s.Status(now, p); !st.Current() {
			return nil, &NotCurrentError{Status: st}
		}
		for _, d := range s.st.Devices {
			if d == c.Device {
				return nil, nil // already uses a seat
			}
		}
		if len(s.st.Devices) >= s.st.Created.Seats {
			return nil, &SeatsExhaustedError{Seats: s.st.Created.Seats}
		}
		return []domain.Event{Activated{Device: c.Device, At: now}}, nil
	case Deactivate:
		switch {
		case s.st.Account != c.AccountID:
			return nil, ErrNotFound
		case !p.DeactivationAllowed():
			return nil, ErrDeactivationNotAllowed
		}
		for _, d := range s.st.Devices {
			if d == c.Device {
				return []domain.Event{Deactivated{Device: c.Device, At: now}}, nil
			}
		}
		return nil, ErrNotActivated
	case Disable:
		var events []domain.Event
		if !s.st.Disabled {
			events = append(events, Disabled{At: now})
		}
		if c.ReplacedBy != uuid.Nil && s.st.ReplacedBy != c.ReplacedBy {
			events = append(events, Replaced{By: c.ReplacedBy, Through: s.ExpiresAt(), At: now})
		}
		return events, nil
	case SetAutoRenewal:
		switch {
		case s.Owner() != c.AccountID:
			return nil, ErrNotFound
		case s.st.Created.AsianStore:
			return nil, &AsianStoreError{Storefront: s.st.Created.Storefront}
		case c.On && !s.Status(now, p).Current():
			return nil, ErrEnded
		case c.On && s.st.Renewal.PendingRefund != nil:
			// The refund would take back the term and turn renewal off.
			return nil, ErrRefundPending
		case s.st.AutoRenew == c.On && !(c.On && s.st.Renewal.Cycle.Lapsed):
			// On again for a period whose retries ended (ARS-6) is a
			// change: it tries the charge again, before the expiry.
			return nil, nil
		case !c.On && s.st.Renewal.Term == catalog.Monthly.String():
			// Cancelling a monthly plan is turning its renewal off (MON-1),
			// with MON-2's refund within 30 days of the purchase.
			return s.cancel(Cancel{AccountID: c.AccountID}, now, p)
		case c.On && s.st.Renewal.Price.IsZero() && c.Price.Amount() <= 0:
			return nil, ErrNoRenewalPrice
		case c.On && s.st.Renewal.Price.IsZero():
			return []domain.Event{AutoRenewalChanged{On: true, Price: c.Price, At: now}}, nil
		}
		return []domain.Event{AutoRenewalChanged{On: c.On, At: now}}, nil
	case StopAutoRenewalForOrder:
		// A retail key has no order: a nil order id matches nothing. A key
		// another account's holder registered while the order was pending
		// is that account's, not the disowning one's (ORD-4).
		if c.OrderID == uuid.Nil || s.st.Created.OrderID != c.OrderID || !s.st.AutoRenew || (s.Owner() != uuid.Nil && s.Owner() != c.AccountID) {
			return nil, nil
		}
		return []domain.Event{AutoRenewalChanged{On: false, At: now}}, nil
	case StopAutoRenewalForErasure:
		owned := c.AccountID != uuid.Nil && s.Owner() == c.AccountID
		pending := s.Owner() == uuid.Nil && c.OrderID != uuid.Nil && s.st.Created.OrderID == c.OrderID
		if !s.st.AutoRenew || !(owned || pending) {
			return nil, nil
		}
		return []domain.Event{AutoRenewalChanged{On: false, At: now}}, nil
	case AdjustDays:
		return decideAdjustDays(s, c, now)
	case Convert:
		return decideConvert(s, c, now, p)
	case RecordEmailSent:
		return decideRecordEmailSent(s, c), nil
	}
	return nil, fmt.Errorf("subscription: unknown command %T", cmd)
}

func evolve(s Subscription, e domain.Event) Subscription {
	if s, handled := evolveRenewal(s, e); handled {
		return s
	}
	switch e := e.(type) {
	case Created:
		s.st.Created, s.st.Exists, s.st.AutoRenew = e, true, e.AutoRenew
		s.st.Renewal = newRenewal(e)
	case Registered:
		before := s.Owner()
		s.st.Account = e.AccountID
		s = s.payerChanged(before, e.At)
	case SavedWithOrder:
		// Saved by the account of the address the order was placed with
		// (ORD-3), which its notices went to: the same customer.
		s.st.OrderAccount = e.AccountID
	case Activated:
		s.st.Devices = append(s.Devices(), e.Device)
	case Deactivated:
		kept := make([]DeviceID, 0, len(s.st.Devices))
		for _, d := range s.st.Devices {
			if d != e.Device {
				kept = append(kept, d)
			}
		}
		s.st.Devices = kept
	case Disabled:
		s.st.Disabled = true
	case Replaced:
		s.st.ReplacedBy, s.st.ReplacedThrough = e.By, e.Through
		if e.Through.IsZero() { // recorded before it said: the whole term went on
			s.st.ReplacedThrough = s.ExpiresAt()
		}
	case DaysAdjusted:
		s = evolveDaysAdjusted(s, e)
	case Converted:
		s = evolveConverted(s, e)
	case EmailSent:
		s = evolveEmailSent(s, e)
	}
	return s
}
