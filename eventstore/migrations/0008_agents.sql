-- Support agents (SEC-2, AGT-1): their identities and credentials, apart
-- from customer sessions. A credential is shown once when the agent is
-- added (`subs agents add`) and kept only as its SHA-256 (it holds 256
-- random bits, so a fast hash suffices and lookups stay indexed).
CREATE TABLE agents (
    id              text        PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    name            text        NOT NULL CHECK (name <> ''),
    roles           text[]      NOT NULL DEFAULT '{}',
    credential_hash bytea       NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL
);
