-- products_view keeps, with the subscription state each row folds, the
-- stream version of the last event folded into it (due_work has one):
-- the projection keeps the states it wrote in memory by that version, and
-- reads a row's state again only when the row holds another. The view is
-- emptied with its checkpoint, as 0012 did, and replayed by the projection
-- runner on its next start, so that every row states its version as a
-- rebuild would (AUD-4).
ALTER TABLE products_view ADD COLUMN version bigint;
TRUNCATE products_view, subscription_devices;
DELETE FROM subscription_checkpoints WHERE name = 'products';
