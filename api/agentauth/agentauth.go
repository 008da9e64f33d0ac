// Package agentauth keeps support agents' identities and credentials (SEC-2,
// AGT-1) in table agents, apart from customer sessions: a credential is made
// once when an agent is added, shown to whoever added it, and kept only as
// its SHA-256. Store implements api.AgentAuthenticator.
package agentauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/api"
)

// CredentialPrefix starts every agent credential, so that it is told apart
// from a customer session token ("subs_") at a glance and without a lookup.
const CredentialPrefix = "subsagent_"

// credentialBytes is a credential's randomness: 256 bits.
const credentialBytes = 32

// Roles are the roles an agent may hold besides support actions.
var Roles = []string{api.RoleAuditor}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ErrExists: an agent with this id exists already.
var ErrExists = errors.New("an agent with this id exists already")

// Agent is an agent to add.
type Agent struct {
	// ID names the agent in the metadata of every event it causes: 1 to 64
	// lower-case letters, digits, dots, dashes or underscores.
	ID string
	// Name is the agent's display name.
	Name string
	// Roles are among Roles.
	Roles []string
}

// Validate names the first field a cannot have.
func (a Agent) Validate() error {
	switch {
	case !idPattern.MatchString(a.ID):
		return fmt.Errorf("id %q: want 1 to 64 lower-case letters, digits, dots, dashes or underscores", a.ID)
	case strings.TrimSpace(a.Name) == "":
		return errors.New("name: required")
	}
	for _, r := range a.Roles {
		if !slices.Contains(Roles, r) {
			return fmt.Errorf("role %q: want one of %v", r, Roles)
		}
	}
	return nil
}

// Store is the agents table. It is safe for concurrent use.
type Store struct{ db *pgxpool.Pool }

// New returns the store on db, which must hold migration 0008.
func New(db *pgxpool.Pool) *Store { return &Store{db: db} }

// Add records a new agent at now and returns its credential, to be handed
// to the agent once and never logged. An id taken already is ErrExists.
func (s *Store) Add(ctx context.Context, a Agent, now time.Time) (string, error) {
	if err := a.Validate(); err != nil {
		return "", err
	}
	raw := make([]byte, credentialBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("agentauth: read random bytes: %w", err)
	}
	credential := CredentialPrefix + base64.RawURLEncoding.EncodeToString(raw)
	hash := sha256.Sum256([]byte(credential))
	roles := a.Roles
	if roles == nil {
		roles = []string{}
	}
	_, err := s.db.Exec(ctx, `INSERT INTO agents (id, name, roles, credential_hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		a.ID, strings.TrimSpace(a.Name), roles, hash[:], now.UTC())
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "23505" {
		return "", ErrExists
	}
	if err != nil {
		return "", fmt.Errorf("agentauth: add agent %s: %w", a.ID, err)
	}
	return credential, nil
}

// AuthenticateAgent implements api.AgentAuthenticator: the agent whose
// credential this is, or api.ErrUnauthenticated for anything else (a
// customer session token included, SEC-2).
func (s *Store) AuthenticateAgent(ctx context.Context, credential string, _ time.Time) (api.Agent, error) {
	rest, ok := strings.CutPrefix(credential, CredentialPrefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(credentialBytes) {
		return api.Agent{}, api.ErrUnauthenticated
	}
	hash := sha256.Sum256([]byte(credential))
	var a api.Agent
	err := s.db.QueryRow(ctx, `SELECT id, roles FROM agents WHERE credential_hash = $1`, hash[:]).Scan(&a.ID, &a.Roles)
	if errors.Is(err, pgx.ErrNoRows) {
		return api.Agent{}, api.ErrUnauthenticated
	}
	if err != nil {
		return api.Agent{}, fmt.Errorf("agentauth: authenticate: %w", err)
	}
	return a, nil
}
