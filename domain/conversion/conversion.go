// Package conversion is the saga of a support-assisted conversion of a
// legacy subscription to Norton Security (CNV-4, option 2): one stream
// "conversion-<uuid>" recording the plan and each step the agent's
// procedure completed, in the seed's order: verify ownership, place a free
// order for the mapped product, activate the new product, disable the old
// key, adjust days so the new subscription expires when the old one would
// have. The steps act on other streams (account, order, subscriptions),
// each idempotently under a command id derived from the conversion, so a
// procedure interrupted anywhere resumes from its next step and records
// every step once.
package conversion

import (
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/agentlog"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
)

// StreamPrefix starts the name of every conversion stream.
const StreamPrefix = "conversion-"

// StreamName returns the name of conversion id's stream.
func StreamName(id uuid.UUID) string { return StreamPrefix + id.String() }

// Step is one step of the procedure.
type Step string

// The steps, in the order the procedure takes them (CNV-4).
const (
	VerifyOwnership Step = "verify_ownership"
	FreeOrder       Step = "free_order"
	Activate        Step = "activate"
	DisableOldKey   Step = "disable_old_key"
	AdjustDays      Step = "adjust_days"
)

// Steps lists the steps in order.
var Steps = []Step{VerifyOwnership, FreeOrder, Activate, DisableOldKey, AdjustDays}

// LogCode returns the agent log code of the step (AGT-1, CNV-4).
func (s Step) LogCode() string {
	switch s {
	case VerifyOwnership:
		return agentlog.VerifyOwnership
	case FreeOrder:
		return agentlog.FreeOrder
	case Activate:
		return agentlog.Activate
	case DisableOldKey:
		return agentlog.DisableKey
	case AdjustDays:
		return agentlog.AdjustDays
	}
	return agentlog.Conversion
}

// Started: an agent began converting a legacy subscription of an account
// to the mapped product (CNV-2), with what the steps need: how ownership is
// verified, the computer to activate, and the expiration date the new
// subscription must end up with (never a lost day).
type Started struct {
	ConversionID    uuid.UUID `json:"conversion_id"`
	AccountID       uuid.UUID `json:"account_id"`
	SubscriptionID  uuid.UUID `json:"subscription_id"`
	From            string    `json:"from"`
	To              string    `json:"to"`
	Platform        string    `json:"platform"`
	Storefront      string    `json:"storefront"`
	Device          string    `json:"device"`
	OwnershipMethod string    `json:"ownership_method"`
	OldExpiresAt    time.Time `json:"old_expires_at"`
	Lost            []string  `json:"lost,omitempty"`
	At              time.Time `json:"at"`
}

// StepCompleted: one step's effect is in the log. FreeOrder records the
// order and the new subscription it yielded; DisableOldKey the old key's
// expiration date when it was disabled, the term the new subscription
// carries on (a renewal since the start included); AdjustDays the days
// moved and the new expiration date.
type StepCompleted struct {
	Step           Step      `json:"step"`
	OrderID        uuid.UUID `json:"order_id,omitzero"`
	SubscriptionID uuid.UUID `json:"subscription_id,omitzero"`
	Days           int       `json:"days,omitempty"`
	ExpiresAt      time.Time `json:"expires_at,omitzero"`
	At             time.Time `json:"at"`
}

// Completed: every step is done; one live key remains, expiring on the old
// one's expiration date (CarriedExpiry).
type Completed struct {
	SubscriptionID uuid.UUID `json:"subscription_id"`
	ExpiresAt      time.Time `json:"expires_at"`
	At             time.Time `json:"at"`
}

func (Started) EventType() string       { return "conversion.started" }
func (StepCompleted) EventType() string { return "conversion.step_completed" }
func (Completed) EventType() string     { return "conversion.completed" }

// Events lists a zero value of every conversion event, for the codec.
func Events() []domain.Event { return []domain.Event{Started{}, StepCompleted{}, Completed{}} }

// Conversion is the state of one saga.
type Conversion struct {
	started   Started
	exists    bool
	done      []StepCompleted
	completed bool
}

