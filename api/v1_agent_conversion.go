package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/agentlog"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/conversion"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/workers/fulfilment"
)

// conversions serves the support-assisted conversion (CNV-4, option 2): a
// saga on stream conversion-<id> whose steps the agent's requests take, in
// order, each once.
type conversions struct {
	*agentAPI
	handler *eventstore.CommandHandler[conversion.Conversion, conversion.Command]
}

func newConversions(g *agentAPI) (*conversions, error) {
	h, err := commandHandler(g.s, g.Engine, conversion.Decider)
	if err != nil {
		return nil, err
	}
	return &conversions{agentAPI: g, handler: h}, nil
}

func (c *conversions) routes() {
	tags := []string{"agent"}
	c.s.Route(Route{Method: "POST", Pattern: "/v1/agent/conversions", Tags: tags, Auth: AuthAgent,
		Summary: "Convert a legacy subscription to Norton Security (option 2)",
		Description: "Starts the support procedure (CNV-4) for a current legacy subscription of the account with a term left (CNV-6: not expired, " +
			"nor in grace until its renewal is charged), mapped as target " +
			"chooses or by seats (CNV-2); Norton One needs acknowledge_losses naming premium-support and anti-theft (CNV-5). Then takes " +
			"its steps, each a recorded agent action with its log code: verify ownership, place a free order for the mapped product, " +
			"activate the new product on device_id, disable the old key, add or remove days so the new subscription expires on the old " +
			"one's day. steps limits how many steps are taken now (default all; disabling the old key and adjusting the days are " +
			"taken together): the rest is taken by POST …/continue. A procedure " +
			"interrupted anywhere resumes there; each step is recorded once.",
		Request: startConversionRequest{}, Responses: map[int]any{http.StatusCreated: conversionView{}, http.StatusNotFound: nil},
		Handler: HandlerFunc(c.start)})
	c.s.Route(Route{Method: "GET", Pattern: "/v1/agent/conversions/{id}", Tags: tags, Auth: AuthAgent,
		Summary:   "Read a conversion",
		Responses: map[int]any{http.StatusOK: conversionView{}, http.StatusNotFound: nil},
		Handler:   HandlerFunc(c.get)})
	c.s.Route(Route{Method: "POST", Pattern: "/v1/agent/conversions/{id}/continue", Tags: tags, Auth: AuthAgent,
		Summary:     "Continue a conversion",
		Description: "Takes the conversion's remaining steps (or steps of them) from where it stopped (CNV-4).",
		Request:     continueConversionRequest{}, Responses: map[int]any{http.StatusOK: conversionView{}, http.StatusNotFound: nil},
		Handler: HandlerFunc(c.resume)})
}

// Requests and answers.
type (
	startConversionRequest struct {
		AccountID         string   `json:"account_id"`
		SubscriptionID    string   `json:"subscription_id" doc:"the legacy subscription to convert"`
		Target            string   `json:"target,omitempty" doc:"NS-STD or NS-DLX for NAV and NIS, NS-PRM for N360 and N1; default by seats (CNV-2)"`
		AcknowledgeLosses []string `json:"acknowledge_losses,omitempty" doc:"the extras the customer agrees to lose (CNV-5)"`
		OwnershipMethod   string   `json:"ownership_method" doc:"how the agent verified ownership: email_and_name, order_number or serial_number"`
		DeviceID          string   `json:"device_id" doc:"the customer's computer to activate the new product on"`
		Reason            string   `json:"reason"`
		Steps             *int     `json:"steps,omitempty" doc:"how many steps to take now, 0 to 5; default all"`
	}
	continueConversionRequest struct {
		Reason string `json:"reason"`
		Steps  *int   `json:"steps,omitempty" doc:"how many steps to take now, 0 to 5; default all that remain"`
	}
	conversionStepView struct {
		Step    string     `json:"step"`
		LogCode string     `json:"log_code"`
		Done    bool       `json:"done"`
		At      *time.Time `json:"at,omitempty"`
	}
	conversionView struct {
		ConversionID      uuid.UUID            `json:"conversion_id"`
		AccountID         uuid.UUID            `json:"account_id"`
		SubscriptionID    uuid.UUID            `json:"subscription_id"`
		From              string               `json:"from"`
		To                string               `json:"to"`
		OldExpiresAt      time.Time            `json:"old_expires_at"`
		NewSubscriptionID *uuid.UUID           `json:"new_subscription_id,omitempty"`
		OrderID           *uuid.UUID           `json:"order_id,omitempty"`
		NewExpiresAt      *time.Time           `json:"new_expires_at,omitempty" doc:"once the days are adjusted"`
		Steps             []conversionStepView `json:"steps"`
		Completed         bool                 `json:"completed"`
	}
)

