-- overlap_update: overlap rules on UPDATE (docs/sql-api.md, "Overlap rules": enforced on INSERT
-- and on UPDATE of any key, period or predicate column), and statements that write several rows at once
-- (multi-row INSERT, INSERT ... SELECT, COPY, UPDATE of many rows, upsert). A row never
-- conflicts with its own earlier version, and rows written by one statement are checked against
-- each other.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS slotguard;
DROP SCHEMA IF EXISTS ovu CASCADE;
RESET client_min_messages;
CREATE SCHEMA ovu;

-- counters of one rule (deltas): checks and rejections
CREATE TABLE ovu.snap (object text, metric text, value bigint);
CREATE FUNCTION ovu.snap() RETURNS void LANGUAGE sql AS $$
  DELETE FROM ovu.snap;
  INSERT INTO ovu.snap SELECT object, metric, value FROM slotguard.stats
   WHERE scope = 'rule' AND object LIKE 'ovu.%';
$$;
CREATE FUNCTION ovu.delta(obj text) RETURNS TABLE (metric text, delta bigint) LANGUAGE sql AS $$
  SELECT m, coalesce((SELECT value FROM slotguard.stats
                       WHERE scope = 'rule' AND object = obj AND metric = m), 0)
            - coalesce((SELECT value FROM ovu.snap WHERE object = obj AND metric = m), 0)
    FROM unnest(ARRAY['checks', 'rejections']) AS m
$$;

-- ---------------------------------------------------------------------------------------------
-- 1. A rule without a predicate: its trigger fires on UPDATE of the key or period columns.
CREATE TABLE ovu.b (id int PRIMARY KEY, room int, s int, e int, note text);
SELECT slotguard.add_overlap_rule('ovu.b', 'room_busy', '{room}', '{s,e}');
INSERT INTO ovu.b VALUES (1, 1, 10, 20), (2, 1, 20, 30), (3, 2, 10, 20);

-- a row may be changed within its own period: it does not conflict with its old version
UPDATE ovu.b SET e = 15 WHERE id = 1;
UPDATE ovu.b SET e = 20 WHERE id = 1;
UPDATE ovu.b SET s = 5 WHERE id = 1;
UPDATE ovu.b SET s = 10, e = 20 WHERE id = 1;
UPDATE ovu.b SET room = 1 WHERE id = 1;       -- the same key and period, rewritten
SELECT * FROM ovu.b ORDER BY id;
-- find_conflicts with ignore_key agrees: the edited row fits
SELECT count(*) FROM slotguard.find_conflicts('ovu.b', '{"room": 1, "s": 5, "e": 20}', '1');

