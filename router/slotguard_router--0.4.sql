-- slotguard_router 0.4: slotguard's slot and booking API in a router database. Each call runs, by
-- PL/Proxy, on the shard database (a database with slotguard installed) that owns its slot or
-- booking; the ids the router hands out name their shard. Loaded by
-- CREATE EXTENSION slotguard_router CASCADE (which creates plproxy first). The design, the id
-- scheme, what is refused and why: docs/router.md.
--
-- Objects:
--   schema slotguard         the API, with slotguard's names and signatures (create_slot, reserve,
--                            reserve_seats, confirm, cancel, booking, availability, expire_holds,
--                            next_expiry) and the composite type slotguard.bookings
--   schema slotguard_router  the shard list (add_shard, move_shard, the view shards) and the
--                            internal pieces: the PL/Proxy functions (*_on, *_all) that run one
--                            statement on a shard, id translation, error passing
--   schema plproxy           PL/Proxy's cluster configuration functions for the cluster
--                            'slotguard' (PL/Proxy looks them up by these names)
--
-- Rights: the API functions are SECURITY DEFINER and run their shard calls as the extension's
-- owner, so that the shard list (whose conninfo may hold passwords) stays readable by superusers
-- only. Every name is schema-qualified and every operator written OPERATOR(pg_catalog.x). The
-- API functions and the (superuser-only) configuration functions set search_path; the internal
-- helpers, which only they call (EXECUTE is revoked from PUBLIC), run under it and set nothing,
-- so that the SQL ones are inlined and none pays a settings change per call.
\echo Use "CREATE EXTENSION slotguard_router CASCADE" to load this file. \quit

CREATE SCHEMA slotguard;
REVOKE ALL ON SCHEMA slotguard FROM PUBLIC;      -- as slotguard: a DBA grants USAGE to the apps
CREATE SCHEMA slotguard_router;
GRANT USAGE ON SCHEMA slotguard_router TO PUBLIC; -- the shards view; everything else is revoked
CREATE SCHEMA plproxy;
REVOKE ALL ON SCHEMA plproxy FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- The shard list. A shard's number is fixed when it is added (0, 1, 2, ...) and is part of every
-- id the router returns: shards are never renumbered or removed; move_shard points a number at
-- another conninfo (the same database restored elsewhere).
CREATE TABLE slotguard_router.shard_config (
    shard    int PRIMARY KEY CHECK (shard OPERATOR(pg_catalog.>=) 0 AND shard OPERATOR(pg_catalog.<) 1000),
    conninfo text NOT NULL UNIQUE,
    added_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    revision int NOT NULL DEFAULT 0   -- bumped by move_shard: PL/Proxy reloads its partitions
);
REVOKE ALL ON slotguard_router.shard_config FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('slotguard_router.shard_config', '');

-- create_slot's round robin over the shards.
CREATE SEQUENCE slotguard_router.placement;
REVOKE ALL ON slotguard_router.placement FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('slotguard_router.placement', '');

