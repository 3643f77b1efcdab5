-- zz_upgrade (runs last: it re-creates the extension): ALTER EXTENSION slotguard UPDATE from 0.1
-- gives exactly the objects, function definitions and privileges of a fresh install (today a
-- fresh 0.2 runs the same two scripts; the comparison guards the day a release ships a full
-- install script), and 0.2's function has the properties the reservation functions have.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS slotguard;

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

DROP EXTENSION slotguard CASCADE;
CREATE EXTENSION slotguard;
SELECT extversion FROM pg_extension WHERE extname = 'slotguard';
CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.members();

DROP EXTENSION slotguard CASCADE;
CREATE EXTENSION slotguard VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'slotguard';
ALTER EXTENSION slotguard UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'slotguard';
CREATE TEMP TABLE upgraded AS SELECT * FROM pg_temp.members();

-- both ways: nothing missing, nothing extra, nothing different
(SELECT 'only fresh' AS side, * FROM fresh EXCEPT SELECT 'only fresh', * FROM upgraded)
UNION ALL
(SELECT 'only upgraded', * FROM upgraded EXCEPT SELECT 'only upgraded', * FROM fresh)
ORDER BY 1, 2;
SELECT count(*) > 50 AS many_members FROM fresh;
-- slotguard.booking: a member of the extension, search_path pinned, VOLATILE; SECURITY INVOKER
-- since 0.3 (it notes its caller and then switches to its owner itself: README "Privileges")
SELECT p.prosecdef, p.provolatile, p.proconfig,
       EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e') AS member
  FROM pg_proc p WHERE p.oid = 'slotguard.booking(bigint)'::regprocedure;
-- the new function works after the update
SELECT slotguard.create_slot(1) AS s \gset
SELECT id AS b FROM slotguard.reserve(:s, 'ann') \gset
SELECT status FROM slotguard.booking(:b);
