-- slotguard 0.1: versioned updates, transition rules, audit and counters.
\echo Use "CREATE EXTENSION slotguard" to load this file. \quit

-- Like pg_cron, slotguard grants nothing to PUBLIC: a DBA grants USAGE ON SCHEMA slotguard to the
-- roles that may use it (see README, "Privileges").
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

CREATE VIEW slotguard.stats AS
SELECT 'global'::text AS scope, ''::text AS object, 'counters_enabled'::text AS metric,
       CASE WHEN slotguard._counters_enabled() THEN 1 ELSE 0 END::bigint AS value
UNION ALL
SELECT s.scope,
       CASE s.scope WHEN 'table' THEN s.object::oid::regclass::text ELSE s.object::text END,
       s.metric, s.value
  FROM slotguard._stats() s;

-- ---------------------------------------------------------------------------------------------
-- Test support: proves the C++/PostgreSQL boundary (see extension/boundary.hpp).
CREATE FUNCTION slotguard._boundary_selftest(what text) RETURNS text
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sg_boundary_selftest';
