-- projection "email_outbox": the account each subscription is registered in,
-- so that the renewal lifecycle's e-mails (EML-1) name their recipient from
-- the log alone, and an erased account's rows go with it (AUD-5).
CREATE TABLE email_subscription_accounts (
    subscription_id uuid PRIMARY KEY,
    account_id      uuid NOT NULL
);
CREATE INDEX email_subscription_accounts_account_idx ON email_subscription_accounts (account_id);
