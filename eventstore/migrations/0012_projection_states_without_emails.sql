-- The products view and the due-work schedule no longer fold
-- subscription.email_sent into the subscription state each row keeps: a
-- sent e-mail changes nothing either shows, and the growing list made every
-- later event read and write back a larger row. Both are rebuilt from the
-- log with the new rule: emptied here, with their checkpoints, they are
-- replayed by the projection runner on its next start. (due_work's
-- checked_at, the visits' marks, goes with them: a visit again is
-- harmless, each step being decided from the stream.)
TRUNCATE products_view, subscription_devices, due_work;
DELETE FROM subscription_checkpoints WHERE name IN ('products', 'due_work');
