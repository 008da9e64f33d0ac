package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/api"
)

// oneAgent accepts one agent credential; agent identities and their stored
// credentials arrive with the support console.
type oneAgent struct{ credential string }

func (a oneAgent) AuthenticateAgent(_ context.Context, credential string, _ time.Time) (api.Agent, error) {
	if credential != a.credential {
		return api.Agent{}, api.ErrUnauthenticated
	}
	return api.Agent{ID: "agent-7"}, nil
}

// rule SEC-2: agent actions need an agent credential; a customer credential
// never reaches them (and an agent credential is no customer session).
func TestRule_SEC2_CustomerCredentialNeverReachesAgentRoutes(t *testing.T) {
	t.Parallel()
	ok := api.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	env := MustNewAPIEnv(t, api.ServerConfig{Agents: oneAgent{credential: "agent-credential-7"}}, func(s *api.Server) {
		s.Route(api.Route{Method: http.MethodGet, Pattern: "/v1/test/agent", Summary: "Agents only", Auth: api.AuthAgent, Handler: ok})
		s.Route(api.Route{Method: http.MethodGet, Pattern: "/v1/test/customer", Summary: "Customers only", Auth: api.AuthCustomer, Handler: ok})
	})
	customer, _ := MustCreateSession(t, env.Server.Sessions(), uuid.New(), env.Clock.Now(), time.Hour)
	cases := []struct {
		path, credential string
		want             int
	}{
		{"/v1/test/agent", "agent-credential-7", http.StatusNoContent},
		{"/v1/test/agent", customer, http.StatusUnauthorized},
		{"/v1/test/agent", "", http.StatusUnauthorized},
		{"/v1/test/customer", customer, http.StatusNoContent},
		{"/v1/test/customer", "agent-credential-7", http.StatusUnauthorized},
	}
	for _, c := range cases {
		header := map[string]string{}
		if c.credential != "" {
			header["Authorization"] = "Bearer " + c.credential
		}
		if got := MustSend(t, http.MethodGet, env.URL+c.path, "", header).Status; got != c.want {
			t.Errorf("%s with %.12s…: status %d, want %d", c.path, c.credential, got, c.want)
		}
	}
}
