-- slotguard 0.1: versioned updates, transition rules, audit and counters.
\echo Use "CREATE EXTENSION slotguard" to load this file. \quit

-- Like pg_cron, slotguard grants nothing to PUBLIC: a DBA grants USAGE ON SCHEMA slotguard to the
-- roles that may use it (see README, "Privileges").
CREATE SCHEMA slotguard;
REVOKE ALL ON SCHEMA slotguard FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- Audit: one row per insert, update and delete of a table versioned with audit => true. Written
-- by slotguard.audit_trigger() with the extension owner's rights, in the writer's transaction.
CREATE TABLE slotguard.audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    txid        bigint NOT NULL,
    db_role     name NOT NULL,
    actor       text,
    actor_role  text,
    tbl         text NOT NULL,
    row_key     jsonb,
    op          text NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE')),
    old_version text,
    new_version text,
    changes     jsonb NOT NULL
);
CREATE INDEX audit_tbl_at_idx ON slotguard.audit (tbl, at);
REVOKE ALL ON slotguard.audit FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('slotguard.audit', '');
SELECT pg_catalog.pg_extension_config_dump('slotguard.audit_id_seq', '');

-- ---------------------------------------------------------------------------------------------
-- Versioned updates
CREATE FUNCTION slotguard.enable_versioning(tbl regclass,
                                            version_column name DEFAULT 'version',
                                            version_type text DEFAULT 'bigint',
                                            timestamps boolean DEFAULT true,
                                            audit boolean DEFAULT false,
                                            require_version boolean DEFAULT false,
                                            version_style text DEFAULT 'assert')
    RETURNS void LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'sg_enable_versioning';
COMMENT ON FUNCTION slotguard.enable_versioning(regclass, name, text, boolean, boolean, boolean, text)
    IS 'Checks and bumps the version column on every UPDATE of tbl (adds missing columns)';

CREATE FUNCTION slotguard.disable_versioning(tbl regclass) RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sg_disable_versioning';
COMMENT ON FUNCTION slotguard.disable_versioning(regclass)
    IS 'Removes versioning triggers from tbl; its columns and data stay';

CREATE FUNCTION slotguard.update_versioned(tbl regclass, key jsonb, expected_version bigint,
                                           changes jsonb) RETURNS jsonb
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sg_update_versioned';
COMMENT ON FUNCTION slotguard.update_versioned(regclass, jsonb, bigint, jsonb)
    IS 'Applies changes to the row with this primary key if its version is expected_version';

CREATE FUNCTION slotguard.update_versioned(tbl regclass, key jsonb, expected_version uuid,
                                           changes jsonb) RETURNS jsonb
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sg_update_versioned_uuid';
COMMENT ON FUNCTION slotguard.update_versioned(regclass, jsonb, uuid, jsonb)
    IS 'Applies changes to the row with this primary key if its version is expected_version';

CREATE FUNCTION slotguard.version_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'sg_version_trigger';
CREATE FUNCTION slotguard.audit_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'sg_audit_trigger';

-- ---------------------------------------------------------------------------------------------
-- Transition rules
CREATE FUNCTION slotguard.add_transition_rule(tbl regclass, column_name name, transitions jsonb,
                                              by_role jsonb DEFAULT NULL) RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sg_add_transition_rule';
COMMENT ON FUNCTION slotguard.add_transition_rule(regclass, name, jsonb, jsonb)
    IS 'Refuses changes of column_name that transitions (or by_role for the writer''s role) do not allow';

CREATE FUNCTION slotguard.drop_transition_rule(tbl regclass, column_name name) RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sg_drop_transition_rule';

CREATE FUNCTION slotguard.transition_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'sg_transition_trigger';

-- ---------------------------------------------------------------------------------------------
-- Catalog views: the configuration lives in the triggers' arguments.
CREATE FUNCTION slotguard._tgargs(tgargs bytea) RETURNS text[]
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'sg_tgargs';

