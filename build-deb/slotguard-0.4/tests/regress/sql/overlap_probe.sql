-- overlap_probe: a rule of capacity 1 without only_when on a plain table is checked by scanning
-- its GiST index directly (the probe), and by the SQL check only to describe a conflict. The probe
-- must agree with the SQL check everywhere: several rows of one statement, NULL keys and
-- unbounded periods, empty and touching periods, range columns, several key columns, a key of
-- another type, an index the DBA made, and no usable index at all (the SQL check alone).
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS slotguard;
CREATE EXTENSION IF NOT EXISTS btree_gist;
DROP SCHEMA IF EXISTS prb CASCADE;
RESET client_min_messages;
CREATE SCHEMA prb;

CREATE TABLE prb.b (id int PRIMARY KEY, room int, s timestamptz, e timestamptz);
SELECT slotguard.add_overlap_rule('prb.b', 'room_busy', '{room}', '{s,e}');
-- two conflicting rows in one statement: the second sees the first
INSERT INTO prb.b VALUES (1, 1, '2030-01-01 09:00+00', '2030-01-01 10:00+00'),
                         (2, 1, '2030-01-01 09:30+00', '2030-01-01 10:30+00');
\echo :SQLSTATE
SELECT count(*) FROM prb.b;
-- touching is fine; empty overlaps nothing; NULL key never conflicts
INSERT INTO prb.b VALUES (1, 1, '2030-01-01 09:00+00', '2030-01-01 10:00+00'),
                         (2, 1, '2030-01-01 10:00+00', '2030-01-01 11:00+00'),
                         (3, 1, '2030-01-01 09:30+00', '2030-01-01 09:30+00'),
                         (4, NULL, '2030-01-01 09:00+00', '2030-01-01 12:00+00');
-- unbounded ends
INSERT INTO prb.b VALUES (5, 2, NULL, '2030-01-01 09:00+00');
INSERT INTO prb.b VALUES (6, 2, '2029-01-01 00:00+00', '2029-01-02 00:00+00');   -- inside (-inf, 9:00)
\echo :SQLSTATE
INSERT INTO prb.b VALUES (7, 2, '2030-01-01 09:00+00', NULL);
INSERT INTO prb.b VALUES (8, 2, '2031-01-01 00:00+00', '2031-01-02 00:00+00');   -- inside [9:00, inf)
\echo :SQLSTATE
-- an UPDATE onto another row's time
UPDATE prb.b SET s = '2030-01-01 10:30+00', e = '2030-01-01 11:30+00' WHERE id = 1;
\echo :SQLSTATE
SELECT id, room, s, e FROM prb.b ORDER BY id;

-- a range column and two key columns, one of them text
CREATE TABLE prb.r (id int PRIMARY KEY, site text, room int, during int4range);
SELECT slotguard.add_overlap_rule('prb.r', 'busy', '{site,room}', '{during}');
INSERT INTO prb.r VALUES (1, 'north', 1, '[1,5)'), (2, 'south', 1, '[1,5)'), (3, 'north', 2, '[1,5)');
INSERT INTO prb.r VALUES (4, 'north', 1, '[4,6)');
\echo :SQLSTATE
INSERT INTO prb.r VALUES (5, 'north', 1, NULL), (6, 'north', 1, 'empty'), (7, 'north', 1, '[5,9)');
SELECT count(*) FROM prb.r;

-- an index the DBA made before the rule is reused and probed the same way
CREATE TABLE prb.d (id int PRIMARY KEY, room int, s int, e int);
CREATE INDEX prb_d_dba ON prb.d USING gist (room, int4range(s, e, '[)'));
SELECT slotguard.add_overlap_rule('prb.d', 'room_busy', '{room}', '{s,e}');
INSERT INTO prb.d VALUES (1, 1, 1, 5);
INSERT INTO prb.d VALUES (2, 1, 4, 6);
\echo :SQLSTATE
-- with no usable index left, the SQL check alone still refuses
DROP INDEX prb.prb_d_dba;
INSERT INTO prb.d VALUES (3, 1, 2, 3);
\echo :SQLSTATE
INSERT INTO prb.d VALUES (4, 1, 5, 9);
SELECT count(*) FROM prb.d;

-- inheritance: a child's rows would escape the parent's rule (its trigger does not fire for
-- them): a table with rules takes no inheritance children (0A000), and a rule is not added to a
-- table that has them
CREATE TABLE prb.p (id int PRIMARY KEY, room int, s int, e int);
SELECT slotguard.add_overlap_rule('prb.p', 'room_busy', '{room}', '{s,e}');
CREATE TABLE prb.c () INHERITS (prb.p);
\echo :SQLSTATE
CREATE TABLE prb.c (LIKE prb.p INCLUDING CONSTRAINTS);
ALTER TABLE prb.c INHERIT prb.p;
\echo :SQLSTATE
SELECT slotguard.drop_overlap_rule('prb.p', 'room_busy');
ALTER TABLE prb.c INHERIT prb.p;
SELECT slotguard.add_overlap_rule('prb.p', 'room_busy', '{room}', '{s,e}');
\echo :SQLSTATE
ALTER TABLE prb.c NO INHERIT prb.p;
SELECT slotguard.add_overlap_rule('prb.p', 'room_busy', '{room}', '{s,e}');
INSERT INTO prb.c VALUES (1, 1, 9, 10);
INSERT INTO prb.p VALUES (2, 1, 9, 11);
INSERT INTO prb.p VALUES (3, 1, 10, 11);
\echo :SQLSTATE

-- a float key: NaN equals NaN for the type's =, so the SQL check decides, not the index
CREATE TABLE prb.f (id int PRIMARY KEY, lane float8, s int, e int);
SELECT slotguard.add_overlap_rule('prb.f', 'lane_busy', '{lane}', '{s,e}');
INSERT INTO prb.f VALUES (1, 'NaN', 1, 5);
INSERT INTO prb.f VALUES (2, 'NaN', 2, 3);
\echo :SQLSTATE

-- a column renamed and another added under its old name: the rule reads the new column
CREATE TABLE prb.n (id int PRIMARY KEY, room int, s int, e int);
SELECT slotguard.add_overlap_rule('prb.n', 'room_busy', '{room}', '{s,e}');
INSERT INTO prb.n VALUES (1, 1, 1, 5);
ALTER TABLE prb.n RENAME COLUMN s TO s_old;
ALTER TABLE prb.n ADD COLUMN s int;
UPDATE prb.n SET s = 1;
-- [2,6) in the new column overlaps row 1's [1,5); the old column's [5,6) would not
INSERT INTO prb.n (id, room, s_old, s, e) VALUES (2, 1, 5, 2, 6);
\echo :SQLSTATE

SET client_min_messages = warning;
DROP SCHEMA prb CASCADE;
