-- overlap_privileges: overlap rules and privileges (docs/guarantees.md, "Privileges"):
-- add_/drop_overlap_rule need ownership
-- of the table (42501), find_conflicts runs with the caller's rights (SELECT needed, row-level
-- security applies), a writer with INSERT only (no SELECT) is still checked against every row,
-- and a writer's search_path cannot make the check run its own operators or functions.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS slotguard;
DROP SCHEMA IF EXISTS ovpriv CASCADE;
DROP SCHEMA IF EXISTS ovl_evil CASCADE;
DO $$
DECLARE r text;
BEGIN
  FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress\_ovl\_%' LOOP
    EXECUTE format('DROP OWNED BY %I', r);
  END LOOP;
END $$;
DROP ROLE IF EXISTS regress_ovl_owner;
DROP ROLE IF EXISTS regress_ovl_member;
DROP ROLE IF EXISTS regress_ovl_other;
DROP ROLE IF EXISTS regress_ovl_writer;
DROP ROLE IF EXISTS regress_ovl_evil;
RESET client_min_messages;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

CREATE ROLE regress_ovl_owner;
CREATE ROLE regress_ovl_member IN ROLE regress_ovl_owner;
CREATE ROLE regress_ovl_other;
CREATE ROLE regress_ovl_writer;
CREATE ROLE regress_ovl_evil;
CREATE SCHEMA ovpriv AUTHORIZATION regress_ovl_owner;
GRANT USAGE ON SCHEMA ovpriv TO regress_ovl_other, regress_ovl_writer, regress_ovl_evil;

SET ROLE regress_ovl_owner;
CREATE TABLE ovpriv.room_booking (
  id int PRIMARY KEY, room int, holder text NOT NULL DEFAULT current_user,
  starts_at timestamptz, ends_at timestamptz, status text NOT NULL DEFAULT 'booked'
);
-- without USAGE on schema slotguard even the owner can call nothing
SELECT slotguard.add_overlap_rule('ovpriv.room_booking', 'room_busy', '{room}', '{starts_at,ends_at}');
\echo :SQLSTATE
RESET ROLE;
GRANT USAGE ON SCHEMA slotguard
   TO regress_ovl_owner, regress_ovl_other, regress_ovl_writer, regress_ovl_evil;

-- a non-owner cannot add or drop a rule
SET ROLE regress_ovl_other;
SELECT slotguard.add_overlap_rule('ovpriv.room_booking', 'room_busy', '{room}', '{starts_at,ends_at}');
\echo :SQLSTATE
RESET ROLE;
-- the owner can; a member of the owning role counts as owner, as for ALTER TABLE
SET ROLE regress_ovl_owner;
SELECT slotguard.add_overlap_rule('ovpriv.room_booking', 'room_busy', '{room}', '{starts_at,ends_at}');
RESET ROLE;
SET ROLE regress_ovl_member;
SELECT slotguard.add_overlap_rule('ovpriv.room_booking', 'holder_busy', '{holder}',
                                  '{starts_at,ends_at}', only_when => $$status <> 'cancelled'$$,
                                  message => 'you ({holder}) already have a booking then');
RESET ROLE;
SET ROLE regress_ovl_other;
SELECT slotguard.drop_overlap_rule('ovpriv.room_booking', 'room_busy');
\echo :SQLSTATE
RESET ROLE;
SELECT rule_name, only_when FROM slotguard.overlap_rules
 WHERE tbl = 'ovpriv.room_booking'::regclass ORDER BY rule_name;

SET ROLE regress_ovl_owner;
INSERT INTO ovpriv.room_booking VALUES
  (1, 1, 'regress_ovl_owner', '2024-05-01 10:00', '2024-05-01 11:00'),
  (2, 2, 'regress_ovl_other', '2024-05-01 12:00', '2024-05-01 13:00');
-- row-level security: the other role sees only its own bookings
ALTER TABLE ovpriv.room_booking ENABLE ROW LEVEL SECURITY;
CREATE POLICY see_own ON ovpriv.room_booking FOR SELECT USING (holder = current_user);
CREATE POLICY add_any ON ovpriv.room_booking FOR INSERT WITH CHECK (true);
GRANT INSERT ON ovpriv.room_booking TO regress_ovl_writer, regress_ovl_evil;
GRANT SELECT, INSERT, UPDATE ON ovpriv.room_booking TO regress_ovl_other;
RESET ROLE;

-- find_conflicts runs with the caller's rights: without SELECT on the table, 42501
SET ROLE regress_ovl_writer;
SELECT * FROM slotguard.find_conflicts('ovpriv.room_booking',
  '{"room": 1, "starts_at": "2024-05-01 10:30+00", "ends_at": "2024-05-01 10:45+00"}');
\echo :SQLSTATE
RESET ROLE;
-- with SELECT, and row-level security applies: the caller's own rows are reported in full; a
-- conflicting row its policies hide is reported too (an INSERT would fail on it), with its key
-- and row withheld
SET ROLE regress_ovl_other;
SELECT rule_name, conflicting_key FROM slotguard.find_conflicts('ovpriv.room_booking',
  '{"room": 2, "holder": "regress_ovl_other", "starts_at": "2024-05-01 12:30+00",
    "ends_at": "2024-05-01 12:45+00"}')
 ORDER BY rule_name;
