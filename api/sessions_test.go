package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/api"
	"github.com/subs-engine/subs/eventstore/pgtest"
)

func MustCreateSession(tb testing.TB, s *api.Sessions, account uuid.UUID, now time.Time, ttl time.Duration) (string, api.Session) {
	tb.Helper()
	token, sess, err := s.Create(context.Background(), account, now, ttl)
	if err != nil {
		tb.Fatalf("Create: %v", err)
	}
	return token, sess
}

func TestSessions_Lifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	sessions := api.NewSessions(pool)
	account, other := uuid.New(), uuid.New()
	ttl := time.Hour

	token, sess := MustCreateSession(t, sessions, account, testStart, ttl)
	if !strings.HasPrefix(token, api.SessionTokenPrefix) || len(token) != len(api.SessionTokenPrefix)+43 {
		t.Fatalf("token %q: want subs_ and 43 base64url characters", token)
	}
	if sess.AccountID != account || !sess.CreatedAt.Equal(testStart) || !sess.ExpiresAt.Equal(testStart.Add(ttl)) {
		t.Fatalf("session = %+v, want account %s from %s for %s", sess, account, testStart, ttl)
	}
	if token2, _ := MustCreateSession(t, sessions, account, testStart, ttl); token2 == token {
		t.Fatal("two sessions got the same token")
	}

	t.Run("a valid token authenticates until its expiry", func(t *testing.T) {
		for _, at := range []time.Time{testStart, testStart.Add(ttl - time.Microsecond)} {
			got, err := sessions.Authenticate(ctx, token, at)
			if err != nil || got != sess {
				t.Errorf("Authenticate at %s = %+v, %v; want %+v", at, got, err, sess)
			}
		}
		if _, err := sessions.Authenticate(ctx, token, testStart.Add(ttl)); !errors.Is(err, api.ErrUnauthenticated) {
			t.Errorf("Authenticate at expiry: err = %v, want ErrUnauthenticated", err)
		}
	})

	t.Run("malformed and unknown tokens are refused alike", func(t *testing.T) {
		for _, bad := range []string{"", "subs_", "bearer", token[:len(token)-1], token + "A", strings.ToUpper(token), "subs_" + strings.Repeat("A", 43)} {
			if _, err := sessions.Authenticate(ctx, bad, testStart); !errors.Is(err, api.ErrUnauthenticated) {
				t.Errorf("Authenticate(%q): err = %v, want ErrUnauthenticated", bad, err)
			}
		}
	})

	t.Run("revoke ends one session, and may be repeated", func(t *testing.T) {
		tok, s := MustCreateSession(t, sessions, account, testStart, ttl)
		for range 2 {
			if err := sessions.Revoke(ctx, s.ID, testStart.Add(time.Minute)); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
		}
		if _, err := sessions.Authenticate(ctx, tok, testStart.Add(time.Minute)); !errors.Is(err, api.ErrUnauthenticated) {
			t.Errorf("revoked session: err = %v, want ErrUnauthenticated", err)
		}
		if _, err := sessions.Authenticate(ctx, token, testStart.Add(time.Minute)); err != nil {
			t.Errorf("another session of the account stopped working: %v", err)
		}
	})

	t.Run("revoke all for an account keeps the one excepted and other accounts'", func(t *testing.T) {
		keep, kept := MustCreateSession(t, sessions, account, testStart, ttl)
		end1, _ := MustCreateSession(t, sessions, account, testStart, ttl)
		otherTok, _ := MustCreateSession(t, sessions, other, testStart, ttl)
		n, err := sessions.RevokeAllFor(ctx, account, kept.ID, testStart)
		if err != nil {
			t.Fatalf("RevokeAllFor: %v", err)
		}
		if n < 2 {
			t.Errorf("RevokeAllFor ended %d sessions, want at least 2", n)
		}
		for tok, want := range map[string]bool{keep: true, end1: false, token: false, otherTok: true} {
			_, err := sessions.Authenticate(ctx, tok, testStart)
			if got := err == nil; got != want {
				t.Errorf("after RevokeAllFor, token valid = %v, want %v (err %v)", got, want, err)
			}
		}
		if _, err := sessions.RevokeAllFor(ctx, account, uuid.Nil, testStart); err != nil {
			t.Fatal(err)
		}
		if _, err := sessions.Authenticate(ctx, keep, testStart); !errors.Is(err, api.ErrUnauthenticated) {
			t.Errorf("RevokeAllFor(except Nil) left a session: %v", err)
		}
	})

	t.Run("the table holds no raw token (SEC-3)", func(t *testing.T) {
		rows, err := pool.Query(ctx, `SELECT s::text FROM sessions s`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		secret := strings.TrimPrefix(token, api.SessionTokenPrefix)
		for rows.Next() {
			var row string
			if err := rows.Scan(&row); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(row, secret) {
				t.Errorf("sessions row holds the token: %s", row)
			}
		}
	})

	if _, _, err := sessions.Create(ctx, account, testStart, 0); err == nil {
		t.Error("Create with a zero ttl succeeded")
	}
}

