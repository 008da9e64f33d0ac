package api

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
)

// IdempotencyKeyHeader is the request header that makes a POST safe to
// retry: a repeat with the same key and the same request gets the first
// answer, and the handler does not run again.
const IdempotencyKeyHeader = "Idempotency-Key"

// IdempotentReplayedHeader is set to "true" on an answer replayed from an
// earlier request with the same Idempotency-Key.
const IdempotentReplayedHeader = "Idempotent-Replayed"

// maxIdempotencyKeyLen bounds a key; a UUID or a ULID fits many times over.
const maxIdempotencyKeyLen = 255

// storedHeaders are the response headers kept with a stored answer and
// replayed with it; others (Date, Content-Length) are made afresh.
var storedHeaders = []string{"Content-Type", "Location"}

// idempotency is the state of the Idempotency-Key middleware.
type idempotency struct {
	aead   cipher.AEAD // encrypts stored response bodies (SEC-3)
	macKey []byte      // keys the request hash, so a body holding a password cannot be guessed from it
}

// newIdempotency derives the middleware's two keys from the server's secret
// key, so that one configured secret serves several purposes without reuse.
func newIdempotency(secret []byte) (*idempotency, error) {
	block, err := aes.NewCipher(deriveKey(secret, "subs/api/idempotency/response-body/v1"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &idempotency{aead: aead, macKey: deriveKey(secret, "subs/api/idempotency/request-hash/v1")}, nil
}

// deriveKey returns a 32-byte key for purpose from secret (HMAC-SHA-256 as
// a PRF: the secret is already uniformly random).
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// requestHash identifies a request: method, path with query, and body.
func (id *idempotency) requestHash(r *http.Request, body []byte) []byte {
	m := hmac.New(sha256.New, id.macKey)
	fmt.Fprintf(m, "%s\x00%s\x00", r.Method, r.URL.RequestURI())
	m.Write(body)
	return m.Sum(nil)
}

// seal encrypts a response body; the scope and key are authenticated too, so
// a ciphertext moved to another row does not decrypt.
func (id *idempotency) seal(body []byte, scope, key string) ([]byte, error) {
	nonce := make([]byte, id.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return id.aead.Seal(nonce, nonce, body, []byte(scope+"\x00"+key)), nil
}

// open decrypts what seal returned.
func (id *idempotency) open(sealed []byte, scope, key string) ([]byte, error) {
	n := id.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("stored body shorter than a nonce")
	}
	return id.aead.Open(nil, sealed[:n], sealed[n:], []byte(scope+"\x00"+key))
}

// principal names who sends r, for the key's scope: a customer or agent
// once authenticated; for a route without authentication, the hash of any
// credential sent (so that two callers never share a key's answer), or
// "anonymous".
func principal(r *http.Request) string {
	if s, ok := SessionFrom(r.Context()); ok {
		return "customer:" + s.AccountID.String()
	}
	if a, ok := AgentFrom(r.Context()); ok {
		return "agent:" + a.ID
	}
	if h := r.Header.Get("Authorization"); h != "" {
		sum := sha256.Sum256([]byte(h))
		return "credential:" + hex.EncodeToString(sum[:16])
	}
	return "anonymous"
}

// validIdempotencyKey reports whether key is 1 to 255 visible ASCII
// characters.
func validIdempotencyKey(key string) bool {
	if len(key) == 0 || len(key) > maxIdempotencyKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return false
		}
	}
	return true
}

