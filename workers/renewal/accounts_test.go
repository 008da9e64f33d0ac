package renewal_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/workers/gateway"
	"github.com/subs-engine/subs/workers/renewal"
)

// A worker given the accounts' command handler (Config.Accounts) charges
// the payment method of the account's state, not of the accounts read
// model: here the read model has lost the account's row, and the renewal
// is still charged to the card the customer gave, not to the declined one
// the order was paid with.
func TestRun_AccountsHandlerGivesTheBillingMethodFromTheAccountsState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	accounts, err := eventstore.NewCommandHandler(account.Decider, eventstore.HandlerConfig{Store: w.store, Types: w.types,
		Clock: w.clock, Policy: policy.Default()})
	if err != nil {
		t.Fatal(err)
	}
	acct := uuid.New()
	email, err := account.ParseEmail("ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	name, _ := account.ParseName("Ann Example")
	country, err := account.ParseCountry("US")
	if err != nil {
		t.Fatal(err)
	}
	card, err := payment.NewCard(gateway.CardSucceeds, "123", "Ann Example", 12, 2035, w.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	method, err := w.gateway.TokenizeCard(ctx, card)
	if err != nil {
		t.Fatal(err)
	}
	meta := eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorCustomer, ActorID: acct.String()}}
	stream := eventstore.StreamID(account.StreamName(acct))
	for _, cmd := range []account.Command{
		account.Register{AccountID: acct, Email: email, Name: name, Country: country, PasswordHash: "test: no password"},
		account.UpdateBilling{Country: country, Method: method},
	} {
		if _, err := accounts.Handle(ctx, stream, cmd, meta); err != nil {
			t.Fatal(err)
		}
	}
	id := w.subscribe(t, "NS-STD", catalog.Annual, w.card(t, gateway.CardChargeDeclined))
	if _, err := w.subs.Handle(ctx, eventstore.StreamID(subscription.StreamName(id)), subscription.Register{AccountID: acct}, meta); err != nil {
		t.Fatal(err)
	}
	w.settle(t)
	if _, err := w.store.Pool().Exec(ctx, `DELETE FROM accounts WHERE account_id = $1`, acct); err != nil {
		t.Fatal(err)
	}
	r, err := renewal.New(renewal.Config{Store: w.store, Types: w.types, Gateway: w.gateway, Clock: w.clock, Accounts: accounts})
	if err != nil {
		t.Fatal(err)
	}
	// The notice, then the charge at the renewal.
	for _, days := range []int{340, 26} {
		if err := w.clock.Advance(time.Duration(days) * 24 * time.Hour); err != nil {
			t.Fatal(err)
		}
		if res, err := r.Run(ctx, w.clock.Now()); err != nil || res.Failed != 0 {
			t.Fatalf("run after %d days more: %+v, %v", days, res, err)
		}
		w.settle(t)
	}
	types := w.eventTypes(t, id)
	if !slices.Contains(types, "subscription.charge_succeeded") || slices.Contains(types, "subscription.charge_declined") {
		t.Errorf("the renewal was not charged to the account's card: %v", types)
	}
}
