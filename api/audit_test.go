package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/api"
	"github.com/subs-engine/subs/domain/events"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/projections"
)

// agents accepts two agent credentials: an auditor and a support agent
// without the auditor role.
type agents struct{}

const (
	auditorCredential = "agent-credential-auditor"
	supportCredential = "agent-credential-support"
)

func (agents) AuthenticateAgent(_ context.Context, credential string, _ time.Time) (api.Agent, error) {
	switch credential {
	case auditorCredential:
		return api.Agent{ID: "agent-auditor", Roles: []string{api.RoleAuditor}}, nil
	case supportCredential:
		return api.Agent{ID: "agent-support"}, nil
	}
	return api.Agent{}, api.ErrUnauthenticated
}

func withAgents(c *api.ServerConfig) { c.Agents = agents{} }

// personalData lists what the tests' customer Ann gives as personal data.
var personalData = []string{"ann@example.com", "Ann Lee", "Ann Smith", "1 Main St", "Toronto", "M5V 2T6"}

// holdsPersonalData returns the first of personalData that s holds, case
// insensitively, or "".
func holdsPersonalData(s string) string {
	for _, p := range personalData {
		if strings.Contains(strings.ToLower(s), strings.ToLower(p)) {
			return p
		}
	}
	return ""
}

// publicTables returns every row of every table of the engine's schema
// (read models, sessions, reservations, the log itself) as text.
func (e *engineEnv) publicTables() map[string]string {
	e.t.Helper()
	ctx := context.Background()
	rows, err := e.store.Pool().Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	if err != nil {
		e.t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			e.t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	out := map[string]string{}
	for _, table := range tables {
		var text *string
		if err := e.store.Pool().QueryRow(ctx, `SELECT string_agg(t::text, E'\n') FROM "`+table+`" t`).Scan(&text); err != nil {
			e.t.Fatal(err)
		}
		if text != nil {
			out[table] = *text
		}
	}
	return out
}

// rule AUD-5: after an account is erased, no read model, log line, export
// or replay holds its personal data; the hash chain still verifies; the
// history still replays, with the personal fields erased; the address is
// free again.
func TestRule_AUD5_ErasedAccountLeavesNoPersonalDataAndStillReplaysAndVerifies(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t, withAgents)
	id := e.signUp("Ann@Example.com", "secret1")
	token := e.signIn("ann@example.com", "secret1")
	e.want(e.call("PUT", "/v1/account/billing", token, cardBilling("US", "4242 4242 4242 4242")), http.StatusOK)
	e.want(e.call("PUT", "/v1/account/profile", token,
		`{"name":"Ann Smith","address":{"line1":"1 Main St","city":"Toronto","postal_code":"M5V 2T6"},"country":"CA","language":"fr"}`), http.StatusOK)
	lines := `[` + line("NS-STD", "annual", "windows", 1) + `]`
	e.buy(token, lines)
	pendingOrder(e, lines) // placed with ann's address and a wrong password: saved in no account
	e.want(e.call("POST", "/v1/password/forgot", "", `{"email":"ann@example.com"}`), http.StatusAccepted)
	e.sendMail()
	beforeErasure := e.clock.Now()
	e.clock.Advance(time.Hour)

	// Before: the history holds it, decrypted for the auditor; the table holds only ciphertext.
	stream := "/v1/audit/streams/account-" + id
	if got := e.want(e.call("GET", stream, auditorCredential, ""), http.StatusOK); holdsPersonalData(string(got.body)) == "" {
		t.Fatalf("before erasure the auditor's replay shows no personal data: %s", got.body)
	}
	// Agents only, any agent, with a reason; an unknown account is not found.
	e.want(e.call("POST", "/v1/agent/accounts/"+uuid.NewString()+"/erase", supportCredential, `{"reason":"customer asked"}`), http.StatusNotFound)
	e.want(e.call("POST", "/v1/agent/accounts/"+id+"/erase", token, `{"reason":"customer asked"}`), http.StatusUnauthorized)
	if r := e.want(e.call("POST", "/v1/agent/accounts/"+id+"/erase", supportCredential, `{}`), http.StatusBadRequest); r.fields(t)[0] != "reason" {
		t.Errorf("erase without a reason: %s", r.body)
	}
	got := e.want(e.call("POST", "/v1/agent/accounts/"+id+"/erase", supportCredential, `{"reason":"the customer asked (ticket 42)"}`), http.StatusOK).json(t)
	if got["keys_destroyed"] != float64(2) { // the account's and its address's (the pending order)
		t.Errorf("erasure answered %v, want 2 keys destroyed", got)
	}
	again := e.want(e.call("POST", "/v1/agent/accounts/"+id+"/erase", supportCredential, `{"reason":"again"}`), http.StatusOK).json(t)
	if again["keys_destroyed"] != float64(0) {
		t.Errorf("erasing again answered %v", again)
	}
	e.sendMail()

	for table, rows := range e.publicTables() {
		if p := holdsPersonalData(rows); p != "" {
			t.Errorf("table %s still holds %q after erasure:\n%s", table, p, rows)
		}
	}
	if p := holdsPersonalData(e.logs.String()); p != "" {
		t.Errorf("the log holds %q", p)
	}
	export := e.want(e.call("GET", "/v1/audit/export", auditorCredential, ""), http.StatusOK)
	if p := holdsPersonalData(string(export.body)); p != "" {
		t.Errorf("the export holds %q", p)
	}
	var page struct{ Events []json.RawMessage }
	if err := json.Unmarshal(export.body, &page); err != nil || len(page.Events) != e.eventCount() {
		t.Errorf("export: %d events of %d, %v", len(page.Events), e.eventCount(), err)
	}
	report, err := e.store.Verify(context.Background(), nil)
	if err != nil || report.Broken != nil {
		t.Fatalf("verify after erasure: %+v, %v", report, err)
	}
	// A rebuild from the log yields the read models as they are (AUD-4).
	types := eventstore.NewEventTypes()
	types.Register(1, events.All()...)
	for _, p := range projections.All() {
		if d, err := projections.Compare(context.Background(), e.store, types, p); err != nil || !d.Equal() {
			t.Errorf("projection %s after erasure differs from its rebuild: %+v, %v", p.Name(), d, err)
		}
	}

	// Replay: now, and as of before the erasure, personal fields read as erased.
	now := e.want(e.call("GET", stream, auditorCredential, ""), http.StatusOK)
	if p := holdsPersonalData(string(now.body)); p != "" {
		t.Errorf("the replay holds %q", p)
	}
	var replay struct {
		Events []struct {
			Type  string `json:"event_type"`
			Actor struct{ Kind, ID, Reason string }
		}
		State map[string]any
	}
	if err := json.Unmarshal(now.body, &replay); err != nil {
		t.Fatal(err)
	}
	last := replay.Events[len(replay.Events)-1]
	if last.Type != "account.erased" || last.Actor.Kind != "agent" || last.Actor.ID != "agent-support" || last.Actor.Reason != "the customer asked (ticket 42)" {
		t.Errorf("last event %+v, want account.erased by the agent with the reason", last)
	}
	if replay.State["erased"] != true || replay.State["email"] != "" {
		t.Errorf("state now: %v", replay.State)
	}
	then := e.want(e.call("GET", stream+"?as_of="+beforeErasure.Format(time.RFC3339Nano), auditorCredential, ""), http.StatusOK)
	if err := json.Unmarshal(then.body, &replay); err != nil {
		t.Fatal(err)
	}
	billing, _ := replay.State["billing"].(map[string]any)
	if replay.State["registered"] != true || replay.State["erased"] != false || replay.State["name"] != "[erased]" ||
		replay.State["country"] != "CA" || billing["last4"] != "4242" || billing["holder_name"] != "[erased]" {
		t.Errorf("state as of before the erasure: %v", replay.State)
	}

	// The account is gone for its customer; the address is free.
	e.want(e.call("GET", "/v1/account/profile", token, ""), http.StatusUnauthorized)
	e.want(e.call("POST", "/v1/sessions", "", `{"email":"ann@example.com","password":"secret1"}`), http.StatusUnauthorized)
	e.signUp("ann@example.com", "secret2")
}

