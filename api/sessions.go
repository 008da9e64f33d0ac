package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SessionTokenPrefix starts every customer session token, so that a leaked
// token is recognisable (secret scanners, logs) and an agent credential or
// other string is refused without a database lookup.
const SessionTokenPrefix = "subs_"

// sessionTokenBytes is the token's randomness: 256 bits, so that a fast hash
// (SHA-256) suffices to store it and guessing is hopeless.
const sessionTokenBytes = 32

// ErrUnauthenticated is returned (possibly wrapped) by Sessions.Authenticate
// for a token that is malformed, unknown, revoked or expired: the four are
// answered alike, so that a caller learns nothing about other sessions. It
// satisfies UnauthorizedError, so WriteError answers it 401.
var ErrUnauthenticated error = unauthenticatedError{}

type unauthenticatedError struct{}

func (unauthenticatedError) Error() string {
	return "The session token is missing, invalid or expired; sign in again with POST /v1/sessions."
}
func (unauthenticatedError) Unauthorized() bool { return true }

// Session is a customer's sign-in: the account it authenticates, and when it
// was made and stops working. The token itself is never kept.
type Session struct {
	// ID identifies the session, e.g. to revoke it.
	ID uuid.UUID
	// AccountID is the customer account the session acts for.
	AccountID uuid.UUID
	// CreatedAt is when the session was made.
	CreatedAt time.Time
	// ExpiresAt is the first instant at which the session no longer works.
	ExpiresAt time.Time
}

// Sessions stores customer sessions in the sessions table: a bearer token
// is made once, handed to the customer, and kept only as its SHA-256. It is
// safe for concurrent use.
type Sessions struct {
	db *pgxpool.Pool
}

// NewSessions returns the session store on db, which must hold the API's
// migration (0003).
func NewSessions(db *pgxpool.Pool) *Sessions {
	return &Sessions{db: db}
}

// Create makes a session for accountID valid from now for ttl and returns
// its token — "subs_" and 43 base64url characters, to be shown to the
// customer once and never logged — and the session. ttl must be positive.
func (s *Sessions) Create(ctx context.Context, accountID uuid.UUID, now time.Time, ttl time.Duration) (string, Session, error) {
	if ttl <= 0 {
		return "", Session{}, fmt.Errorf("api: create a session: ttl %s is not positive", ttl)
	}
	raw := make([]byte, sessionTokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", Session{}, fmt.Errorf("api: create a session: read random bytes: %w", err)
	}
	token := SessionTokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	id, err := uuid.NewV7()
	if err != nil {
		return "", Session{}, fmt.Errorf("api: create a session: %w", err)
	}
	now = now.UTC().Truncate(time.Microsecond) // PostgreSQL's resolution, so reads equal writes
	sess := Session{ID: id, AccountID: accountID, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	hash := tokenHash(token)
	_, err = s.db.Exec(ctx, `INSERT INTO sessions (id, token_hash, account_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5)`, sess.ID, hash[:], sess.AccountID, sess.CreatedAt, sess.ExpiresAt)
	if err != nil {
		return "", Session{}, fmt.Errorf("api: create a session: %w", err)
	}
	return token, sess, nil
}

// Authenticate returns the session token belongs to when it is valid at
// now: known, not revoked, and now is before its expiry. Otherwise it
// returns an error matching ErrUnauthenticated; a database failure returns
// another error.
func (s *Sessions) Authenticate(ctx context.Context, token string, now time.Time) (Session, error) {
	if !wellFormedToken(token) {
		return Session{}, ErrUnauthenticated
	}
	hash := tokenHash(token)
	var sess Session
	err := s.db.QueryRow(ctx, `SELECT id, account_id, created_at, expires_at FROM sessions
		WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2`, hash[:], now).
		Scan(&sess.ID, &sess.AccountID, &sess.CreatedAt, &sess.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrUnauthenticated
	}
	if err != nil {
		return Session{}, fmt.Errorf("api: authenticate a session: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt = sess.CreatedAt.UTC(), sess.ExpiresAt.UTC()
	return sess, nil
}

// Revoke ends the session id at now (sign-out). Revoking a session that is
// unknown or already revoked does nothing and is not an error, so sign-out
// can be retried.
func (s *Sessions) Revoke(ctx context.Context, id uuid.UUID, now time.Time) error {
	_, err := s.db.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, id, now)
	if err != nil {
		return fmt.Errorf("api: revoke session %s: %w", id, err)
	}
	return nil
}

// RevokeAllFor ends every live session of accountID at now except the
// session except (uuid.Nil to end all), and returns how many it ended. A
// password change keeps the session that made it; a reset ends all.
func (s *Sessions) RevokeAllFor(ctx context.Context, accountID, except uuid.UUID, now time.Time) (int64, error) {
	tag, err := s.db.Exec(ctx, `UPDATE sessions SET revoked_at = $3
		WHERE account_id = $1 AND id <> $2 AND revoked_at IS NULL`, accountID, except, now)
	if err != nil {
		return 0, fmt.Errorf("api: revoke the sessions of account %s: %w", accountID, err)
	}
	return tag.RowsAffected(), nil
}

// tokenHash is what the table keeps of a token.
func tokenHash(token string) [sha256.Size]byte {
	return sha256.Sum256([]byte(token))
}

// wellFormedToken reports whether token has the shape Create gives, so that
// garbage never reaches the database.
func wellFormedToken(token string) bool {
	rest, ok := strings.CutPrefix(token, SessionTokenPrefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(sessionTokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}

type sessionKey struct{}

// SessionFrom returns the customer session that RequireCustomer put in ctx,
// and whether there is one. Handlers of AuthCustomer routes always find one.
func SessionFrom(ctx context.Context) (Session, bool) {
	s, ok := ctx.Value(sessionKey{}).(Session)
	return s, ok
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header, or "".
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// RequireCustomer lets a request through to next only with a valid customer
// session token in "Authorization: Bearer <token>", checked at the server's
// clock; next finds the session with SessionFrom. Otherwise it answers 401
// ProblemTypeUnauthorized with WWW-Authenticate: Bearer. Routes registered
// with AuthCustomer get it automatically. The token and the header are never
// logged.
func (s *Server) RequireCustomer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := bearerToken(r)
		if token == "" {
			WriteError(w, r, ErrUnauthenticated)
			return
		}
		sess, err := s.sessions.Authenticate(r.Context(), token, s.cfg.Clock.Now())
		if err != nil {
			WriteError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)))
	})
}

