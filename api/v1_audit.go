package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/order"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/projections"
)

// auditAPI serves the auditors' endpoints (DOMAIN §13) and the erasure of an
// account's personal data (AUD-5).
type auditAPI struct {
	Engine
	s *Server
}

func registerAudit(s *Server, deps Engine) error {
	a := &auditAPI{Engine: deps, s: s}
	tags := []string{"audit"}
	s.Route(Route{Method: http.MethodGet, Pattern: "/v1/audit/streams/{stream}", Tags: tags, Auth: AuthAgent,
		Summary: "Replay a stream",
		Description: "For agents with the auditor role (others: 403). The stream's events in version order, each with its actor " +
			"(customer, agent with reason and log code, or system), command, causation and correlation ids, clock time and " +
			"schema version (AUD-1), and the aggregate's state folded from them. With ?as_of=<RFC 3339 instant>, only the events " +
			"recorded at or before it and the state as it stood then (AUD-2). Personal fields of an erased account read as erased (AUD-5).",
		Responses: map[int]any{http.StatusOK: auditStreamView{}, http.StatusForbidden: nil},
		Handler:   HandlerFunc(a.stream)})
	s.Route(Route{Method: http.MethodGet, Pattern: "/v1/audit/export", Tags: tags, Auth: AuthAgent,
		Summary: "Export the log",
		Description: "For agents with the auditor role (others: 403). Stored events in position order, every column as stored " +
			"(data with personal fields encrypted, hash in hex), so the hash chain can be recomputed elsewhere (AUD-3). " +
			"?stream= narrows to one stream; ?after=<position> and ?limit= (default and at most 1000) page through the log: " +
			"next_after is the after of the next page, absent on the last one.",
		Responses: map[int]any{http.StatusOK: auditExportView{}, http.StatusForbidden: nil},
		Handler:   HandlerFunc(a.export)})
	s.Route(Route{Method: http.MethodPost, Pattern: "/v1/agent/accounts/{id}/erase", Tags: []string{"agent"}, Auth: AuthAgent,
		Summary: "Erase an account's personal data",
		Description: "A support agent's action on the customer's request, with a reason (AGT-1); any agent may do it. Records " +
			"account.erased, destroys the data keys of the account and of its e-mail address (crypto-shredding: the history " +
			"still replays and verifies, its name, address, e-mail and card holder read as erased), frees the e-mail address, " +
			"signs the account out and removes its personal data from the read models (AUD-5). Erasing again changes nothing.",
		Request:   eraseRequest{},
		Responses: map[int]any{http.StatusOK: erasureView{}, http.StatusNotFound: nil},
		Handler:   HandlerFunc(a.erase)})
	return nil
}

// notAuditor refuses an agent without the auditor role.
type notAuditor struct{}

func (notAuditor) Error() string   { return "this needs an agent with the auditor role" }
func (notAuditor) Forbidden() bool { return true }

func requireAuditor(ctx context.Context) error {
	if agent, ok := AgentFrom(ctx); !ok || !agent.HasRole(RoleAuditor) {
		return notAuditor{}
	}
	return nil
}

type auditActorView struct {
	Kind    string `json:"kind" doc:"customer, agent or system"`
	ID      string `json:"id,omitempty"`
	Reason  string `json:"reason,omitempty" doc:"An agent's reason (AGT-1)."`
	LogCode string `json:"log_code,omitempty"`
}

