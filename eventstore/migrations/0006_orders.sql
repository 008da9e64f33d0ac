-- projection "orders": the order history (ORD-1, ORD-2, PRD-4, PRD-5). One
-- row per order, its lines, and the subscriptions and keys it yielded.

CREATE TABLE orders (
    order_id       uuid PRIMARY KEY,
    number         text        NOT NULL UNIQUE,
    account_id     uuid,                 -- the account it is saved in; null while pending (ORD-2)
    buyer_email    text        NOT NULL, -- as typed at the store: a pending order awaits this address's account
    storefront     text        NOT NULL,
    currency       text        NOT NULL,
    total          bigint      NOT NULL, -- minor units of currency
    order_status   text        NOT NULL CHECK (order_status IN ('placed', 'fulfilled', 'declined')),
    payment_status text        NOT NULL CHECK (payment_status IN ('pending', 'paid', 'declined')),
    saved_via      text,                 -- placement, order_number or serial_number; null while pending
    disowned       boolean     NOT NULL DEFAULT false,
    placed_at      timestamptz NOT NULL
);
CREATE INDEX orders_account_idx ON orders (account_id, placed_at) WHERE account_id IS NOT NULL;
CREATE INDEX orders_pending_idx ON orders (lower(buyer_email)) WHERE account_id IS NULL AND NOT disowned;

CREATE TABLE order_items (
    order_id     uuid    NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    line         integer NOT NULL,
    product      text    NOT NULL,
    product_name text    NOT NULL,
    term         text    NOT NULL,
    platform     text    NOT NULL,
    quantity     integer NOT NULL,
    unit_price   bigint  NOT NULL, -- minor units of the order's currency
    amount       bigint  NOT NULL,
    PRIMARY KEY (order_id, line)
);

CREATE TABLE order_subscriptions (
    order_id        uuid    NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    subscription_id uuid    NOT NULL,
    line            integer NOT NULL,
    product         text    NOT NULL,
    key             text    NOT NULL,
    serial          text    NOT NULL,
    registrable     boolean NOT NULL,
    PRIMARY KEY (order_id, subscription_id)
);

-- An order confirmation goes to a buyer who may have no account (ORD-2): its
-- outbox row names no account, and the send is recorded on the order.
ALTER TABLE email_outbox ALTER COLUMN account_id DROP NOT NULL;
