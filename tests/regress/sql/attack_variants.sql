-- attack_variants: variants of the hardening defects tried as a plain table owner, a plain writer
-- or a careless DBA would: each case is one that was found open after the listed ones were fixed.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS slotguard;
DROP SCHEMA IF EXISTS atk CASCADE;
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

SET client_min_messages = warning;
DROP SCHEMA atk CASCADE;
DROP OWNED BY regress_atk_owner;
DROP OWNED BY regress_atk_writer;
DROP ROLE regress_atk_owner;
DROP ROLE regress_atk_writer;
RESET client_min_messages;
