-- overlap_partition: an overlap rule on a partitioned table holds across its partitions. Rows of
-- one key often live in different partitions (here: partitioned by month, a booking that runs
-- past midnight on January 31 lives in January, the one after it in February), and rows of
-- different partitions can have the same ctid, so neither the check, nor ignore_key, nor the
-- check of existing rows when the rule is added may tell rows apart by ctid alone.
-- Errors show their SQLSTATE only; find_conflicts shows which rows conflict.
\set VERBOSITY sqlstate
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS slotguard;
DROP SCHEMA IF EXISTS ovpart CASCADE;
RESET client_min_messages;
CREATE SCHEMA ovpart;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

CREATE TABLE ovpart.booking (id int, room int, starts_at timestamptz, ends_at timestamptz,
                             PRIMARY KEY (id, starts_at)) PARTITION BY RANGE (starts_at);
CREATE TABLE ovpart.booking_jan PARTITION OF ovpart.booking
  FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE ovpart.booking_feb PARTITION OF ovpart.booking
  FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
SELECT slotguard.add_overlap_rule('ovpart.booking', 'room_busy', '{room}', '{starts_at,ends_at}');
SELECT rule_name, key_columns, period_columns FROM slotguard.overlap_rules
 WHERE tbl = 'ovpart.booking'::regclass;

-- the first row of each partition: both at ctid (0,1)
INSERT INTO ovpart.booking VALUES (1, 1, '2024-01-31 23:00', '2024-02-01 01:00');
INSERT INTO ovpart.booking VALUES (2, 2, '2024-02-01 00:00', '2024-02-01 01:00');
SELECT tableoid::regclass AS part, ctid, id, room FROM ovpart.booking ORDER BY id;

-- within one partition
INSERT INTO ovpart.booking VALUES (3, 1, '2024-01-31 22:00', '2024-01-31 23:30');
-- across partitions: room 1 is busy until 01:00 on February 1
INSERT INTO ovpart.booking VALUES (3, 1, '2024-02-01 00:30', '2024-02-01 02:00');
INSERT INTO ovpart.booking VALUES (3, 2, '2024-01-31 23:30', '2024-02-01 00:30');
INSERT INTO ovpart.booking VALUES (3, 1, '2024-02-01 01:00', '2024-02-01 02:00');
INSERT INTO ovpart.booking VALUES (4, 2, '2024-01-31 23:00', '2024-02-01 00:00');
SELECT tableoid::regclass AS part, id, room, starts_at, ends_at FROM ovpart.booking ORDER BY id;

-- find_conflicts on the partitioned table sees every partition
SELECT conflicting_key FROM slotguard.find_conflicts('ovpart.booking',
  '{"room": 1, "starts_at": "2024-01-31 23:30+00", "ends_at": "2024-02-01 01:30+00"}')
 ORDER BY (conflicting_key->>'id')::int;
-- ignore_key leaves out that one row, not the row of another partition with the same ctid:
-- editing booking 1 (room 1, ctid (0,1) in January) into room 2 still conflicts with
-- booking 2 (room 2, ctid (0,1) in February)
SELECT conflicting_key FROM slotguard.find_conflicts('ovpart.booking',
  '{"room": 2, "starts_at": "2024-01-31 23:00+00", "ends_at": "2024-02-01 01:00+00"}',
  ignore_key => '{"id": 1, "starts_at": "2024-01-31 23:00+00"}')
 ORDER BY (conflicting_key->>'id')::int;
-- and the UPDATE agrees
UPDATE ovpart.booking SET room = 2 WHERE id = 1;
-- an UPDATE that moves a row into the other partition is checked there
UPDATE ovpart.booking SET starts_at = '2024-02-01 00:00', ends_at = '2024-02-01 00:30' WHERE id = 4;
UPDATE ovpart.booking SET room = 3, starts_at = '2024-02-01 00:00', ends_at = '2024-02-01 00:30'
 WHERE id = 4;
SELECT tableoid::regclass AS part, id, room, starts_at, ends_at FROM ovpart.booking ORDER BY id;

-- adding a rule to rows that already violate it across partitions (at the same ctid) fails
CREATE TABLE ovpart.legacy (id int, room int, s int, e int, PRIMARY KEY (id, s))
  PARTITION BY RANGE (s);
CREATE TABLE ovpart.legacy_a PARTITION OF ovpart.legacy FOR VALUES FROM (0) TO (100);
CREATE TABLE ovpart.legacy_b PARTITION OF ovpart.legacy FOR VALUES FROM (100) TO (200);
INSERT INTO ovpart.legacy VALUES (1, 1, 90, 110), (2, 1, 100, 105);
SELECT tableoid::regclass AS part, ctid, id FROM ovpart.legacy ORDER BY id;
SELECT slotguard.add_overlap_rule('ovpart.legacy', 'room_busy', '{room}', '{s,e}');
SELECT count(*) AS rules FROM slotguard.overlap_rules WHERE tbl = 'ovpart.legacy'::regclass;

-- a partition attached later is covered by the rule too
CREATE TABLE ovpart.booking_mar (LIKE ovpart.booking INCLUDING CONSTRAINTS);
ALTER TABLE ovpart.booking ATTACH PARTITION ovpart.booking_mar
  FOR VALUES FROM ('2024-03-01') TO ('2024-04-01');
INSERT INTO ovpart.booking VALUES (5, 7, '2024-02-29 23:00', '2024-03-01 01:00');
INSERT INTO ovpart.booking VALUES (6, 7, '2024-03-01 00:00', '2024-03-01 00:30');
INSERT INTO ovpart.booking VALUES (6, 7, '2024-03-01 01:00', '2024-03-01 02:00');
INSERT INTO ovpart.booking VALUES (7, 7, '2024-03-01 01:30', '2024-03-01 02:30');
SELECT tableoid::regclass AS part, id, room, starts_at, ends_at FROM ovpart.booking
 WHERE room = 7 ORDER BY id;

RESET TimeZone;
RESET DateStyle;