CREATE VIEW slotguard.versioned_tables AS
SELECT t.tgrelid::regclass AS tbl,
       a[1]::name AS version_column,
       a[2] AS version_type,
       a[3]::boolean AS timestamps,
       EXISTS (SELECT FROM pg_catalog.pg_trigger x
                WHERE x.tgrelid OPERATOR(pg_catalog.=) t.tgrelid
                  AND x.tgname OPERATOR(pg_catalog.=) 'slotguard_90_audit') AS audit,
       a[4]::boolean AS require_version,
       a[5] AS version_style
  FROM pg_catalog.pg_trigger t,
       LATERAL (SELECT slotguard._tgargs(t.tgargs) AS a) s
 WHERE t.tgname OPERATOR(pg_catalog.=) 'slotguard_10_version' AND NOT t.tgisinternal;

CREATE VIEW slotguard.transition_rules AS
SELECT t.tgrelid::regclass AS tbl,
       a[1]::name AS column_name,
       a[2]::jsonb AS transitions,
       NULLIF(a[3], '')::jsonb AS by_role
  FROM pg_catalog.pg_trigger t,
       LATERAL (SELECT slotguard._tgargs(t.tgargs) AS a) s
 WHERE t.tgname OPERATOR(pg_catalog.~~) 'slotguard\_20\_transition\_%'
   AND t.tgnargs OPERATOR(pg_catalog.=) 3 AND NOT t.tgisinternal;

-- ---------------------------------------------------------------------------------------------
-- Monitoring
CREATE FUNCTION slotguard._stats(OUT scope text, OUT object bigint, OUT metric text, OUT value bigint)
    RETURNS SETOF record LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sg_stats';
CREATE FUNCTION slotguard._counters_enabled() RETURNS boolean
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sg_counters_enabled';
CREATE FUNCTION slotguard.stats_reset() RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sg_stats_reset';
REVOKE EXECUTE ON FUNCTION slotguard.stats_reset() FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- Test support: proves the C++/PostgreSQL boundary (see extension/boundary.hpp).
CREATE FUNCTION slotguard._boundary_selftest(what text) RETURNS text
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sg_boundary_selftest';

-- ---------------------------------------------------------------------------------------------
-- Slot-seat reservation (docs/sql-api.md, "Slot-seat reservation"; the design is in docs/design.md,
-- "Hot slots").
--
-- A plain-capacity slot's seats are split over up to 64 shard rows (slot_shards). A buyer locks
-- one shard that has room with FOR UPDATE SKIP LOCKED, starting from a random shard, so buyers of
-- one slot proceed in parallel instead of queueing on one counter row. A shard's `used` counts the
-- seats of its pending and confirmed bookings; expired holds are taken out of it (and marked
-- 'expired') by whoever next needs the room — a buyer, cancel or expire_holds — under the shard's
-- lock. Numbered seats have one row each (seats), pointing at the booking that holds them.
CREATE TABLE slotguard.slots (
    id             bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    capacity       int NOT NULL CHECK (capacity >= 0),
    starts_at      timestamptz,
    ends_at        timestamptz,
    resource       text,
    hold_ttl       interval NOT NULL DEFAULT '2 minutes',
    seat_labels    text[],
    one_per_holder boolean NOT NULL DEFAULT false,
    shards         int NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at >= starts_at)
);
CREATE INDEX slots_resource_idx ON slotguard.slots (resource, starts_at);

CREATE TABLE slotguard.slot_shards (
    slot_id     bigint NOT NULL REFERENCES slotguard.slots ON DELETE CASCADE,
    shard       int NOT NULL,
    capacity    int NOT NULL CHECK (capacity >= 0),
    used        int NOT NULL DEFAULT 0 CHECK (used >= 0 AND used <= capacity),
    next_expiry timestamptz,     -- no pending hold of this shard expires before this
    PRIMARY KEY (slot_id, shard)
) WITH (fillfactor = 30);        -- room for HOT updates of the hot rows
CREATE INDEX slot_shards_expiry_idx ON slotguard.slot_shards (next_expiry)
    WHERE next_expiry IS NOT NULL;

CREATE TABLE slotguard.seats (
    slot_id    bigint NOT NULL REFERENCES slotguard.slots ON DELETE CASCADE,
    ord        int NOT NULL,
    label      text NOT NULL,
    booking_id bigint,           -- the last booking that took the seat; free if that one is dead
    PRIMARY KEY (slot_id, ord),
    UNIQUE (slot_id, label)
) WITH (fillfactor = 50);