SELECT rule_name, conflicting_key, conflicting_row FROM slotguard.find_conflicts('ovpriv.room_booking',
  '{"room": 1, "starts_at": "2024-05-01 10:30+00", "ends_at": "2024-05-01 10:45+00"}')
 ORDER BY rule_name;
-- column defaults are evaluated as the table's owner (none of the table's code runs with the
-- caller's rights): current_user in a default is the owner
SELECT rule_name, conflicting_key FROM slotguard.find_conflicts('ovpriv.room_booking',
  '{"room": 2, "starts_at": "2024-05-01 12:30+00", "ends_at": "2024-05-01 12:45+00"}')
 ORDER BY rule_name;
RESET ROLE;

-- a writer with INSERT only (no SELECT, no policy that shows it any row) is checked against every
-- row all the same; the error's DETAIL does not show it the conflicting row (as PostgreSQL's own
-- unique and exclusion errors withhold values from a user who may not read them)
SET ROLE regress_ovl_writer;
INSERT INTO ovpriv.room_booking (id, room, starts_at, ends_at)
VALUES (3, 1, '2024-05-01 10:30', '2024-05-01 10:45');
\echo :SQLSTATE
INSERT INTO ovpriv.room_booking (id, room, starts_at, ends_at)
VALUES (3, 2, '2024-05-01 12:59', '2024-05-01 14:00');
\echo :SQLSTATE
INSERT INTO ovpriv.room_booking (id, room, starts_at, ends_at)
VALUES (3, 1, '2024-05-01 11:00', '2024-05-01 12:00');
RESET ROLE;
-- so is another writer, who sees its own rows only
SET ROLE regress_ovl_other;
INSERT INTO ovpriv.room_booking (id, room, starts_at, ends_at)
VALUES (4, 1, '2024-05-01 10:15', '2024-05-01 10:30');
\echo :SQLSTATE
RESET ROLE;
SELECT id, room, holder, starts_at, ends_at FROM ovpriv.room_booking ORDER BY id;

-- ---------------------------------------------------------------------------------------------
-- search_path safety: a writer whose search_path puts its own schema first, full of operators and
-- functions that shadow pg_catalog's and raise when called, still gets the right answers.
CREATE SCHEMA ovl_evil AUTHORIZATION regress_ovl_evil;
GRANT USAGE ON SCHEMA ovl_evil TO PUBLIC;
SET ROLE regress_ovl_evil;
CREATE FUNCTION ovl_evil.trap(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ovl_evil % called as %', what, current_user;
END $$;
CREATE FUNCTION ovl_evil.int4_eq(int, int) RETURNS boolean LANGUAGE sql
  AS $$ SELECT ovl_evil.trap('int = int') $$;
CREATE OPERATOR ovl_evil.= (LEFTARG = int, RIGHTARG = int, FUNCTION = ovl_evil.int4_eq);
CREATE FUNCTION ovl_evil.text_ne(text, text) RETURNS boolean LANGUAGE sql
  AS $$ SELECT ovl_evil.trap('text <> text') $$;
CREATE OPERATOR ovl_evil.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = ovl_evil.text_ne);
CREATE FUNCTION ovl_evil.tid_ne(tid, tid) RETURNS boolean LANGUAGE sql
  AS $$ SELECT ovl_evil.trap('tid <> tid') $$;
CREATE OPERATOR ovl_evil.<> (LEFTARG = tid, RIGHTARG = tid, FUNCTION = ovl_evil.tid_ne);
CREATE FUNCTION ovl_evil.tstzrange(timestamptz, timestamptz, text) RETURNS tstzrange
  LANGUAGE sql AS $$ SELECT CASE WHEN ovl_evil.trap('tstzrange()') THEN NULL::tstzrange END $$;
CREATE FUNCTION ovl_evil.tstzrange(timestamptz, timestamptz) RETURNS tstzrange
  LANGUAGE sql AS $$ SELECT CASE WHEN ovl_evil.trap('tstzrange()') THEN NULL::tstzrange END $$;
CREATE FUNCTION ovl_evil.range_ov(tstzrange, tstzrange) RETURNS boolean LANGUAGE sql
  AS $$ SELECT ovl_evil.trap('tstzrange && tstzrange') $$;
CREATE OPERATOR ovl_evil.&& (LEFTARG = tstzrange, RIGHTARG = tstzrange, FUNCTION = ovl_evil.range_ov);
CREATE FUNCTION ovl_evil.range_mul(tstzrange, tstzrange) RETURNS tstzrange LANGUAGE sql
  AS $$ SELECT CASE WHEN ovl_evil.trap('tstzrange * tstzrange') THEN NULL::tstzrange END $$;
CREATE OPERATOR ovl_evil.* (LEFTARG = tstzrange, RIGHTARG = tstzrange, FUNCTION = ovl_evil.range_mul);
CREATE FUNCTION ovl_evil.range_contains(tstzrange, timestamptz) RETURNS boolean LANGUAGE sql
  AS $$ SELECT ovl_evil.trap('tstzrange @> timestamptz') $$;
