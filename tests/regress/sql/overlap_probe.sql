-- overlap_probe: a rule without only_when on a plain table is checked by scanning its GiST index
-- directly (the probe; for capacity k the periods it finds are counted as the SQL check's sweep
-- counts them), and by the SQL check only to describe a conflict. The probe must agree with the
-- SQL check everywhere: several rows of one statement, NULL keys and unbounded periods, empty and
-- touching periods, range columns, several key columns, a key of another type, an index the DBA
-- made, no usable index at all (the SQL check alone), and capacity k over many periods.
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

-- capacity k: rows of one statement count; the third overlapping row of a capacity-2 rule is
-- refused, and touching periods (which share no instant) are not counted together
CREATE TABLE prb.k (id int PRIMARY KEY, room int, s int, e int);
SELECT slotguard.add_overlap_rule('prb.k', 'two_at_once', '{room}', '{s,e}', capacity => 2);
INSERT INTO prb.k VALUES (1, 1, 1, 10), (2, 1, 5, 15);
INSERT INTO prb.k VALUES (3, 1, 10, 20), (4, 1, 15, 25);   -- [10,15) twice, then [15,20) twice
INSERT INTO prb.k VALUES (5, 1, 9, 11);                    -- 9: rows 1 and 2 already
\echo :SQLSTATE
INSERT INTO prb.k VALUES (5, 1, 0, 1), (6, 1, 25, 30), (7, 2, 1, 30);
UPDATE prb.k SET e = 6 WHERE id = 1;
UPDATE prb.k SET s = 4 WHERE id = 5;                        -- [4,1) is refused by the rule's check
\echo :SQLSTATE
UPDATE prb.k SET e = 6 WHERE id = 5;                        -- [0,6): 5 is in rows 1 and 2
\echo :SQLSTATE
SELECT id, s, e FROM prb.k ORDER BY id;

-- capacity k, probed, against the same rule checked by SQL alone (only_when 'true' skips the
-- probe): the same decisions for 600 inserts and updates of overlapping periods, bounded and not
SET client_min_messages = warning;
CREATE TABLE prb.k1 (id int PRIMARY KEY, room int, during int4range);
CREATE TABLE prb.k2 (id int PRIMARY KEY, room int, during int4range);
CREATE TABLE prb.klog (tbl text, i int, ok bool);
RESET client_min_messages;
SELECT slotguard.add_overlap_rule('prb.k1', 'three', '{room}', '{during}', capacity => 3);
SELECT slotguard.add_overlap_rule('prb.k2', 'three', '{room}', '{during}', capacity => 3,
                                  only_when => 'true');
DO $$
DECLARE
  lo int; hi int; p int4range; t text;
BEGIN
  FOR i IN 1..300 LOOP
    lo := (i * 7919) % 97;
    hi := lo + (i * 31) % 13;
    p := CASE i % 5 WHEN 0 THEN int4range(lo, hi, '[]') WHEN 1 THEN int4range(lo, hi, '()')
                    WHEN 2 THEN int4range(NULL, hi) WHEN 3 THEN int4range(lo, NULL)
                    ELSE int4range(lo, hi) END;
    FOREACH t IN ARRAY ARRAY['prb.k1', 'prb.k2'] LOOP
      BEGIN
        EXECUTE format('INSERT INTO %s VALUES ($1, $2, $3)', t) USING i, i % 3, p;
        INSERT INTO prb.klog VALUES (t, i, true);
      EXCEPTION WHEN exclusion_violation THEN
        INSERT INTO prb.klog VALUES (t, i, false);
      END;
      BEGIN
        EXECUTE format('UPDATE %s SET during = int4range(lower(during) - 2, upper(during) + 2) '
                       'WHERE id = $1', t) USING i / 2;
        INSERT INTO prb.klog VALUES (t || ' update', i, true);
      EXCEPTION WHEN exclusion_violation THEN
        INSERT INTO prb.klog VALUES (t || ' update', i, false);
      END;
    END LOOP;
  END LOOP;
END $$;
SELECT tbl, count(*) FILTER (WHERE ok) AS ok, count(*) FILTER (WHERE NOT ok) AS refused
  FROM prb.klog GROUP BY tbl ORDER BY tbl;
SELECT count(*) AS disagreements
  FROM prb.klog a JOIN prb.klog b ON a.i = b.i AND b.tbl = replace(a.tbl, 'k1', 'k2')
 WHERE a.tbl LIKE 'prb.k1%' AND a.ok <> b.ok;

SET client_min_messages = warning;
DROP SCHEMA prb CASCADE;
