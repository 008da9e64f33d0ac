package subscription

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/policy"
)

// Converted: a legacy subscription became the Norton Security product it
// maps to (CNV-3, option 1): same subscription, serial number and
// expiration date; a new key, the old one retired (it names this
// subscription still, KEY-1, but no longer registers or activates). The
// computers activated with the old key are released: the new product is
// activated with the new key. Lost lists the codes of the extras the
// customer acknowledged losing (CNV-5).
type Converted struct {
	From         string     `json:"from"`
	Product      string     `json:"product"`
	ProductName  string     `json:"product_name"`
	Seats        int        `json:"seats"`
	Registrable  bool       `json:"registrable"`
	RecoveryTool bool       `json:"recovery_tool"`
	Key          ProductKey `json:"key"`
	PreviousKey  ProductKey `json:"previous_key"`
	Lost         []string   `json:"lost,omitempty"`
	// Price is what renewals charge from now on: the new product's price
	// for the term in the currency the old one renewed in (zero when the
	// old one had no price: a boxed key renewed by hand).
	Price money.Money `json:"price,omitzero"`
	At    time.Time   `json:"at"`
}

func (Converted) EventType() string { return "subscription.converted" }

// Claims reserves the new key for this subscription (KEY-1). The old key
// stays reserved by it, so it is never issued again.
func (e Converted) Claims() []domain.Claim {
	return []domain.Claim{{Scope: KeyScope, Key: e.Key.String()}}
}

// Convert transfers the subscription to the Norton Security product of
// Plan (CNV-3): the caller resolves the plan from the catalog
// (PlanConversion) and draws the new key. Acknowledged holds the codes of
// the extras the customer agreed to lose (CNV-5).
type Convert struct {
	AccountID    uuid.UUID
	Plan         Plan
	Acknowledged []string
	Key          ProductKey
}

// Plan is a resolved conversion of one subscription: the catalog's plan
// (CNV-2) and the price its renewals charge afterwards.
type Plan struct {
	catalog.ConversionPlan
	Price money.Money
}

func (Convert) subscriptionCommand() {}

// ErrNotLegacy: only a legacy product (NAV, NIS, N360, N1) converts.
var ErrNotLegacy error = domain.Conflict("this subscription is not a legacy product: only Norton AntiVirus, Internet Security, 360 and One convert to Norton Security")

// NotConvertibleNowError: only a current subscription converts (CNV-6).
type NotConvertibleNowError struct{ Status Status }

func (e *NotConvertibleNowError) Error() string {
	return fmt.Sprintf("this subscription is %s: only a current subscription converts to Norton Security", e.Status)
}

// Conflict marks the error's kind for the API.
func (e *NotConvertibleNowError) Conflict() bool { return true }

// AcknowledgementField is the input field that carries the customer's
// acknowledgement of the extras a conversion loses (CNV-5).
const AcknowledgementField = "acknowledge_losses"

// LossNotAcknowledgedError: the conversion would take away extras the
// customer has not acknowledged losing (CNV-5).
type LossNotAcknowledgedError struct {
	From, To string
	Lost     []catalog.Extra
}

func (e *LossNotAcknowledgedError) Error() string {
	names, codes := make([]string, len(e.Lost)), make([]string, len(e.Lost))
	for i, x := range e.Lost {
		names[i], codes[i] = x.Name(), fmt.Sprintf("%q", x.Code())
	}
	return fmt.Sprintf("converting %s to %s loses %s: the customer must acknowledge it (%s)",
		e.From, e.To, strings.Join(names, " and "), strings.Join(codes, ", "))
}

// FieldErrors names the field for the API (SEC-4).
func (e *LossNotAcknowledgedError) FieldErrors() [][2]string {
	return [][2]string{{AcknowledgementField, e.Error()}}
}

// LegacyKeyError: a legacy key cannot activate a Norton Security product
// (CNV-1).
type LegacyKeyError struct{ Legacy, Client string }

func (e *LegacyKeyError) Error() string {
	return fmt.Sprintf("a %s key cannot activate %s: Norton Security is a new product with a new subscription, "+
		"not an update of %s; the subscription can be converted to Norton Security instead", e.Legacy, e.Client, e.Legacy)
}

// FieldErrors names the field for the API (SEC-4).
func (e *LegacyKeyError) FieldErrors() [][2]string { return [][2]string{{"product", e.Error()}} }

// CheckClient refuses to activate client, the product installed on the
// computer, with a legacy subscription when client is a Norton Security
// product (CNV-1).
func CheckClient(s Subscription, client catalog.Product) error {
	if s.st.Created.Legacy && !client.Legacy() {
		return &LegacyKeyError{Legacy: s.st.Created.ProductName, Client: client.Name()}
	}
	return nil
}

