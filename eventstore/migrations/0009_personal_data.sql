-- Crypto-shredding (AUD-5). Personal fields in event payloads are encrypted
-- with a data key per data subject: an account ("account-<uuid>") or, for
-- data given without an account, a keyed hash of an e-mail address
-- ("email-<hex>"). A key is made on first use and wrapped (AES-256-GCM) under
-- a key derived from the engine's secret key. Erasing a subject deletes its
-- row: its fields then read as erased, while the log and its hash chain
-- stay as they were.
CREATE TABLE personal_data_keys (
    key_id      uuid        PRIMARY KEY,
    subject     text        NOT NULL UNIQUE,
    wrapped_key bytea       NOT NULL, -- nonce || AES-256-GCM(data key), key_id as additional data
    created_at  timestamptz NOT NULL DEFAULT now()
);
