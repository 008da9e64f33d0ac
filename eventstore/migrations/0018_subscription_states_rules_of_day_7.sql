-- The subscription state that the products view and the due-work schedule
-- keep per row is folded by new rules: the owner of a non-registrable
-- product through its saved order (subscription.saved_with_order), the fee
-- a notice stated (never charged more), an add-on bought after a notice,
-- and days adjusted after a decline (the period starting over). A row folded
-- by the old rules would decide the next step from a stale state (a lapsed
-- period the aggregate now renews is never visited). Both are rebuilt from
-- the log with the new rules: emptied here with their checkpoints, they are
-- replayed by the projection runner on its next start, as 0012 did. (The
-- visits' marks, due_work.checked_at, go with them: a visit again is
-- harmless, each step being decided from the stream.)
TRUNCATE products_view, subscription_devices, due_work;
DELETE FROM subscription_checkpoints WHERE name IN ('products', 'due_work');