-- mask_conninfo hides a password in a conninfo: key=value form (password=...) and URI form
-- (postgresql://user:secret@host/db, ?password=...).
CREATE FUNCTION slotguard_router.mask_conninfo(conninfo text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $$
SELECT pg_catalog.regexp_replace(
         pg_catalog.regexp_replace(
           pg_catalog.regexp_replace(conninfo,
             '(^|\s)password\s*=\s*(''([^''\\]|\\.)*''|\S+)', '\1password=********', 'gi'),
           '^(postgres(ql)?://[^:@/]*):[^@/]*@', '\1:********@', 'i'),
         '([?&])password=[^&]*', '\1password=********', 'gi')
$$;

CREATE VIEW slotguard_router.shards AS
SELECT c.shard, slotguard_router.mask_conninfo(c.conninfo) AS conninfo, c.added_at
  FROM slotguard_router.shard_config c;
GRANT SELECT ON slotguard_router.shards TO PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- PL/Proxy's cluster configuration (its "compat" functions, read through SPI on every call as
-- the calling role: here always the extension owner, see above). The partitions are the shards in
-- shard order; modular_mapping (PL/Proxy 2.10) maps a hash h to partition h % N, so any number of
-- shards works and RUN ON s runs on shard s exactly.
-- (get_cluster_version runs on every call: plain SQL; NULL for another cluster name makes
-- PL/Proxy fail with its own error.)
CREATE FUNCTION plproxy.get_cluster_version(cluster_name text) RETURNS int4
    LANGUAGE sql STABLE AS $$
SELECT CASE WHEN cluster_name OPERATOR(pg_catalog.=) 'slotguard'
            THEN (SELECT pg_catalog.count(*)::int4 OPERATOR(pg_catalog.+)
                         COALESCE(pg_catalog.sum(c.revision), 0)::int4 OPERATOR(pg_catalog.+) 1
                    FROM slotguard_router.shard_config c) END
$$;

CREATE FUNCTION plproxy.get_cluster_partitions(cluster_name text) RETURNS SETOF text
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF cluster_name OPERATOR(pg_catalog.<>) 'slotguard' THEN
        RAISE EXCEPTION 'PL/Proxy cluster "%" is not defined in this database', cluster_name
              USING ERRCODE = '42704';
    END IF;
    RETURN QUERY SELECT c.conninfo FROM slotguard_router.shard_config c ORDER BY c.shard;
END
$$;

CREATE FUNCTION plproxy.get_cluster_config(cluster_name text, OUT key text, OUT val text)
    RETURNS SETOF record
    LANGUAGE sql STABLE AS $$
SELECT 'modular_mapping'::text, '1'::text
$$;

-- ---------------------------------------------------------------------------------------------
-- The API's result type: slotguard.bookings' columns, in slotguard's order.
CREATE TYPE slotguard.bookings AS (
    id              bigint,
    slot_id         bigint,
    holder          text,
    seats           int,
    seat_labels     text[],
    status          text,
    idempotency_key text,
    shard           int,          -- slotguard's own counter row of the slot, not the router shard
    created_at      timestamptz,
    expires_at      timestamptz,
    confirmed_at    timestamptz,
    cancelled_at    timestamptz
);

-- ---------------------------------------------------------------------------------------------
-- The PL/Proxy functions: one statement on one shard (RUN ON p_shard) or on every shard (RUN ON
-- ALL), in autocommit there. Writers set the caller's slotguard.actor / actor_role on the shard in
-- the same statement, because the router session's settings do not travel: a subquery fenced with
-- OFFSET 0 sets them, and the call takes its arguments from that subquery's row, so it runs after. Arguments come in as typed parameters: nothing is pasted into SQL.
CREATE FUNCTION slotguard_router.create_slot_on(p_shard int, p_actor text, p_role text,
        p_capacity int, p_starts timestamptz, p_ends timestamptz, p_resource text,
        p_ttl interval, p_labels text[], p_one boolean, p_manager text) RETURNS bigint
    LANGUAGE plproxy AS $$
    CLUSTER 'slotguard';
    RUN ON p_shard;
    SELECT slotguard.create_slot(c.capacity, c.starts_at, c.ends_at, c.resource, c.hold_ttl,
                                 c.seat_labels, c.one_per_holder, c.managed_by) AS create_slot_on
      FROM (SELECT pg_catalog.set_config('slotguard.actor', p_actor::pg_catalog.text, true) AS actor,
                   pg_catalog.set_config('slotguard.actor_role', p_role::pg_catalog.text, true) AS actor_role,
                   p_capacity::pg_catalog.int4 AS capacity, p_starts::pg_catalog.timestamptz AS starts_at,
                   p_ends::pg_catalog.timestamptz AS ends_at, p_resource::pg_catalog.text AS resource,
                   p_ttl::pg_catalog.interval AS hold_ttl, p_labels::pg_catalog.text[] AS seat_labels,
                   p_one::pg_catalog.bool AS one_per_holder,
                   p_manager::pg_catalog.text::pg_catalog.regrole AS managed_by
            OFFSET 0) AS c;
$$;

CREATE FUNCTION slotguard_router.reserve_on(p_shard int, p_actor text, p_role text,
        p_slot bigint, p_holder text, p_seats int, p_ttl interval, p_key text, p_confirm boolean)
    RETURNS slotguard.bookings
    LANGUAGE plproxy AS $$
    CLUSTER 'slotguard';
    RUN ON p_shard;
    SELECT r.* FROM (
        SELECT pg_catalog.set_config('slotguard.actor', p_actor::pg_catalog.text, true) AS actor,
               pg_catalog.set_config('slotguard.actor_role', p_role::pg_catalog.text, true) AS actor_role,
               p_slot::pg_catalog.int8 AS slot_id, p_holder::pg_catalog.text AS holder,
               p_seats::pg_catalog.int4 AS seats, p_ttl::pg_catalog.interval AS hold_ttl,
               p_key::pg_catalog.text AS idempotency_key, p_confirm::pg_catalog.bool AS confirm
        OFFSET 0) AS c CROSS JOIN LATERAL
           slotguard.reserve(c.slot_id, c.holder, c.seats, c.hold_ttl, c.idempotency_key, c.confirm) AS r;
$$;

CREATE FUNCTION slotguard_router.reserve_seats_on(p_shard int, p_actor text, p_role text,
        p_slot bigint, p_holder text, p_labels text[], p_ttl interval, p_key text,
        p_confirm boolean)
    RETURNS slotguard.bookings
    LANGUAGE plproxy AS $$
    CLUSTER 'slotguard';
    RUN ON p_shard;
    SELECT r.* FROM (
        SELECT pg_catalog.set_config('slotguard.actor', p_actor::pg_catalog.text, true) AS actor,
               pg_catalog.set_config('slotguard.actor_role', p_role::pg_catalog.text, true) AS actor_role,
               p_slot::pg_catalog.int8 AS slot_id, p_holder::pg_catalog.text AS holder,
               p_labels::pg_catalog.text[] AS labels, p_ttl::pg_catalog.interval AS hold_ttl,
               p_key::pg_catalog.text AS idempotency_key, p_confirm::pg_catalog.bool AS confirm
        OFFSET 0) AS c CROSS JOIN LATERAL
           slotguard.reserve_seats(c.slot_id, c.holder, c.labels, c.hold_ttl, c.idempotency_key,
                                   c.confirm) AS r;
$$;

CREATE FUNCTION slotguard_router.confirm_on(p_shard int, p_actor text, p_role text,
        p_booking bigint) RETURNS slotguard.bookings
    LANGUAGE plproxy AS $$
    CLUSTER 'slotguard';
    RUN ON p_shard;
    SELECT r.* FROM (
        SELECT pg_catalog.set_config('slotguard.actor', p_actor::pg_catalog.text, true) AS actor,
               pg_catalog.set_config('slotguard.actor_role', p_role::pg_catalog.text, true) AS actor_role,
               p_booking::pg_catalog.int8 AS booking_id
        OFFSET 0) AS c CROSS JOIN LATERAL slotguard.confirm(c.booking_id) AS r;
$$;

CREATE FUNCTION slotguard_router.cancel_on(p_shard int, p_actor text, p_role text,
        p_booking bigint) RETURNS slotguard.bookings
    LANGUAGE plproxy AS $$
    CLUSTER 'slotguard';
    RUN ON p_shard;
    SELECT r.* FROM (
        SELECT pg_catalog.set_config('slotguard.actor', p_actor::pg_catalog.text, true) AS actor,
               pg_catalog.set_config('slotguard.actor_role', p_role::pg_catalog.text, true) AS actor_role,
               p_booking::pg_catalog.int8 AS booking_id
        OFFSET 0) AS c CROSS JOIN LATERAL slotguard.cancel(c.booking_id) AS r;
$$;

CREATE FUNCTION slotguard_router.booking_on(p_shard int, p_booking bigint)
    RETURNS slotguard.bookings
    LANGUAGE plproxy AS $$
    CLUSTER 'slotguard';
    RUN ON p_shard;
    SELECT r.* FROM slotguard.booking(p_booking::pg_catalog.int8) AS r;
$$;

CREATE FUNCTION slotguard_router.availability_on(p_shard int, p_slot bigint,
        OUT capacity int, OUT confirmed int, OUT held int, OUT free int) RETURNS SETOF record
    LANGUAGE plproxy AS $$
    CLUSTER 'slotguard';
    RUN ON p_shard;
    SELECT r.capacity, r.confirmed, r.held, r.free
      FROM slotguard.availability(p_slot::pg_catalog.int8) AS r;
$$;

CREATE FUNCTION slotguard_router.expire_holds_all(p_actor text, p_role text, p_max int)
    RETURNS SETOF int
    LANGUAGE plproxy AS $$
    CLUSTER 'slotguard';
    RUN ON ALL;
    SELECT slotguard.expire_holds(c.max_rows) AS expire_holds_all FROM (
        SELECT pg_catalog.set_config('slotguard.actor', p_actor::pg_catalog.text, true) AS actor,
               pg_catalog.set_config('slotguard.actor_role', p_role::pg_catalog.text, true) AS actor_role,
               p_max::pg_catalog.int4 AS max_rows
        OFFSET 0) AS c;
$$;

CREATE FUNCTION slotguard_router.next_expiry_all() RETURNS SETOF timestamptz
    LANGUAGE plproxy AS $$
    CLUSTER 'slotguard';
    RUN ON ALL;
    SELECT slotguard.next_expiry() AS next_expiry_all;
$$;

-- shard_version: slotguard's version in the database of conninfo ('' when it has none).
CREATE FUNCTION slotguard_router.shard_version(p_conninfo text) RETURNS text
    LANGUAGE plproxy AS $$
    CONNECT p_conninfo;
    SELECT COALESCE((SELECT e.extversion::pg_catalog.text FROM pg_catalog.pg_extension e
                      WHERE e.extname OPERATOR(pg_catalog.=) 'slotguard'), '') AS shard_version;
$$;

-- ---------------------------------------------------------------------------------------------
-- Ids. A router id is local id * 1000 + shard number: the last three decimal digits name the
-- shard (17003 is id 17 of shard 3). Shard databases are unchanged: their own ids and sequences
-- survive pg_dump / restore as they are, and so do the router ids built on them.
CREATE FUNCTION slotguard_router.shard_count() RETURNS int
    LANGUAGE sql STABLE AS $$
SELECT pg_catalog.count(*)::int FROM slotguard_router.shard_config
$$;

-- shard_of: the shard of a router id of kind 'slot' or 'booking'; an id that names no shard is
-- slotguard's SG002 with slotguard's message.
CREATE FUNCTION slotguard_router.shard_of(kind text, id bigint) RETURNS int
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    s int := (id OPERATOR(pg_catalog.%) 1000)::int;
BEGIN
    IF id IS NULL OR id OPERATOR(pg_catalog.<) 1000 OR s OPERATOR(pg_catalog.>=) slotguard_router.shard_count() THEN
        RAISE EXCEPTION '% % does not exist', kind, COALESCE(id::text, 'NULL') USING ERRCODE = 'SG002';
    END IF;
    RETURN s;
END
$$;

CREATE FUNCTION slotguard_router.local_id(id bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT AS $$
SELECT id OPERATOR(pg_catalog./) 1000
$$;

CREATE FUNCTION slotguard_router.router_id(local_id bigint, shard int) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT AS $$
SELECT local_id OPERATOR(pg_catalog.*) 1000 OPERATOR(pg_catalog.+) shard
$$;

-- router_booking: a shard's booking with router ids.
CREATE FUNCTION slotguard_router.router_booking(b slotguard.bookings, shard int)
    RETURNS slotguard.bookings
    LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    b.id := slotguard_router.router_id(b.id, shard);
    b.slot_id := slotguard_router.router_id(b.slot_id, shard);
    RETURN b;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- One writing call per router transaction. PL/Proxy runs each call in autocommit on its shard: it
-- has committed there when it returns, and the router transaction's ROLLBACK cannot undo it. Two
-- writes in one transaction (on one shard or two) could therefore never be all-or-nothing: the
-- second is refused before it runs. expire_holds is housekeeping (a dead hold is free whether
-- marked or not) and is not counted.
CREATE FUNCTION slotguard_router.begin_write(fn text, shard int) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    earlier text := pg_catalog.current_setting('slotguard_router.written', true);
BEGIN
    IF earlier OPERATOR(pg_catalog.<>) '' THEN
        RAISE EXCEPTION 'slotguard router: % cannot run in a transaction that already wrote through the router', fn
              USING ERRCODE = '25001',
                    DETAIL = pg_catalog.format('This transaction already ran %s. Each call commits on its shard when it returns, so two writes in one transaction could not be undone together.', earlier),
                    HINT = 'Run each reserve, confirm, cancel or create_slot in its own transaction (autocommit).';
    END IF;
    PERFORM pg_catalog.set_config('slotguard_router.written',
                                  pg_catalog.format('%s on shard %s', fn, shard), true);
END
$$;

CREATE FUNCTION slotguard_router.actor() RETURNS text
    LANGUAGE sql STABLE AS $$
SELECT COALESCE(pg_catalog.current_setting('slotguard.actor', true), '')
$$;

CREATE FUNCTION slotguard_router.actor_role() RETURNS text
    LANGUAGE sql STABLE AS $$
SELECT COALESCE(pg_catalog.current_setting('slotguard.actor_role', true), '')
$$;

-- router_message: a shard's message with its ids turned into router ids. slotguard's messages
-- name a slot, booking or hold either first ("slot 4 is sold out", "hold 9 has expired") or last
-- ("... already has a booking for slot 4", "permission denied for booking 9"); holders, keys and
-- labels sit in between, so only those two places are rewritten.
CREATE FUNCTION slotguard_router.router_message(msg text, shard int) RETURNS text
    LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    m text[] := pg_catalog.regexp_match(msg, '^((slot|booking|hold) )([0-9]+)(.*)$', 's');
BEGIN
    IF m IS NOT NULL THEN
        RETURN m[1] OPERATOR(pg_catalog.||) slotguard_router.router_id(m[3]::bigint, shard)
               OPERATOR(pg_catalog.||) m[4];
    END IF;
    m := pg_catalog.regexp_match(msg, '^(.* (slot|booking) )([0-9]+)$', 's');
    IF m IS NOT NULL THEN
        RETURN m[1] OPERATOR(pg_catalog.||) slotguard_router.router_id(m[3]::bigint, shard);
    END IF;
    RETURN msg;
END
$$;

-- raise_from_shard re-raises an error caught around a PL/Proxy call (shard NULL: a call on every
-- shard). PL/Proxy keeps a shard's SQLSTATE but prefixes its text ("fn(n): [db] REMOTE ERROR:
-- ...", "Remote detail: ...", "Remote hint: ...") and drops the error fields: the caller gets the
-- shard's own SQLSTATE, message, DETAIL and HINT, with router ids, and for a one_per_holder SG003
-- its constraint_name back. A shard PL/Proxy cannot connect to is 08006 (the call did not run); a
-- connection lost after the call was sent is 08007 (it may have run).
CREATE FUNCTION slotguard_router.raise_from_shard(shard int, state text, msg text, detail text,
                                                  hint text) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    remote text[] := pg_catalog.regexp_match(msg, '^[^ ]+\([0-9]+\): \[[^]]*\] REMOTE [^:]+: (.*)$', 's');
    constraint_name text := '';
BEGIN
    IF remote IS NULL THEN
        IF msg OPERATOR(pg_catalog.~) '^PL/Proxy function .*(PQconnectStart|PQconnectPoll|connect timeout)' THEN
            RAISE EXCEPTION 'slotguard router: shard % is unreachable', COALESCE(shard::text, '(one of them)')
                  USING ERRCODE = '08006', DETAIL = msg;
        END IF;
        IF msg OPERATOR(pg_catalog.~) '^PL/Proxy function .*(PQsend|PQflush|PQconsumeInput|query timeout|Unfinished connection|Lost result)' THEN
            RAISE EXCEPTION 'slotguard router: the connection to shard % broke during the call; its outcome is unknown',
                  COALESCE(shard::text, '(one of them)')
                  USING ERRCODE = '08007', DETAIL = msg;
        END IF;
        state := COALESCE(state, 'XX000');
        detail := COALESCE(detail, '');
        hint := COALESCE(hint, '');
    ELSE
        msg := remote[1];
        detail := pg_catalog.regexp_replace(COALESCE(detail, ''), '^Remote detail: ', '');
        hint := pg_catalog.regexp_replace(COALESCE(hint, ''), '^Remote hint: ', '');
        IF shard IS NOT NULL THEN
            msg := slotguard_router.router_message(msg, shard);
        END IF;
        IF state OPERATOR(pg_catalog.=) 'SG003' AND msg OPERATOR(pg_catalog.~) '^holder "'
           AND detail OPERATOR(pg_catalog.<>) '' THEN
            constraint_name := 'one_per_holder';
        END IF;
    END IF;
    -- RAISE takes no NULL option and sends an empty one as given: one statement per combination.
    IF constraint_name OPERATOR(pg_catalog.<>) '' THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg, DETAIL = detail,
                              CONSTRAINT = constraint_name;
    ELSIF detail OPERATOR(pg_catalog.<>) '' AND hint OPERATOR(pg_catalog.<>) '' THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg, DETAIL = detail, HINT = hint;
    ELSIF detail OPERATOR(pg_catalog.<>) '' THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg, DETAIL = detail;
    ELSIF hint OPERATOR(pg_catalog.<>) '' THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg, HINT = hint;
    END IF;
    RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- The API. Each function: find the shard (from the id, or create_slot's round robin), run the
-- PL/Proxy function, turn errors and ids into the router's. (The error handler's few lines repeat
-- in each PL/pgSQL function: GET STACKED DIAGNOSTICS works only inside the handler itself.) PL/Proxy drops a
-- connection whose statement failed and says so with a NOTICE on the next call ("dropping stale
-- conn"): client_min_messages = warning keeps that from the caller.
CREATE FUNCTION slotguard.create_slot(capacity int,
                                      starts_at timestamptz DEFAULT NULL,
                                      ends_at timestamptz DEFAULT NULL,
                                      resource text DEFAULT NULL,
                                      hold_ttl interval DEFAULT '2 minutes',
                                      seat_labels text[] DEFAULT NULL,
                                      one_per_holder boolean DEFAULT false,
                                      managed_by regrole DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET client_min_messages = warning AS $$
DECLARE
    n int := slotguard_router.shard_count();
    s int;
    id bigint;
    st text; msg text; det text; hnt text;
BEGIN
    IF n OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'slotguard router: no shards' USING ERRCODE = '55000',
              HINT = 'Add one with SELECT slotguard_router.add_shard(conninfo).';
    END IF;
    s := ((pg_catalog.nextval('slotguard_router.placement') OPERATOR(pg_catalog.-) 1)
          OPERATOR(pg_catalog.%) n)::int;
    PERFORM slotguard_router.begin_write('create_slot', s);
    BEGIN
        id := slotguard_router.create_slot_on(s, slotguard_router.actor(), slotguard_router.actor_role(),
                  capacity, starts_at, ends_at, resource, hold_ttl, seat_labels, one_per_holder,
                  managed_by::text);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                                det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
        PERFORM slotguard_router.raise_from_shard(s, st, msg, det, hnt);
    END;
    RETURN slotguard_router.router_id(id, s);
END
$$;

-- call_reserve runs reserve or reserve_seats (fn) on the slot's shard; call_booking runs confirm,
-- cancel or booking (fn) on the booking's shard. The API functions below call them.
CREATE FUNCTION slotguard_router.call_reserve(fn text, slot_id bigint, holder text, seats int,
                                              labels text[], hold_ttl interval,
                                              idempotency_key text, confirm boolean)
    RETURNS slotguard.bookings
    LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    s int := slotguard_router.shard_of('slot', slot_id);
    slot bigint := slotguard_router.local_id(slot_id);
    b slotguard.bookings;
    st text; msg text; det text; hnt text;
BEGIN
    PERFORM slotguard_router.begin_write(fn, s);
    BEGIN
        IF fn OPERATOR(pg_catalog.=) 'reserve' THEN
            b := slotguard_router.reserve_on(s, slotguard_router.actor(), slotguard_router.actor_role(),
                     slot, holder, seats, hold_ttl, idempotency_key, confirm);
        ELSE
            b := slotguard_router.reserve_seats_on(s, slotguard_router.actor(),
                     slotguard_router.actor_role(), slot, holder, labels, hold_ttl, idempotency_key,
                     confirm);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                                det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
        PERFORM slotguard_router.raise_from_shard(s, st, msg, det, hnt);
    END;
    RETURN slotguard_router.router_booking(b, s);
END
$$;

CREATE FUNCTION slotguard_router.call_booking(fn text, booking_id bigint) RETURNS slotguard.bookings
    LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    s int := slotguard_router.shard_of('booking', booking_id);
    id bigint := slotguard_router.local_id(booking_id);
    b slotguard.bookings;
    st text; msg text; det text; hnt text;
BEGIN
    IF fn OPERATOR(pg_catalog.<>) 'booking' THEN
        PERFORM slotguard_router.begin_write(fn, s);
    END IF;
    BEGIN
        CASE fn
            WHEN 'confirm' THEN
                b := slotguard_router.confirm_on(s, slotguard_router.actor(),
                                                 slotguard_router.actor_role(), id);
            WHEN 'cancel' THEN
                b := slotguard_router.cancel_on(s, slotguard_router.actor(),
                                                slotguard_router.actor_role(), id);
            ELSE
                b := slotguard_router.booking_on(s, id);
        END CASE;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                                det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
        PERFORM slotguard_router.raise_from_shard(s, st, msg, det, hnt);
    END;
    RETURN slotguard_router.router_booking(b, s);
END
$$;

CREATE FUNCTION slotguard.reserve(slot_id bigint, holder text, seats int DEFAULT 1,
                                  hold_ttl interval DEFAULT NULL,
                                  idempotency_key text DEFAULT NULL,
                                  confirm boolean DEFAULT false) RETURNS slotguard.bookings
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET client_min_messages = warning AS $$
SELECT slotguard_router.call_reserve('reserve', slot_id, holder, seats, NULL, hold_ttl,
                                     idempotency_key, confirm)
$$;

CREATE FUNCTION slotguard.reserve_seats(slot_id bigint, holder text, labels text[],
                                        hold_ttl interval DEFAULT NULL,
                                        idempotency_key text DEFAULT NULL,
                                        confirm boolean DEFAULT false) RETURNS slotguard.bookings
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET client_min_messages = warning AS $$
SELECT slotguard_router.call_reserve('reserve_seats', slot_id, holder, NULL, labels, hold_ttl,
                                     idempotency_key, confirm)
$$;

CREATE FUNCTION slotguard.confirm(booking_id bigint) RETURNS slotguard.bookings
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET client_min_messages = warning AS $$
SELECT slotguard_router.call_booking('confirm', booking_id)
$$;

CREATE FUNCTION slotguard.cancel(booking_id bigint) RETURNS slotguard.bookings
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET client_min_messages = warning AS $$
SELECT slotguard_router.call_booking('cancel', booking_id)
$$;

CREATE FUNCTION slotguard.booking(booking_id bigint) RETURNS slotguard.bookings
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET client_min_messages = warning AS $$
SELECT slotguard_router.call_booking('booking', booking_id)
$$;

CREATE FUNCTION slotguard.availability(slot_id bigint,
                                       OUT capacity int, OUT confirmed int, OUT held int, OUT free int)
    RETURNS SETOF record
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET client_min_messages = warning ROWS 1 AS $$
DECLARE
    s int := slotguard_router.shard_of('slot', slot_id);
    st text; msg text; det text; hnt text;
BEGIN
    BEGIN
        RETURN QUERY SELECT * FROM slotguard_router.availability_on(s, slotguard_router.local_id(slot_id));
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                                det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
        PERFORM slotguard_router.raise_from_shard(s, st, msg, det, hnt);
    END;
END
$$;

-- expire_holds runs on every shard at once (RUN ON ALL), each with max_rows, and returns the sum;
-- with no shards there is nothing to sweep. next_expiry is the earliest of the shards'.
CREATE FUNCTION slotguard.expire_holds(max_rows int DEFAULT 10000) RETURNS int
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET client_min_messages = warning AS $$
DECLARE
    n int := 0;
    st text; msg text; det text; hnt text;
BEGIN
    IF slotguard_router.shard_count() OPERATOR(pg_catalog.=) 0 THEN
        RETURN 0;
    END IF;
    BEGIN
        SELECT COALESCE(pg_catalog.sum(e), 0)::int INTO n
          FROM slotguard_router.expire_holds_all(slotguard_router.actor(),
                                                 slotguard_router.actor_role(), max_rows) AS e;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                                det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
        PERFORM slotguard_router.raise_from_shard(NULL, st, msg, det, hnt);
    END;
    RETURN n;
END
$$;

CREATE FUNCTION slotguard.next_expiry() RETURNS timestamptz
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET client_min_messages = warning AS $$
DECLARE
    t timestamptz;
    st text; msg text; det text; hnt text;
BEGIN
    IF slotguard_router.shard_count() OPERATOR(pg_catalog.=) 0 THEN
        RETURN NULL;
    END IF;
    BEGIN
        SELECT pg_catalog.min(e) INTO t FROM slotguard_router.next_expiry_all() AS e;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                                det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
        PERFORM slotguard_router.raise_from_shard(NULL, st, msg, det, hnt);
    END;
    RETURN t;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Configuration: superusers only. A conninfo tells the router's server where to connect and with
-- which credentials (also from its .pgpass): letting another role choose one would let it borrow
-- them. Without user= in the conninfo PL/Proxy connects as the extension's owner.

-- check_shard: the conninfo reaches a database with slotguard 0.3 or later.
CREATE FUNCTION slotguard_router.check_shard(conninfo text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v text;
    st text; msg text; det text; hnt text;
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r
             WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
        RAISE EXCEPTION 'permission denied to configure slotguard_router shards' USING ERRCODE = '42501',
              HINT = 'Only superusers add or move shards.';
    END IF;
    IF conninfo IS NULL OR pg_catalog.btrim(conninfo) OPERATOR(pg_catalog.=) '' THEN
        RAISE EXCEPTION 'conninfo must not be empty' USING ERRCODE = '22023';
    END IF;
    -- PL/Proxy appends " user=..." to a conninfo without one, which a URI cannot take.
    IF conninfo OPERATOR(pg_catalog.~*) '^\s*postgres(ql)?://' THEN
        RAISE EXCEPTION 'a shard''s conninfo must be in key=value form, not a URI' USING ERRCODE = '22023',
              HINT = 'For example: host=db1 port=5432 dbname=shard0 user=router';
    END IF;
    BEGIN
        v := slotguard_router.shard_version(conninfo);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                                det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
        PERFORM slotguard_router.raise_from_shard(NULL, st, msg, det, hnt);
    END;
    IF v OPERATOR(pg_catalog.=) '' THEN
        RAISE EXCEPTION 'the shard database has no slotguard extension' USING ERRCODE = '55000',
              HINT = 'Run CREATE EXTENSION slotguard in it first.';
    END IF;
    IF pg_catalog.string_to_array(v, '.')::int[] OPERATOR(pg_catalog.<) '{0,3}'::int[] THEN
        RAISE EXCEPTION 'slotguard in the shard database is version %, the router needs 0.3 or later', v
              USING ERRCODE = '55000', HINT = 'Run ALTER EXTENSION slotguard UPDATE in it.';
    END IF;
END
$$;

CREATE FUNCTION slotguard_router.add_shard(conninfo text) RETURNS int
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s int;
BEGIN
    PERFORM slotguard_router.check_shard(conninfo);
    LOCK TABLE slotguard_router.shard_config IN EXCLUSIVE MODE;
    IF EXISTS (SELECT FROM slotguard_router.shard_config c
                WHERE c.conninfo OPERATOR(pg_catalog.=) add_shard.conninfo) THEN
        RAISE EXCEPTION 'this conninfo is already a shard' USING ERRCODE = '23505';
    END IF;
    s := slotguard_router.shard_count();
    IF s OPERATOR(pg_catalog.>=) 1000 THEN
        RAISE EXCEPTION 'slotguard router: at most 1000 shards' USING ERRCODE = '54000';
    END IF;
    INSERT INTO slotguard_router.shard_config (shard, conninfo) VALUES (s, add_shard.conninfo);
    RETURN s;
END
$$;

CREATE FUNCTION slotguard_router.move_shard(shard int, conninfo text) RETURNS void
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM slotguard_router.check_shard(conninfo);
    UPDATE slotguard_router.shard_config c
       SET conninfo = move_shard.conninfo, revision = c.revision OPERATOR(pg_catalog.+) 1
     WHERE c.shard OPERATOR(pg_catalog.=) move_shard.shard;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'shard % does not exist', shard USING ERRCODE = 'SG002';
    END IF;
END
$$;

-- Everything in slotguard_router and plproxy is internal but the shards view; the API in schema
-- slotguard is executable by whoever has USAGE on it (as in slotguard).
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA slotguard_router FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA plproxy FROM PUBLIC;
-- (a view's functions run with the reader's rights)
GRANT EXECUTE ON FUNCTION slotguard_router.mask_conninfo(text) TO PUBLIC;
