package main_test

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/api"
	"github.com/subs-engine/subs/api/agentauth"
	"github.com/subs-engine/subs/eventstore/pgtest"
)

// rule SEC-2: `subs agents add` prints a credential once; it authenticates
// the agent, with its role, and the database keeps only its hash.
func TestAgentsAdd_PrintsACredentialThatAuthenticates(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	m, out := MustParse(t, nil, "agents", "add", "--id", "ava", "--name", "Ava Ngo", "--role", "auditor", "--database-url", url)
	MustRun(t, m)
	credential := strings.TrimSpace(out.stdout.String())
	if !strings.HasPrefix(credential, agentauth.CredentialPrefix) {
		t.Fatalf("output %q is not a credential", credential)
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	a, err := agentauth.New(pool).AuthenticateAgent(context.Background(), credential, time.Now())
	if err != nil || a.ID != "ava" || !a.HasRole(api.RoleAuditor) {
		t.Errorf("agent %+v, %v", a, err)
	}
	m, _ = MustParse(t, nil, "agents", "add", "--id", "ava", "--name", "Someone Else", "--database-url", url)
	if err := m.Run(context.Background()); !errors.Is(err, agentauth.ErrExists) {
		t.Errorf("the same id again: %v", err)
	}
}

func TestAgentsAdd_BadCommandLines(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"agents"},
		{"agents", "remove"},
		{"agents", "add", "--id", "ava"},
		{"agents", "add", "--name", "Ava"},
		{"agents", "add", "--id", "Not An Id", "--name", "Ava"},
		{"agents", "add", "--id", "ava", "--name", "Ava", "--role", "root"},
		{"agents", "add", "--id", "ava", "--name", "Ava", "extra"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			m, _ := NewMain(t, nil)
			err := m.ParseFlags(context.Background(), args)
			if err == nil || errors.Is(err, flag.ErrHelp) {
				t.Errorf("ParseFlags(%q) = %v, want a usage error", args, err)
			}
		})
	}
}