// idempotent wraps the handler of a POST route registered under pattern.
// Without an Idempotency-Key header the request just runs. With one, the
// first request claims (scope, key) in the idempotency_keys table, runs,
// and stores its answer (unless 5xx or 429: those are not final, so the row
// is deleted and the client may retry with the same key). A later request
// with the same key and scope gets:
//   - the stored answer, with Idempotent-Replayed: true, when its method,
//     path and body are the same;
//   - 422 ProblemTypeIdempotencyMismatch when they differ;
//   - 409 ProblemTypeIdempotencyInProgress while the first still runs.
//
// A key expires IdempotencyKeyTTL after its first use; a claim whose request
// has not finished after IdempotencyLockTimeout is considered abandoned (the
// process died) and the same request may take it over.
func (s *Server) idempotent(pattern string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(IdempotencyKeyHeader)
		if _, sent := r.Header[http.CanonicalHeaderKey(IdempotencyKeyHeader)]; !sent {
			next.ServeHTTP(w, r)
			return
		}
		if !validIdempotencyKey(key) {
			WriteProblem(w, validationProblem([]FieldError{{Field: IdempotencyKeyHeader,
				Message: "must be 1 to 255 visible ASCII characters, such as a random UUID"}}))
			return
		}
		var body []byte
		if r.Body != nil {
			var err error
			if body, err = io.ReadAll(r.Body); err != nil {
				WriteError(w, r, fmt.Errorf("api: read the request body: %w", err))
				return
			}
			_ = r.Body.Close()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		scope := principal(r) + " " + pattern
		hash := s.idem.requestHash(r, body)

		claim, err := s.claimIdempotencyKey(r.Context(), scope, key, hash)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		if claim.answer != nil {
			claim.answer(w, r)
			return
		}

		rec := &capturingWriter{ResponseWriter: w}
		finished := false
		defer func() {
			if !finished { // the handler panicked: the request may be retried
				s.releaseIdempotencyKey(r, scope, key, claim.lockedUntil)
			}
		}()
		next.ServeHTTP(rec, r)
		finished = true
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		// An answer that says to try again later is not the request's
		// final one: the same key, sent again, runs it again.
		if status >= 500 || status == http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "" {
			s.releaseIdempotencyKey(r, scope, key, claim.lockedUntil)
			return
		}
		s.storeIdempotentAnswer(r, scope, key, claim.lockedUntil, status, rec)
	})
}

// idempotencyClaim is the outcome of claiming a key: either this request
// owns the key until lockedUntil, or answer replies instead of the handler.
type idempotencyClaim struct {
	lockedUntil time.Time
	answer      func(http.ResponseWriter, *http.Request)
}

// claimIdempotencyKey takes (scope, key) for this request, or says how to
// answer when another request has it.
func (s *Server) claimIdempotencyKey(ctx context.Context, scope, key string, hash []byte) (idempotencyClaim, error) {
	for range 3 { // a row deleted between the two statements: claim again
		now := s.cfg.Clock.Now().UTC().Truncate(time.Microsecond)
		lockedUntil := now.Add(s.cfg.IdempotencyLockTimeout)
		var claimed bool
		err := s.cfg.DB.QueryRow(ctx, `
			INSERT INTO idempotency_keys AS k (scope, key, request_hash, state, locked_until, created_at, expires_at)
			VALUES ($1, $2, $3, 'in_progress', $4, $5, $6)
			ON CONFLICT (scope, key) DO UPDATE SET
				request_hash = EXCLUDED.request_hash, state = 'in_progress', locked_until = EXCLUDED.locked_until,
				response_status = NULL, response_headers = NULL, response_body = NULL,
				created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
			WHERE k.expires_at <= $5
			   OR (k.state = 'in_progress' AND k.locked_until <= $5 AND k.request_hash = EXCLUDED.request_hash)
			RETURNING true`,
			scope, key, hash, lockedUntil, now, now.Add(s.cfg.IdempotencyKeyTTL)).Scan(&claimed)
		if err == nil {
			return idempotencyClaim{lockedUntil: lockedUntil}, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return idempotencyClaim{}, fmt.Errorf("api: claim an idempotency key: %w", err)
		}

		var (
			storedHash []byte
			state      string
			status     *int
			headers    map[string]string
			sealed     []byte
		)
		err = s.cfg.DB.QueryRow(ctx, `SELECT request_hash, state, response_status, response_headers, response_body
			FROM idempotency_keys WHERE scope = $1 AND key = $2`, scope, key).
			Scan(&storedHash, &state, &status, &headers, &sealed)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return idempotencyClaim{}, fmt.Errorf("api: read an idempotency key: %w", err)
		}
		switch {
		case !hmac.Equal(storedHash, hash):
			return idempotencyClaim{answer: func(w http.ResponseWriter, _ *http.Request) {
				WriteProblem(w, Problem{Type: ProblemTypeIdempotencyMismatch, Title: "Idempotency key reused",
					Status: http.StatusUnprocessableEntity,
					Detail: "This Idempotency-Key was already used for a different request (method, path or body); send a new key with a new request."})
			}}, nil
		case state != "done":
			return idempotencyClaim{answer: func(w http.ResponseWriter, _ *http.Request) {
				WriteProblem(w, Problem{Type: ProblemTypeIdempotencyInProgress, Title: "Request in progress",
					Status: http.StatusConflict, Header: http.Header{"Retry-After": {"1"}},
					Detail: "A request with this Idempotency-Key is still in progress; retry with the same key shortly."})
			}}, nil
		}
		body, err := s.idem.open(sealed, scope, key)
		if err != nil {
			return idempotencyClaim{}, fmt.Errorf("api: decrypt a stored idempotent answer (was SecretKey changed?): %w", err)
		}
		return idempotencyClaim{answer: func(w http.ResponseWriter, _ *http.Request) {
			for k, v := range headers {
				w.Header().Set(k, v)
			}
			w.Header().Set(IdempotentReplayedHeader, "true")
			w.WriteHeader(*status)
			_, _ = w.Write(body)
		}}, nil
	}
	return idempotencyClaim{}, errors.New("api: claim an idempotency key: the key's row keeps vanishing")
}