// Exists reports whether the conversion was started.
func (c Conversion) Exists() bool { return c.exists }

// Plan returns what the conversion was started with.
func (c Conversion) Plan() Started { return c.started }

// Done returns the completed steps, in order.
func (c Conversion) Done() []StepCompleted { return slices.Clone(c.done) }

// Completed reports whether every step is done.
func (c Conversion) Completed() bool { return c.completed }

// Next returns the step to take next, and false when none is left.
func (c Conversion) Next() (Step, bool) {
	if len(c.done) >= len(Steps) {
		return "", false
	}
	return Steps[len(c.done)], true
}

// NewSubscription returns the subscription the free order yielded, or
// uuid.Nil before that step.
func (c Conversion) NewSubscription() uuid.UUID {
	for _, d := range c.done {
		if d.Step == FreeOrder {
			return d.SubscriptionID
		}
	}
	return uuid.Nil
}

// CarriedExpiry is the expiration date the new subscription must end up
// with: the old key's when the conversion disabled it, else (before that
// step, or for a step recorded before it said) the one the conversion
// started from.
func (c Conversion) CarriedExpiry() time.Time {
	for _, d := range c.done {
		if d.Step == DisableOldKey && !d.ExpiresAt.IsZero() {
			return d.ExpiresAt
		}
	}
	return c.started.OldExpiresAt
}

// Commands of the conversion saga.
type (
	// Command is any conversion command.
	Command interface{ conversionCommand() }
	// Start records the plan; starting the same conversion again is a no-op.
	Start struct{ Started Started }
	// CompleteStep records that a step's effect is in the log.
	CompleteStep struct{ Done StepCompleted }
)

func (Start) conversionCommand()        {}
func (CompleteStep) conversionCommand() {}

// ErrNotFound: no such conversion.
var ErrNotFound error = domain.NotFound("no such conversion")

// Decider is the saga's behaviour.
var Decider = domain.Decider[Conversion, Command]{Decide: decide, Evolve: evolve}

func decide(c Conversion, cmd Command, now time.Time, _ policy.Policy) ([]domain.Event, error) {
	switch cmd := cmd.(type) {
	case Start:
		if c.exists {
			if c.started.SubscriptionID != cmd.Started.SubscriptionID || c.started.AccountID != cmd.Started.AccountID {
				return nil, domain.Conflict("this conversion converts another subscription")
			}
			return nil, nil
		}
		e := cmd.Started
		e.At = now
		return []domain.Event{e}, nil
	case CompleteStep:
		if !c.exists {
			return nil, ErrNotFound
		}
		d := cmd.Done
		if slices.ContainsFunc(c.done, func(x StepCompleted) bool { return x.Step == d.Step }) {
			return nil, nil // recorded once (an interrupted run resumed)
		}
		next, ok := c.Next()
		if !ok || next != d.Step {
			return nil, domain.Conflict(fmt.Sprintf("step %s is not next: %s is", d.Step, next))
		}
		if carried := c.CarriedExpiry(); d.Step == AdjustDays && subscription.DaysBetween(d.ExpiresAt, carried) != 0 {
			return nil, domain.Conflict(fmt.Sprintf("the new subscription expires %s, the old one %s: a day would be lost or gained",
				d.ExpiresAt.Format(time.DateOnly), carried.Format(time.DateOnly)))
		}
		d.At = now
		events := []domain.Event{d}
		if d.Step == Steps[len(Steps)-1] {
			events = append(events, Completed{SubscriptionID: c.NewSubscription(), ExpiresAt: d.ExpiresAt, At: now})
		}
		return events, nil
	}
	return nil, fmt.Errorf("conversion: unknown command %T", cmd)
}

func evolve(c Conversion, e domain.Event) Conversion {
	switch e := e.(type) {
	case Started:
		c.started, c.exists = e, true
	case StepCompleted:
		c.done = append(slices.Clone(c.done), e)
	case Completed:
		c.completed = true
	}
	return c
}
