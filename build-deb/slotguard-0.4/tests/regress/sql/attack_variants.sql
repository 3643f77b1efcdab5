-- attack_variants: variants of the hardening defects tried as a plain table owner, a plain writer
-- or a careless DBA would: each case is one that was found open after the listed ones were fixed.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS slotguard;
DROP SCHEMA IF EXISTS atk CASCADE;
DROP SCHEMA IF EXISTS atk_old CASCADE;
DROP SCHEMA IF EXISTS atk_new CASCADE;
DROP SCHEMA IF EXISTS atk_v CASCADE;
DROP SCHEMA IF EXISTS atk_v2 CASCADE;
DO $$
DECLARE r text;
BEGIN
  FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress\_atk\_%' LOOP
    EXECUTE format('DROP OWNED BY %I', r);
  END LOOP;
END $$;
DROP ROLE IF EXISTS regress_atk_owner;
DROP ROLE IF EXISTS regress_atk_writer;
RESET client_min_messages;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

CREATE ROLE regress_atk_owner;
CREATE ROLE regress_atk_writer;
CREATE SCHEMA atk AUTHORIZATION regress_atk_owner;
GRANT USAGE ON SCHEMA atk TO regress_atk_writer;
GRANT USAGE ON SCHEMA slotguard TO regress_atk_owner, regress_atk_writer;

-- 1. An overlap rule's message placeholders show only columns the writer may read (as
-- PostgreSQL's "Failing row contains" does): a writer with INSERT and column-level SELECT on some
-- columns does not learn a column filled by a default or a BEFORE trigger it may not read.
SET ROLE regress_atk_owner;
CREATE TABLE atk.visit (
  id int PRIMARY KEY, room int, starts_at timestamptz, ends_at timestamptz,
  secret text DEFAULT 'the-secret'
);
SELECT slotguard.add_overlap_rule('atk.visit', 'room_busy', '{room}', '{starts_at,ends_at}',
  message => 'room {room} taken at {starts_at} (id {id}, secret {secret})');
INSERT INTO atk.visit VALUES (1, 7, '2030-01-01 10:00', '2030-01-01 11:00');
GRANT INSERT (id, room, starts_at, ends_at) ON atk.visit TO regress_atk_writer;
GRANT SELECT (room, starts_at) ON atk.visit TO regress_atk_writer;
RESET ROLE;
SET ROLE regress_atk_writer;
INSERT INTO atk.visit (id, room, starts_at, ends_at) VALUES (2, 7, '2030-01-01 10:30', '2030-01-01 12:00');
RESET ROLE;
-- the owner sees every placeholder filled
SET ROLE regress_atk_owner;
INSERT INTO atk.visit (id, room, starts_at, ends_at) VALUES (3, 7, '2030-01-01 10:30', '2030-01-01 12:00');
-- under row-level security no value is shown to the writer
ALTER TABLE atk.visit ENABLE ROW LEVEL SECURITY;
CREATE POLICY all_rows ON atk.visit USING (true);
GRANT SELECT ON atk.visit TO regress_atk_writer;
RESET ROLE;
SET ROLE regress_atk_writer;
INSERT INTO atk.visit (id, room, starts_at, ends_at) VALUES (4, 7, '2030-01-01 10:30', '2030-01-01 12:00');
RESET ROLE;

-- a writer granted SELECT on the partitioned table (not on its partitions) sees the values of
-- the columns it may read there
SET ROLE regress_atk_owner;
CREATE TABLE atk.hall (id int, hall int, s timestamptz, e timestamptz, secret text DEFAULT 'x')
  PARTITION BY LIST (hall);
CREATE TABLE atk.hall_1 PARTITION OF atk.hall FOR VALUES IN (1);
SELECT slotguard.add_overlap_rule('atk.hall', 'hall_busy', '{hall}', '{s,e}',
  message => 'hall {hall} taken at {s} ({secret})');
INSERT INTO atk.hall VALUES (1, 1, '2030-01-01 10:00', '2030-01-01 11:00');
GRANT INSERT ON atk.hall TO regress_atk_writer;
GRANT SELECT (hall, s) ON atk.hall TO regress_atk_writer;
RESET ROLE;
SET ROLE regress_atk_writer;
INSERT INTO atk.hall (id, hall, s, e) VALUES (2, 1, '2030-01-01 10:30', '2030-01-01 12:00');
RESET ROLE;