// conversionSpace derives a conversion's id from the Idempotency-Key of
// the request that starts it.
var conversionSpace = uuid.MustParse("5c0e7a12-93d4-4b6e-8f21-7a9b0c1d2e3f")

func conversionStream(id uuid.UUID) eventstore.StreamID {
	return eventstore.StreamID(conversion.StreamName(id))
}

// parseSteps checks a steps limit: absent means all.
func parseSteps(n *int, v *domain.Validation) int {
	if n == nil {
		return len(conversion.Steps)
	}
	if *n < 0 || *n > len(conversion.Steps) {
		v.Check("steps", fmt.Errorf("must be 0 to %d", len(conversion.Steps)))
	}
	return *n
}

func (c *conversions) start(w http.ResponseWriter, r *http.Request) error {
	var in startConversionRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	var v domain.Validation
	reason, err := parseReason(in.Reason)
	v.Check("", err)
	acctID, err := uuid.Parse(in.AccountID)
	if err != nil {
		v.Check("account_id", errors.New("is required: the account's id"))
	}
	subID, err := uuid.Parse(in.SubscriptionID)
	if err != nil {
		v.Check("subscription_id", errors.New("is required: the legacy subscription's id"))
	}
	method, err := account.ParseOwnershipMethod(in.OwnershipMethod)
	v.Check("ownership_method", err)
	device, err := subscription.ParseDeviceID(in.DeviceID)
	v.Check("device_id", err)
	steps := parseSteps(in.Steps, &v)
	if err := v.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := c.account(ctx, acctID); err != nil {
		return err
	}
	old, _, err := c.subs.handler.Load(ctx, subscriptionStream(subID))
	if err != nil {
		return err
	}
	if !old.Exists() || old.Account() != acctID {
		return subscription.ErrNotFound
	}
	now := c.s.Clock().Now()
	plan, err := subscription.PlanConversion(c.Catalog, old, strings.ToUpper(strings.TrimSpace(in.Target)), in.AcknowledgeLosses, now, c.s.Policy())
	if err != nil {
		return err
	}
	if err := termLeft(old, now, now, ""); err != nil { // the free order's subscription starts now
		return err
	}
	id := uuid.New()
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		id = uuid.NewSHA1(conversionSpace, []byte(principal(r)+"\x00"+key))
	}
	lost := make([]string, len(plan.Loses))
	for i, x := range plan.Loses {
		lost[i] = x.Code()
	}
	facts := old.Facts()
	started := conversion.Started{ConversionID: id, AccountID: acctID, SubscriptionID: subID, From: plan.From.Code(), To: plan.To.Code(),
		Platform: facts.Platform, Storefront: facts.Storefront, Device: device.String(), OwnershipMethod: method,
		OldExpiresAt: old.ExpiresAt(), Lost: lost}
	meta := agentMeta(ctx, reason, agentlog.Conversion, "conversion/"+id.String()+"/start")
	meta.Metadata.CorrelationID = id.String()
	if _, err := c.handler.Handle(ctx, conversionStream(id), conversion.Start{Started: started}, meta); err != nil {
		return err
	}
	st, err := c.run(ctx, id, reason, steps)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/agent/conversions/"+id.String())
	return WriteJSON(w, http.StatusCreated, c.view(st))
}

func (c *conversions) get(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, conversion.ErrNotFound)
	if err != nil {
		return err
	}
	st, _, err := c.handler.Load(r.Context(), conversionStream(id))
	if err == nil && !st.Exists() {
		err = conversion.ErrNotFound
	}
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, c.view(st))
}

func (c *conversions) resume(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, conversion.ErrNotFound)
	if err != nil {
		return err
	}
	var in continueConversionRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	var v domain.Validation
	reason, err := parseReason(in.Reason)
	v.Check("", err)
	steps := parseSteps(in.Steps, &v)
	if err := v.Err(); err != nil {
		return err
	}
	st, err := c.run(r.Context(), id, reason, steps)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, c.view(st))
}

