-- The hottest reads of the log and the renewal worker's claim, as functions
-- whose statements keep one generic plan from the first call. As plain
-- prepared statements they were planned again at every call (a custom
-- plan looks cheaper to the planner once it sees the values), and each
-- plan probed the end of an index for its actual extreme value (a bound at
-- the edge of the histogram), wading through the entries of transactions
-- in flight and the dead entries the schedule's updates leave behind: in a
-- simulated year of 10,000 customers, 9 of the server's 117 CPU-seconds
-- went to planning these three statements, more than to running them.
-- Each statement below is an index scan whatever the plan (checked with
-- force_generic_plan): the log's readers by (transaction_id,
-- global_position) or by (stream_id, stream_version), the claim by due_at
-- with an incremental sort on subscription_id.

-- subs_read_all is Store.ReadAll: up to lim events after (after_tx,
-- after_position) in commit order, only from transactions older than every
-- transaction in flight. The reads are STABLE: they see what the calling
-- statement sees. A caller keeps a function's row order with WITH
-- ORDINALITY ... ORDER BY ordinality, which costs no sort (the planner
-- knows the ordinality column is in order).
CREATE FUNCTION subs_read_all(after_tx xid8, after_position bigint, lim integer)
RETURNS SETOF events
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
    SELECT * FROM events
    WHERE (transaction_id, global_position) > (after_tx, after_position)
      AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY transaction_id, global_position
    LIMIT lim;
END
$$;

-- subs_read_streams is Store.ReadStreams: the events of each stream of ids
-- from its version in froms, stream by stream in the order given, each in
-- version order. LATERAL with its own ORDER BY is not flattened into a
-- join: each stream is an index scan (a generic plan of a plain join would
-- hash the whole log).
CREATE FUNCTION subs_read_streams(ids text[], froms bigint[])
RETURNS SETOF events
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
    SELECT s.*
    FROM unnest(ids, froms) WITH ORDINALITY AS f(stream_id, from_version, n)
    CROSS JOIN LATERAL (SELECT * FROM events
        WHERE events.stream_id = f.stream_id AND events.stream_version >= f.from_version
        ORDER BY events.stream_version) AS s
    ORDER BY f.n;
END
$$;

-- subs_claim_due is the renewal worker's claim: up to lim due_work rows due
-- by due_by and not yet visited at due_by, earliest due first, marked
-- visited at due_by; SKIP LOCKED, so that workers share the rows.
CREATE FUNCTION subs_claim_due(due_by timestamptz, lim integer)
RETURNS SETOF uuid
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
    UPDATE due_work SET checked_at = due_by
    WHERE due_work.subscription_id IN (
        SELECT d.subscription_id FROM due_work d
        WHERE d.due_at <= due_by AND (d.checked_at IS NULL OR d.checked_at < due_by)
        ORDER BY d.due_at, d.subscription_id
        LIMIT lim
        FOR UPDATE SKIP LOCKED)
    RETURNING due_work.subscription_id;
END
$$;