-- 2. A rule checked through a partition names its partitioned table; renaming that table (or
-- its schema) must not leave a session's cached check naming the old name, where another role's
-- table of that name would be checked instead (an empty one lets a conflicting row through).
SET ROLE regress_atk_owner;
CREATE TABLE atk.room (id int, room int, s timestamptz, e timestamptz) PARTITION BY LIST (room);
CREATE TABLE atk.room_1 PARTITION OF atk.room FOR VALUES IN (1);
SELECT slotguard.add_overlap_rule('atk.room', 'room_busy', '{room}', '{s,e}');
INSERT INTO atk.room_1 VALUES (1, 1, '2030-01-01 10:00', '2030-01-01 11:00');
ALTER TABLE atk.room RENAME TO room_renamed;
RESET ROLE;
CREATE TABLE atk.room (id int, room int, s timestamptz, e timestamptz);  -- the impostor, empty
GRANT SELECT ON atk.room TO PUBLIC;
SET ROLE regress_atk_owner;
INSERT INTO atk.room_1 VALUES (2, 1, '2030-01-01 10:30', '2030-01-01 11:30');  -- conflicts
-- the same through a renamed schema
RESET ROLE;
CREATE SCHEMA atk_old AUTHORIZATION regress_atk_owner;
SET ROLE regress_atk_owner;
CREATE TABLE atk_old.room (id int, room int, s timestamptz, e timestamptz) PARTITION BY LIST (room);
CREATE TABLE atk.room_2 PARTITION OF atk_old.room FOR VALUES IN (2);
SELECT slotguard.add_overlap_rule('atk_old.room', 'room_busy', '{room}', '{s,e}');
INSERT INTO atk.room_2 VALUES (1, 2, '2030-01-01 10:00', '2030-01-01 11:00');
RESET ROLE;
ALTER SCHEMA atk_old RENAME TO atk_new;
CREATE SCHEMA atk_old;
CREATE TABLE atk_old.room (id int, room int, s timestamptz, e timestamptz);  -- the impostor
GRANT USAGE ON SCHEMA atk_old TO PUBLIC;
GRANT SELECT ON atk_old.room TO PUBLIC;
SET ROLE regress_atk_owner;
INSERT INTO atk.room_2 VALUES (2, 2, '2030-01-01 10:30', '2030-01-01 11:30');  -- conflicts
SELECT count(*) FROM atk.room_1;
SELECT count(*) FROM atk.room_2;
RESET ROLE;

-- 3. update_versioned of a table whose schema was renamed updates that table, not another
-- table that took its old name
CREATE SCHEMA atk_v;
CREATE TABLE atk_v.item (id int PRIMARY KEY, x int);
SELECT slotguard.enable_versioning('atk_v.item');
INSERT INTO atk_v.item (id, x) VALUES (1, 1);
SELECT slotguard.update_versioned('atk_v.item', '{"id": 1}', 0, '{"x": 2}') ->> 'x';
ALTER SCHEMA atk_v RENAME TO atk_v2;
CREATE SCHEMA atk_v;
CREATE TABLE atk_v.item (id int PRIMARY KEY, x int, version bigint, updated_at timestamptz);
INSERT INTO atk_v.item VALUES (1, 100, 1, now());
SELECT slotguard.update_versioned('atk_v2.item', '{"id": 1}', 1, '{"x": 3}') ->> 'x';
SELECT id, x, version FROM atk_v2.item;
SELECT id, x, version FROM atk_v.item;

SET client_min_messages = warning;
DROP SCHEMA atk CASCADE;
DROP SCHEMA atk_old CASCADE;
DROP SCHEMA atk_new CASCADE;
DROP SCHEMA atk_v CASCADE;
DROP SCHEMA atk_v2 CASCADE;
DROP OWNED BY regress_atk_owner;
DROP OWNED BY regress_atk_writer;
DROP ROLE regress_atk_owner;
DROP ROLE regress_atk_writer;
RESET client_min_messages;
