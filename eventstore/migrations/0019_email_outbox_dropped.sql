-- projection "email_outbox": an e-mail with no one to send it to is dropped,
-- not retried at every lease for ever: one about an order saved in an
-- account erased since (AUD-5: its e-mails go nowhere), or about a
-- subscription in no account whose order its buyer's account disowned
-- (ORD-4: "I do not recognize this order"). workers/outbox sets dropped_at
-- with the reason in last_error; a dropped row is never claimed again. Like
-- sent_at, it is the worker's outcome, kept across a rebuild.
ALTER TABLE email_outbox ADD COLUMN dropped_at timestamptz;
DROP INDEX email_outbox_pending_idx;
CREATE INDEX email_outbox_pending_idx ON email_outbox (created_at) WHERE sent_at IS NULL AND dropped_at IS NULL;
