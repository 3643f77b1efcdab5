-- install: runs first (tests/regress/schedule; all tests share one database). Installs slotguard
-- and checks that the installed extension is the packaged 0.4 and ready for ALTER EXTENSION ...
-- UPDATE.
\set VERBOSITY default
\set SHOW_CONTEXT never
-- pg_regress --use-existing keeps the database: start from a clean slate either way.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS slotguard CASCADE;
RESET client_min_messages;

CREATE EXTENSION slotguard;
SELECT e.extname, e.extversion, n.nspname AS schema, e.extrelocatable
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'slotguard';
SELECT name, default_version, installed_version
  FROM pg_available_extensions WHERE name = 'slotguard';
SELECT version, superuser, relocatable, schema, requires
  FROM pg_available_extension_versions WHERE name = 'slotguard' ORDER BY version;
-- 0.1 (the first release), 0.2 and 0.3 update to 0.4; the upgrade test checks the result.
SELECT source, target, path FROM pg_extension_update_paths('slotguard')
 WHERE path IS NOT NULL;

-- ALTER EXTENSION ... UPDATE to the default version is a harmless no-op.
ALTER EXTENSION slotguard UPDATE;
ALTER EXTENSION slotguard UPDATE TO '0.4';
SELECT extversion FROM pg_extension WHERE extname = 'slotguard';

-- The SQL API of docs/sql-api.md ("Versioned updates", "Transition rules", "Monitoring") is there,
-- with these exact signatures.
SELECT sig, to_regprocedure(sig) IS NOT NULL AS present,
       (SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
         WHERE d.classid = 'pg_proc'::regclass AND d.objid = to_regprocedure(sig)
           AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e') AS member_of
  FROM (VALUES
    ('slotguard.enable_versioning(regclass, name, text, boolean, boolean, boolean, text)'),
    ('slotguard.disable_versioning(regclass)'),
    ('slotguard.update_versioned(regclass, jsonb, bigint, jsonb)'),
    ('slotguard.update_versioned(regclass, jsonb, uuid, jsonb)'),
    ('slotguard.add_transition_rule(regclass, name, jsonb, jsonb)'),
    ('slotguard.drop_transition_rule(regclass, name)'),
    ('slotguard.stats_reset()')) AS f(sig);
-- defaults as docs/sql-api.md gives them
SELECT p.oid::regprocedure AS function, pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS result
  FROM pg_proc p
 WHERE p.pronamespace = 'slotguard'::regnamespace
   AND p.proname IN ('enable_versioning', 'disable_versioning', 'update_versioned',
                     'add_transition_rule', 'drop_transition_rule')
 ORDER BY p.proname, pg_get_function_arguments(p.oid);
SELECT c.oid::regclass AS relation, c.relkind,
       (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
          FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped) AS columns
  FROM pg_class c
 WHERE c.oid IN ('slotguard.audit'::regclass, 'slotguard.stats'::regclass,
                 'slotguard.versioned_tables'::regclass, 'slotguard.transition_rules'::regclass)
 ORDER BY c.oid::regclass::text;
-- slotguard.audit and its sequence are dumped by pg_dump (configuration tables).
SELECT config_table
  FROM pg_extension, unnest(extconfig::regclass[]) AS config_table
 WHERE extname = 'slotguard' AND config_table::text LIKE 'slotguard.audit%'
 ORDER BY config_table::text;

-- Nothing is granted to PUBLIC (like pg_cron).
SELECT has_schema_privilege('public', 'slotguard', 'USAGE') AS public_usage,
       has_table_privilege('public', 'slotguard.audit', 'SELECT') AS public_audit_select,
       has_table_privilege('public', 'slotguard.stats', 'SELECT') AS public_stats_select,
       has_function_privilege('public', 'slotguard.stats_reset()', 'EXECUTE') AS public_stats_reset;

-- Settings defined by the library; the prefix is reserved.
SHOW slotguard.actor;
SHOW slotguard.actor_role;
SET slotguard.no_such_setting = 'x';
\echo :SQLSTATE

-- The library is preloaded in the test cluster: counters are on.
SELECT * FROM slotguard.stats WHERE scope = 'global';

-- DROP EXTENSION and CREATE EXTENSION ... VERSION '0.4' work (0.1 and its update: upgrade).
DROP EXTENSION slotguard;
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'slotguard';
-- Unknown version.
CREATE EXTENSION slotguard VERSION '9.9';
\echo :SQLSTATE
CREATE EXTENSION slotguard VERSION '0.4';
SELECT extversion FROM pg_extension WHERE extname = 'slotguard';
-- Creating it again is an error; IF NOT EXISTS is not.
CREATE EXTENSION slotguard;
\echo :SQLSTATE
CREATE EXTENSION IF NOT EXISTS slotguard;
-- The library's test entry point is not installed as a function (tests/regress/sql/boundary.sql
-- declares its own).
SELECT to_regprocedure('slotguard._boundary_selftest(text)') AS test_function;
SELECT slotguard._counters_enabled();
