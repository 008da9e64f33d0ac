-- The event log (DESIGN §4). One row per event; a stream's versions run from 1
-- with no gap; the hash links each event to the previous one of its stream.
CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL CHECK (stream_version > 0),
    event_id        uuid        NOT NULL UNIQUE,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL CHECK (schema_version > 0),
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL,
    hash            bytea       NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

-- Global readers order by (transaction_id, global_position) and only read
-- below the oldest transaction still in flight.
CREATE INDEX events_transaction_position_idx ON events (transaction_id, global_position);

-- Rules spanning streams (ACC-1 unique e-mail, KEY-2 a key in one account):
-- a row under a unique key, written in the append's transaction.
CREATE TABLE reservations (
    scope       text   NOT NULL,
    key         text   NOT NULL,
    stream_id   text   NOT NULL,
    reserved_at bigint NOT NULL, -- global position of the append that took it
    PRIMARY KEY (scope, key)
);

-- Command-id idempotency: a retried command returns its first result.
CREATE TABLE commands (
    command_id      text        PRIMARY KEY,
    stream_id       text        NOT NULL,
    first_version   bigint      NOT NULL,
    last_version    bigint      NOT NULL,
    first_position  bigint      NOT NULL,
    last_position   bigint      NOT NULL,
    recorded_at     timestamptz NOT NULL
);

-- Checkpoints of catch-up subscriptions (projections, publisher, workers).
CREATE TABLE subscription_checkpoints (
    name            text   PRIMARY KEY,
    transaction_id  xid8   NOT NULL,
    global_position bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
