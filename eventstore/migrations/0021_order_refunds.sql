-- The order history shows what was refunded of an order's own charge (a
-- monthly plan cancelled within 30 days of its purchase, MON-2): the order
-- keeps its charge's id, the amount refunded of it, and a payment status of
-- refunded (all of it) or partially_refunded (a line's share of it). The
-- projection is rebuilt from the log to fill them for the orders there
-- are: emptied here with its checkpoint, it is replayed by the projection
-- runner on its next start, as 0012 did for others.
ALTER TABLE orders ADD COLUMN charge_id text,
    ADD COLUMN refunded bigint NOT NULL DEFAULT 0,        -- minor units of currency
    ADD COLUMN refund_ids text[] NOT NULL DEFAULT '{}'; -- the gateway's refunds summed, each once
ALTER TABLE orders DROP CONSTRAINT orders_payment_status_check,
    ADD CONSTRAINT orders_payment_status_check
        CHECK (payment_status IN ('pending', 'paid', 'declined', 'refunded', 'partially_refunded'));
-- A refund names its subscription, which finds its order.
CREATE INDEX order_subscriptions_subscription_idx ON order_subscriptions (subscription_id);
TRUNCATE orders, order_items, order_subscriptions;
DELETE FROM subscription_checkpoints WHERE name = 'orders';
