-- The products view and the due-work schedule write a row's subscription
-- state only every 16 stream versions now (a snapshot, at state_version):
-- the state grows with the subscription's history (a monthly plan's every
-- payment), and writing it on every event, in both, took a tenth of the
-- simulated year's time. A row whose state is not kept in memory at its
-- version is read from its snapshot and the events after it in the log.
-- When a snapshot is taken depends on the log alone, so that a rebuild
-- writes the rows the live projection wrote (AUD-4); the rows written
-- before, each with its state at its own version, would not match a
-- rebuild's, so both are rebuilt from the log, as 0012, 0020 and 0022 did:
-- emptied here, with their checkpoints, they are replayed by the projection
-- runner on its next start.
ALTER TABLE products_view ADD COLUMN state_version bigint NOT NULL DEFAULT 0;
ALTER TABLE due_work ADD COLUMN state_version bigint NOT NULL DEFAULT 0,
    ALTER COLUMN state DROP NOT NULL;
TRUNCATE products_view, subscription_devices, due_work;
DELETE FROM subscription_checkpoints WHERE name IN ('products', 'due_work');