// finishTimeout bounds recording a request's outcome, which runs even when
// the client has gone away.
const finishTimeout = 10 * time.Second

// releaseIdempotencyKey deletes this request's claim so the client may
// retry with the same key. It deletes only its own claim (lockedUntil), not
// one a later request took over.
func (s *Server) releaseIdempotencyKey(r *http.Request, scope, key string, lockedUntil time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), finishTimeout)
	defer cancel()
	_, err := s.cfg.DB.Exec(ctx, `DELETE FROM idempotency_keys
		WHERE scope = $1 AND key = $2 AND state = 'in_progress' AND locked_until = $3`, scope, key, lockedUntil)
	if err != nil {
		s.log.ErrorContext(ctx, "idempotency: release a key after a failed request; retries with it get 409 until the lock times out",
			slog.String("route", routeLabel(r)), slog.Any("error", err))
	}
}

// storeIdempotentAnswer records the answer rec captured for replays.
func (s *Server) storeIdempotentAnswer(r *http.Request, scope, key string, lockedUntil time.Time, status int, rec *capturingWriter) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), finishTimeout)
	defer cancel()
	headers := map[string]string{}
	for _, h := range storedHeaders {
		if v := rec.Header().Get(h); v != "" {
			headers[h] = v
		}
	}
	hdr, err := json.Marshal(headers)
	if err == nil {
		var sealed []byte
		if sealed, err = s.idem.seal(rec.body.Bytes(), scope, key); err == nil {
			_, err = s.cfg.DB.Exec(ctx, `UPDATE idempotency_keys
				SET state = 'done', response_status = $4, response_headers = $5, response_body = $6
				WHERE scope = $1 AND key = $2 AND state = 'in_progress' AND locked_until = $3`,
				scope, key, lockedUntil, status, hdr, sealed)
		}
	}
	if err != nil {
		// The client has its answer; a retry will get 409 until the lock
		// times out, then run again (the domain's command ids keep that safe).
		s.log.ErrorContext(ctx, "idempotency: store an answer for replay",
			slog.String("route", routeLabel(r)), slog.Any("error", err))
	}
}

// PurgeIdempotencyKeys deletes the idempotency keys that expired at or
// before now and returns how many. Expired keys are already ignored, so
// purging only reclaims space; call it now and then.
func (s *Server) PurgeIdempotencyKeys(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.cfg.DB.Exec(ctx, `DELETE FROM idempotency_keys WHERE expires_at <= $1`, now)
	if err != nil {
		return 0, fmt.Errorf("api: purge expired idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

// capturingWriter passes a response through and keeps a copy of its status
// and body for storage.
type capturingWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *capturingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *capturingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body.Write(p)
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *capturingWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}
