-- Read models of the projections package (DESIGN §5). Each projection owns
-- its tables and its row in subscription_checkpoints.

-- projection "accounts": the account and billing summary (ACC-7, ACC-8).
CREATE TABLE accounts (
    account_id      uuid PRIMARY KEY,
    email           text        NOT NULL,
    name            text        NOT NULL,
    country         text        NOT NULL,
    language        text        NOT NULL,
    address         jsonb       NOT NULL DEFAULT '{}',
    billing_country text,
    billing_method  jsonb, -- kind, gateway token, brand, last four, expiry, holder: never a card number
    registered_at   timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- projection "email_outbox": e-mails the events call for, until recorded as
-- sent (EML-1). workers/outbox claims and sends them.
CREATE TABLE email_outbox (
    cause         uuid        NOT NULL, -- the event that calls for the e-mail
    kind          text        NOT NULL,
    account_id    uuid        NOT NULL,
    data          jsonb       NOT NULL DEFAULT '{}', -- what the template needs besides the account: no secret
    created_at    timestamptz NOT NULL,
    claimed_until timestamptz,
    attempts      integer     NOT NULL DEFAULT 0,
    last_error    text,
    sent_at       timestamptz,
    PRIMARY KEY (cause, kind)
);
CREATE INDEX email_outbox_pending_idx ON email_outbox (created_at) WHERE sent_at IS NULL;
