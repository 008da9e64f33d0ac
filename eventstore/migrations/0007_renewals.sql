-- The renewal lifecycle (DOMAIN §5, §6, §7).

-- projection "products": the view keeps the subscription's folded state
-- (subscription.Subscription encodes to JSON), so that every column it
-- shows comes from the aggregate's own Evolve; renewing and refunded feed
-- the status computed at read time (grace, refunded: subscription.StatusAt).
ALTER TABLE products_view
    ADD COLUMN state    jsonb,
    ADD COLUMN renewing boolean NOT NULL DEFAULT false,
    ADD COLUMN refunded boolean NOT NULL DEFAULT false,
    ADD COLUMN add_ons  text[]  NOT NULL DEFAULT '{}';

-- projection "due_work": the due-work schedule (DESIGN §6). One row per
-- subscription with something ahead: when a worker should next look at it.
-- The aggregate decides; a stale row costs a no-op visit, never a wrong
-- step. checked_at is the workers' own (operational) column: the instant
-- of their last visit, so that a run visits a row at most once.
CREATE TABLE due_work (
    subscription_id uuid        PRIMARY KEY,
    account_id      uuid,
    due_at          timestamptz,           -- null: nothing ahead without a command
    step            text        NOT NULL DEFAULT '',
    awaiting_retry  boolean     NOT NULL DEFAULT false, -- a billing update brings the retry forward (ARS-6)
    version         bigint      NOT NULL,  -- the stream version the row was computed from
    state           jsonb       NOT NULL,
    checked_at      timestamptz
);
CREATE INDEX due_work_due_idx ON due_work (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX due_work_account_idx ON due_work (account_id) WHERE awaiting_retry;

-- projection "charges": the charge ledger (ARS-8). One row per charge
-- attempt, from its request to its outcome; a second successful charge of one period
-- cannot even be recorded.
CREATE TABLE charges (
    subscription_id uuid        NOT NULL,
    period          integer     NOT NULL,
    attempt         integer     NOT NULL,
    idempotency_key text        NOT NULL,
    status          text        NOT NULL,  -- succeeded or declined
    decline_code    text,
    charge_id       text,
    amount_minor    bigint      NOT NULL,
    currency        text        NOT NULL,
    refunded_minor  bigint      NOT NULL DEFAULT 0,
    charged_at      timestamptz NOT NULL,
    PRIMARY KEY (subscription_id, period, attempt)
);
CREATE UNIQUE INDEX charges_one_success_per_period ON charges (subscription_id, period) WHERE status = 'succeeded';
CREATE INDEX charges_month_idx ON charges (charged_at);
