package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain/clock"
)

// rule AUD-5: `subs accounts erase` records who erased the account and why,
// after which history (now and as of before), export and verify still work
// and none shows its personal data.
func TestRule_AUD5_AccountsEraseThenHistoryExportAndVerify(t *testing.T) {
	t.Parallel()
	url, pool := signedUp(t, 1) // c0@example.com, "Customer 0"
	var stream string
	if err := pool.QueryRow(context.Background(), `SELECT stream_id FROM events LIMIT 1`).Scan(&stream); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(stream, "account-")
	personal := []string{"c0@example.com", "Customer 0"}

	before, err := runSubs(t, url, "audit", "history", stream)
	if err != nil || !strings.Contains(before, "Customer 0") || !strings.Contains(before, `"registered": true`) {
		t.Fatalf("history before erasure (%v):\n%s", err, before)
	}
	m, stdout := MustParse(t, dbEnv(url), "accounts", "erase", id, "--reason", "customer request #42", "--agent", "agent-9")
	m.Clock = clock.NewSimulated(time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)) // after the sign-up
	if err := m.Run(context.Background()); err != nil || !strings.Contains(stdout.stdout.String(), "1 data keys destroyed") {
		t.Fatalf("erase (%v): %s", err, stdout.stdout)
	}
	if out, err := runSubs(t, url, "accounts", "erase", id, "--reason", "again"); err != nil || !strings.Contains(out, "0 data keys destroyed") {
		t.Fatalf("erase again (%v): %s", err, out)
	}

	history, err := runSubs(t, url, "audit", "history", stream)
	if err != nil || !strings.Contains(history, "account.erased") || !strings.Contains(history, `agent agent-9, reason "customer request #42"`) ||
		!strings.Contains(history, `"erased": true`) {
		t.Fatalf("history after erasure (%v):\n%s", err, history)
	}
	asOf, err := runSubs(t, url, "audit", "history", stream, "--as-of", "2027-03-01T09:00:00Z")
	if err != nil || !strings.Contains(asOf, `"registered": true`) || !strings.Contains(asOf, `"name": "[erased]"`) {
		t.Fatalf("history as of the sign-up after erasure (%v):\n%s", err, asOf)
	}
	export, err := runSubs(t, url, "audit", "export")
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"history": history, "history as of": asOf, "export": export} {
		for _, p := range personal {
			if strings.Contains(text, p) {
				t.Errorf("%s after erasure shows %q:\n%s", what, p, text)
			}
		}
	}
	if out, err := runSubs(t, url, "audit", "verify"); err != nil || !strings.Contains(out, "2 events, 1 streams verified") {
		t.Fatalf("verify after erasure (%v): %s", err, out)
	}
}
