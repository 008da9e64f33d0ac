-- subs_append looks reservations up one key at a time, by the primary key.
-- It joined the reservations table with unnest() of its parameters, and
-- the generic plan PL/pgSQL settles on after a few calls hashes the whole
-- table for that join: every append that reserves or releases read all
-- reservations (3 ms each with 20,000 of them, growing with every
-- customer). Otherwise the function is 0002's, which says what it does.
CREATE OR REPLACE FUNCTION subs_append(
    p_stream_id       text,
    p_expected        bigint,
    p_command_id      text,
    p_event_ids       uuid[],
    p_types           text[],
    p_schema_versions integer[],
    p_data            jsonb[],
    p_metadata        jsonb[],
    p_recorded_at     timestamptz,
    p_recorded_micros bigint,
    p_reserve_scopes  text[],
    p_reserve_keys    text[],
    p_release_scopes  text[],
    p_release_keys    text[]
) RETURNS TABLE (
    first_version  bigint,
    last_version   bigint,
    first_position bigint,
    last_position  bigint,
    transaction_id xid8,
    replayed       boolean
) LANGUAGE plpgsql AS $$
DECLARE
    n            integer := coalesce(array_length(p_event_ids, 1), 0);
    cur_version  bigint;
    prev_hash    bytea;
    canon        bytea[];
    c            bytea;
    hashes       bytea[] := '{}';
    conflict     record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_stream_id, 0));

    IF p_command_id IS NOT NULL THEN
        RETURN QUERY SELECT c.first_version, c.last_version, c.first_position, c.last_position, e.transaction_id, true
            FROM commands c LEFT JOIN events e ON e.global_position = c.last_position
            WHERE c.command_id = p_command_id;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;

    SELECT e.stream_version, e.hash INTO cur_version, prev_hash
        FROM events e WHERE e.stream_id = p_stream_id
        ORDER BY e.stream_version DESC LIMIT 1;
    cur_version := coalesce(cur_version, 0);
    prev_hash := coalesce(prev_hash, ''::bytea);

    IF p_expected >= 0 AND p_expected <> cur_version THEN
        RAISE EXCEPTION 'stream % is at version %, not %', p_stream_id, cur_version, p_expected
            USING ERRCODE = 'SB409', DETAIL = cur_version::text;
    END IF;

    IF n = 0 THEN
        RETURN QUERY SELECT cur_version, cur_version, 0::bigint, 0::bigint, NULL::xid8, false;
        RETURN;
    END IF;

    -- The canonical bytes of each event (eventstore/verify.go's canonical),
    -- built set-based: subscripting variable-length arrays in a loop is
    -- quadratic.
    SELECT array_agg(convert_to(
            p_stream_id || E'\n' || (cur_version + u.ord)::text || E'\n' || u.id::text || E'\n' ||
            u.typ || E'\n' || u.sv::text || E'\n' || p_recorded_micros::text || E'\n' ||
            u.dat::text || E'\n' || u.meta::text, 'UTF8') ORDER BY u.ord)
        INTO canon
        FROM unnest(p_event_ids, p_types, p_schema_versions, p_data, p_metadata)
             WITH ORDINALITY AS u(id, typ, sv, dat, meta, ord);
    FOREACH c IN ARRAY canon LOOP
        prev_hash := sha256(prev_hash || c);
        hashes := hashes || prev_hash;
    END LOOP;

    -- Positions come from a shared sequence: another stream's concurrent
    -- append may interleave, so the batch's positions need not be contiguous.
    WITH inserted AS (
        INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at, hash)
        SELECT p_stream_id, cur_version + u.ord, u.id, u.typ, u.sv, u.dat, u.meta, p_recorded_at, u.h
            FROM unnest(p_event_ids, p_types, p_schema_versions, p_data, p_metadata, hashes)
                 WITH ORDINALITY AS u(id, typ, sv, dat, meta, h, ord)
            ORDER BY u.ord
        RETURNING global_position
    )
    SELECT min(global_position), max(global_position) INTO first_position, last_position FROM inserted;
    first_version := cur_version + 1;
    last_version := cur_version + n;

    FOR i IN 1..coalesce(array_length(p_release_scopes, 1), 0) LOOP
        DELETE FROM reservations r
            WHERE r.scope = p_release_scopes[i] AND r.key = p_release_keys[i] AND r.stream_id = p_stream_id;
    END LOOP;

    IF p_reserve_scopes IS NOT NULL THEN
        INSERT INTO reservations (scope, key, stream_id, reserved_at)
            SELECT x.scope, x.key, p_stream_id, last_position
            FROM unnest(p_reserve_scopes, p_reserve_keys) AS x(scope, key)
            ON CONFLICT (scope, key) DO NOTHING;
        -- A reservation already held by this stream is kept; one held by
        -- another stream refuses the whole append.
        FOR i IN 1..array_length(p_reserve_scopes, 1) LOOP
            SELECT r.scope, r.key, r.stream_id INTO conflict
                FROM reservations r
                WHERE r.scope = p_reserve_scopes[i] AND r.key = p_reserve_keys[i] AND r.stream_id <> p_stream_id;
            IF FOUND THEN
                RAISE EXCEPTION '% % is reserved by %', conflict.scope, conflict.key, conflict.stream_id
                    USING ERRCODE = 'SB423',
                          DETAIL = json_build_object('scope', conflict.scope, 'key', conflict.key, 'owner', conflict.stream_id)::text;
            END IF;
        END LOOP;
    END IF;

    IF p_command_id IS NOT NULL THEN
        INSERT INTO commands (command_id, stream_id, first_version, last_version, first_position, last_position, recorded_at)
            VALUES (p_command_id, p_stream_id, first_version, last_version, first_position, last_position, p_recorded_at);
    END IF;

    transaction_id := pg_current_xact_id();
    replayed := false;
    RETURN NEXT;
END;
$$;