// PlanConversion resolves the conversion of s (CNV-2: target, when not
// empty, must be one of the mapped products; else the default by seats) and
// checks it may happen at now: s is a current (CNV-6) legacy subscription,
// and acknowledged holds every extra the conversion loses (CNV-5). Both
// options, the customer's transfer and the agent's procedure, go through it.
// A subscription that renews at a price renews at the new product's price
// in the same currency.
func PlanConversion(cat *catalog.Catalog, s Subscription, target string, acknowledged []string, now time.Time, p policy.Policy) (Plan, error) {
	if err := checkConvertible(s, now, p); err != nil {
		return Plan{}, err
	}
	cp, err := cat.ConversionTarget(s.st.Created.Product, s.st.Created.Seats, target)
	if err != nil {
		return Plan{}, domain.Invalid("target", err.Error())
	}
	plan := Plan{ConversionPlan: cp}
	if old := s.st.Renewal.Price; !old.IsZero() {
		term, err := catalog.ParseTerm(s.Term())
		if term == catalog.Trial {
			term = catalog.Annual // a trial renews into a year at the standard price (TRI-4)
		}
		if err == nil {
			plan.Price, err = cat.Price(cp.To.Code(), term, old.Currency())
		}
		if err != nil {
			return Plan{}, domain.Invalid("target", err.Error())
		}
	}
	return plan, checkAcknowledged(cp, acknowledged)
}

func checkConvertible(s Subscription, now time.Time, p policy.Policy) error {
	if !s.st.Created.Legacy {
		return ErrNotLegacy
	}
	if st := s.Status(now, p); !st.Current() {
		return &NotConvertibleNowError{Status: st}
	}
	return nil
}

func checkAcknowledged(plan catalog.ConversionPlan, acknowledged []string) error {
	var missing []catalog.Extra
	for _, x := range plan.Loses {
		if !slices.Contains(acknowledged, x.Code()) {
			missing = append(missing, x)
		}
	}
	if len(missing) > 0 {
		return &LossNotAcknowledgedError{From: plan.From.Name(), To: plan.To.Name(), Lost: plan.Loses}
	}
	return nil
}

// decideConvert applies CNV-3 with CNV-5 and CNV-6 checked again on the
// state the command meets.
func decideConvert(s Subscription, c Convert, now time.Time, p policy.Policy) ([]domain.Event, error) {
	if s.st.Account != c.AccountID {
		return nil, ErrNotFound
	}
	if err := checkConvertible(s, now, p); err != nil {
		return nil, err
	}
	if c.Plan.From.Code() != s.st.Created.Product {
		return nil, domain.Conflict(fmt.Sprintf("the conversion plan is for %s, the subscription is %s", c.Plan.From.Code(), s.st.Created.Product))
	}
	if err := checkAcknowledged(c.Plan.ConversionPlan, c.Acknowledged); err != nil {
		return nil, err
	}
	platform, err := catalog.ParsePlatform(s.st.Created.Platform)
	if err != nil {
		return nil, fmt.Errorf("subscription: platform %q: %w", s.st.Created.Platform, err)
	}
	to := c.Plan.To
	lost := make([]string, len(c.Plan.Loses))
	for i, x := range c.Plan.Loses {
		lost[i] = x.Code()
	}
	return []domain.Event{Converted{From: s.st.Created.Product, Product: to.Code(), ProductName: to.Name(), Seats: to.Seats(),
		Registrable: to.Registrable(), RecoveryTool: to.OffersRecoveryTool(platform), Key: c.Key, PreviousKey: s.st.Created.Key,
		Lost: lost, Price: c.Plan.Price, At: now}}, nil
}

// evolveConverted makes the subscription the new product with the new key,
// renewing at the new product's price. A notice that announced the old
// fee for a period not yet charged is given again with the new one, and the
// charge follows it (ARS-2: the pre-billing e-mail states the fee); in
// grace, past the expiration date, the notice given stands (a new one could
// not charge before the grace ends, and would lapse the renewal: CNV-6), and
// its charge takes no more than the fee it stated.
func evolveConverted(s Subscription, e Converted) Subscription {
	s.st.RetiredKeys = append(slices.Clone(s.st.RetiredKeys), e.PreviousKey)
	c := &s.st.Created
	c.Product, c.ProductName, c.Seats = e.Product, e.ProductName, e.Seats
	c.Registrable, c.RecoveryTool, c.Legacy, c.Key = e.Registrable, e.RecoveryTool, false, e.Key
	s.st.Devices = nil
	if r := &s.st.Renewal; !e.Price.IsZero() && !e.Price.Equal(r.Price) {
		r.Price = e.Price
		if r.Cycle.unbilled() && e.At.Before(r.ExpiresAt) {
			r.Cycle.forgetNotice()
		}
	}
	return s
}

// KeyRetired reports whether k was this subscription's key before a
// conversion replaced it (CNV-3): such a key is disabled.
func (s Subscription) KeyRetired(k ProductKey) bool { return slices.Contains(s.st.RetiredKeys, k) }