// run takes up to limit of conversion id's remaining steps, in order: each
// step's effect under a command id derived from the conversion and the
// step (a step cut short before it was recorded runs again as a no-op),
// then its record on the saga's stream.
func (c *conversions) run(ctx context.Context, id uuid.UUID, reason string, limit int) (conversion.Conversion, error) {
	stream := conversionStream(id)
	st, _, err := c.handler.Load(ctx, stream)
	if err == nil && !st.Exists() {
		err = conversion.ErrNotFound
	}
	for taken := 0; err == nil; taken++ {
		step, ok := st.Next()
		// Disabling the old key and adjusting the days go together: paused
		// between them, the key's term could end before the days are
		// adjusted to it, which AGT-2 would then refuse for ever.
		if !ok || taken >= limit && step != conversion.AdjustDays {
			break
		}
		var done conversion.StepCompleted
		if done, err = c.take(ctx, st, step, c.stepMeta(ctx, id, reason, step, "")); err != nil {
			break
		}
		var out eventstore.Outcome[conversion.Conversion]
		if out, err = c.handler.Handle(ctx, stream, conversion.CompleteStep{Done: done}, c.stepMeta(ctx, id, reason, step, "/record")); err == nil {
			c.settle(ctx, out.Append)
			st = out.State
		}
	}
	return st, err
}

// stepMeta is the metadata of a step's commands: the agent, the reason, the
// step's log code, correlated with the conversion (AGT-1, CNV-4).
func (c *conversions) stepMeta(ctx context.Context, id uuid.UUID, reason string, step conversion.Step, suffix string) eventstore.CommandMeta {
	meta := agentMeta(ctx, reason, step.LogCode(), "conversion/"+id.String()+"/"+string(step)+suffix)
	meta.Metadata.CorrelationID = id.String()
	return meta
}

// take makes step's effect, idempotently, and returns its record.
func (c *conversions) take(ctx context.Context, st conversion.Conversion, step conversion.Step, meta eventstore.CommandMeta) (conversion.StepCompleted, error) {
	plan := st.Plan()
	done := conversion.StepCompleted{Step: step}
	var err error
	var out eventstore.Outcome[subscription.Subscription]
	switch step {
	case conversion.VerifyOwnership:
		var res eventstore.Outcome[account.Account]
		res, err = c.accounts.handler.Handle(ctx, streamOf(plan.AccountID), account.VerifyOwnership{Method: plan.OwnershipMethod}, meta)
		c.settle(ctx, res.Append)
	case conversion.FreeOrder:
		done.OrderID, done.SubscriptionID, err = c.freeOrderStep(ctx, plan, meta)
	case conversion.Activate:
		var device subscription.DeviceID
		if device, err = subscription.ParseDeviceID(plan.Device); err == nil {
			out, err = c.subs.handler.Handle(ctx, subscriptionStream(st.NewSubscription()),
				subscription.Activate{AccountID: plan.AccountID, Device: device}, meta)
		}
	case conversion.DisableOldKey:
		done.ExpiresAt, err = c.disableStep(ctx, plan.SubscriptionID, st.NewSubscription(), meta)
	case conversion.AdjustDays:
		done.Days, done.ExpiresAt, err = c.adjustStep(ctx, st.NewSubscription(), st.CarriedExpiry(), meta)
	}
	c.settle(ctx, out.Append)
	return done, err
}

// disableStep disables the old key, replaced by the new subscription up to
// its expiry as it stands (a renewal since the start goes on there too), and
// returns that expiry. A key whose term has ended since the conversion
// started, or will before the new subscription's adjusted end, no longer
// converts (termLeft).
func (c *conversions) disableStep(ctx context.Context, old, replacement uuid.UUID, meta eventstore.CommandMeta) (time.Time, error) {
	st, _, err := c.subs.handler.Load(ctx, subscriptionStream(old))
	if err != nil {
		return time.Time{}, err
	}
	if by, through := st.Replacement(); by == replacement {
		// The step's effect landed before its record (a resume): the term
		// carried is the one recorded then, whatever a charge in flight
		// at the time did to the key since (it is refunded: ARS-8).
		return through, nil
	}
	created, _, err := c.subs.handler.Load(ctx, subscriptionStream(replacement))
	if err != nil {
		return time.Time{}, err
	}
	// The free order's subscription is left to the agent, who knows whether
	// the customer renews the old one.
	if err := termLeft(st, created.ExpiresAt(), c.s.Clock().Now(), fmt.Sprintf("; the free order's subscription %s stays: "+
		"disable it if the customer does not convert after renewing", replacement)); err != nil {
		return time.Time{}, err
	}
	out, err := c.subs.handler.Handle(ctx, subscriptionStream(old), subscription.Disable{ReplacedBy: replacement}, meta)
	if err != nil {
		return time.Time{}, err
	}
	c.settle(ctx, out.Append)
	_, through := out.State.Replacement()
	return through, nil
}

