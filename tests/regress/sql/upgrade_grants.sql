-- upgrade_grants (runs last, after upgrade; leaves slotguard installed fresh): 0.3 gives
-- create_slot a new parameter (managed_by), hence a new function. ALTER EXTENSION UPDATE carries
-- the privileges a DBA gave the old one over to it (README's recipe: EXECUTE revoked from PUBLIC,
-- granted to an admin role), and they stay the DBA's: pg_init_privs does not record them, so
-- pg_dump dumps them. An untouched create_slot stays as a fresh install has it.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS slotguard CASCADE;
DROP ROLE IF EXISTS regress_sgug_admin;
DROP ROLE IF EXISTS regress_sgug_app;
RESET client_min_messages;
CREATE ROLE regress_sgug_admin;
CREATE ROLE regress_sgug_app;

CREATE FUNCTION pg_temp.create_slot_privs() RETURNS TABLE(grantee text, privilege text,
                                                        grantable boolean, init_privs boolean)
LANGUAGE sql AS $$
  SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
         a.privilege_type, a.is_grantable,
         EXISTS (SELECT FROM pg_init_privs i WHERE i.objoid = p.oid
                  AND i.classoid = 'pg_proc'::regclass)
    FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
   WHERE p.pronamespace::regnamespace::text = 'slotguard' AND p.proname = 'create_slot'
     AND a.grantee <> p.proowner
   ORDER BY 1
$$;

-- untouched: PUBLIC may execute, as after a fresh install
CREATE EXTENSION slotguard VERSION '0.2';
ALTER EXTENSION slotguard UPDATE;
SELECT * FROM pg_temp.create_slot_privs();
SELECT proacl IS NULL AS default_acl FROM pg_proc
 WHERE oid = 'slotguard.create_slot(int, timestamptz, timestamptz, text, interval, text[], boolean, regrole)'::regprocedure;
DROP EXTENSION slotguard CASCADE;

-- the README recipe on 0.2, then the update
CREATE EXTENSION slotguard VERSION '0.2';
REVOKE EXECUTE ON FUNCTION
  slotguard.create_slot(int, timestamptz, timestamptz, text, interval, text[], boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  slotguard.create_slot(int, timestamptz, timestamptz, text, interval, text[], boolean)
  TO regress_sgug_admin;
GRANT EXECUTE ON FUNCTION
  slotguard.create_slot(int, timestamptz, timestamptz, text, interval, text[], boolean)
  TO regress_sgug_app WITH GRANT OPTION;
ALTER EXTENSION slotguard UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'slotguard';
SELECT * FROM pg_temp.create_slot_privs();
GRANT USAGE ON SCHEMA slotguard TO regress_sgug_admin, regress_sgug_app;
CREATE ROLE regress_sgug_other;
GRANT USAGE ON SCHEMA slotguard TO regress_sgug_other;
SET ROLE regress_sgug_other;
SELECT slotguard.create_slot(1);
\echo :SQLSTATE
SET ROLE regress_sgug_admin;
SELECT slotguard.create_slot(1) > 0 AS admin_creates;
RESET ROLE;

-- leave slotguard as a fresh install has it
SET client_min_messages = warning;
DROP EXTENSION slotguard CASCADE;
DROP ROLE regress_sgug_admin;
DROP ROLE regress_sgug_app;
DROP ROLE regress_sgug_other;
RESET client_min_messages;
CREATE EXTENSION slotguard;
SELECT extversion FROM pg_extension WHERE extname = 'slotguard';
