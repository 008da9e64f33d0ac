package agentauth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/api"
	"github.com/subs-engine/subs/api/agentauth"
	"github.com/subs-engine/subs/eventstore/pgtest"
)

// rule SEC-2: an agent credential authenticates its agent, stored only as a
// hash; a customer session token, a tampered credential or garbage do not.
func TestRule_SEC2_AgentCredentials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := agentauth.New(pool)
	now := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	cred, err := store.Add(ctx, agentauth.Agent{ID: "ava", Name: "Ava Ngo", Roles: []string{api.RoleAuditor}}, now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.AuthenticateAgent(ctx, cred, now)
	if err != nil || got.ID != "ava" || !got.HasRole(api.RoleAuditor) {
		t.Fatalf("authenticate: %+v, %v", got, err)
	}
	var stored int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM agents WHERE position($1::bytea in credential_hash) > 0 OR name = $2`,
		[]byte(cred), cred).Scan(&stored); err != nil || stored != 0 {
		t.Errorf("the credential is stored in clear (%d rows, %v)", stored, err)
	}
	sessions := api.NewSessions(pool)
	customer, _, err := sessions.Create(ctx, uuid.New(), now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tampered := []byte(cred)
	tampered[len(tampered)-2] ^= 1 // still base64url, another credential
	for _, bad := range []string{customer, string(tampered), "", strings.Repeat("x", 60)} {
		if _, err := store.AuthenticateAgent(ctx, bad, now); !errors.Is(err, api.ErrUnauthenticated) {
			t.Errorf("credential %.14q…: %v, want ErrUnauthenticated", bad, err)
		}
	}
	if _, err := store.Add(ctx, agentauth.Agent{ID: "ava", Name: "Another"}, now); !errors.Is(err, agentauth.ErrExists) {
		t.Errorf("the same id twice: %v", err)
	}
	for _, a := range []agentauth.Agent{{ID: "Bad Id", Name: "x"}, {ID: "ok"}, {ID: "ok", Name: "x", Roles: []string{"root"}}} {
		if _, err := store.Add(ctx, a, now); err == nil {
			t.Errorf("%+v was added", a)
		}
	}
}