-- moving into another row's period: 23P01 naming that row
UPDATE ovu.b SET e = 25 WHERE id = 1;
\echo :SQLSTATE
UPDATE ovu.b SET s = 15 WHERE id = 2;
\echo :SQLSTATE
-- changing the key into a busy room
UPDATE ovu.b SET room = 1 WHERE id = 3;
\echo :SQLSTATE
-- into a free time of that room
UPDATE ovu.b SET room = 1, s = 30, e = 40 WHERE id = 3;
-- a NULL key never conflicts; back from NULL into a busy time does
UPDATE ovu.b SET room = NULL, s = 10, e = 20 WHERE id = 3;
UPDATE ovu.b SET room = 1 WHERE id = 3;
\echo :SQLSTATE
UPDATE ovu.b SET room = 2 WHERE id = 3;
-- an empty period; an end before the start (22023 from the rule's CHECK)
UPDATE ovu.b SET room = 1, s = 25, e = 25 WHERE id = 3;
UPDATE ovu.b SET e = 5 WHERE id = 1;
\echo :SQLSTATE
SELECT * FROM ovu.b ORDER BY id;

-- UPDATE of other columns does not check the rule, nor one that sets a rule column to the value
-- it had; an UPDATE that changes a rule column does
SELECT ovu.snap();
UPDATE ovu.b SET note = 'x' WHERE id = 1;
SELECT * FROM ovu.delta('ovu.b.room_busy');
SELECT ovu.snap();
UPDATE ovu.b SET e = e WHERE id = 1;
SELECT * FROM ovu.delta('ovu.b.room_busy');
SELECT ovu.snap();
UPDATE ovu.b SET e = e - 1 WHERE id = 1;
UPDATE ovu.b SET e = e + 1 WHERE id = 1;
SELECT * FROM ovu.delta('ovu.b.room_busy');

-- one UPDATE moving a whole day: checked against the statement's result, so shifting every row
-- of room 1 by 5 is fine, and moving two rows onto one period is not
UPDATE ovu.b SET s = s + 5, e = e + 5 WHERE room = 1;
SELECT * FROM ovu.b ORDER BY id;
UPDATE ovu.b SET s = 100, e = 110 WHERE id IN (1, 2);
\echo :SQLSTATE
UPDATE ovu.b SET s = 100 + 10 * id, e = 110 + 10 * id WHERE id IN (1, 2);   -- touching: fine
SELECT * FROM ovu.b ORDER BY id;

-- upsert: the updated row is checked like any UPDATE, the inserted one like any INSERT
INSERT INTO ovu.b VALUES (2, 1, 115, 125) ON CONFLICT (id) DO UPDATE SET s = excluded.s, e = excluded.e;
\echo :SQLSTATE
INSERT INTO ovu.b VALUES (2, 1, 120, 125) ON CONFLICT (id) DO UPDATE SET s = excluded.s, e = excluded.e;
INSERT INTO ovu.b VALUES (4, 1, 119, 121) ON CONFLICT (id) DO UPDATE SET s = excluded.s, e = excluded.e;
\echo :SQLSTATE
INSERT INTO ovu.b VALUES (4, 1, 125, 130) ON CONFLICT (id) DO UPDATE SET s = excluded.s, e = excluded.e;
SELECT * FROM ovu.b ORDER BY id;

-- ---------------------------------------------------------------------------------------------
-- 2. Several rows in one statement are checked against each other.
CREATE TABLE ovu.m (id int PRIMARY KEY, room int, s int, e int);
SELECT slotguard.add_overlap_rule('ovu.m', 'room_busy', '{room}', '{s,e}');
INSERT INTO ovu.m VALUES (1, 1, 1, 5), (2, 1, 4, 8);
\echo :SQLSTATE
INSERT INTO ovu.m SELECT g, 2, g, g + 2 FROM generate_series(1, 3) g;
\echo :SQLSTATE
COPY ovu.m FROM stdin;
1	3	1	5
2	3	3	7
\.
\echo :SQLSTATE
SELECT count(*) AS rows_written FROM ovu.m;
-- rows that fit together are all written
INSERT INTO ovu.m VALUES (1, 1, 1, 5), (2, 1, 5, 8), (3, 2, 1, 5), (4, NULL, 1, 5), (5, NULL, 1, 5);
COPY ovu.m FROM stdin;
6	3	1	5
7	3	5	7
\.
-- and within one transaction, a later statement sees the earlier one's rows
BEGIN;
INSERT INTO ovu.m VALUES (8, 4, 1, 5);
INSERT INTO ovu.m VALUES (9, 4, 2, 3);
\echo :SQLSTATE
ROLLBACK;
SELECT * FROM ovu.m ORDER BY id;

-- with capacity 2: three rows at one instant in one statement are refused
CREATE TABLE ovu.c (id int PRIMARY KEY, pool int, s int, e int);
SELECT slotguard.add_overlap_rule('ovu.c', 'two', '{pool}', '{s,e}', capacity => 2);
INSERT INTO ovu.c VALUES (1, 1, 1, 5), (2, 1, 2, 6), (3, 1, 3, 7);
\echo :SQLSTATE
INSERT INTO ovu.c VALUES (1, 1, 1, 5), (2, 1, 2, 6), (3, 1, 5, 7);
-- an update within capacity: the row's old version does not count against it
UPDATE ovu.c SET e = 4 WHERE id = 1;
UPDATE ovu.c SET s = 3 WHERE id = 3;      -- 3 would be covered by 1, 2 and 3
\echo :SQLSTATE
UPDATE ovu.c SET s = 4 WHERE id = 3;
UPDATE ovu.c SET s = 0 WHERE id = 1;
SELECT * FROM ovu.c ORDER BY id;

-- ---------------------------------------------------------------------------------------------
-- 3. A rule with only_when: its trigger fires on every UPDATE (the predicate's columns are not
--    known), so every UPDATE path goes through the check.
CREATE TABLE ovu.v (id int PRIMARY KEY, doctor text, s int, e int,
                    status text NOT NULL DEFAULT 'booked', note text);
SELECT slotguard.add_overlap_rule('ovu.v', 'doctor_busy', '{doctor}', '{s,e}',
                                  only_when => $$status <> 'cancelled'$$);
INSERT INTO ovu.v VALUES (1, 'who', 10, 20), (2, 'who', 20, 30);
-- an UPDATE of an unrelated column still checks, and must pass
SELECT ovu.snap();
UPDATE ovu.v SET note = 'first visit' WHERE id = 1;
SELECT * FROM ovu.delta('ovu.v.doctor_busy');
UPDATE ovu.v SET s = 12 WHERE id = 1;
-- cancelling frees the period: another visit can take it
UPDATE ovu.v SET status = 'cancelled' WHERE id = 1;
INSERT INTO ovu.v VALUES (3, 'who', 10, 20);
-- re-activating the cancelled visit now conflicts (a predicate column changed)
UPDATE ovu.v SET status = 'booked' WHERE id = 1;
\echo :SQLSTATE
-- a cancelled row may be moved anywhere
UPDATE ovu.v SET s = 0, e = 100 WHERE id = 1;
-- and a booked one into the free time only
UPDATE ovu.v SET e = 35 WHERE id = 3;
\echo :SQLSTATE
UPDATE ovu.v SET s = 5 WHERE id = 3;
SELECT id, doctor, s, e, status, note FROM ovu.v ORDER BY id;
