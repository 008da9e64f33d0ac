-- ANALYZE (autovacuum's, each time a table has grown or changed by a tenth)
-- sorts a sample of up to 30,000 values of each column to build its
-- statistics. For the event log's payloads and the read models' state
-- snapshots and e-mail data those are whole JSON documents compared with
-- jsonb_cmp: 40% of the server's ANALYZE time in the 100,000-customer year
-- (perf, day 16), for statistics no query uses. Nothing filters, joins or
-- groups on these columns as a whole; the lookups by a field of an event's
-- data go through expression indexes, whose own statistics ANALYZE still
-- gathers. A target of 0 gathers none for these columns.
ALTER TABLE events
    ALTER COLUMN data SET STATISTICS 0,
    ALTER COLUMN metadata SET STATISTICS 0;
ALTER TABLE products_view ALTER COLUMN state SET STATISTICS 0;
ALTER TABLE due_work ALTER COLUMN state SET STATISTICS 0;
ALTER TABLE email_outbox ALTER COLUMN data SET STATISTICS 0;
