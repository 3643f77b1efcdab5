-- boundary: errors cross the C++/PostgreSQL boundary (extension/boundary.hpp) cleanly, with the
-- right SQLSTATE, DETAIL and HINT, and the session keeps working afterwards.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS bnd CASCADE;
RESET client_min_messages;
CREATE SCHEMA bnd;

-- The library's test entry point is not part of the installed SQL API (0.4 dropped the function
-- from schema slotguard): the test declares it itself, as a superuser may declare any C function
-- of a loaded library. It goes with schema bnd at the end.
CREATE FUNCTION bnd._boundary_selftest(what text) RETURNS text
    LANGUAGE c VOLATILE AS '$libdir/slotguard', 'sg_boundary_selftest';

SELECT bnd._boundary_selftest('ok');

-- A PostgreSQL error raised under a C++ frame (guarded): the original error, unchanged.
SELECT bnd._boundary_selftest('pg');
\echo :SQLSTATE
SELECT 1 AS still_alive;

-- C++ exceptions become ERRORs with the right SQLSTATE.
SELECT bnd._boundary_selftest('error');
\echo :SQLSTATE
SELECT bnd._boundary_selftest('std');
\echo :SQLSTATE
SELECT bnd._boundary_selftest('oom');
\echo :SQLSTATE
SELECT bnd._boundary_selftest('no such test');
\echo :SQLSTATE
SELECT bnd._boundary_selftest(NULL);
\echo :SQLSTATE
SELECT 2 AS still_alive;

-- DETAIL and HINT travel too (seen from PL/pgSQL).
DO $$
DECLARE
  st text; msg text; det text; hnt text;
BEGIN
  PERFORM bnd._boundary_selftest('error');
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                          det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
  RAISE NOTICE 'caught % "%" detail "%" hint "%"', st, msg, det, hnt;
END $$;

-- Many errors in one session, each caught by a subtransaction: no leak, no corruption.
DO $$
DECLARE
  what text;
  caught int;
BEGIN
  FOREACH what IN ARRAY ARRAY['pg', 'error', 'std', 'oom'] LOOP
    caught := 0;
    FOR i IN 1..500 LOOP
      BEGIN
        PERFORM bnd._boundary_selftest(what);
      EXCEPTION
        WHEN invalid_text_representation OR invalid_parameter_value OR internal_error
             OR out_of_memory THEN
          caught := caught + 1;
      END;
    END LOOP;
    RAISE NOTICE '%: % of 500 caught', what, caught;
  END LOOP;
END $$;

-- A PostgreSQL error inside SPI, under update_versioned's C++ frames: a failed cast.
CREATE TABLE bnd.t (id int PRIMARY KEY, n int, note text);
SELECT slotguard.enable_versioning('bnd.t', timestamps => false);
INSERT INTO bnd.t VALUES (1, 10, 'a');
SELECT slotguard.update_versioned('bnd.t', '1', 0, '{"n": "abc"}');
\echo :SQLSTATE
-- The same session goes on: the same call, now valid (the cached plan is reused).
SELECT slotguard.update_versioned('bnd.t', '1', 0, '{"n": 11}');
SELECT slotguard.update_versioned('bnd.t', '1', 1, '{"n": "abc"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('bnd.t', '1', 1, '{"n": 12, "note": "b"}');
SELECT * FROM bnd.t;

-- Inside a transaction: SAVEPOINT / ROLLBACK TO recovers.
BEGIN;
SELECT slotguard.update_versioned('bnd.t', '1', 2, '{"note": "c"}');
SAVEPOINT s1;
SELECT slotguard.update_versioned('bnd.t', '1', 3, '{"n": "abc"}');
\echo :SQLSTATE
SELECT 3 AS in_failed_transaction;
ROLLBACK TO SAVEPOINT s1;
SELECT bnd._boundary_selftest('std');
ROLLBACK TO SAVEPOINT s1;
SELECT slotguard.update_versioned('bnd.t', '1', 2, '{"note": "stale"}');
\echo :SQLSTATE
ROLLBACK TO SAVEPOINT s1;
SELECT slotguard.update_versioned('bnd.t', '1', 3, '{"n": 13}');
COMMIT;
SELECT * FROM bnd.t;

-- A PL/pgSQL EXCEPTION block catches each kind of error and goes on.
DO $$
DECLARE
  r jsonb;
  st text; det text;
BEGIN
  BEGIN
    PERFORM slotguard.update_versioned('bnd.t', '1', 4, '{"n": "abc"}');
  EXCEPTION WHEN invalid_text_representation THEN
    RAISE NOTICE 'caught cast failure';
  END;
  BEGIN
    PERFORM slotguard.update_versioned('bnd.t', '1', 0, '{"n": 1}');
  EXCEPTION WHEN SQLSTATE 'SG001' THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, det = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'caught % (%)', st, det;
  END;
  BEGIN
    PERFORM slotguard.update_versioned('bnd.t', '99', 0, '{"n": 1}');
  EXCEPTION WHEN SQLSTATE 'SG002' THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, det = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'caught % (%)', st, det;
  END;
  BEGIN
    PERFORM slotguard.update_versioned('bnd.t', '1', 4, '{"nope": 1}');
  EXCEPTION WHEN undefined_column THEN
    RAISE NOTICE 'caught undefined_column';
  END;
  r := slotguard.update_versioned('bnd.t', '1', 4, '{"n": 14}');
  RAISE NOTICE 'then updated: %', r;
  -- and a plain UPDATE in the same block, checked by the C++ trigger
  UPDATE bnd.t SET n = 15, version = 5 WHERE id = 1;
  BEGIN
    UPDATE bnd.t SET n = 16, version = 5 WHERE id = 1;
  EXCEPTION WHEN SQLSTATE 'SG001' THEN
    RAISE NOTICE 'caught stale plain UPDATE';
  END;
END $$;
SELECT * FROM bnd.t;

-- Errors raised inside a function that is itself called from PL/pgSQL many times: SPI state of
-- the caller stays intact.
CREATE FUNCTION bnd.try_cast(v text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM slotguard.update_versioned('bnd.t', '1', (SELECT version FROM bnd.t WHERE id = 1),
                                     jsonb_build_object('n', v));
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
SELECT v, bnd.try_cast(v) FROM unnest(ARRAY['20', 'x', '21', 'y', '22']) AS v;
SELECT * FROM bnd.t;

DROP SCHEMA bnd CASCADE;
SELECT 4 AS still_alive;
