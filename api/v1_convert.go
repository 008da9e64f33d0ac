package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
)

// convertRequest asks for a conversion of a legacy subscription (CNV-2,
// CNV-5).
type convertRequest struct {
	Target            string   `json:"target,omitempty" doc:"the Norton Security product to become (CNV-2): NS-STD or NS-DLX for NAV and NIS, NS-PRM for N360 and N1; default by seats"`
	AcknowledgeLosses []string `json:"acknowledge_losses,omitempty" doc:"the codes of the extras the customer agrees to lose (CNV-5): premium-support and anti-theft for Norton One"`
}

// conversionRoutes adds the customer's conversion (CNV-3, option 1).
func (a *subscriptionsAPI) conversionRoutes() {
	a.s.Route(Route{Method: "POST", Pattern: "/v1/subscriptions/{id}/convert", Tags: []string{"subscriptions"}, Auth: AuthCustomer,
		Summary: "Convert a legacy subscription to Norton Security",
		Description: "Option 1, transfer (CNV-3): the subscription becomes the mapped Norton Security product (CNV-2; target chooses " +
			"between Standard and Deluxe for NAV and NIS, default by seats) with the same expiration date; a new product key is issued and " +
			"the old one is disabled (it no longer registers or activates; its computers are released). Norton One loses Premium Support " +
			"and Anti-Theft: without acknowledge_losses naming both the conversion is refused, 400 naming the field (CNV-5). Only a current " +
			"legacy subscription converts: 409 otherwise (CNV-6). Answers the products-view row with the new key.",
		Request:   convertRequest{},
		Responses: map[int]any{http.StatusOK: productView{}, http.StatusNotFound: nil},
		Handler:   HandlerFunc(a.convert)})
}

// maxKeyDraws bounds the redraws of a new key another subscription holds.
const maxKeyDraws = 5

func (a *subscriptionsAPI) convert(w http.ResponseWriter, r *http.Request) error {
	id, err := subscriptionID(r)
	if err != nil {
		return err
	}
	var in convertRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	ctx := r.Context()
	sess, _ := SessionFrom(ctx)
	st, err := a.mine(ctx, id, sess.AccountID)
	if err != nil {
		return err
	}
	plan, err := subscription.PlanConversion(a.Catalog, st, strings.ToUpper(strings.TrimSpace(in.Target)), in.AcknowledgeLosses, a.s.Clock().Now(), a.s.Policy())
	if err != nil {
		return err
	}
	for range maxKeyDraws {
		key, err := subscription.NewProductKey(a.Random)
		if err != nil {
			return err
		}
		_, err = a.handle(ctx, id, subscription.Convert{AccountID: sess.AccountID, Plan: plan, Acknowledged: in.AcknowledgeLosses, Key: key})
		if _, taken := errors.AsType[*eventstore.ReservationConflictError](err); taken {
			continue // the new key is another subscription's: draw again
		}
		if err != nil {
			return err
		}
		return a.writeRow(w, r, http.StatusOK, id)
	}
	return errors.New("api: convert: every new key drawn was taken")
}

// mine loads subscription id when it is registered in account, else
// answers subscription.ErrNotFound (SEC-1).
func (a *subscriptionsAPI) mine(ctx context.Context, id, acct uuid.UUID) (subscription.Subscription, error) {
	st, _, err := a.handler.Load(ctx, subscriptionStream(id))
	if err == nil && (!st.Exists() || st.Account() != acct) {
		err = subscription.ErrNotFound
	}
	return st, err
}

// checkClient refuses to activate subscription id on a computer running
// product, a catalog code, when the key is legacy and the product is
// Norton Security (CNV-1). No product: nothing to check.
func (a *subscriptionsAPI) checkClient(ctx context.Context, id uuid.UUID, product string) error {
	if product == "" {
		return nil
	}
	client, err := a.Catalog.Product(strings.ToUpper(strings.TrimSpace(product)))
	if err != nil {
		return domain.Invalid("product", "is not a product of the catalog, such as NS-STD")
	}
	sess, _ := SessionFrom(ctx)
	st, err := a.mine(ctx, id, sess.AccountID)
	if err != nil {
		return err
	}
	return subscription.CheckClient(st, client)
}

// checkNotRetired refuses a key a conversion replaced: it names its
// subscription still (KEY-1) but is disabled (CNV-3).
func (a *subscriptionsAPI) checkNotRetired(ctx context.Context, id uuid.UUID, key subscription.ProductKey) error {
	st, _, err := a.handler.Load(ctx, subscriptionStream(id))
	if err == nil && st.KeyRetired(key) {
		err = subscription.ErrKeyDisabled
	}
	return err
}
