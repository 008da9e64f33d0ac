-- The HTTP API's own state (DESIGN §9): idempotency keys and customer
-- sessions. Neither is domain history, so neither is an event.

-- Idempotency-Key: the first answer to a POST, replayed for a repeat of the
-- same request under the same key. One row per (scope, key); scope is the
-- principal, the method and the route pattern, so keys never collide across
-- callers or routes. request_hash is a keyed hash (HMAC-SHA-256) of method,
-- path and body: a body may hold a password, and an unkeyed hash of it would
-- allow guessing offline. response_body is nonce || AES-256-GCM ciphertext
-- (SEC-3: a sign-in answer holds a session token).
CREATE TABLE idempotency_keys (
    scope            text        NOT NULL,
    key              text        NOT NULL,
    request_hash     bytea       NOT NULL,
    state            text        NOT NULL CHECK (state IN ('in_progress', 'done')),
    locked_until     timestamptz NOT NULL, -- an in-progress row older than this was abandoned
    response_status  integer,
    response_headers jsonb,
    response_body    bytea,
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (scope, key),
    CHECK (state = 'in_progress' OR (response_status IS NOT NULL AND response_headers IS NOT NULL AND response_body IS NOT NULL))
);

CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);

-- Customer sessions: a bearer token is stored only as its SHA-256 (the token
-- holds 256 random bits, so a fast hash suffices and lookups stay indexed).
CREATE TABLE sessions (
    id          uuid        PRIMARY KEY,
    token_hash  bytea       NOT NULL UNIQUE,
    account_id  uuid        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CHECK (expires_at > created_at)
);

CREATE INDEX sessions_account_id_idx ON sessions (account_id) WHERE revoked_at IS NULL;