// termLeft refuses to convert old by the support procedure once too little
// of its term is left: expired, in grace until its renewal is charged, or
// ending before the new subscription, expiring at newExpiry, can be made to
// end on its day (whole days, AGT-2, keep newExpiry's time of day; no day
// removed may be in the past). A pending charge would also pay for a key
// being disabled. The refusal ends with more, if any.
func termLeft(old subscription.Subscription, newExpiry, now time.Time, more string) error {
	if subscription.AddDays(newExpiry, subscription.DaysBetween(newExpiry, old.ExpiresAt())).After(now) {
		return nil
	}
	return domain.Conflict(fmt.Sprintf("the subscription's term ends on %s (it expired, is in grace until its renewal is charged, or "+
		"ends today): the support procedure converts a subscription with a day of its term left (CNV-6)%s",
		old.ExpiresAt().Format(time.DateOnly), more))
}

// freeOrderStep places the free order of the mapped product (its id derived
// from the conversion's) and returns it with the subscription it yielded.
func (c *conversions) freeOrderStep(ctx context.Context, plan conversion.Started, meta eventstore.CommandMeta) (uuid.UUID, uuid.UUID, error) {
	acct, err := c.account(ctx, plan.AccountID)
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	product, err := c.Catalog.Product(plan.To)
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	platform, err := catalog.ParsePlatform(plan.Platform)
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	// The new subscription renews as the old one did: one whose renewal was
	// off (or an opted-out trial) is not enrolled by its conversion (ARS-3).
	old, _, err := c.subs.handler.Load(ctx, subscriptionStream(plan.SubscriptionID))
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	orderID := uuid.NewSHA1(plan.ConversionID, []byte("free-order"))
	placed, _, err := c.orders.orders.Load(ctx, fulfilment.OrderStream(orderID))
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	if placed.Exists() {
		// An earlier attempt of this step placed the order and was cut
		// short: the order stands as placed, whatever changed since (the
		// old trial billed in between would make it another purchase).
		res, err := c.fulfilFree(ctx, orderID, meta.Metadata)
		if err != nil {
			return uuid.Nil, uuid.Nil, err
		}
		return orderID, res.Order.Items()[0].SubscriptionID, nil
	}
	// It is paid for as the old one was: the card its order was paid with
	// stays the fallback of its charges (ARS-6, TRI-4).
	f := freeOrder{product: product, platform: platform, term: catalog.Annual, storefront: plan.Storefront, renews: old.AutoRenew(),
		token: old.Facts().PaymentToken, card: old.Facts().PaymentCard}
	if old.Term() == catalog.Trial.String() {
		// A trial goes on as a trial of the new product, billed at its end
		// (TRI-3, TRI-4), not as a year renewed a week before that end.
		f.term = catalog.Trial
	}
	res, err := c.placeFreeOrder(ctx, acct, orderID, f, meta)
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	return orderID, res.Order.Items()[0].SubscriptionID, nil
}

// adjustStep moves the new subscription's expiry onto the old one's day
// (AGT-2's whole days), unless it is there already (a resumed step), and
// returns the days moved since it was created and the new expiry.
func (c *conversions) adjustStep(ctx context.Context, id uuid.UUID, oldExpiry time.Time, meta eventstore.CommandMeta) (int, time.Time, error) {
	s, _, err := c.subs.handler.Load(ctx, subscriptionStream(id))
	if err != nil {
		return 0, time.Time{}, err
	}
	if days := subscription.DaysBetween(s.ExpiresAt(), oldExpiry); days != 0 {
		out, err := c.subs.handler.Handle(ctx, subscriptionStream(id), subscription.AdjustDays{Days: days}, meta)
		if err != nil {
			return 0, time.Time{}, err
		}
		c.settle(ctx, out.Append)
		s = out.State
	}
	return subscription.DaysBetween(s.Facts().ExpiresAt, s.ExpiresAt()), s.ExpiresAt(), nil
}

func (c *conversions) view(st conversion.Conversion) conversionView {
	p := st.Plan()
	v := conversionView{ConversionID: p.ConversionID, AccountID: p.AccountID, SubscriptionID: p.SubscriptionID, From: p.From, To: p.To,
		OldExpiresAt: p.OldExpiresAt.UTC(), Completed: st.Completed()}
	done := st.Done()
	for i, step := range conversion.Steps {
		sv := conversionStepView{Step: string(step), LogCode: step.LogCode()}
		if i < len(done) {
			at := done[i].At.UTC()
			sv.Done, sv.At = true, &at
			switch step {
			case conversion.FreeOrder:
				v.OrderID, v.NewSubscriptionID = &done[i].OrderID, &done[i].SubscriptionID
			case conversion.AdjustDays:
				exp := done[i].ExpiresAt.UTC()
				v.NewExpiresAt = &exp
			}
		}
		v.Steps = append(v.Steps, sv)
	}
	return v
}