// Agent is an authenticated support agent (AGT-1, SEC-2).
type Agent struct {
	// ID identifies the agent; it goes into the metadata of every event the
	// agent causes.
	ID string
	// Roles are what the agent may do besides support actions: RoleAuditor
	// reads histories through /v1/audit (AUD-2).
	Roles []string
}

// RoleAuditor lets an agent replay and export histories (DOMAIN §13).
const RoleAuditor = "auditor"

// HasRole reports whether the agent holds role.
func (a Agent) HasRole(role string) bool { return slices.Contains(a.Roles, role) }

// AgentAuthenticator checks a support agent's credential (SEC-2). It must be
// safe for concurrent use. AuthenticateAgent returns the agent credential
// names when it is valid at now; for any other credential (a customer
// session token included) it returns an error satisfying UnauthorizedError
// (ErrUnauthenticated will do), and another error only when it could not
// check.
type AgentAuthenticator interface {
	AuthenticateAgent(ctx context.Context, credential string, now time.Time) (Agent, error)
}

type agentKey struct{}

// AgentFrom returns the agent that RequireAgent put in ctx, and whether
// there is one. Handlers of AuthAgent routes always find one.
func AgentFrom(ctx context.Context) (Agent, bool) {
	a, ok := ctx.Value(agentKey{}).(Agent)
	return a, ok
}

// RequireAgent lets a request through to next only with a credential in
// "Authorization: Bearer <credential>" that ServerConfig.Agents accepts;
// next finds the agent with AgentFrom. Otherwise, and always when no
// AgentAuthenticator is configured, it answers 401. Routes registered with
// AuthAgent get it automatically.
func (s *Server) RequireAgent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := bearerToken(r)
		if token == "" || s.cfg.Agents == nil {
			WriteError(w, r, ErrUnauthenticated)
			return
		}
		agent, err := s.cfg.Agents.AuthenticateAgent(r.Context(), token, s.cfg.Clock.Now())
		if err != nil {
			WriteError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), agentKey{}, agent)))
	})
}
