-- subs_expect_checkpoints raises SB412 unless every named subscription's
-- checkpoint is (tx, pos): no row counts as the start (0, 0). A catch-up
-- batch's transaction (eventstore Store.applyBatch) calls it in the same
-- round trip as its BEGIN and its checkpoints' locks, instead of reading
-- the checkpoints back in a round trip of its own: another process
-- applied the batch meanwhile only when it raises, and the batch then
-- takes the way that reads them. A statement of its own, after the locks'
-- (each statement of the simple query sees what committed before it):
-- under READ COMMITTED it sees what the locks' last holder saved.
CREATE FUNCTION subs_expect_checkpoints(names text[], tx xid8, pos bigint) RETURNS void
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    moved text;
BEGIN
    SELECT n INTO moved
    FROM unnest(names) AS n
    LEFT JOIN subscription_checkpoints c ON c.name = n
    WHERE (coalesce(c.transaction_id, '0'::xid8), coalesce(c.global_position, 0)) IS DISTINCT FROM (tx, pos)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'subscription % is not at checkpoint (%, %)', moved, tx, pos USING ERRCODE = 'SB412';
    END IF;
END
$$;
