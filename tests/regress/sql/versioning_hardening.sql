-- versioning_hardening: the version, audit and transition-rule triggers and update_versioned
-- after the table was altered, with triggers attached by hand with arguments of their creator's
-- choice, with JSON of every shape, and on partitioned tables whose rows move between partitions
-- (hardened in 0.3). Each of the first statements below took the whole cluster down on
-- 0.2 (SIGSEGV in the trigger): now each is an error with a SQLSTATE naming table and column.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS vh CASCADE;
RESET client_min_messages;
CREATE SCHEMA vh;

-- ---------------------------------------------------------------------------------------------
-- Columns altered after enable_versioning: every column is checked where the trigger reads it.
CREATE TABLE vh.v (id int PRIMARY KEY, x int);
SELECT slotguard.enable_versioning('vh.v');
INSERT INTO vh.v VALUES (1, 1);
ALTER TABLE vh.v ALTER COLUMN updated_at TYPE text;
UPDATE vh.v SET x = 2;
\echo :SQLSTATE
ALTER TABLE vh.v ALTER COLUMN updated_at TYPE timestamptz USING now();
ALTER TABLE vh.v ALTER COLUMN created_at TYPE text;
UPDATE vh.v SET x = 2;
\echo :SQLSTATE
ALTER TABLE vh.v ALTER COLUMN created_at DROP DEFAULT, ALTER COLUMN created_at TYPE int USING 0;
UPDATE vh.v SET x = 2;
\echo :SQLSTATE
ALTER TABLE vh.v ALTER COLUMN created_at TYPE timestamptz USING now(),
                 ALTER COLUMN created_at SET DEFAULT now();
ALTER TABLE vh.v ALTER COLUMN version TYPE text;
UPDATE vh.v SET x = 2;
\echo :SQLSTATE
UPDATE vh.v SET x = 2, version = '0';
\echo :SQLSTATE
ALTER TABLE vh.v ALTER COLUMN version TYPE numeric USING 0;
UPDATE vh.v SET x = 2;
\echo :SQLSTATE
-- Re-enabling refuses the column with its new type; reverting it makes the table work again.
SELECT slotguard.enable_versioning('vh.v');
\echo :SQLSTATE
ALTER TABLE vh.v ALTER COLUMN version TYPE int USING 0;
UPDATE vh.v SET x = 3, version = 0 RETURNING id, x, version;
-- A smaller integer type works as such: the value is read and written at its width.
ALTER TABLE vh.v ALTER COLUMN version TYPE smallint;
UPDATE vh.v SET x = 4, version = 1 RETURNING id, x, version;
-- A timestamp column of the other time type works too.
ALTER TABLE vh.v ALTER COLUMN updated_at TYPE timestamp;
UPDATE vh.v SET x = 5 RETURNING id, x, version, updated_at IS NOT NULL AS stamped;
-- Dropped and renamed columns.
ALTER TABLE vh.v DROP COLUMN updated_at;
UPDATE vh.v SET x = 6 RETURNING id, x, version;
ALTER TABLE vh.v RENAME COLUMN version TO lock_version;
UPDATE vh.v SET x = 7;
\echo :SQLSTATE
ALTER TABLE vh.v DROP COLUMN lock_version;
UPDATE vh.v SET x = 7;
\echo :SQLSTATE
SELECT slotguard.enable_versioning('vh.v', timestamps => false);
UPDATE vh.v SET x = 8 RETURNING id, x, version;

-- A uuid version column retyped (the trigger read it as a pointer to 16 bytes).
CREATE TABLE vh.u (id int PRIMARY KEY, x int);
SELECT slotguard.enable_versioning('vh.u', version_type => 'uuid', timestamps => false);
INSERT INTO vh.u VALUES (1, 1);
ALTER TABLE vh.u ALTER COLUMN version DROP DEFAULT;
ALTER TABLE vh.u ALTER COLUMN version TYPE bigint USING 7;
UPDATE vh.u SET x = 2;
\echo :SQLSTATE
ALTER TABLE vh.u ALTER COLUMN version TYPE text;
UPDATE vh.u SET x = 2;
\echo :SQLSTATE