CREATE OPERATOR ovl_evil.@> (LEFTARG = tstzrange, RIGHTARG = timestamptz, FUNCTION = ovl_evil.range_contains);
CREATE FUNCTION ovl_evil.int4_plus(int, bigint) RETURNS bigint LANGUAGE sql
  AS $$ SELECT CASE WHEN ovl_evil.trap('int + bigint') THEN 0 END $$;
CREATE OPERATOR ovl_evil.+ (LEFTARG = int, RIGHTARG = bigint, FUNCTION = ovl_evil.int4_plus);
CREATE FUNCTION ovl_evil.lower(anyrange) RETURNS anyelement LANGUAGE sql
  AS $$ SELECT CASE WHEN ovl_evil.trap('lower()') THEN NULL END $$;
CREATE FUNCTION ovl_evil.lower_inf(anyrange) RETURNS boolean LANGUAGE sql
  AS $$ SELECT ovl_evil.trap('lower_inf()') $$;
CREATE FUNCTION ovl_evil.to_jsonb(anyelement) RETURNS jsonb LANGUAGE sql
  AS $$ SELECT CASE WHEN ovl_evil.trap('to_jsonb()') THEN NULL::jsonb END $$;
CREATE FUNCTION ovl_evil.jsonb_build_object(text, int) RETURNS jsonb LANGUAGE sql
  AS $$ SELECT CASE WHEN ovl_evil.trap('jsonb_build_object()') THEN NULL::jsonb END $$;
CREATE FUNCTION ovl_evil.count(anyelement) RETURNS bigint LANGUAGE sql
  AS $$ SELECT CASE WHEN ovl_evil.trap('count()') THEN 0 END $$;
RESET ROLE;

-- the traps work: called directly, they raise
SET ROLE regress_ovl_evil;
SET search_path = ovl_evil, pg_catalog;
SELECT 1 = 1;
SELECT tstzrange(now(), now(), '[)');
RESET search_path;
RESET ROLE;

-- inserts checked by both rules (one with a predicate and a message, one without) under the
-- evil search_path: the right rows fit, the right rows are refused, and no trap is sprung
SET ROLE regress_ovl_evil;
SET search_path = ovl_evil, pg_catalog, public;
INSERT INTO ovpriv.room_booking (id, room, starts_at, ends_at)
VALUES (10, 5, '2024-05-01 10:00', '2024-05-01 11:00');
-- its own booking overlaps: holder_busy (with a predicate); {holder} stays as written: the
-- writer may not SELECT holder and did not write it (its default filled it)
INSERT INTO ovpriv.room_booking (id, room, starts_at, ends_at)
VALUES (11, 6, '2024-05-01 10:30', '2024-05-01 11:30');
\echo :SQLSTATE
INSERT INTO ovpriv.room_booking (id, room, starts_at, ends_at, status)
VALUES (11, 6, '2024-05-01 10:30', '2024-05-01 11:30', 'cancelled');
-- the room is taken: room_busy (without a predicate)
INSERT INTO ovpriv.room_booking (id, room, holder, starts_at, ends_at)
VALUES (12, 5, 'regress_ovl_x', '2024-05-01 10:30', '2024-05-01 10:45');
\echo :SQLSTATE
-- several rows of one statement
INSERT INTO ovpriv.room_booking (id, room, holder, starts_at, ends_at)
VALUES (12, 7, 'regress_ovl_a', '2024-05-01 10:00', '2024-05-01 11:00'),
       (13, 7, 'regress_ovl_b', '2024-05-01 11:00', '2024-05-01 12:00');
RESET search_path;
RESET ROLE;
-- the owner, too, with its search_path pointing at the traps: UPDATE paths (its own statements
-- name pg_catalog's = explicitly)
SET ROLE regress_ovl_owner;
SET search_path = ovl_evil, pg_catalog, public;
UPDATE ovpriv.room_booking SET starts_at = '2024-05-01 10:00', ends_at = '2024-05-01 10:45'
 WHERE id OPERATOR(pg_catalog.=) 13;
\echo :SQLSTATE
UPDATE ovpriv.room_booking SET status = 'booked' WHERE id OPERATOR(pg_catalog.=) 11;
\echo :SQLSTATE
UPDATE ovpriv.room_booking SET room = 8, starts_at = '2024-05-01 11:00', status = 'booked'
 WHERE id OPERATOR(pg_catalog.=) 11;
RESET search_path;
-- find_conflicts (which runs with the caller's rights) gives the same answers
SELECT rule_name, conflicting_key FROM slotguard.find_conflicts('ovpriv.room_booking',
  '{"room": 7, "holder": "regress_ovl_evil", "starts_at": "2024-05-01 10:30+00", "ends_at": "2024-05-01 11:30+00"}')
 ORDER BY rule_name, (conflicting_key->>'id')::int;
RESET search_path;
RESET ROLE;
SELECT id, room, starts_at, ends_at, status FROM ovpriv.room_booking WHERE id >= 10 ORDER BY id;

RESET TimeZone;
RESET DateStyle;