type auditEventView struct {
	Position      int64           `json:"global_position"`
	Version       int64           `json:"stream_version"`
	EventID       uuid.UUID       `json:"event_id"`
	Type          string          `json:"event_type"`
	SchemaVersion int             `json:"schema_version"`
	RecordedAt    time.Time       `json:"recorded_at" doc:"The engine clock's time of the command."`
	Actor         auditActorView  `json:"actor"`
	CommandID     string          `json:"command_id,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	Data          json.RawMessage `json:"data" doc:"The payload, personal fields decrypted or erased."`
}

type auditStreamView struct {
	Stream string           `json:"stream"`
	AsOf   *time.Time       `json:"as_of,omitempty"`
	Events []auditEventView `json:"events"`
	State  any              `json:"state" doc:"The aggregate's state folded from the events; null for a stream of no known aggregate or of no event."`
}

type auditExportView struct {
	Events    []json.RawMessage `json:"events" doc:"Stored events as subs audit export writes them."`
	NextAfter int64             `json:"next_after,omitempty"`
}

type eraseRequest struct {
	Reason string `json:"reason" doc:"Why the agent erases the account, e.g. the customer's request (AGT-1)."`
}

type erasureView struct {
	AccountID     uuid.UUID `json:"account_id"`
	KeysDestroyed int64     `json:"keys_destroyed" doc:"Data keys destroyed now: 0 when the account was erased already."`
}

func (a *auditAPI) stream(w http.ResponseWriter, r *http.Request) error {
	if err := requireAuditor(r.Context()); err != nil {
		return err
	}
	stream := eventstore.StreamID(r.PathValue("stream"))
	if err := stream.Validate(); err != nil {
		return domain.Invalid("stream", "is not a stream id such as account-<uuid>")
	}
	var view auditStreamView
	view.Stream = string(stream)
	opts := eventstore.ReadStreamOptions{}
	if s := r.URL.Query().Get("as_of"); s != "" {
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return domain.Invalid("as_of", "is not an RFC 3339 instant such as 2027-03-01T00:00:00Z")
		}
		at = at.UTC()
		opts.AsOf, view.AsOf = at, &at
	}
	records, err := a.Store.ReadStream(r.Context(), stream, opts)
	if err != nil {
		return err
	}
	view.Events = make([]auditEventView, len(records))
	for i, e := range records {
		md := e.Metadata
		view.Events[i] = auditEventView{Position: e.Position, Version: e.Version, EventID: e.ID, Type: e.Type,
			SchemaVersion: e.SchemaVersion, RecordedAt: e.RecordedAt, CommandID: md.CommandID, CausationID: md.CausationID,
			CorrelationID: md.CorrelationID, Data: e.Data,
			Actor: auditActorView{Kind: string(md.ActorKind), ID: md.ActorID, Reason: md.Reason, LogCode: md.LogCode}}
	}
	at := opts.AsOf
	if at.IsZero() {
		at = a.s.Clock().Now()
	}
	if view.State, err = FoldedState(a.Types, stream, records, at, a.s.Policy()); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, view)
}

// maxExportPage bounds one page of GET /v1/audit/export.
const maxExportPage = 1000

func (a *auditAPI) export(w http.ResponseWriter, r *http.Request) error {
	if err := requireAuditor(r.Context()); err != nil {
		return err
	}
	q := r.URL.Query()
	opts := eventstore.ExportOptions{Stream: eventstore.StreamID(q.Get("stream")), Limit: maxExportPage}
	if opts.Stream != "" && opts.Stream.Validate() != nil {
		return domain.Invalid("stream", "is not a stream id such as account-<uuid>")
	}
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return domain.Invalid("after", "is not a global position (a whole number, 0 or more)")
		}
		opts.After = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxExportPage {
			return domain.Invalid("limit", fmt.Sprintf("is not a whole number from 1 to %d", maxExportPage))
		}
		opts.Limit = n
	}
	// Written by hand so that each event keeps the exact stored text its
	// hash covers (encoding/json would compact it).
	var (
		body bytes.Buffer
		n    int
		last struct {
			Position int64 `json:"global_position"`
		}
	)
	body.WriteString(`{"events":[`)
	err := a.Store.Export(r.Context(), opts, func(line []byte) error {
		if n > 0 {
			body.WriteByte(',')
		}
		n++
		body.Write(line)
		return json.Unmarshal(line, &last)
	})
	if err != nil {
		return err
	}
	body.WriteString(`]`)
	if n == opts.Limit {
		fmt.Fprintf(&body, `,"next_after":%d`, last.Position)
	}
	body.WriteString("}")
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(body.Bytes())
	return err
}

func (a *auditAPI) erase(w http.ResponseWriter, r *http.Request) error {
	agent, _ := AgentFrom(r.Context())
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return account.ErrNotFound
	}
	var in eraseRequest
	if err := DecodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Reason == "" {
		return domain.Invalid("reason", "is required: say why the account is erased (AGT-1)")
	}
	n, err := EraseAccount(r.Context(), a.Engine, a.s.Clock(), id, eventstore.Metadata{
		ActorKind: eventstore.ActorAgent, ActorID: agent.ID, Reason: in.Reason})
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, erasureView{AccountID: id, KeysDestroyed: n})
}

// EraseAccount erases an account's personal data (AUD-5): it records
// account.erased with meta (who and why), which frees the account's e-mail
// address; destroys the data keys of the account and of that address, so
// every personal field of the account's history, and of orders placed with
// its address, reads as erased from now on; deletes its sessions; waits
// (bounded) for the read models, which drop the account's rows as they
// apply account.erased; and blanks the buyer's address of orders placed with
// it and saved in no account. Before all that, it turns automatic renewal
// off for the subscriptions the account would go on paying for with no one
// told (stopRenewals). It returns how many data keys it destroyed.
// Running it again finishes an interrupted erasure and otherwise changes
// nothing. deps needs Store and Types; Projections, when set, are waited for.
func EraseAccount(ctx context.Context, deps Engine, clk clock.Clock, id uuid.UUID, meta eventstore.Metadata) (int64, error) {
	handler, err := eventstore.NewCommandHandler(account.Decider, eventstore.HandlerConfig{
		Store: deps.Store, Types: deps.Types, Clock: clk, Policy: policy.Default()})
	if err != nil {
		return 0, err
	}
	stream := streamOf(id)
	records, err := deps.Store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{})
	if err != nil {
		return 0, err
	}
	// The address as registered: the state forgets it once erased, and an
	// interrupted erasure still has to destroy its key.
	var email account.Email
	for _, rec := range records {
		e, err := deps.Types.Decode(rec)
		if err != nil {
			return 0, err
		}
		if reg, ok := e.(account.Registered); ok {
			email = reg.Email
		}
	}
	if err := stopRenewals(ctx, deps, clk, id, email, meta); err != nil {
		return 0, err
	}
	out, err := handler.Handle(ctx, stream, account.Erase{}, eventstore.CommandMeta{CommandID: "erase/" + id.String(), Metadata: meta})
	if err != nil {
		return 0, err
	}
	subjects := []domain.DataSubject{{Account: id}}
	if !email.IsZero() {
		subjects = append(subjects, domain.DataSubject{Email: email.String()})
	}
	n, err := deps.Store.ErasePersonalData(ctx, subjects...)
	if err != nil {
		return 0, err
	}
	if _, err := deps.Store.Pool().Exec(ctx, `DELETE FROM sessions WHERE account_id = $1`, id); err != nil {
		return n, fmt.Errorf("api: erase the sessions of account %s: %w", id, err)
	}
	deps.settle(ctx, out.Append)
	if !email.IsZero() {
		if err := projections.EraseBuyerEmail(ctx, deps.Store.Pool(), email.String()); err != nil {
			return n, err
		}
	}
	return n, nil
}

// stopRenewals turns automatic renewal off, with meta, for the
// subscriptions of account id, erased: those registered in it or saved
// with an order in it, found in the log (migration 0022's index), and those
// from orders placed with its address and saved in no account (ORD-2),
// found in the order history, brought up to date first. Their notices and
// receipts would go to no one (AUD-5), and no one would be left to turn
// renewal off or to ask for a refund, while the cards went on being
// charged. It runs before the erasure drops the account's rows: an
// interrupted erasure runs it again.
func stopRenewals(ctx context.Context, deps Engine, clk clock.Clock, id uuid.UUID, email account.Email, meta eventstore.Metadata) error {
	head, err := deps.Store.Head(ctx)
	if err != nil {
		return err
	}
	deps.settleAt(ctx, head)
	rows, err := deps.Store.Pool().Query(ctx, `SELECT DISTINCT ON (subscription_id) subscription_id, order_id FROM (
    SELECT substr(stream_id, length('subscription-') + 1)::uuid AS subscription_id, NULL::uuid AS order_id FROM events
    WHERE event_type IN ('subscription.registered', 'subscription.saved_with_order') AND data->>'account_id' = $1::text
    UNION ALL
    SELECT s.subscription_id, s.order_id FROM order_subscriptions s JOIN orders o ON o.order_id = s.order_id
    WHERE o.account_id IS NULL AND $2 <> '' AND lower(o.buyer_email) = lower($2)) AS subs
ORDER BY subscription_id, order_id NULLS LAST`, id.String(), email.String())
	if err != nil {
		return fmt.Errorf("api: the subscriptions of account %s: %w", id, err)
	}
	type sub struct{ id, order uuid.UUID }
	subs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sub, error) {
		var s sub
		var order *uuid.UUID
		err := row.Scan(&s.id, &order)
		if order != nil {
			s.order = *order
		}
		return s, err
	})
	if err != nil {
		return fmt.Errorf("api: the subscriptions of account %s: %w", id, err)
	}
	handler, err := eventstore.NewCommandHandler(subscription.Decider, eventstore.HandlerConfig{
		Store: deps.Store, Types: deps.Types, Clock: clk, Policy: policy.Default()})
	if err != nil {
		return err
	}
	for _, s := range subs {
		cmd := subscription.StopAutoRenewalForErasure{AccountID: id, OrderID: s.order}
		cmdID := "erase/" + id.String() + "/" + s.id.String() + "/" + s.order.String()
		if _, err := handler.Handle(ctx, subscriptionStream(s.id), cmd, eventstore.CommandMeta{CommandID: cmdID, Metadata: meta}); err != nil {
			return fmt.Errorf("api: turn the renewal of subscription %s off: %w", s.id, err)
		}
	}
	return nil
}

// FoldedState folds records, a stream's events, into its aggregate's state
// and renders it for auditors (AUD-2); at is the instant the state is seen
// at (a subscription's status depends on it, and on p). A stream of no known
// aggregate, or of no event, renders as nil.
func FoldedState(types *eventstore.EventTypes, stream eventstore.StreamID, records []eventstore.RecordedEvent, at time.Time, p policy.Policy) (any, error) {
	if len(records) == 0 {
		return nil, nil
	}
	events := make([]domain.Event, len(records))
	for i, r := range records {
		e, err := types.Decode(r)
		if err != nil {
			return nil, err
		}
		events[i] = e
	}
	switch stream.Category() {
	case "account":
		return accountState(account.Decider.Fold(events...)), nil
	case "order":
		return orderState(order.Decider.Fold(events...)), nil
	case "subscription":
		return subscriptionState(subscription.Decider.Fold(events...), at, p), nil
	}
	return nil, nil
}

type accountStateView struct {
	AccountID      uuid.UUID              `json:"account_id"`
	Registered     bool                   `json:"registered"`
	Erased         bool                   `json:"erased"`
	Email          string                 `json:"email"`
	Name           string                 `json:"name"`
	Country        string                 `json:"country"`
	Language       string                 `json:"language"`
	Address        account.Address        `json:"address"`
	BillingCountry string                 `json:"billing_country,omitempty"`
	Billing        *payment.PaymentMethod `json:"billing,omitempty"`
}

func accountState(a account.Account) accountStateView {
	v := accountStateView{AccountID: a.ID(), Registered: a.Registered(), Erased: a.Erased(), Email: a.Email().String(),
		Name: a.Name().String(), Country: a.Country().String(), Language: a.Language().String(), Address: a.Address()}
	if country, m, ok := a.Billing(); ok {
		v.BillingCountry, v.Billing = country.String(), &m
	}
	return v
}

type orderStateView struct {
	Placement   order.Placed `json:"placement"`
	SavedTo     uuid.UUID    `json:"saved_to,omitzero"`
	Pending     bool         `json:"pending"`
	Paid        bool         `json:"paid"`
	Declined    bool         `json:"declined"`
	DeclineCode string       `json:"decline_code,omitempty"`
	Disowned    bool         `json:"disowned"`
	Items       []order.Item `json:"items"`
}

func orderState(o order.Order) orderStateView {
	return orderStateView{Placement: o.Placement(), SavedTo: o.SavedTo(), Pending: o.Pending(), Paid: o.Paid(),
		Declined: o.Declined(), DeclineCode: o.DeclineCode(), Disowned: o.Disowned(), Items: o.Items()}
}

// subscriptionStateView is the subscription's status at the instant seen,
// with the state as the aggregate encodes it (creation facts, account,
// devices, renewal lifecycle).
type subscriptionStateView struct {
	Status    subscription.Status       `json:"status"`
	Term      string                    `json:"term"`
	ExpiresAt time.Time                 `json:"expires_at"`
	Renewing  bool                      `json:"renewing"`
	State     subscription.Subscription `json:"state"`
}

func subscriptionState(s subscription.Subscription, at time.Time, p policy.Policy) subscriptionStateView {
	return subscriptionStateView{Status: s.Status(at, p), Term: s.Term(), ExpiresAt: s.ExpiresAt(), Renewing: s.Renewing(), State: s}
}