-- No foreign key to slots: every buyer's key-share lock on the one slot row would make it a
-- multixact hot spot. reserve checks the slot itself.
CREATE TABLE slotguard.bookings (
    id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    slot_id         bigint NOT NULL,
    holder          text NOT NULL,
    seats           int NOT NULL CHECK (seats >= 1),
    seat_labels     text[],
    status          text NOT NULL CHECK (status IN ('pending', 'confirmed', 'expired', 'cancelled')),
    idempotency_key text,
    shard           int,          -- the slot_shards row counting it (NULL for numbered seats)
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at      timestamptz,  -- NULL once confirmed
    confirmed_at    timestamptz,
    cancelled_at    timestamptz
);
CREATE UNIQUE INDEX bookings_idempotency_idx ON slotguard.bookings (slot_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX bookings_live_idx ON slotguard.bookings (slot_id, holder)
    WHERE status IN ('pending', 'confirmed');
CREATE INDEX bookings_pending_idx ON slotguard.bookings (slot_id, shard, expires_at)
    WHERE status = 'pending';
CREATE INDEX bookings_seat_expiry_idx ON slotguard.bookings (expires_at)
    WHERE status = 'pending' AND shard IS NULL;
CREATE INDEX bookings_expiry_idx ON slotguard.bookings (expires_at) WHERE status = 'pending';

REVOKE ALL ON slotguard.slots, slotguard.slot_shards, slotguard.seats, slotguard.bookings FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('slotguard.slots', '');
SELECT pg_catalog.pg_extension_config_dump('slotguard.slot_shards', '');
SELECT pg_catalog.pg_extension_config_dump('slotguard.seats', '');
SELECT pg_catalog.pg_extension_config_dump('slotguard.bookings', '');

-- These act on slotguard's own tables with the extension owner's rights: SECURITY DEFINER with a
-- pinned search_path, so no object of a caller's search_path runs with those rights.
CREATE FUNCTION slotguard.create_slot(capacity int,
                                      starts_at timestamptz DEFAULT NULL,
                                      ends_at timestamptz DEFAULT NULL,
                                      resource text DEFAULT NULL,
                                      hold_ttl interval DEFAULT '2 minutes',
                                      seat_labels text[] DEFAULT NULL,
                                      one_per_holder boolean DEFAULT false) RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'sg_create_slot';

CREATE FUNCTION slotguard.reserve(slot_id bigint, holder text, seats int DEFAULT 1,
                                  hold_ttl interval DEFAULT NULL,
                                  idempotency_key text DEFAULT NULL,
                                  confirm boolean DEFAULT false) RETURNS slotguard.bookings
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'sg_reserve';

CREATE FUNCTION slotguard.reserve_seats(slot_id bigint, holder text, labels text[],
                                        hold_ttl interval DEFAULT NULL,
                                        idempotency_key text DEFAULT NULL,
                                        confirm boolean DEFAULT false) RETURNS slotguard.bookings
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'sg_reserve_seats';

CREATE FUNCTION slotguard.confirm(booking_id bigint) RETURNS slotguard.bookings
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'sg_confirm';

CREATE FUNCTION slotguard.cancel(booking_id bigint) RETURNS slotguard.bookings
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'sg_cancel';

CREATE FUNCTION slotguard.expire_holds(max_rows int DEFAULT 10000) RETURNS int
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'sg_expire_holds';

CREATE FUNCTION slotguard.availability(slot_id bigint,
                                       OUT capacity int, OUT confirmed int, OUT held int, OUT free int)
    RETURNS SETOF record
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    ROWS 1 AS 'MODULE_PATHNAME', 'sg_availability';

CREATE FUNCTION slotguard.next_expiry() RETURNS timestamptz
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'sg_next_expiry';

-- ---------------------------------------------------------------------------------------------
-- Overlap rules (docs/sql-api.md, "Overlap rules"; the design is in docs/design.md, "How overlap
-- rules stay race-free"). A rule is a row here plus an AFTER row trigger on the table, whose
-- arguments carry the rule's id; the check is served by a GiST index on (key columns, period
-- range) the rule creates unless one fits.

-- Range types for ordered types PostgreSQL has none for.
CREATE TYPE slotguard.timerange AS RANGE (subtype = time);
CREATE TYPE slotguard.float8range AS RANGE (subtype = float8);

CREATE TABLE slotguard.overlap_rule_defs (
    id             int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    tbl            regclass NOT NULL,
    rule_name      name NOT NULL,
    key_columns    name[] NOT NULL,
    period_columns name[] NOT NULL,
    capacity       int NOT NULL CHECK (capacity >= 1),
    only_when      text,
    message        text,
    range_sql      text NOT NULL,     -- the period as a range, over the table's columns
    trigger_name   name NOT NULL,
    index_name     name,              -- the index the rule created (dropped with the rule)
    check_name     name,              -- the CHECK (end >= start) the rule created
    UNIQUE (tbl, rule_name)
);
REVOKE ALL ON slotguard.overlap_rule_defs FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('slotguard.overlap_rule_defs', '');

CREATE VIEW slotguard.overlap_rules AS
SELECT tbl, rule_name, key_columns, period_columns, capacity, only_when, message, index_name
  FROM slotguard.overlap_rule_defs;

CREATE FUNCTION slotguard.add_overlap_rule(tbl regclass, rule_name name, key_columns name[],
                                           period_columns name[], capacity int DEFAULT 1,
                                           only_when text DEFAULT NULL,
                                           message text DEFAULT NULL) RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sg_add_overlap_rule';
CREATE FUNCTION slotguard.drop_overlap_rule(tbl regclass, rule_name name) RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sg_drop_overlap_rule';
CREATE FUNCTION slotguard.find_conflicts(tbl regclass, candidate jsonb, ignore_key jsonb DEFAULT NULL)
    RETURNS TABLE (rule_name name, conflicting_key jsonb, conflicting_row jsonb)
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sg_find_conflicts';
CREATE FUNCTION slotguard.period_is_ordered(start_value anycompatible, end_value anycompatible,
                                            rule_name text DEFAULT NULL) RETURNS boolean
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'sg_period_is_ordered';
GRANT EXECUTE ON FUNCTION slotguard.period_is_ordered(anycompatible, anycompatible, text) TO PUBLIC;
-- A dropped table takes its rules with it.
CREATE FUNCTION slotguard._forget_dropped_tables() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  DELETE FROM slotguard.overlap_rule_defs d
   USING pg_catalog.pg_event_trigger_dropped_objects() o
   WHERE o.classid = 'pg_catalog.pg_class'::regclass AND o.objsubid = 0
     AND o.objid = d.tbl::oid;
END
$$;
CREATE EVENT TRIGGER slotguard_forget_dropped_tables ON sql_drop
    EXECUTE FUNCTION slotguard._forget_dropped_tables();

CREATE FUNCTION slotguard.overlap_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'sg_overlap_trigger';

-- The counters (see Monitoring above); a rule's counters are named table.rule.
CREATE VIEW slotguard.stats AS
SELECT 'global'::text AS scope, ''::text AS object, 'counters_enabled'::text AS metric,
       CASE WHEN slotguard._counters_enabled() THEN 1 ELSE 0 END::bigint AS value
UNION ALL
SELECT s.scope,
       CASE s.scope
         WHEN 'table' THEN s.object::oid::regclass::text
         WHEN 'rule' THEN coalesce((SELECT r.tbl::text OPERATOR(pg_catalog.||) '.'
                                           OPERATOR(pg_catalog.||) r.rule_name
                                      FROM slotguard.overlap_rule_defs r
                                     WHERE r.id OPERATOR(pg_catalog.=) s.object),
                                   s.object::text)
         ELSE s.object::text END COLLATE "default",
       s.metric, s.value
  FROM slotguard._stats() s
 -- counters of dropped tables and rules are left out (they stay in memory until restart)
 WHERE CASE s.scope
         WHEN 'table' THEN EXISTS (SELECT FROM pg_catalog.pg_class c
                                    WHERE c.oid OPERATOR(pg_catalog.=) s.object::oid)
         WHEN 'rule' THEN EXISTS (SELECT FROM slotguard.overlap_rule_defs r
                                   WHERE r.id OPERATOR(pg_catalog.=) s.object)
         ELSE true END;
