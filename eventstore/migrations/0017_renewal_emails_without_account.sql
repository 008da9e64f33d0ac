-- projection "email_outbox": a subscription in no account still renews
-- (ARS-1), so its renewal e-mails (ARS-2, ARS-3, EML-1) go out too: to the
-- account its order was saved in, else to the address the order was placed
-- with (ORD-2). Such a subscription, one bought with an order, has a row
-- without an account until the key is registered or the order saved.
ALTER TABLE email_subscription_accounts ALTER COLUMN account_id DROP NOT NULL;
-- The subscriptions bought with an order and registered in no account
-- before this migration, from the products view (which has every
-- subscription, with its order and the account it is registered in).
INSERT INTO email_subscription_accounts (subscription_id, account_id)
SELECT subscription_id, NULL FROM products_view WHERE account_id IS NULL AND order_id IS NOT NULL
ON CONFLICT (subscription_id) DO NOTHING;
