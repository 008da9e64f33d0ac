package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
)

// Renewals makes what a subscription's renewal lifecycle has pending — a
// requested refund or charge — with the payment gateway, and records the
// outcome; *renewal.Worker implements it. It returns the checkpoint of its
// last append (zero when it appended nothing).
type Renewals interface {
	Settle(ctx context.Context, id uuid.UUID) (eventstore.Checkpoint, error)
}

// renewalRoutes adds the customer's refund, cancellation and add-on
// endpoints (ARS-7, MON-1, MON-2, MON-3, TRI-5).
func (a *subscriptionsAPI) renewalRoutes() {
	subs := []string{"subscriptions"}
	a.s.Route(Route{Method: "POST", Pattern: "/v1/subscriptions/{id}/refund", Tags: subs, Auth: AuthCustomer,
		Summary: "Refund the last automatic-renewal charge",
		Description: "Within 60 days (policy) of an automatic-renewal charge (ARS-7), or of the charge that billed a trial (TRI-5), " +
			"the charge is refunded through the payment gateway at once and the renewed term is taken back off the subscription, " +
			"which typically leaves it expired (status refunded); automatic renewal is then off. Answers the subscription's " +
			"products-view row. After the window: 409 naming ARS-7 and the date the window closed. A monthly plan is not refunded " +
			"by the month: cancel it instead (MON-2). No charge to refund, or a refund under way: 409; so is the old key of a " +
			"support-assisted conversion, whose term goes on in the new subscription (409 naming CNV-4). A key an agent disabled " +
			"alone is refunded like any other.",
		Responses: map[int]any{http.StatusOK: productView{}, http.StatusNotFound: nil, http.StatusConflict: nil},
		Handler:   HandlerFunc(a.refund)})
	a.s.Route(Route{Method: "POST", Pattern: "/v1/subscriptions/{id}/cancel", Tags: subs, Auth: AuthCustomer,
		Summary: "Cancel a monthly plan",
		Description: "Turns automatic renewal off: the plan stays current until its expiration date, then expires (MON-1). Within 30 " +
			"days (policy) of the initial purchase the initial charge is refunded in full through the payment gateway at once and " +
			"the plan ends at once (MON-2), and so is a renewal charged within those days (a plan bought on January 31 renews on " +
			"February 28): the plan will never deliver it; while that renewal is being charged, 409 (ask again once it is settled). " +
			"Otherwise nothing is refunded for the partial month. Answers the products-view row. " +
			"Other terms turn automatic renewal off instead (PUT auto-renewal): 409; a plan bought at an Asian online store is " +
			"managed there: 409 naming it (ARS-5).",
		Responses: map[int]any{http.StatusOK: productView{}, http.StatusNotFound: nil, http.StatusConflict: nil},
		Handler:   HandlerFunc(a.cancel)})
	a.s.Route(Route{Method: "POST", Pattern: "/v1/subscriptions/{id}/addons", Tags: subs, Auth: AuthCustomer,
		Summary: "Buy an add-on on a monthly plan",
		Description: "Adds an add-on the catalog offers on the plan's product (additional backup storage, an additional user) at its " +
			"monthly price in the plan's currency: it is charged with the base product each month from the next renewal (MON-3). " +
			"201 with the products-view row; 200 when the add-on is active already. An add-on the product does not offer, or a " +
			"plan that is not monthly: 400 naming the field addon; a plan that is not current: 409.",
		Request:   addOnRequest{},
		Responses: map[int]any{http.StatusCreated: productView{}, http.StatusOK: productView{}, http.StatusNotFound: nil},
		Handler:   HandlerFunc(a.addAddOn)})
	a.s.Route(Route{Method: "DELETE", Pattern: "/v1/subscriptions/{id}/addons/{addon}", Tags: subs, Auth: AuthCustomer,
		Summary: "Cancel an add-on",
		Description: "The add-on is cancelled on its own, the base plan untouched: it is no longer charged nor provided (MON-3). " +
			"Answers the products-view row; an add-on not active on the plan answers 404.",
		Responses: map[int]any{http.StatusOK: productView{}, http.StatusNotFound: nil},
		Handler:   HandlerFunc(a.cancelAddOn)})
}

// addOnRequest buys an add-on (MON-3).
type addOnRequest struct {
	AddOn string `json:"addon" doc:"the add-on's catalog code, e.g. NS-PRM-STORAGE"`
}

// runRenewal runs cmd, a command of the renewal lifecycle, on subscription
// id with meta; then has the gateway make at once what the command set
// going (a refund, recorded on the subscription), and waits until the read
// models show the outcome. The customer's endpoints and the agent's
// actions on their behalf (AGT-1) go through here alike. A gateway that
// cannot answer now leaves the refund pending, which the renewal worker
// makes at its next run: the command's own effect stands.
func (a *subscriptionsAPI) runRenewal(ctx context.Context, id uuid.UUID, cmd subscription.Command, meta eventstore.CommandMeta) (eventstore.Outcome[subscription.Subscription], error) {
	out, err := a.handler.Handle(ctx, subscriptionStream(id), cmd, meta)
	if err != nil {
		return out, renewalProblem(err, a.s.Policy())
	}
	last := out.Append.Checkpoint()
	if _, refund := out.State.PendingRefund(); refund {
		// The outcome is the refund's requester's (AGT-1), whoever's
		// command found it pending.
		cp, err := a.Renewals.Settle(ctx, id)
		if err != nil {
			a.Logger.Warn("the gateway step of a renewal command is left to the renewal worker", "subscription", id, "err", err)
		}
		if cp.Position != 0 {
			last = cp
		}
	}
	a.settleAt(ctx, last)
	return out, nil
}

