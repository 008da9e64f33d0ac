-- The subscription state that the products view and the due-work schedule
-- keep per row is folded by new rules: a charge made after automatic
-- renewal was turned off is refunded without being asked, a monthly plan
-- that ended early refunds only the charges made before it ended, days an
-- agent adjusted stay when a renewal is refunded and keep a period in grace
-- going, a conversion in grace keeps its notice, and an add-on cancelled
-- after the notice has it given again. A row folded by the old rules would
-- decide the next step from a stale state. Both are rebuilt from the log
-- with the new rules, as 0018 did.
TRUNCATE products_view, subscription_devices, due_work;
DELETE FROM subscription_checkpoints WHERE name IN ('products', 'due_work');
