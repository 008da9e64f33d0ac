-- projection "products": the products view (PRD-1 … PRD-4). One row per
-- subscription, registered or not: account_id stays null until the key is
-- registered (KEY-2), and the view answers only rows of the caller's
-- account. The status is not stored: it is computed at read time from
-- disabled, term and expires_at against the clock (subscription.StatusAt),
-- because expiry happens with the passing of time, not with an event.
CREATE TABLE products_view (
    subscription_id uuid PRIMARY KEY,
    account_id      uuid,                  -- null until registered (KEY-2)
    product         text        NOT NULL,  -- catalog code, as created
    product_name    text        NOT NULL,
    platform        text        NOT NULL,
    term            text        NOT NULL,  -- annual, monthly or trial
    trial           boolean     NOT NULL,
    seats           integer     NOT NULL,
    seats_used      integer     NOT NULL DEFAULT 0,
    starts_at       timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    disabled        boolean     NOT NULL DEFAULT false,
    registered_at   timestamptz,
    product_key     text        NOT NULL,
    serial          text        NOT NULL,
    auto_renew      boolean     NOT NULL,
    storefront      text        NOT NULL DEFAULT '', -- empty for a boxed retail key
    asian_store     boolean     NOT NULL DEFAULT false,
    order_id        uuid,                  -- null for a boxed retail key
    registrable     boolean     NOT NULL,
    legacy          boolean     NOT NULL,
    recovery_tool   boolean     NOT NULL,  -- the product offers the recovery tool on this platform (PRD-3)
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX products_view_account_idx ON products_view (account_id, registered_at) WHERE account_id IS NOT NULL;

-- The computers each subscription is activated on (KEY-3, KEY-5).
CREATE TABLE subscription_devices (
    subscription_id uuid        NOT NULL,
    device_id       text        NOT NULL,
    activated_at    timestamptz NOT NULL,
    PRIMARY KEY (subscription_id, device_id)
);
