-- Erasing an account (AUD-5) turns automatic renewal off for the
-- subscriptions it owns, which it finds in the log itself rather than in a
-- read model that may lag behind (a key registered a moment before the
-- erasure): the subscription.registered and subscription.saved_with_order
-- events by the account they name.
CREATE INDEX events_subscription_owner_idx ON events ((data->>'account_id'))
    WHERE event_type IN ('subscription.registered', 'subscription.saved_with_order');

-- The subscription states the products view and the due-work schedule keep
-- are folded by a new rule since 0020: a key registered into another
-- owner's account after its renewal was noticed, or during its retries,
-- has the notice given again to that owner. Both are rebuilt from the log,
-- as 0020 did.
TRUNCATE products_view, subscription_devices, due_work;
DELETE FROM subscription_checkpoints WHERE name IN ('products', 'due_work');