-- A domain over an accepted type works, and its constraint holds for the value the trigger
-- writes (a BEFORE trigger's values bypass domain checks otherwise).
CREATE DOMAIN vh.small_version AS int CHECK (VALUE < 2);
CREATE TABLE vh.d (id int PRIMARY KEY, x int, version vh.small_version NOT NULL DEFAULT 0);
SELECT slotguard.enable_versioning('vh.d', timestamps => false);
INSERT INTO vh.d VALUES (1, 1);
UPDATE vh.d SET x = 2 RETURNING id, x, version;
UPDATE vh.d SET x = 3;
\echo :SQLSTATE
SELECT id, x, version FROM vh.d;

-- ---------------------------------------------------------------------------------------------
-- slotguard.version_trigger attached by hand: arguments and firing of its creator's choice.
CREATE TABLE vh.h (id int PRIMARY KEY, x int, t text, ts timestamptz);
INSERT INTO vh.h VALUES (1, 1, 'a', now());
CREATE TRIGGER h1 BEFORE UPDATE ON vh.h FOR EACH ROW EXECUTE FUNCTION slotguard.version_trigger();
UPDATE vh.h SET x = 2;
\echo :SQLSTATE
DROP TRIGGER h1 ON vh.h;
CREATE TRIGGER h1 BEFORE UPDATE ON vh.h FOR EACH ROW
  EXECUTE FUNCTION slotguard.version_trigger('x', 'bigint', 't', 'f', 'assert', 'extra');
UPDATE vh.h SET x = 2;
\echo :SQLSTATE
DROP TRIGGER h1 ON vh.h;
CREATE TRIGGER h1 BEFORE UPDATE ON vh.h FOR EACH ROW
  EXECUTE FUNCTION slotguard.version_trigger('x', 'int128', 'yes', 'no', 'maybe');
UPDATE vh.h SET x = 2;
\echo :SQLSTATE
DROP TRIGGER h1 ON vh.h;
CREATE TRIGGER h1 BEFORE UPDATE ON vh.h FOR EACH ROW
  EXECUTE FUNCTION slotguard.version_trigger('x', 'uuid', 't', 'f', 'increment');
UPDATE vh.h SET x = 2;
\echo :SQLSTATE
DROP TRIGGER h1 ON vh.h;
-- the "version column" is a text column; an int column for a uuid version; a system column;
-- a column that does not exist; an empty and a huge name
CREATE TRIGGER h1 BEFORE UPDATE ON vh.h FOR EACH ROW
  EXECUTE FUNCTION slotguard.version_trigger('t', 'bigint', 'f', 'f', 'assert');
UPDATE vh.h SET x = 2;
\echo :SQLSTATE
DROP TRIGGER h1 ON vh.h;
CREATE TRIGGER h1 BEFORE UPDATE ON vh.h FOR EACH ROW
  EXECUTE FUNCTION slotguard.version_trigger('x', 'uuid', 'f', 'f', 'assert');
UPDATE vh.h SET x = 2;
\echo :SQLSTATE
DROP TRIGGER h1 ON vh.h;
CREATE TRIGGER h1 BEFORE UPDATE ON vh.h FOR EACH ROW
  EXECUTE FUNCTION slotguard.version_trigger('ctid', 'bigint', 'f', 'f', 'assert');
UPDATE vh.h SET x = 2;
\echo :SQLSTATE
DROP TRIGGER h1 ON vh.h;
CREATE TRIGGER h1 BEFORE UPDATE ON vh.h FOR EACH ROW
  EXECUTE FUNCTION slotguard.version_trigger('', 'bigint', 'f', 'f', 'assert');
UPDATE vh.h SET x = 2;
\echo :SQLSTATE
DROP TRIGGER h1 ON vh.h;
DO $$ BEGIN
  EXECUTE format('CREATE TRIGGER h1 BEFORE UPDATE ON vh.h FOR EACH ROW EXECUTE FUNCTION '
                 'slotguard.version_trigger(%L, %L, %L, %L, %L)',
                 repeat('x', 100000), 'bigint', 't', 'f', 'assert');
END $$;
UPDATE vh.h SET x = 2;
\echo :SQLSTATE
DROP TRIGGER h1 ON vh.h;
-- timestamps on, with a "timestamp" column of another type: refused where it is read
ALTER TABLE vh.h ADD COLUMN updated_at int;
CREATE TRIGGER h1 BEFORE UPDATE ON vh.h FOR EACH ROW
  EXECUTE FUNCTION slotguard.version_trigger('x', 'bigint', 't', 'f', 'assert');
UPDATE vh.h SET x = 2;
\echo :SQLSTATE
DROP TRIGGER h1 ON vh.h;
ALTER TABLE vh.h DROP COLUMN updated_at;
-- valid arguments on an integer column of the table's own: works like enable_versioning's
CREATE TRIGGER h1 BEFORE UPDATE ON vh.h FOR EACH ROW
  EXECUTE FUNCTION slotguard.version_trigger('x', 'bigint', 'f', 'f', 'assert');
UPDATE vh.h SET t = 'b' RETURNING id, x, t;
DROP TRIGGER h1 ON vh.h;
-- wrong timing or event: AFTER, FOR EACH STATEMENT, INSERT, DELETE, TRUNCATE, INSTEAD OF
CREATE TRIGGER h1 AFTER UPDATE ON vh.h FOR EACH ROW
  EXECUTE FUNCTION slotguard.version_trigger('x', 'bigint', 'f', 'f', 'assert');
UPDATE vh.h SET x = 2;
\echo :SQLSTATE
DROP TRIGGER h1 ON vh.h;
CREATE TRIGGER h1 BEFORE UPDATE ON vh.h FOR EACH STATEMENT
  EXECUTE FUNCTION slotguard.version_trigger('x', 'bigint', 'f', 'f', 'assert');
UPDATE vh.h SET x = 2;
\echo :SQLSTATE
DROP TRIGGER h1 ON vh.h;
CREATE TRIGGER h1 BEFORE INSERT OR DELETE ON vh.h FOR EACH ROW
  EXECUTE FUNCTION slotguard.version_trigger('x', 'bigint', 'f', 'f', 'assert');
INSERT INTO vh.h VALUES (2, 2, 'c', now());
\echo :SQLSTATE
DELETE FROM vh.h;
\echo :SQLSTATE
DROP TRIGGER h1 ON vh.h;
CREATE TRIGGER h1 BEFORE TRUNCATE ON vh.h
  EXECUTE FUNCTION slotguard.version_trigger('x', 'bigint', 'f', 'f', 'assert');
TRUNCATE vh.h;
\echo :SQLSTATE
DROP TRIGGER h1 ON vh.h;
CREATE VIEW vh.hv AS SELECT * FROM vh.h;
CREATE TRIGGER h1 INSTEAD OF UPDATE ON vh.hv FOR EACH ROW
  EXECUTE FUNCTION slotguard.version_trigger('x', 'bigint', 'f', 'f', 'assert');
UPDATE vh.hv SET x = 2;
\echo :SQLSTATE
-- Called outside a trigger.
SELECT slotguard.version_trigger();
\echo :SQLSTATE

-- A partitioned table whose partitions differ in column order: each partition's trigger reads
-- the partition's own columns, and a partition whose version column has another type is refused.
CREATE TABLE vh.pt (id int, region text, x int, version bigint NOT NULL DEFAULT 0,
                    PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE vh.pt_eu (x int, version bigint NOT NULL DEFAULT 0, region text NOT NULL,
                       id int NOT NULL);
ALTER TABLE vh.pt ATTACH PARTITION vh.pt_eu FOR VALUES IN ('eu');
CREATE TABLE vh.pt_us PARTITION OF vh.pt FOR VALUES IN ('us');
SELECT slotguard.enable_versioning('vh.pt', timestamps => false);
INSERT INTO vh.pt VALUES (1, 'eu', 1), (2, 'us', 2);
UPDATE vh.pt SET x = x + 10, version = 0 RETURNING *;
UPDATE vh.pt SET x = 0, version = 0;
\echo :SQLSTATE
-- attached by hand to the partitioned table, it is cloned onto the partitions and checked there
CREATE TRIGGER h2 BEFORE UPDATE ON vh.pt FOR EACH ROW
  EXECUTE FUNCTION slotguard.version_trigger('x', 'uuid', 'f', 'f', 'assert');
UPDATE vh.pt SET x = 0;
\echo :SQLSTATE
DROP TRIGGER h2 ON vh.pt;

-- ---------------------------------------------------------------------------------------------
-- The audit trigger: reads no column by type (rows become JSON through their types' output), so
-- altered columns are fine; attached by hand it must fire AFTER ... FOR EACH ROW with one argument.
CREATE TABLE vh.a (id int PRIMARY KEY, x int);
SELECT slotguard.enable_versioning('vh.a', audit => true, timestamps => false);
INSERT INTO vh.a VALUES (1, 1);
ALTER TABLE vh.a ALTER COLUMN x TYPE text;
ALTER TABLE vh.a ALTER COLUMN version TYPE int;
UPDATE vh.a SET x = 'two' RETURNING *;
ALTER TABLE vh.a DROP COLUMN x;
DELETE FROM vh.a;
SELECT tbl, op, row_key, old_version, new_version, changes FROM slotguard.audit
 WHERE tbl = 'vh.a' ORDER BY id;
CREATE TABLE vh.ah (id int PRIMARY KEY, x int);
CREATE TRIGGER a1 AFTER UPDATE ON vh.ah FOR EACH ROW EXECUTE FUNCTION slotguard.audit_trigger();
INSERT INTO vh.ah VALUES (1, 1);
UPDATE vh.ah SET x = 2;
\echo :SQLSTATE
DROP TRIGGER a1 ON vh.ah;
CREATE TRIGGER a1 AFTER UPDATE ON vh.ah FOR EACH ROW
  EXECUTE FUNCTION slotguard.audit_trigger('a', 'b');
UPDATE vh.ah SET x = 2;
\echo :SQLSTATE
DROP TRIGGER a1 ON vh.ah;
CREATE TRIGGER a1 BEFORE UPDATE ON vh.ah FOR EACH ROW EXECUTE FUNCTION slotguard.audit_trigger('v');
UPDATE vh.ah SET x = 2;
\echo :SQLSTATE
DROP TRIGGER a1 ON vh.ah;
CREATE TRIGGER a1 AFTER UPDATE ON vh.ah FOR EACH STATEMENT
  EXECUTE FUNCTION slotguard.audit_trigger('v');
UPDATE vh.ah SET x = 2;
\echo :SQLSTATE
DROP TRIGGER a1 ON vh.ah;
CREATE TRIGGER a1 AFTER TRUNCATE ON vh.ah EXECUTE FUNCTION slotguard.audit_trigger('v');
TRUNCATE vh.ah;
\echo :SQLSTATE
DROP TRIGGER a1 ON vh.ah;
CREATE VIEW vh.ahv AS SELECT * FROM vh.ah;
CREATE TRIGGER a1 INSTEAD OF DELETE ON vh.ahv FOR EACH ROW
  EXECUTE FUNCTION slotguard.audit_trigger('v');
DELETE FROM vh.ahv;
\echo :SQLSTATE
-- any single argument is only a JSON key to look up: a column of its own choice works
CREATE TRIGGER a1 AFTER INSERT ON vh.ah FOR EACH ROW EXECUTE FUNCTION slotguard.audit_trigger('x');
INSERT INTO vh.ah VALUES (2, 5);
SELECT tbl, op, old_version, new_version FROM slotguard.audit WHERE tbl = 'vh.ah' ORDER BY id;

-- ---------------------------------------------------------------------------------------------
-- The transition trigger compares states as text (the column type's output), so a rule works on
-- a column of any type. PostgreSQL refuses to retype the column under the rule (the trigger
-- depends on it); retyped in between, the rule added again keeps refusing what it does not list.
-- A renamed column is named in the error.
CREATE TABLE vh.s (id int PRIMARY KEY, status text);
SELECT slotguard.add_transition_rule('vh.s', 'status', '{"": ["1"], "1": ["2"]}');
INSERT INTO vh.s VALUES (1, '1');
ALTER TABLE vh.s ALTER COLUMN status TYPE int USING status::int;
\echo :SQLSTATE
SELECT slotguard.drop_transition_rule('vh.s', 'status');
ALTER TABLE vh.s ALTER COLUMN status TYPE int USING status::int;
SELECT slotguard.add_transition_rule('vh.s', 'status', '{"": ["1"], "1": ["2"]}');
UPDATE vh.s SET status = 2 RETURNING *;
UPDATE vh.s SET status = 3;
\echo :SQLSTATE
ALTER TABLE vh.s RENAME COLUMN status TO state;
INSERT INTO vh.s VALUES (2, 1);
\echo :SQLSTATE
SELECT slotguard.drop_transition_rule('vh.s', 'status');
INSERT INTO vh.s VALUES (2, 1);
-- attached by hand: arguments that are not a rule, huge or deeply nested
CREATE TRIGGER t1 AFTER INSERT ON vh.s FOR EACH ROW
  EXECUTE FUNCTION slotguard.transition_trigger('state', 'not json', '');
INSERT INTO vh.s VALUES (3, 1);
\echo :SQLSTATE
DROP TRIGGER t1 ON vh.s;
CREATE TRIGGER t1 AFTER INSERT ON vh.s FOR EACH ROW
  EXECUTE FUNCTION slotguard.transition_trigger('state', '{"a": "b"}', '[]');
INSERT INTO vh.s VALUES (3, 1);
\echo :SQLSTATE
DROP TRIGGER t1 ON vh.s;
DO $$ BEGIN
  EXECUTE format('CREATE TRIGGER t1 AFTER INSERT ON vh.s FOR EACH ROW EXECUTE FUNCTION '
                 'slotguard.transition_trigger(%L, %L, %L)', 'state', '{"": ["1"]}',
                 '{"r": ' || repeat('[', 100000) || repeat(']', 100000) || '}');
END $$;
INSERT INTO vh.s VALUES (3, 1);
\echo :SQLSTATE
DROP TRIGGER t1 ON vh.s;
DO $$ BEGIN
  EXECUTE format('CREATE TRIGGER t1 AFTER INSERT ON vh.s FOR EACH ROW EXECUTE FUNCTION '
                 'slotguard.transition_trigger(%L, %L, %L)', 'state',
                 '{"": [' || (SELECT string_agg(format('"%s"', i), ',')
                                FROM generate_series(2, 50000) i) || ']}', '');
END $$;
\set VERBOSITY terse
INSERT INTO vh.s VALUES (3, 1);
\set VERBOSITY default
\echo :SQLSTATE
INSERT INTO vh.s VALUES (4, 49999) RETURNING *;
DROP TRIGGER t1 ON vh.s;
CREATE TRIGGER t1 BEFORE INSERT ON vh.s FOR EACH ROW
  EXECUTE FUNCTION slotguard.transition_trigger('state', '{}', '');
INSERT INTO vh.s VALUES (5, 1);
\echo :SQLSTATE
DROP TRIGGER t1 ON vh.s;
CREATE TRIGGER t1 AFTER INSERT ON vh.s FOR EACH ROW
  EXECUTE FUNCTION slotguard.transition_trigger('state', '{}');
INSERT INTO vh.s VALUES (5, 1);
\echo :SQLSTATE
DROP TRIGGER t1 ON vh.s;
CREATE TRIGGER t1 AFTER INSERT ON vh.s FOR EACH STATEMENT
  EXECUTE FUNCTION slotguard.transition_trigger('state', '{}', '');
INSERT INTO vh.s VALUES (5, 1);
\echo :SQLSTATE
DROP TRIGGER t1 ON vh.s;

-- The catalog views list only triggers running slotguard's functions, and hand-made ones with
-- bad arguments do not make the views fail (nor show up as a versioned table; a transition
-- trigger with arguments that are no rule shows NULL rules).
CREATE TRIGGER slotguard_10_version BEFORE UPDATE ON vh.s FOR EACH ROW
  EXECUTE FUNCTION slotguard.version_trigger('state', 'x', 'y', 'z', 'w');
CREATE TRIGGER slotguard_20_transition_x AFTER INSERT ON vh.s FOR EACH ROW
  EXECUTE FUNCTION slotguard.transition_trigger('state', 'not json', '{');
CREATE FUNCTION vh.noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER slotguard_20_transition_y AFTER INSERT ON vh.s FOR EACH ROW
  EXECUTE FUNCTION vh.noop('a', 'b', 'c');
SELECT * FROM slotguard.versioned_tables WHERE tbl = 'vh.s'::regclass;
SELECT * FROM slotguard.transition_rules WHERE tbl = 'vh.s'::regclass;
DROP TRIGGER slotguard_10_version ON vh.s;
DROP TRIGGER slotguard_20_transition_x ON vh.s;
DROP TRIGGER slotguard_20_transition_y ON vh.s;

-- ---------------------------------------------------------------------------------------------
-- update_versioned: key and changes of every shape, key and version columns altered.
CREATE TABLE vh.uv (id int PRIMARY KEY, x int, doc jsonb);
SELECT slotguard.enable_versioning('vh.uv', timestamps => false);
INSERT INTO vh.uv VALUES (1, 1, NULL);
SELECT slotguard.update_versioned('vh.uv', '[1]', 0, '{"x": 2}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('vh.uv', 'null', 0, '{"x": 2}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('vh.uv', '{"id": [1]}', 0, '{"x": 2}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('vh.uv', '{"id": {"a": 1}}', 0, '{"x": 2}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('vh.uv', '{"id": null}', 0, '{"x": 2}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('vh.uv', 'true', 0, '{"x": 2}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('vh.uv', '1e400', 0, '{"x": 2}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('vh.uv', '1', 0, '[]');
\echo :SQLSTATE
SELECT slotguard.update_versioned('vh.uv', '1', 0, '"x"');
\echo :SQLSTATE
SELECT slotguard.update_versioned('vh.uv', '1', 0, '{"x": [1, 2]}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('vh.uv', '1', 0, '{"x": "a"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('vh.uv', '1', 0, NULL);
\echo :SQLSTATE
SELECT slotguard.update_versioned('vh.uv', NULL, 0, '{}');
\echo :SQLSTATE
-- nesting: a jsonb column takes nested values; beyond 1000 levels key and changes are refused
-- before anything copies or prints them
SELECT slotguard.update_versioned('vh.uv', '1', 0,
  ('{"doc": ' || repeat('[', 500) || repeat(']', 500) || '}')::jsonb)->>'version';
SELECT slotguard.update_versioned('vh.uv', '1', 1,
  ('{"doc": ' || repeat('[', 5000) || repeat(']', 5000) || '}')::jsonb);
\echo :SQLSTATE
SELECT slotguard.update_versioned('vh.uv',
  ('{"id": ' || repeat('{"a": ', 5000) || '1' || repeat('}', 5000) || '}')::jsonb, 1, '{}');
\echo :SQLSTATE
-- strings that look like nesting are not nesting
SELECT slotguard.update_versioned('vh.uv', '1', 1,
  jsonb_build_object('doc', repeat('[{', 5000) || '\"')) ->> 'version';
-- a huge changes object of columns that do not exist
SELECT slotguard.update_versioned('vh.uv', '1', 2,
  (SELECT jsonb_object_agg('c' || i, i) FROM generate_series(1, 100000) i));
\echo :SQLSTATE
-- The key column retyped: the next call plans again with the new type's operator.
SELECT slotguard.update_versioned('vh.uv', '1', 2, '{"x": 3}') ->> 'version';
ALTER TABLE vh.uv ALTER COLUMN id TYPE text;
SELECT slotguard.update_versioned('vh.uv', '"1"', 3, '{"x": 4}') ->> 'version';
SELECT slotguard.update_versioned('vh.uv', '1', 4, '{"x": 5}') ->> 'version';
-- The version column retyped: the trigger refuses it, update_versioned reports the trigger's error.
ALTER TABLE vh.uv ALTER COLUMN version TYPE text;
SELECT slotguard.update_versioned('vh.uv', '"1"', 5, '{"x": 6}');
\echo :SQLSTATE
-- A hand-made version trigger with bad arguments does not make the table versioned.
CREATE TABLE vh.uv2 (id int PRIMARY KEY, x int, version bigint);
CREATE TRIGGER slotguard_10_version BEFORE UPDATE ON vh.uv2 FOR EACH ROW
  EXECUTE FUNCTION slotguard.version_trigger('version', 'bigint', 'maybe', 'f', 'assert');
SELECT slotguard.update_versioned('vh.uv2', '1', 0, '{"x": 1}');
\echo :SQLSTATE

-- ---------------------------------------------------------------------------------------------
-- Cross-partition UPDATE. PostgreSQL runs it as a DELETE from one partition
-- and an INSERT into another; the transition rule checks it as the UPDATE it is, and the audit
-- records one UPDATE row under the partitioned table's name.
CREATE TABLE vh.p (id int, region text, status text, note text, PRIMARY KEY (id, region))
  PARTITION BY LIST (region);
CREATE TABLE vh.p_eu PARTITION OF vh.p FOR VALUES IN ('eu');
SELECT slotguard.enable_versioning('vh.p', audit => true, timestamps => false);
SELECT slotguard.add_transition_rule('vh.p', 'status',
  '{"": ["pending"], "pending": ["confirmed", "cancelled"], "confirmed": ["done"]}');
-- a partition attached later gets the triggers too, with its own column order
CREATE TABLE vh.p_us (note text, status text, id int NOT NULL, region text NOT NULL,
                      version bigint NOT NULL DEFAULT 0);
ALTER TABLE vh.p ATTACH PARTITION vh.p_us FOR VALUES IN ('us');
INSERT INTO vh.p VALUES (1, 'eu', 'pending', 'a'), (2, 'eu', 'pending', 'b'), (3, 'us', 'pending', 'c');
UPDATE vh.p SET status = 'confirmed' WHERE id IN (1, 2);
-- confirmed -> pending is forbidden, in place or moving to another partition
UPDATE vh.p SET status = 'pending' WHERE id = 1;
\echo :SQLSTATE
UPDATE vh.p SET status = 'pending', region = 'us' WHERE id = 1;
\echo :SQLSTATE
-- a move that keeps a state that is not an initial state is no INSERT: allowed
UPDATE vh.p SET region = 'us' WHERE id = 1 RETURNING id, region, status, version;
-- a move with an allowed change, several rows at once, in both directions
WITH u AS (
  UPDATE vh.p SET region = CASE region WHEN 'eu' THEN 'us' ELSE 'eu' END,
                  status = CASE status WHEN 'confirmed' THEN 'done' ELSE 'cancelled' END
   RETURNING id, region, status, version)
SELECT * FROM u ORDER BY id;
-- and a forbidden one among allowed ones refuses the whole statement
UPDATE vh.p SET region = 'eu', status = CASE id WHEN 3 THEN 'pending' ELSE status END;
\echo :SQLSTATE
SELECT id, region, status, version FROM vh.p ORDER BY id;
-- the version check applies to moving rows like to any other
UPDATE vh.p SET region = 'eu', version = 0 WHERE id = 2;
\echo :SQLSTATE
-- The audit: one row per statement and row, under vh.p; each move is one UPDATE row.
SELECT tbl, op, row_key, old_version, new_version, changes FROM slotguard.audit
 WHERE tbl LIKE 'vh.p%' ORDER BY id;
-- A move inside a transaction, then rolled back with a savepoint: nothing of it remains.
BEGIN;
SAVEPOINT s;
UPDATE vh.p SET region = 'us' WHERE id = 2;
ROLLBACK TO s;
UPDATE vh.p SET note = 'kept' WHERE id = 2;
COMMIT;
SELECT count(*) FILTER (WHERE op = 'UPDATE') AS updates, count(*) FILTER (WHERE op = 'DELETE')
    AS deletes FROM slotguard.audit WHERE tbl LIKE 'vh.p%';
-- Plain DELETE and INSERT right after a move in one transaction stay what they are.
BEGIN;
UPDATE vh.p SET region = 'eu' WHERE id = 2;
DELETE FROM vh.p WHERE id = 2;
INSERT INTO vh.p VALUES (2, 'us', 'pending', 'again');
COMMIT;
SELECT tbl, op, row_key, old_version, new_version FROM slotguard.audit
 WHERE tbl LIKE 'vh.p%' ORDER BY id DESC LIMIT 3;
INSERT INTO vh.p VALUES (4, 'eu', 'done', 'not an initial state');
\echo :SQLSTATE

-- A trigger firing between the two halves of a move may run statements that move rows of
-- their own (here: of another partitioned table with the same rule): each move is matched with
-- its own other half.
CREATE TABLE vh.p2 (id int, region text, status text, PRIMARY KEY (id, region))
  PARTITION BY LIST (region);
CREATE TABLE vh.p2_eu PARTITION OF vh.p2 FOR VALUES IN ('eu');
CREATE TABLE vh.p2_us PARTITION OF vh.p2 FOR VALUES IN ('us');
SELECT slotguard.add_transition_rule('vh.p2', 'status',
  '{"": ["pending"], "pending": ["confirmed", "cancelled"], "confirmed": ["done"]}');
INSERT INTO vh.p2 VALUES (1, 'eu', 'pending');
CREATE FUNCTION vh.move_p2() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE vh.p2 SET region = CASE region WHEN 'eu' THEN 'us' ELSE 'eu' END;
  RETURN NULL;
END$$;
CREATE TRIGGER zz_move_p2 AFTER DELETE ON vh.p FOR EACH ROW EXECUTE FUNCTION vh.move_p2();
UPDATE vh.p SET region = 'us', status = 'pending' WHERE id = 1;
\echo :SQLSTATE
UPDATE vh.p SET region = 'us' WHERE id = 1 RETURNING id, region, status;
SELECT * FROM vh.p2;
SELECT tbl, op, row_key, changes FROM slotguard.audit WHERE tbl LIKE 'vh.p%' ORDER BY id DESC LIMIT 1;
DROP TRIGGER zz_move_p2 ON vh.p;

-- MERGE moves rows the same way, and may insert others in the same command: each is what it is.
CREATE TABLE vh.src (id int, region text, status text, note text);
INSERT INTO vh.src VALUES (1, 'eu', 'pending', 'merged'), (5, 'us', 'pending', 'new');
MERGE INTO vh.p USING vh.src s ON p.id = s.id
  WHEN MATCHED THEN UPDATE SET region = s.region, status = s.status
  WHEN NOT MATCHED THEN INSERT (id, region, status, note) VALUES (s.id, s.region, s.status, s.note);
\echo :SQLSTATE
UPDATE vh.src SET status = 'done' WHERE id = 1;
MERGE INTO vh.p USING vh.src s ON p.id = s.id
  WHEN MATCHED THEN UPDATE SET region = s.region, status = s.status
  WHEN NOT MATCHED THEN INSERT (id, region, status, note) VALUES (s.id, s.region, s.status, s.note);
SELECT id, region, status FROM vh.p ORDER BY id;
SELECT tbl, op, row_key, changes FROM slotguard.audit WHERE tbl LIKE 'vh.p%' ORDER BY id DESC LIMIT 2;

-- Sub-partitioned: moves between leaves of different sub-trees are checked the same way.
CREATE TABLE vh.q (id int, region text, city text, status text, PRIMARY KEY (id, region, city))
  PARTITION BY LIST (region);
CREATE TABLE vh.q_eu PARTITION OF vh.q FOR VALUES IN ('eu') PARTITION BY LIST (city);
CREATE TABLE vh.q_eu_paris PARTITION OF vh.q_eu FOR VALUES IN ('paris');
CREATE TABLE vh.q_eu_rome PARTITION OF vh.q_eu FOR VALUES IN ('rome');
CREATE TABLE vh.q_us PARTITION OF vh.q FOR VALUES IN ('us');
SELECT slotguard.add_transition_rule('vh.q', 'status', '{"": ["new"], "new": ["old"]}');
SELECT slotguard.enable_versioning('vh.q', audit => true, timestamps => false);
INSERT INTO vh.q VALUES (1, 'eu', 'paris', 'new');
UPDATE vh.q SET city = 'rome', status = 'old';
UPDATE vh.q SET region = 'us', city = 'ny', status = 'new';
\echo :SQLSTATE
UPDATE vh.q SET region = 'us', city = 'ny';
SELECT tbl, op, row_key, changes FROM slotguard.audit WHERE tbl LIKE 'vh.q%' ORDER BY id;
-- Dropped, the rule checks nothing, moves included.
SELECT slotguard.drop_transition_rule('vh.q', 'status');
UPDATE vh.q SET region = 'eu', city = 'paris', status = 'new' RETURNING *;

DROP SCHEMA vh CASCADE;
