-- subs_append_batch makes several appends, each to one stream, in the
-- caller's transaction and one call: a worker's batch of a few hundred
-- single-event appends cost a function call and some seven statements per
-- append with subs_append (about 100 µs of the server's time each); here
-- each step is one statement for the whole batch. The rules are 0002's,
-- per append:
--   * every stream is locked (transaction-level advisory lock) before the
--     transaction writes anything, all of them in the order of their lock
--     keys, so that two batches cannot deadlock; a later version of a
--     stream always gets a later transaction id (global readers order by it);
--   * an append whose command id is recorded returns its first result and
--     appends nothing;
--   * an append whose stream is not at its expected version raises SB409
--     (DETAIL: JSON {"append": its index from 1, "actual": the version});
--   * each event's hash = sha256(previous hash of the stream || canonical
--     bytes), the chain running on through the batch when a stream is named
--     again;
--   * a reservation held by another stream raises SB423 (DETAIL: JSON of
--     the reservation, its owner and the append's index);
--   * no NOTIFY (see 0002).
-- An expected version of -1 means any. A stream may be named more than once:
-- its appends follow one another in the batch's order. The result has one
-- row per append, in their order. A single append keeps subs_append: its
-- fixed cost is lower (one stream: 2,747 against 2,187 appends/s, back to
-- back, `BENCH append_single_1`), and it breaks even at about two appends.

-- One append of a batch as the function works on it.
CREATE TYPE subs_append_step AS (
    i            integer,     -- the append's index, from 1
    stream       text,
    expected     bigint,
    command      text,
    at           timestamptz,
    micros       bigint,      -- at in microseconds since the epoch, for the hash
    n            integer,     -- events it appends (none when replayed)
    cur          bigint,      -- the stream's version before it
    head_hash    bytea,       -- the stream's last hash before the batch
    replayed     boolean,
    r_first_version  bigint,  -- the recorded result, when replayed
    r_last_version   bigint,
    r_first_position bigint,
    r_last_position  bigint,
    r_transaction_id xid8
);

-- The hash chain as a running aggregate: over a stream's events in version
-- order, each row's value is sha256(the previous row's value, or start on
-- the first row || canon). PL/pgSQL, whose compiled function a session
-- keeps: a SQL function called as a transition is planned again in every
-- statement that calls it (0.3 ms, more than a small batch's insert).
CREATE FUNCTION subs_hash_step(state bytea, start bytea, canon bytea) RETURNS bytea
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$ BEGIN RETURN sha256(coalesce(state, start) || canon); END $$;

CREATE AGGREGATE subs_hash_chain(bytea, bytea) (SFUNC = subs_hash_step, STYPE = bytea);

CREATE FUNCTION subs_append_batch(
    p_streams         text[],        -- per append
    p_expected        bigint[],
    p_command_ids     text[],        -- NULL: none
    p_recorded_at     timestamptz[],
    p_recorded_micros bigint[],
    p_event_appends   integer[],     -- per event, in order: its append's index
    p_event_ids       uuid[],
    p_types           text[],
    p_schema_versions integer[],
    p_data            jsonb[],
    p_metadata        jsonb[],
    p_reserve_appends integer[],     -- per reservation taken: its append's index
    p_reserve_scopes  text[],
    p_reserve_keys    text[],
    p_release_appends integer[],     -- per reservation given up
    p_release_scopes  text[],
    p_release_keys    text[]
) RETURNS TABLE (
    first_version  bigint,
    last_version   bigint,
    first_position bigint,
    last_position  bigint,
    transaction_id xid8,
    replayed       boolean
) LANGUAGE plpgsql
-- Generic plans from the first call: the statements' custom plans, which
-- PL/pgSQL would otherwise keep making for their array parameters, cost
-- more to plan than a small batch costs to run. Every lookup is by index
-- whatever the plan (the LATERAL subqueries below).
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    steps     subs_append_step[];
    pos_i     integer[];
    pos_first bigint[];
    pos_last  bigint[];
    bad       record;
    r         record;
BEGIN
    PERFORM pg_advisory_xact_lock(k)
        FROM (SELECT DISTINCT hashtextextended(s, 0) AS k FROM unnest(p_streams) AS s ORDER BY 1) AS locks;

    -- The lookups are LATERAL subqueries with a LIMIT, which the planner
    -- cannot flatten into a join, so that every plan, generic ones
    -- included, reads commands and events by their indexes (see 0013).
    SELECT array_agg(ROW(b.i, b.stream, b.expected, b.command, b.at, b.micros, b.n, b.head_version + b.before, b.head_hash, b.replayed,
            b.first_version, b.last_version, b.first_position, b.last_position, b.transaction_id)::subs_append_step ORDER BY b.i)
        INTO steps
        FROM (SELECT a.*, coalesce(h.stream_version, 0) AS head_version, coalesce(h.hash, ''::bytea) AS head_hash,
                     -- the events of the stream's earlier appends in the batch
                     coalesce(sum(a.n) OVER (PARTITION BY a.stream ORDER BY a.i
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
                FROM (SELECT u.i::integer AS i, u.stream, u.expected, u.command, u.at, u.micros,
                             CASE WHEN c.command_id IS NULL THEN coalesce(cnt.n, 0) ELSE 0 END AS n,
                             c.command_id IS NOT NULL AS replayed,
                             c.first_version, c.last_version, c.first_position, c.last_position, c.transaction_id
                        FROM unnest(p_streams, p_expected, p_command_ids, p_recorded_at, p_recorded_micros)
                             WITH ORDINALITY AS u(stream, expected, command, at, micros, i)
                        LEFT JOIN (SELECT e AS i, count(*)::integer AS n FROM unnest(p_event_appends) AS e GROUP BY e) AS cnt
                             ON cnt.i = u.i
                        LEFT JOIN LATERAL (
                            SELECT c.command_id, c.first_version, c.last_version, c.first_position, c.last_position, e.transaction_id
                                FROM commands c LEFT JOIN events e ON e.global_position = c.last_position
                                WHERE c.command_id = u.command LIMIT 1) AS c ON true
                     ) AS a
                LEFT JOIN LATERAL (
                    SELECT e.stream_version, e.hash FROM events e WHERE e.stream_id = a.stream
                        ORDER BY e.stream_version DESC LIMIT 1) AS h ON true
             ) AS b;

    SELECT s.i, s.stream, s.expected, s.cur INTO bad
        FROM unnest(steps) AS s
        WHERE NOT s.replayed AND s.expected >= 0 AND s.expected <> s.cur
        ORDER BY s.i LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'stream % is at version %, not %', bad.stream, bad.cur, bad.expected
            USING ERRCODE = 'SB409', DETAIL = json_build_object('append', bad.i, 'actual', bad.cur)::text;
    END IF;

    -- The events, hashed (the canonical bytes are eventstore/verify.go's
    -- canonical) and inserted in the batch's order: their positions come
    -- from a shared sequence, so another transaction's may interleave.
    WITH ev AS (
        SELECT u.k, s.i, s.stream, s.cur + row_number() OVER (PARTITION BY s.i ORDER BY u.k) AS version,
               u.id, u.typ, u.sv, u.dat, u.meta, s.at, s.micros, s.head_hash
            FROM unnest(p_event_appends, p_event_ids, p_types, p_schema_versions, p_data, p_metadata)
                 WITH ORDINALITY AS u(a, id, typ, sv, dat, meta, k)
            JOIN unnest(steps) AS s ON s.i = u.a
            WHERE NOT s.replayed
    ), hashed AS (
        SELECT ev.*, subs_hash_chain(ev.head_hash, convert_to(
                ev.stream || E'\n' || ev.version::text || E'\n' || ev.id::text || E'\n' ||
                ev.typ || E'\n' || ev.sv::text || E'\n' || ev.micros::text || E'\n' ||
                ev.dat::text || E'\n' || ev.meta::text, 'UTF8'))
            OVER (PARTITION BY ev.stream ORDER BY ev.version ROWS UNBOUNDED PRECEDING) AS hash
            FROM ev
    ), inserted AS (
        INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at, hash)
            SELECT h.stream, h.version, h.id, h.typ, h.sv, h.dat, h.meta, h.at, h.hash FROM hashed h ORDER BY h.k
            RETURNING global_position, stream_id, stream_version
    )
    SELECT array_agg(p.i ORDER BY p.i), array_agg(p.f ORDER BY p.i), array_agg(p.l ORDER BY p.i)
        INTO pos_i, pos_first, pos_last
        FROM (SELECT h.i, min(x.global_position) AS f, max(x.global_position) AS l
                FROM inserted x JOIN hashed h ON h.stream = x.stream_id AND h.version = x.stream_version
                GROUP BY h.i) AS p;

    -- Reservations are few (a sign-up, a key registered): one key at a
    -- time, by the primary key, as 0013 has it.
    IF p_release_appends IS NOT NULL THEN
        FOR r IN SELECT s.stream, x.scope, x.key
                FROM unnest(p_release_appends, p_release_scopes, p_release_keys) AS x(a, scope, key)
                JOIN unnest(steps) AS s ON s.i = x.a
                WHERE s.n > 0 LOOP
            DELETE FROM reservations AS v WHERE v.scope = r.scope AND v.key = r.key AND v.stream_id = r.stream;
        END LOOP;
    END IF;
    IF p_reserve_appends IS NOT NULL THEN
        FOR r IN SELECT s.i, s.stream, x.scope, x.key, p.l
                FROM unnest(p_reserve_appends, p_reserve_scopes, p_reserve_keys) AS x(a, scope, key)
                JOIN unnest(steps) AS s ON s.i = x.a
                JOIN unnest(pos_i, pos_last) AS p(i, l) ON p.i = s.i
                WHERE s.n > 0 LOOP
            INSERT INTO reservations (scope, key, stream_id, reserved_at) VALUES (r.scope, r.key, r.stream, r.l)
                ON CONFLICT (scope, key) DO NOTHING;
            -- A reservation already held by this stream is kept; one held by
            -- another stream refuses the whole batch.
            SELECT v.scope, v.key, v.stream_id INTO bad
                FROM reservations v WHERE v.scope = r.scope AND v.key = r.key AND v.stream_id <> r.stream;
            IF FOUND THEN
                RAISE EXCEPTION '% % is reserved by %', bad.scope, bad.key, bad.stream_id
                    USING ERRCODE = 'SB423',
                          DETAIL = json_build_object('scope', bad.scope, 'key', bad.key, 'owner', bad.stream_id, 'append', r.i)::text;
            END IF;
        END LOOP;
    END IF;

    INSERT INTO commands (command_id, stream_id, first_version, last_version, first_position, last_position, recorded_at)
        SELECT s.command, s.stream, s.cur + 1, s.cur + s.n, p.f, p.l, s.at
            FROM unnest(steps) AS s JOIN unnest(pos_i, pos_first, pos_last) AS p(i, f, l) ON p.i = s.i
            WHERE s.command IS NOT NULL;

    RETURN QUERY
        SELECT CASE WHEN s.replayed THEN s.r_first_version WHEN s.n = 0 THEN s.cur ELSE s.cur + 1 END,
               CASE WHEN s.replayed THEN s.r_last_version ELSE s.cur + s.n END,
               CASE WHEN s.replayed THEN s.r_first_position ELSE coalesce(p.f, 0) END,
               CASE WHEN s.replayed THEN s.r_last_position ELSE coalesce(p.l, 0) END,
               CASE WHEN s.replayed THEN s.r_transaction_id WHEN s.n = 0 THEN NULL ELSE pg_current_xact_id() END,
               s.replayed
            FROM unnest(steps) AS s LEFT JOIN unnest(pos_i, pos_first, pos_last) AS p(i, f, l) ON p.i = s.i
            ORDER BY s.i;
END;
$$;
