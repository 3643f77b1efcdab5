-- oldextversions: every released version updates to the current one. For each of 0.1, 0.2 and
-- 0.3: CREATE EXTENSION ... VERSION, then ALTER EXTENSION slotguard UPDATE gives the current
-- version with exactly the objects, function definitions and privileges of a fresh install (the
-- upgrade test looks at the path from 0.1 in detail). The test-only function of 0.1 to 0.3 is
-- gone after the update.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS slotguard CASCADE;

CREATE FUNCTION pg_temp.members() RETURNS TABLE(obj text, def text) LANGUAGE sql AS $$
  SELECT pg_describe_object(d.classid, d.objid, d.objsubid),
         CASE WHEN d.classid = 'pg_proc'::regclass
              THEN md5(pg_get_functiondef(d.objid)) || ' ' || coalesce(p.proacl::text, '')
              WHEN d.classid = 'pg_class'::regclass
              THEN coalesce(c.relacl::text, '')
              ELSE '' END
    FROM pg_depend d
    LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
    LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
   WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
     AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'slotguard')
$$;
CREATE EXTENSION slotguard;
CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.members();
-- differences from a fresh install, both ways
CREATE FUNCTION pg_temp.differences() RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM ((SELECT * FROM fresh EXCEPT SELECT * FROM pg_temp.members())
                        UNION ALL
                        (SELECT * FROM pg_temp.members() EXCEPT SELECT * FROM fresh)) d
$$;
SELECT extversion AS fresh FROM pg_extension WHERE extname = 'slotguard';
DROP EXTENSION slotguard CASCADE;

CREATE EXTENSION slotguard VERSION '0.1';
SELECT to_regprocedure('slotguard._boundary_selftest(text)') IS NOT NULL AS test_function;
ALTER EXTENSION slotguard UPDATE;
SELECT extversion, pg_temp.differences() AS differences,
       to_regprocedure('slotguard._boundary_selftest(text)') IS NOT NULL AS test_function
  FROM pg_extension WHERE extname = 'slotguard';
DROP EXTENSION slotguard CASCADE;

CREATE EXTENSION slotguard VERSION '0.2';
SELECT to_regprocedure('slotguard._boundary_selftest(text)') IS NOT NULL AS test_function;
ALTER EXTENSION slotguard UPDATE;
SELECT extversion, pg_temp.differences() AS differences,
       to_regprocedure('slotguard._boundary_selftest(text)') IS NOT NULL AS test_function
  FROM pg_extension WHERE extname = 'slotguard';
DROP EXTENSION slotguard CASCADE;

CREATE EXTENSION slotguard VERSION '0.3';
SELECT to_regprocedure('slotguard._boundary_selftest(text)') IS NOT NULL AS test_function;
ALTER EXTENSION slotguard UPDATE;
SELECT extversion, pg_temp.differences() AS differences,
       to_regprocedure('slotguard._boundary_selftest(text)') IS NOT NULL AS test_function
  FROM pg_extension WHERE extname = 'slotguard';
DROP EXTENSION slotguard CASCADE;

-- leave a fresh install behind
CREATE EXTENSION slotguard;
RESET client_min_messages;
