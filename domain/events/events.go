// Package events lists the event types of every aggregate, for the event
// store's codec: one place to add an aggregate.
package events

import (
	"slices"

	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/conversion"
	"github.com/subs-engine/subs/domain/order"
	"github.com/subs-engine/subs/domain/subscription"
)

// All returns a zero value of every event type of every aggregate.
func All() []domain.Event {
	return slices.Concat(account.Events(), subscription.Events(), order.Events(), conversion.Events())
}
