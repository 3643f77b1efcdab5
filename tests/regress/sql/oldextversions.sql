-- oldextversions: every released version updates to the current one. For each of 0.1, 0.2 and
-- 0.3: CREATE EXTENSION ... VERSION, then ALTER EXTENSION slotguard UPDATE gives the current
-- version with exactly the objects, function definitions and privileges of a fresh install
-- (today a fresh install runs the same scripts, 0.1 and then each update; the comparison guards
-- the day a release ships a full install script). The test-only function of 0.1 to 0.3 is gone
-- after the update.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS slotguard CASCADE;

-- the extension's members, with a digest of each function's definition and the privileges
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
SELECT extversion AS fresh FROM pg_extension WHERE extname = 'slotguard';
CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.members();
SELECT count(*) > 50 AS many_members FROM fresh;
DROP EXTENSION slotguard CASCADE;

-- update_from(v): installs version v, updates it, notes its members in updated, drops it again.
CREATE TEMP TABLE updated (version text, obj text, def text);
CREATE FUNCTION pg_temp.update_from(v text, OUT test_function boolean, OUT updated_to text)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('CREATE EXTENSION slotguard VERSION %L', v);
  test_function := to_regprocedure('slotguard._boundary_selftest(text)') IS NOT NULL;
  ALTER EXTENSION slotguard UPDATE;
  SELECT e.extversion INTO updated_to FROM pg_extension e WHERE e.extname = 'slotguard';
  INSERT INTO updated SELECT v, m.obj, m.def FROM pg_temp.members() m;
  DROP EXTENSION slotguard CASCADE;
END $$;
SELECT v AS version, u.*
  FROM unnest(ARRAY['0.1', '0.2', '0.3']) AS v, LATERAL pg_temp.update_from(v) AS u
 ORDER BY v;

-- both ways, for each version: nothing missing, nothing extra, nothing different
WITH versions AS (SELECT DISTINCT version FROM updated)
(SELECT v.version, 'only fresh' AS side, f.obj, f.def FROM versions v, fresh f
 EXCEPT SELECT version, 'only fresh', obj, def FROM updated)
UNION ALL
(SELECT version, 'only updated', obj, def FROM updated
 EXCEPT SELECT v.version, 'only updated', f.obj, f.def FROM versions v, fresh f)
ORDER BY 1, 2, 3;

-- leave a fresh install behind
CREATE EXTENSION slotguard;
RESET client_min_messages;