// rule AUD-1, AUD-2: an auditor replays a stream as of an instant, with
// each event's actor, command id and clock time and the state folded then;
// the audit endpoints need the auditor role (403) and an agent (401).
func TestRule_AUD2_AuditorReplaysAStreamAsOfAnInstant(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t, withAgents)
	id := e.signUp("ann@example.com", "secret1")
	token := e.signIn("ann@example.com", "secret1")
	first := e.clock.Now()
	e.clock.Advance(24 * time.Hour)
	e.want(e.call("PUT", "/v1/account/profile", token, `{"name":"Ann Smith","country":"CA","language":"fr"}`), http.StatusOK)

	stream := "/v1/audit/streams/account-" + id
	e.want(e.call("GET", stream, token, ""), http.StatusUnauthorized)
	e.want(e.call("GET", stream, supportCredential, ""), http.StatusForbidden)
	e.want(e.call("GET", "/v1/audit/export", supportCredential, ""), http.StatusForbidden)
	e.want(e.call("GET", "/v1/audit/export", token, ""), http.StatusUnauthorized)
	if r := e.want(e.call("GET", stream+"?as_of=yesterday", auditorCredential, ""), http.StatusBadRequest); r.fields(t)[0] != "as_of" {
		t.Errorf("bad as_of: %s", r.body)
	}

	var replay struct {
		AsOf   *time.Time `json:"as_of"`
		Events []struct {
			Type       string    `json:"event_type"`
			RecordedAt time.Time `json:"recorded_at"`
			CommandID  string    `json:"command_id"`
			Actor      struct{ Kind, ID string }
		}
		State map[string]any
	}
	then := e.want(e.call("GET", stream+"?as_of="+first.Format(time.RFC3339), auditorCredential, ""), http.StatusOK)
	if err := json.Unmarshal(then.body, &replay); err != nil {
		t.Fatal(err)
	}
	if replay.AsOf == nil || len(replay.Events) == 0 || replay.State["name"] != "Ann Lee" || replay.State["country"] != "US" {
		t.Errorf("as of sign-up: %s", then.body)
	}
	reg := replay.Events[0]
	if reg.Type != "account.registered" || !reg.RecordedAt.Equal(first) || reg.Actor.Kind != "customer" {
		t.Errorf("registration event %+v", reg)
	}
	now := e.want(e.call("GET", stream, auditorCredential, ""), http.StatusOK)
	if err := json.Unmarshal(now.body, &replay); err != nil {
		t.Fatal(err)
	}
	if replay.State["name"] != "Ann Smith" || replay.State["country"] != "CA" {
		t.Errorf("state now: %v", replay.State)
	}
	// An order's and a subscription's state fold too.
	bought := e.buy(token, `[`+line("NS-STD", "annual", "windows", 1)+`]`)
	sub := e.want(e.call("GET", "/v1/audit/streams/subscription-"+items(t, bought)[0]["subscription_id"].(string), auditorCredential, ""), http.StatusOK).json(t)
	if st, _ := sub["state"].(map[string]any); st["status"] != "active" || st["term"] != "annual" {
		t.Errorf("subscription state: %v", sub["state"])
	}
	ord := e.want(e.call("GET", "/v1/audit/streams/order-"+bought["order_id"].(string), auditorCredential, ""), http.StatusOK).json(t)
	if st, _ := ord["state"].(map[string]any); st["paid"] != true || st["placement"].(map[string]any)["buyer_email"] != "ann@example.com" {
		t.Errorf("order state: %v", ord["state"])
	}
	// Paging through the export.
	page := e.want(e.call("GET", "/v1/audit/export?limit=1", auditorCredential, ""), http.StatusOK).json(t)
	if len(page["events"].([]any)) != 1 || page["next_after"] == nil {
		t.Errorf("first export page: %v", page)
	}
}