// renewalProblem names the rule a refund after its window breaks, and the
// date the window closed (ARS-7).
func renewalProblem(err error, p policy.Policy) error {
	if e, ok := errors.AsType[*subscription.RefundWindowClosedError](err); ok {
		return &Problem{Type: ProblemTypeConflict, Title: "Conflict", Status: http.StatusConflict,
			Detail: fmt.Sprintf("ARS-7: a refund is requested within %d days of the automatic-renewal charge; %s.",
				int(p.RefundWindow/policy.Day), e.Error())}
	}
	return err
}

// customerRenewal runs a customer's renewal command on the {id}
// subscription and answers 200 with its products-view row.
func (a *subscriptionsAPI) customerRenewal(w http.ResponseWriter, r *http.Request, cmd func(account uuid.UUID) subscription.Command) error {
	id, err := subscriptionID(r)
	if err != nil {
		return err
	}
	sess, _ := SessionFrom(r.Context())
	if _, err := a.runRenewal(r.Context(), id, cmd(sess.AccountID), customer(sess.AccountID)); err != nil {
		return err
	}
	return a.writeRow(w, r, http.StatusOK, id)
}

func (a *subscriptionsAPI) refund(w http.ResponseWriter, r *http.Request) error {
	return a.customerRenewal(w, r, func(account uuid.UUID) subscription.Command {
		return subscription.RequestRefund{AccountID: account}
	})
}

func (a *subscriptionsAPI) cancel(w http.ResponseWriter, r *http.Request) error {
	return a.customerRenewal(w, r, func(account uuid.UUID) subscription.Command {
		return subscription.Cancel{AccountID: account}
	})
}

func (a *subscriptionsAPI) cancelAddOn(w http.ResponseWriter, r *http.Request) error {
	return a.customerRenewal(w, r, func(account uuid.UUID) subscription.Command {
		return subscription.CancelAddOn{AccountID: account, AddOn: addOnCode(r.PathValue("addon"))}
	})
}

// addOnCode is an add-on code as the catalog spells it.
func addOnCode(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

func (a *subscriptionsAPI) addAddOn(w http.ResponseWriter, r *http.Request) error {
	id, err := subscriptionID(r)
	if err != nil {
		return err
	}
	var in addOnRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.AddOn) == "" {
		return domain.Invalid("addon", "is required: an add-on code such as NS-PRM-STORAGE")
	}
	ctx := r.Context()
	sess, _ := SessionFrom(ctx)
	st, _, err := a.handler.Load(ctx, subscriptionStream(id))
	if err != nil {
		return err
	}
	if !st.Exists() || st.Owner() != sess.AccountID {
		return subscription.ErrNotFound // SEC-1
	}
	cmd, err := a.addOnCommand(st, sess.AccountID, addOnCode(in.AddOn))
	if err != nil {
		return err
	}
	out, err := a.runRenewal(ctx, id, cmd, customer(sess.AccountID))
	if err != nil {
		return addOnField(err)
	}
	status := http.StatusOK // active already
	if len(out.Events) > 0 {
		status = http.StatusCreated
	}
	return a.writeRow(w, r, status, id)
}

// addOnCommand prices add-on code for st's plan from the catalog: it must
// be offered on the plan's product, and is priced per month in the plan's
// currency (MON-3).
func (a *subscriptionsAPI) addOnCommand(st subscription.Subscription, account uuid.UUID, code string) (subscription.AddAddOn, error) {
	facts := st.Facts()
	addOn, err := a.Catalog.AddOn(code)
	if err != nil {
		return subscription.AddAddOn{}, domain.Invalid("addon", "is not an add-on of the catalog, such as NS-PRM-STORAGE")
	}
	if !slices.Contains(addOn.BaseProducts(), facts.Product) {
		return subscription.AddAddOn{}, domain.Invalid("addon", fmt.Sprintf("%s is not offered on %s", addOn.Name(), facts.ProductName))
	}
	cur, err := a.planCurrency(st)
	if err != nil {
		return subscription.AddAddOn{}, err
	}
	price, err := a.Catalog.Price(addOn.Code(), catalog.Monthly, cur)
	if err != nil {
		return subscription.AddAddOn{}, domain.Invalid("addon", fmt.Sprintf("%s is not sold monthly in %s", addOn.Name(), cur.Code()))
	}
	return subscription.AddAddOn{AccountID: account, AddOn: addOn.Code(), Name: addOn.Name(), Price: price}, nil
}

// planCurrency is the currency a plan is charged in: its renewal price's
// (a boxed key's is the one it was enrolled at), else its storefront's,
// else the United States store's.
func (a *subscriptionsAPI) planCurrency(st subscription.Subscription) (money.Currency, error) {
	if price := st.RenewalPrice(); !price.IsZero() {
		return price.Currency(), nil
	}
	store, err := a.Catalog.Storefront(st.Facts().Storefront)
	if err != nil {
		if store, err = a.Catalog.Storefront("US"); err != nil {
			return money.Currency{}, err
		}
	}
	return store.Currency(), nil
}

// addOnField names the request's field addon where the decider names its
// own (add_on, price).
func addOnField(err error) error {
	ve, ok := errors.AsType[*domain.ValidationError](err)
	if !ok {
		return err
	}
	fields := slices.Clone(ve.Fields) // the decider's error may be shared: leave it as it is
	for i := range fields {
		fields[i].Field = "addon"
	}
	return &domain.ValidationError{Fields: fields}
}