func TestRequireCustomer(t *testing.T) {
	t.Parallel()
	env := MustNewAPIEnv(t, api.ServerConfig{}, func(s *api.Server) {
		s.Route(api.Route{
			Method: http.MethodGet, Pattern: "/v1/test/me", Summary: "Who am I", Auth: api.AuthCustomer,
			Responses: map[int]any{200: map[string]string{}},
			Handler: api.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				sess, ok := api.SessionFrom(r.Context())
				if !ok {
					return errors.New("no session in the context of an AuthCustomer route")
				}
				api.WriteJSON(w, http.StatusOK, map[string]string{"account": sess.AccountID.String()})
				return nil
			}),
		})
	})
	account := uuid.New()
	ttl := env.Server.Policy().SessionTokenValidity
	token, _ := MustCreateSession(t, env.Server.Sessions(), account, env.Clock.Now(), ttl)
	url := env.URL + "/v1/test/me"

	tests := []struct {
		name, authorization string
		wantStatus          int
	}{
		{"no header", "", 401},
		{"another scheme", "Basic " + token, 401},
		{"a wrong token", "Bearer subs_" + strings.Repeat("x", 43), 401},
		{"garbage", "Bearer garbage", 401},
		{"the token", "Bearer " + token, 200},
		{"the scheme in lower case", "bearer " + token, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := MustSend(t, http.MethodGet, url, "", map[string]string{"Authorization": tt.authorization})
			if resp.Status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.Status, tt.wantStatus, resp.Body)
			}
			if tt.wantStatus == 401 {
				if p := resp.Problem(t); p.Type != api.ProblemTypeUnauthorized {
					t.Errorf("type = %q, want %q", p.Type, api.ProblemTypeUnauthorized)
				}
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want Bearer", resp.Header.Get("WWW-Authenticate"))
				}
				return
			}
			var got map[string]string
			if err := json.Unmarshal([]byte(resp.Body), &got); err != nil || got["account"] != account.String() {
				t.Errorf("body %s, want account %s", resp.Body, account)
			}
		})
	}

	t.Run("the token expires on the server's clock", func(t *testing.T) {
		if err := env.Clock.Advance(ttl); err != nil {
			t.Fatal(err)
		}
		resp := MustSend(t, http.MethodGet, url, "", map[string]string{"Authorization": "Bearer " + token})
		if resp.Status != 401 {
			t.Errorf("status after the session's validity = %d, want 401", resp.Status)
		}
	})

	if logs := env.Log.String(); strings.Contains(logs, strings.TrimPrefix(token, api.SessionTokenPrefix)) {
		t.Errorf("the log holds the session token:\n%s", logs)
	}
}

func TestRequireAgent_WithoutAnAuthenticatorRefusesAll(t *testing.T) {
	t.Parallel()
	env := MustNewAPIEnv(t, api.ServerConfig{}, func(s *api.Server) {
		s.Route(api.Route{
			Method: http.MethodGet, Pattern: "/v1/test/agent", Summary: "Agents only", Auth: api.AuthAgent,
			Handler: api.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				w.WriteHeader(http.StatusNoContent)
				return nil
			}),
		})
	})
	token, _ := MustCreateSession(t, env.Server.Sessions(), uuid.New(), env.Clock.Now(), time.Hour)
	resp := MustSend(t, http.MethodGet, env.URL+"/v1/test/agent", "", map[string]string{"Authorization": "Bearer " + token})
	if resp.Status != 401 {
		t.Errorf("a customer token on an agent route: status %d, want 401 (SEC-2)", resp.Status)
	}
}
