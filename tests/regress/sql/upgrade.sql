-- upgrade (runs near the end of tests/regress/schedule: it re-creates the extension): after
-- ALTER EXTENSION slotguard UPDATE from 0.1, 0.2's function has the properties the reservation
-- functions have and works. That every released version updates to exactly a fresh install's
-- objects is oldextversions.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS slotguard;

DROP EXTENSION slotguard CASCADE;
CREATE EXTENSION slotguard VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'slotguard';
ALTER EXTENSION slotguard UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'slotguard';
-- slotguard.booking: a member of the extension, search_path pinned, VOLATILE; SECURITY INVOKER
-- since 0.3 (it notes its caller and then switches to its owner itself: docs/guarantees.md "Privileges")
SELECT p.prosecdef, p.provolatile, p.proconfig,
       EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e') AS member
  FROM pg_proc p WHERE p.oid = 'slotguard.booking(bigint)'::regprocedure;
-- the new function works after the update
SELECT slotguard.create_slot(1) AS s \gset
SELECT id AS b FROM slotguard.reserve(:s, 'ann') \gset
SELECT status FROM slotguard.booking(:b);
