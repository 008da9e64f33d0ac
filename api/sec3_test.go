package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/workers/mail/mailtest"
)

// rule SEC-3: no password, reset token, session token, full card number or
// CVV appears in an event, a read model, a log line or an e-mail — only
// hashes, gateway tokens and last four digits. The one exception is the
// reset link, which must carry its token to the customer: it appears in the
// reset e-mail and nowhere else.
func TestRule_SEC3_NoSecretInEventsReadModelsLogsOrEmails(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	const (
		firstPassword  = "first-Pa55word"
		secondPassword = "second-Pa55word"
		thirdPassword  = "third-Pa55word"
		cardNumber     = "4242424242424242"
		cvv            = "919"
	)
	e.signUp("ann@example.com", firstPassword)
	// An idempotent sign-in stores its answer, which holds the token.
	firstToken := e.signInWithKey("ann@example.com", firstPassword, "sign-in-1")
	e.want(e.call("PUT", "/v1/account/billing", firstToken, `{"country":"US","payment_method":{"type":"card","card":{"number":"4242 4242 4242 4242","cvv":"`+cvv+`","exp_month":12,"exp_year":2031,"holder_name":"Ann Lee"}}}`), http.StatusOK)
	e.want(e.call("POST", "/v1/password/change", firstToken, `{"current_password":"`+firstPassword+`","new_password":"`+secondPassword+`","new_password_again":"`+secondPassword+`"}`), http.StatusNoContent)
	resetToken := e.resetTokenFromMail("ann@example.com")
	e.want(e.call("POST", "/v1/password/reset", "", `{"token":"`+resetToken+`","new_password":"`+thirdPassword+`","new_password_again":"`+thirdPassword+`"}`), http.StatusNoContent)
	secondToken := e.signIn("ann@example.com", thirdPassword)
	e.want(e.call("DELETE", "/v1/sessions/current", secondToken, ""), http.StatusNoContent)

	secrets := map[string]*regexp.Regexp{
		"a password":         regexp.MustCompile(firstPassword + "|" + secondPassword + "|" + thirdPassword),
		"a session token":    regexp.MustCompile(regexp.QuoteMeta(firstToken) + "|" + regexp.QuoteMeta(secondToken)),
		"the card number":    regexp.MustCompile(cardNumber + "|4242 4242 4242 4242"),
		"the CVV":            regexp.MustCompile(`\b` + cvv + `\b`),
		"the reset token":    regexp.MustCompile(regexp.QuoteMeta(resetToken)),
		"a field named cvv":  regexp.MustCompile(`(?i)"cvv"`),
		"a field named pass": regexp.MustCompile(`(?i)"(new_|current_)?password(_again)?"\s*:`),
	}
	places := map[string]string{"the log": e.logs.String()}
	for name, rows := range dumpTables(t, e) {
		places["table "+name] = rows
	}
	for _, m := range e.sendMail() {
		text := mailtest.PlainText(t, m)
		if strings.Contains(text, "reset-password?token=") {
			text = resetLink.ReplaceAllString(text, "(the reset link)") // the link's one legitimate place
		}
		places["an e-mail"] += m + text
	}
	for place, text := range places {
		for what, re := range secrets {
			if loc := re.FindStringIndex(text); loc != nil {
				from, to := max(loc[0]-40, 0), min(loc[1]+40, len(text))
				t.Errorf("%s holds %s: …%s…", place, what, text[from:to])
			}
		}
	}
}

// signInWithKey signs in with an Idempotency-Key, so the answer is stored.
func (e *engineEnv) signInWithKey(email, password, key string) string {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.url+"/v1/sessions", strings.NewReader(`{"email":"`+email+`","password":"`+password+`"}`))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	var tokens []string
	for range 2 { // the repeat is answered from the stored copy
		resp, err := http.DefaultClient.Do(req.Clone(context.Background()))
		if err != nil {
			e.t.Fatal(err)
		}
		var body struct{ Token string }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusCreated {
			e.t.Fatalf("sign-in: %d %v", resp.StatusCode, err)
		}
		tokens = append(tokens, body.Token)
		req.Body, _ = req.GetBody()
	}
	if tokens[0] != tokens[1] {
		e.t.Fatal("the repeated sign-in was not answered from the stored copy")
	}
	return tokens[0]
}

// dumpTables returns every row of every table of the engine and of the
// gateway sandbox, as text, by table.
func dumpTables(t *testing.T, e *engineEnv) map[string]string {
	t.Helper()
	ctx := context.Background()
	rows, err := e.store.Pool().Query(ctx, `SELECT table_schema, table_name FROM information_schema.tables
WHERE table_schema IN ('public', 'gateway_sandbox') AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var schema, name string
		err := r.Scan(&schema, &name)
		return pgx.Identifier{schema, name}.Sanitize(), err
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, table := range tables {
		rows, err := e.store.Pool().Query(ctx, `SELECT t::text FROM `+table+` t`)
		if err != nil {
			t.Fatal(err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out[table] = strings.Join(texts, "\n")
	}
	if len(out) < 8 {
		t.Fatalf("found only %d tables: %v", len(out), out)
	}
	return out
}
