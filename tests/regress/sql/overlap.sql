-- overlap: overlap rules (docs/sql-api.md): every kind of period, half-open periods, NULL
-- (unbounded) ends, empty periods, end before start, NULL keys, capacity k, adding a rule to rows
-- that already violate it, error texts and message templates, only_when, several rules on one
-- table, find_conflicts, the overlap_rules view, drop_overlap_rule and the rule counters.
-- UPDATE paths and multi-row statements are in overlap_update, privileges and search_path safety
-- in overlap_privileges, the class-timetable example in overlap_timetable.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS slotguard;
DROP SCHEMA IF EXISTS ovl CASCADE;
RESET client_min_messages;
CREATE SCHEMA ovl;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

-- ---------------------------------------------------------------------------------------------
-- 1. timestamptz start and end columns: the rule, what it installs, half-open periods.
CREATE TABLE ovl.booking (
  id        int PRIMARY KEY,
  room_id   int,
  starts_at timestamptz,
  ends_at   timestamptz,
  note      text
);
SELECT slotguard.add_overlap_rule('ovl.booking', 'room_busy', '{room_id}', '{starts_at,ends_at}');
SELECT * FROM slotguard.overlap_rules WHERE tbl = 'ovl.booking'::regclass;
-- a trigger, a GiST index over (key, period) and a CHECK (end >= start)
-- (the trigger's first argument is the rule's id, which depends on the rules made before)
SELECT tgname, regexp_replace(pg_get_triggerdef(oid), 'overlap_trigger\(''\d+''',
                              'overlap_trigger(''<id>''') AS def
  FROM pg_trigger WHERE tgrelid = 'ovl.booking'::regclass AND NOT tgisinternal;
SELECT indexrelid::regclass AS index, pg_get_indexdef(indexrelid) AS def
  FROM pg_index WHERE indrelid = 'ovl.booking'::regclass AND NOT indisprimary;
SELECT conname, pg_get_constraintdef(oid) AS def
  FROM pg_constraint WHERE conrelid = 'ovl.booking'::regclass AND contype = 'c';

INSERT INTO ovl.booking VALUES (1, 1, '2024-01-01 10:00', '2024-01-01 11:00');
-- [start, end) is half-open: touching periods do not overlap, on either side
INSERT INTO ovl.booking VALUES (2, 1, '2024-01-01 11:00', '2024-01-01 12:00');
INSERT INTO ovl.booking VALUES (3, 1, '2024-01-01 09:00', '2024-01-01 10:00');
-- an overlap: 23P01, DETAIL names the rule, the conflicting row's key and its period
INSERT INTO ovl.booking VALUES (4, 1, '2024-01-01 10:30', '2024-01-01 10:45');
\echo :SQLSTATE
INSERT INTO ovl.booking VALUES (4, 1, '2024-01-01 11:59:59', '2024-01-01 13:00');
\echo :SQLSTATE
-- a period covering several rows: one of them is named
INSERT INTO ovl.booking VALUES (4, 1, '2024-01-01 08:00', '2024-01-01 13:00');
\echo :SQLSTATE
-- another key at the same time is fine
INSERT INTO ovl.booking VALUES (4, 2, '2024-01-01 10:30', '2024-01-01 10:45');

-- NULL keys never conflict (as with UNIQUE and EXCLUDE)
INSERT INTO ovl.booking VALUES (5, NULL, '2024-01-01 10:00', '2024-01-01 11:00');
INSERT INTO ovl.booking VALUES (6, NULL, '2024-01-01 10:00', '2024-01-01 11:00');

-- an empty period (end = start) overlaps nothing, not even a busy instant or another empty one
INSERT INTO ovl.booking VALUES (7, 1, '2024-01-01 10:30', '2024-01-01 10:30');
INSERT INTO ovl.booking VALUES (8, 1, '2024-01-01 10:30', '2024-01-01 10:30');

-- end before start: 22023, from the CHECK the rule installs
INSERT INTO ovl.booking VALUES (9, 3, '2024-01-01 11:00', '2024-01-01 10:00');
\echo :SQLSTATE

-- NULL start or end: unbounded on that side
INSERT INTO ovl.booking VALUES (10, 5, '2024-02-01 00:00', NULL);        -- from Feb 1 on
INSERT INTO ovl.booking VALUES (11, 5, '2030-06-01 00:00', '2030-06-02');
\echo :SQLSTATE
INSERT INTO ovl.booking VALUES (11, 5, '2024-01-31 23:00', '2024-02-01');  -- ends as it starts
INSERT INTO ovl.booking VALUES (12, 6, NULL, '2024-01-01 08:00');        -- until 08:00
INSERT INTO ovl.booking VALUES (13, 6, '1999-12-31 23:00', '2000-01-01');
\echo :SQLSTATE
INSERT INTO ovl.booking VALUES (13, 6, '2024-01-01 08:00', '2024-01-01 09:00');
INSERT INTO ovl.booking VALUES (14, 7, NULL, NULL);                      -- always
INSERT INTO ovl.booking VALUES (15, 7, '2024-01-01 10:00', '2024-01-01 11:00');
\echo :SQLSTATE
INSERT INTO ovl.booking VALUES (15, 7, NULL, '2024-01-01 11:00');
\echo :SQLSTATE
-- an empty period fits even beside an unbounded one
INSERT INTO ovl.booking VALUES (15, 7, '2024-01-01 10:00', '2024-01-01 10:00');
-- two unbounded periods of one key
INSERT INTO ovl.booking VALUES (16, 8, NULL, '2024-01-01 10:00');
INSERT INTO ovl.booking VALUES (17, 8, '2024-01-01 12:00', NULL);
INSERT INTO ovl.booking VALUES (18, 8, NULL, '2023-01-01');
\echo :SQLSTATE
INSERT INTO ovl.booking VALUES (18, 8, '2025-01-01', NULL);
\echo :SQLSTATE
INSERT INTO ovl.booking VALUES (18, 8, '2024-01-01 10:00', '2024-01-01 12:00');
SELECT id, room_id, starts_at, ends_at FROM ovl.booking ORDER BY id;

-- ---------------------------------------------------------------------------------------------
-- 2. Every kind of period: date, time (with a two-column key), integer, numeric, timestamp,
--    smallint, bigint, double precision, and range columns.
-- date: staff leave, [first_day, until)
CREATE TABLE ovl.leave (id int PRIMARY KEY, employee text, first_day date, until date);
SELECT slotguard.add_overlap_rule('ovl.leave', 'one_leave', '{employee}', '{first_day,until}');
INSERT INTO ovl.leave VALUES (1, 'ann', '2024-07-01', '2024-07-15');
INSERT INTO ovl.leave VALUES (2, 'ann', '2024-07-15', '2024-07-20');
INSERT INTO ovl.leave VALUES (3, 'bob', '2024-07-10', '2024-07-20');
INSERT INTO ovl.leave VALUES (4, 'ann', '2024-07-14', '2024-07-15');
\echo :SQLSTATE
INSERT INTO ovl.leave VALUES (4, 'ann', '2024-07-20', 'infinity');
INSERT INTO ovl.leave VALUES (5, 'ann', '2099-01-01', '2099-01-02');
\echo :SQLSTATE

-- time: a weekly plan, key (room, weekday)
CREATE TABLE ovl.weekly (id int PRIMARY KEY, room text, weekday int, starts time, ends time);
SELECT slotguard.add_overlap_rule('ovl.weekly', 'room_weekday', '{room,weekday}', '{starts,ends}');
INSERT INTO ovl.weekly VALUES (1, 'A', 1, '09:00', '10:30');
INSERT INTO ovl.weekly VALUES (2, 'A', 2, '09:00', '10:30');   -- another weekday
INSERT INTO ovl.weekly VALUES (3, 'B', 1, '09:00', '10:30');   -- another room
INSERT INTO ovl.weekly VALUES (4, 'A', 1, '10:30', '12:00');   -- right after
INSERT INTO ovl.weekly VALUES (5, 'A', 1, '10:00', '11:00');
\echo :SQLSTATE
INSERT INTO ovl.weekly VALUES (5, 'A', 1, '00:00', NULL);      -- until the end of the day
\echo :SQLSTATE
INSERT INTO ovl.weekly VALUES (5, 'A', 1, '12:00', NULL);

-- integer: track kilometres
CREATE TABLE ovl.works (id int PRIMARY KEY, track int, km_from int, km_to int);
SELECT slotguard.add_overlap_rule('ovl.works', 'track_km', '{track}', '{km_from,km_to}');
INSERT INTO ovl.works VALUES (1, 1, 10, 20), (2, 1, 20, 30), (3, 1, 0, 10);
INSERT INTO ovl.works VALUES (4, 1, 19, 21);
\echo :SQLSTATE
INSERT INTO ovl.works VALUES (4, 1, -5, 0);

-- numeric: price bands of a product
CREATE TABLE ovl.band (id int PRIMARY KEY, product text, lo numeric, hi numeric);
SELECT slotguard.add_overlap_rule('ovl.band', 'price_band', '{product}', '{lo,hi}');
INSERT INTO ovl.band VALUES (1, 'tea', 0, 9.99), (2, 'tea', 9.99, 20), (3, 'tea', 20, NULL);
INSERT INTO ovl.band VALUES (4, 'tea', 9.985, 9.99);
\echo :SQLSTATE
INSERT INTO ovl.band VALUES (4, 'tea', 1000, 1000.5);
\echo :SQLSTATE
INSERT INTO ovl.band VALUES (4, 'tea', -1, 0);

-- the other ordered types the rule supports, the same story for each
CREATE FUNCTION ovl.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
SELECT typ,
       ovl.try(format('CREATE TABLE ovl.%I (id int PRIMARY KEY, k int, a %s, b %s)', t, typ, typ)) AS created,
       ovl.try(format($q$SELECT slotguard.add_overlap_rule('ovl.%I', 'r', '{k}', '{a,b}')$q$, t)) AS rule,
       ovl.try(format('INSERT INTO ovl.%I VALUES (1, 1, %L, %L)', t, v1, v2)) AS first,
       ovl.try(format('INSERT INTO ovl.%I VALUES (2, 1, %L, %L)', t, v2, v3)) AS touching,
       ovl.try(format('INSERT INTO ovl.%I VALUES (3, 1, %L, %L)', t, v1, v3)) AS overlapping,
       ovl.try(format('INSERT INTO ovl.%I VALUES (4, 2, %L, %L)', t, v1, v3)) AS other_key,
       ovl.try(format('INSERT INTO ovl.%I VALUES (5, 1, %L, %L)', t, v3, v1)) AS reversed
  FROM (VALUES ('ts', 'timestamp', '2024-01-01 10:00', '2024-01-01 11:00', '2024-01-01 12:00'),
               ('i2', 'smallint', '1', '2', '3'),
               ('i8', 'bigint', '10000000000', '10000000001', '10000000002'),
               ('f8', 'double precision', '0.5', '0.75', '1.5')) AS v(t, typ, v1, v2, v3);

-- a range column: the period as it is stored, bounds and all
CREATE TABLE ovl.reservation (id int PRIMARY KEY, table_no int, during tstzrange);
SELECT slotguard.add_overlap_rule('ovl.reservation', 'table_taken', '{table_no}', '{during}');
SELECT * FROM slotguard.overlap_rules WHERE tbl = 'ovl.reservation'::regclass;
-- no CHECK for a range column (a range cannot end before it starts)
SELECT count(*) AS checks FROM pg_constraint
 WHERE conrelid = 'ovl.reservation'::regclass AND contype = 'c';
INSERT INTO ovl.reservation VALUES (1, 1, '[2024-01-01 18:00, 2024-01-01 20:00)');
INSERT INTO ovl.reservation VALUES (2, 1, '[2024-01-01 20:00, 2024-01-01 22:00]');
-- an inclusive upper bound covers its instant
INSERT INTO ovl.reservation VALUES (3, 1, '[2024-01-01 22:00, 2024-01-01 23:00)');
\echo :SQLSTATE
INSERT INTO ovl.reservation VALUES (3, 1, '(2024-01-01 22:00, 2024-01-01 23:00)');
-- an empty range overlaps nothing; an unbounded one overlaps everything of its key
INSERT INTO ovl.reservation VALUES (4, 1, 'empty');
INSERT INTO ovl.reservation VALUES (5, 2, '(,)');
INSERT INTO ovl.reservation VALUES (6, 2, '[2024-01-01 18:00, 2024-01-01 19:00)');
\echo :SQLSTATE
INSERT INTO ovl.reservation VALUES (6, 2, 'empty');
-- a NULL range has no period: it conflicts with nothing (recorded behaviour)
INSERT INTO ovl.reservation VALUES (7, 2, NULL);
-- other range types: an int4range column (canonical [) form) and a daterange column
CREATE TABLE ovl.shelf (id int PRIMARY KEY, shelf int, slots int4range, days daterange);
SELECT slotguard.add_overlap_rule('ovl.shelf', 'slots', '{shelf}', '{slots}');
SELECT slotguard.add_overlap_rule('ovl.shelf', 'days', '{shelf}', '{days}');
INSERT INTO ovl.shelf VALUES (1, 1, '[1,3]', '[2024-01-01,2024-01-10)');
INSERT INTO ovl.shelf VALUES (2, 1, '[4,5]', '[2024-01-01,2024-01-10)');
\echo :SQLSTATE
INSERT INTO ovl.shelf VALUES (2, 1, '[3,5]', '[2024-01-10,2024-01-20)');
\echo :SQLSTATE
INSERT INTO ovl.shelf VALUES (2, 1, '[4,5]', '[2024-01-10,2024-01-20)');

-- ---------------------------------------------------------------------------------------------
-- 3. Capacity k: no instant covered by more than k rows of one key.
CREATE TABLE ovl.lane (id int PRIMARY KEY, pool int, s int, e int);
SELECT slotguard.add_overlap_rule('ovl.lane', 'two_lanes', '{pool}', '{s,e}', capacity => 2);
-- A=[1,3), B=[2,4), C=[3,5) are fine for k=2 (no instant is covered three times)
INSERT INTO ovl.lane VALUES (1, 1, 1, 3), (2, 1, 2, 4), (3, 1, 3, 5);
-- a fourth one at an instant covered by two: 23P01
INSERT INTO ovl.lane VALUES (4, 1, 2, 3);
\echo :SQLSTATE
INSERT INTO ovl.lane VALUES (4, 1, 3, 4);
\echo :SQLSTATE
INSERT INTO ovl.lane VALUES (4, 1, 0, 10);
\echo :SQLSTATE
-- where only one row is, a second fits; then that instant is full too
INSERT INTO ovl.lane VALUES (4, 1, 4, 6);
INSERT INTO ovl.lane VALUES (5, 1, 4, 5);
\echo :SQLSTATE
INSERT INTO ovl.lane VALUES (5, 1, 5, 7);
INSERT INTO ovl.lane VALUES (6, 1, 5, 6);
\echo :SQLSTATE
INSERT INTO ovl.lane VALUES (6, 1, 6, 9), (7, 1, 0, 1), (8, 1, 0, 1), (9, 2, 2, 3);
-- unbounded periods count as covering every instant on their side: 10 = (,10), 11 = [5,)
INSERT INTO ovl.lane VALUES (10, 3, NULL, 10), (11, 3, 5, NULL);
INSERT INTO ovl.lane VALUES (12, 3, NULL, 1);     -- only 10 there: fits
INSERT INTO ovl.lane VALUES (13, 3, 0, 6);        -- [5,6) is covered by 10 and 11
\echo :SQLSTATE
INSERT INTO ovl.lane VALUES (13, 3, NULL, 6);
\echo :SQLSTATE
INSERT INTO ovl.lane VALUES (13, 3, 10, 20);      -- only 11 there: fits
INSERT INTO ovl.lane VALUES (14, 3, 19, NULL);
\echo :SQLSTATE
SELECT * FROM ovl.lane ORDER BY pool, s NULLS FIRST, id;
-- a second rule on the same columns with capacity 3: both hold, each is checked, and the error
-- names the one broken (the rules are checked in name order: "three", then "two_lanes")
SELECT slotguard.add_overlap_rule('ovl.lane', 'three', '{pool}', '{s,e}', capacity => 3);
INSERT INTO ovl.lane VALUES (20, 1, 2, 3);
\echo :SQLSTATE
SELECT slotguard.drop_overlap_rule('ovl.lane', 'three');

-- ---------------------------------------------------------------------------------------------
-- 4. Adding a rule to rows that already violate it: 23P01 listing the violations (the first few
--    and how many), and nothing is installed.
CREATE TABLE ovl.legacy (id int PRIMARY KEY, room int, s int, e int, status text);
INSERT INTO ovl.legacy VALUES
  (1, 1, 1, 5, 'ok'), (2, 1, 4, 8, 'ok'),                      -- overlap at [4,5)
  (3, 2, 1, 5, 'ok'), (4, 2, 5, 9, 'ok'),                      -- touching: fine
  (5, 3, 1, 2, 'ok'), (6, 3, 1, 2, 'cancelled'),               -- fine without the cancelled one
  (7, NULL, 1, 9, 'ok'), (8, NULL, 1, 9, 'ok'),                -- NULL keys: fine
  (9, 4, 3, 3, 'ok'), (10, 4, 1, 9, 'ok'),                     -- empty period: fine
  (11, 5, 9, 1, 'ok');                                         -- end before start
-- a row whose end is before its start: the CHECK cannot be added (22023)
SELECT slotguard.add_overlap_rule('ovl.legacy', 'no_double', '{room}', '{s,e}');
\echo :SQLSTATE
DELETE FROM ovl.legacy WHERE id = 11;
SELECT slotguard.add_overlap_rule('ovl.legacy', 'no_double', '{room}', '{s,e}');
\echo :SQLSTATE
-- many violations: only the first few are listed, with the count
INSERT INTO ovl.legacy SELECT 100 + g, 9, g, g + 2, 'ok' FROM generate_series(1, 6) g;
SELECT slotguard.add_overlap_rule('ovl.legacy', 'no_double', '{room}', '{s,e}');
\echo :SQLSTATE
-- nothing is left behind by the failed calls
SELECT count(*) AS rules FROM slotguard.overlap_rules WHERE tbl = 'ovl.legacy'::regclass;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'ovl.legacy'::regclass;
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'ovl.legacy'::regclass AND NOT indisprimary;
SELECT count(*) AS checks FROM pg_constraint WHERE conrelid = 'ovl.legacy'::regclass AND contype = 'c';
-- capacity 2 holds for room 9 (no instant is covered three times) and with only_when the
-- cancelled row is left out; without room 1's overlap both rules can be added
DELETE FROM ovl.legacy WHERE id = 2;
SELECT slotguard.add_overlap_rule('ovl.legacy', 'no_double', '{room}', '{s,e}', capacity => 2);
SELECT slotguard.add_overlap_rule('ovl.legacy', 'no_double_live', '{room}', '{s,e}',
                                  only_when => $$status <> 'cancelled' AND room <> 9$$);
SELECT rule_name, capacity, only_when FROM slotguard.overlap_rules
 WHERE tbl = 'ovl.legacy'::regclass ORDER BY rule_name;

-- ---------------------------------------------------------------------------------------------
-- 5. Messages: the default one and templates with {column} placeholders (the new row's values).
CREATE TABLE ovl.visit (
  id int PRIMARY KEY, doctor text, patient text, starts_at timestamptz, ends_at timestamptz,
  status text NOT NULL DEFAULT 'booked'
);
SELECT slotguard.add_overlap_rule('ovl.visit', 'doctor_busy', '{doctor}', '{starts_at,ends_at}',
  only_when => $$status <> 'cancelled'$$,
  message => 'Dr. {doctor} already has a visit between {starts_at} and {ends_at} (visit {id}, {nope}, {patient}, {}, {status'); -- unknown placeholders stay as written
SELECT slotguard.add_overlap_rule('ovl.visit', 'patient_busy', '{patient}', '{starts_at,ends_at}',
  only_when => $$status <> 'cancelled'$$);
SELECT rule_name, key_columns, period_columns, capacity, only_when, message
  FROM slotguard.overlap_rules WHERE tbl = 'ovl.visit'::regclass ORDER BY rule_name;
INSERT INTO ovl.visit VALUES (1, 'who', 'amy', '2024-03-01 09:00', '2024-03-01 09:30');
INSERT INTO ovl.visit VALUES (2, 'who', NULL, '2024-03-01 09:15', '2024-03-01 09:45');
\echo :SQLSTATE
-- several rules on one table: each is checked, the error names the one broken
INSERT INTO ovl.visit VALUES (2, 'house', 'amy', '2024-03-01 09:15', '2024-03-01 09:45');
\echo :SQLSTATE
INSERT INTO ovl.visit VALUES (2, 'house', 'bob', '2024-03-01 09:15', '2024-03-01 09:45');
-- both broken: one error (the rules are checked in name order)
INSERT INTO ovl.visit VALUES (3, 'house', 'bob', '2024-03-01 09:00', '2024-03-01 10:00');
\echo :SQLSTATE
-- only_when: cancelled rows neither conflict nor are checked
INSERT INTO ovl.visit VALUES (3, 'house', 'bob', '2024-03-01 09:00', '2024-03-01 10:00', 'cancelled');
INSERT INTO ovl.visit VALUES (4, 'who', 'cyd', '2024-03-01 09:00', '2024-03-01 09:30', 'cancelled');
INSERT INTO ovl.visit VALUES (5, 'cdr', 'bob', '2024-03-01 09:40', '2024-03-01 10:00');
\echo :SQLSTATE
INSERT INTO ovl.visit VALUES (5, 'cdr', 'bob', '2024-03-01 09:45', '2024-03-01 10:00');
SELECT id, doctor, patient, starts_at, ends_at, status FROM ovl.visit ORDER BY id;

-- identifiers that need quoting: table, schema, columns and rule names are never spliced raw
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Room Booking" ("Id" int PRIMARY KEY, "Room Id" int, "From" int, "to" int);
SELECT slotguard.add_overlap_rule('"Odd Schema"."Room Booking"', 'it''s "busy"; --',
                                  '{"Room Id"}', '{From,to}',
                                  message => 'room {Room Id} from {From} to {to}');
SELECT * FROM slotguard.overlap_rules WHERE tbl = '"Odd Schema"."Room Booking"'::regclass;
INSERT INTO "Odd Schema"."Room Booking" VALUES (1, 1, 1, 5);
INSERT INTO "Odd Schema"."Room Booking" VALUES (2, 1, 4, 6);
\echo :SQLSTATE
INSERT INTO "Odd Schema"."Room Booking" VALUES (2, 1, 6, 4);
\echo :SQLSTATE
SELECT * FROM slotguard.find_conflicts('"Odd Schema"."Room Booking"', '{"Room Id": 1, "From": 0, "to": 2}');
SELECT slotguard.drop_overlap_rule('"Odd Schema"."Room Booking"', 'it''s "busy"; --');
INSERT INTO "Odd Schema"."Room Booking" VALUES (2, 1, 4, 6);
DROP SCHEMA "Odd Schema" CASCADE;

-- the table gains a column after the rule (and after this session prepared its check)
ALTER TABLE ovl.works ADD COLUMN crew text DEFAULT 'day';
INSERT INTO ovl.works VALUES (5, 1, 29, 31, 'night');
\echo :SQLSTATE
INSERT INTO ovl.works VALUES (5, 1, 30, 31, 'night');
ALTER TABLE ovl.works DROP COLUMN crew;
INSERT INTO ovl.works VALUES (6, 1, 30, 32);
\echo :SQLSTATE

-- ---------------------------------------------------------------------------------------------
-- 6. find_conflicts: a candidate checked as its INSERT would be, without writing anything.
-- fits: no rows
SELECT * FROM slotguard.find_conflicts('ovl.booking',
  '{"room_id": 1, "starts_at": "2024-01-01 12:00+00", "ends_at": "2024-01-01 13:00+00"}');
-- conflicts: every overlapping row, with its key and the whole row
SELECT * FROM slotguard.find_conflicts('ovl.booking',
  '{"id": 99, "room_id": 1, "starts_at": "2024-01-01 09:30+00", "ends_at": "2024-01-01 11:30+00"}')
 ORDER BY (conflicting_key->>'id')::int;
-- NULL key, empty period, unbounded period
SELECT count(*) FROM slotguard.find_conflicts('ovl.booking',
  '{"room_id": null, "starts_at": "2024-01-01 09:30+00", "ends_at": "2024-01-01 11:30+00"}');
SELECT count(*) FROM slotguard.find_conflicts('ovl.booking',
  '{"room_id": 1, "starts_at": "2024-01-01 10:30+00", "ends_at": "2024-01-01 10:30+00"}');
SELECT conflicting_key FROM slotguard.find_conflicts('ovl.booking', '{"room_id": 1}')
 ORDER BY (conflicting_key->>'id')::int;
-- ignore_key leaves out the row being edited (a JSON object, or the bare value of a one-column
-- primary key, like update_versioned's key)
SELECT count(*) FROM slotguard.find_conflicts('ovl.booking',
  '{"room_id": 1, "starts_at": "2024-01-01 10:00+00", "ends_at": "2024-01-01 11:30+00"}');
SELECT conflicting_key FROM slotguard.find_conflicts('ovl.booking',
  '{"room_id": 1, "starts_at": "2024-01-01 10:00+00", "ends_at": "2024-01-01 11:30+00"}',
  ignore_key => '{"id": 1}');
SELECT count(*) FROM slotguard.find_conflicts('ovl.booking',
  '{"room_id": 1, "starts_at": "2024-01-01 10:00+00", "ends_at": "2024-01-01 10:59+00"}', '1');
-- an ignore_key that matches no row leaves nothing out
SELECT count(*) FROM slotguard.find_conflicts('ovl.booking',
  '{"room_id": 1, "starts_at": "2024-01-01 10:00+00", "ends_at": "2024-01-01 10:59+00"}', '12345');
-- absent columns take their column defaults: status defaults to 'booked', so this candidate
-- counts for only_when; once marked cancelled it does not
SELECT rule_name, conflicting_key, conflicting_row->>'doctor' AS doctor
  FROM slotguard.find_conflicts('ovl.visit',
    '{"doctor": "who", "patient": "amy", "starts_at": "2024-03-01 09:00+00", "ends_at": "2024-03-01 09:10+00"}')
 ORDER BY rule_name;
SELECT count(*) FROM slotguard.find_conflicts('ovl.visit',
  '{"doctor": "who", "patient": "amy", "starts_at": "2024-03-01 09:00+00",
    "ends_at": "2024-03-01 09:10+00", "status": "cancelled"}');
CREATE TABLE ovl.desk (id int PRIMARY KEY, desk int DEFAULT 7, s int, e int DEFAULT 100);
SELECT slotguard.add_overlap_rule('ovl.desk', 'desk_taken', '{desk}', '{s,e}');
INSERT INTO ovl.desk (id, s) VALUES (1, 50);
SELECT * FROM slotguard.find_conflicts('ovl.desk', '{"s": 99}');
SELECT * FROM slotguard.find_conflicts('ovl.desk', '{"s": 99, "desk": 8}');
SELECT * FROM slotguard.find_conflicts('ovl.desk', '{"s": 0, "e": 50}');
-- capacity rules: the rows covering the fullest instant
SELECT conflicting_key FROM slotguard.find_conflicts('ovl.lane', '{"pool": 1, "s": 2, "e": 3}')
 ORDER BY (conflicting_key->>'id')::int;
SELECT count(*) FROM slotguard.find_conflicts('ovl.lane', '{"pool": 2, "s": 2, "e": 3}');
-- several rules: rows for each broken rule
SELECT rule_name, conflicting_key FROM slotguard.find_conflicts('ovl.visit',
  '{"doctor": "house", "patient": "amy", "starts_at": "2024-03-01 09:00+00", "ends_at": "2024-03-01 10:00+00"}')
 ORDER BY rule_name, conflicting_key->>'id';
-- a range column and a time period
SELECT conflicting_key FROM slotguard.find_conflicts('ovl.reservation',
  '{"table_no": 1, "during": "[2024-01-01 19:00+00, 2024-01-01 19:30+00)"}');
SELECT conflicting_key FROM slotguard.find_conflicts('ovl.weekly',
  '{"room": "A", "weekday": 1, "starts": "08:00", "ends": "09:01"}');
-- nothing was written
SELECT count(*) AS bookings FROM ovl.booking;
-- a table without rules: no rows
SELECT count(*) FROM slotguard.find_conflicts('ovl.legacy', '{"room": 1, "s": 1, "e": 9}')
 WHERE rule_name NOT IN ('no_double', 'no_double_live');
CREATE TABLE ovl.plain (id int PRIMARY KEY, k int);
SELECT count(*) FROM slotguard.find_conflicts('ovl.plain', '{"k": 1}');
-- bad input
-- an end before the start: 22023, as for an INSERT of it (only the SQLSTATE is shown)
\set VERBOSITY sqlstate
SELECT * FROM slotguard.find_conflicts('ovl.booking',
  '{"room_id": 1, "starts_at": "2024-01-01 12:00+00", "ends_at": "2024-01-01 11:00+00"}');
\set VERBOSITY default
SELECT * FROM slotguard.find_conflicts('ovl.booking', '{"room_id": 1, "no_such_column": 1}');
\echo :SQLSTATE
SELECT * FROM slotguard.find_conflicts('ovl.booking', '[1, 2]');
\echo :SQLSTATE
SELECT * FROM slotguard.find_conflicts('ovl.booking', '"x"');
\echo :SQLSTATE
SELECT * FROM slotguard.find_conflicts('ovl.booking', NULL);
\echo :SQLSTATE
SELECT * FROM slotguard.find_conflicts('ovl.booking', '{"room_id": "one"}');
\echo :SQLSTATE
CREATE TABLE ovl.nopk (k int, s int, e int);
SELECT slotguard.add_overlap_rule('ovl.nopk', 'r', '{k}', '{s,e}');
INSERT INTO ovl.nopk VALUES (1, 1, 5);
-- without a primary key, the conflicting row is named by its ctid
INSERT INTO ovl.nopk VALUES (1, 2, 3);
SELECT * FROM slotguard.find_conflicts('ovl.nopk', '{"k": 1, "s": 0, "e": 2}');
SELECT * FROM slotguard.find_conflicts('ovl.nopk', '{"k": 1, "s": 0, "e": 2}', '{"k": 1}');
\echo :SQLSTATE

-- ---------------------------------------------------------------------------------------------
-- 7. Bad arguments of add_overlap_rule / drop_overlap_rule.
CREATE TABLE ovl.args (id int PRIMARY KEY, k int, k2 int, a int, b int, t text, u text,
                       d date, r int4range);
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{nope}', '{a,b}');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{k}', '{a,nope}');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{k}', '{nope}');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{}', '{a,b}');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{k}', '{}');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{k}', '{a,b,a}');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{k}', '{a}');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{k}', '{t,u}');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{k}', '{a,d}');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{k}', '{a,b}', capacity => 0);
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{k}', '{a,b}', capacity => -1);
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{k}', '{a,b}', capacity => NULL);
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', '', '{k}', '{a,b}');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', NULL, '{k}', '{a,b}');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{k,NULL}', '{a,b}');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{k}', '{a,b}', only_when => 'no_such_column > 0');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{k}', '{a,b}', only_when => 'k >');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{k}', '{a,b}', only_when => '1');
\echo :SQLSTATE
-- a key type the GiST index cannot hold (btree_gist has no opclass for name): refused (recorded
-- behaviour)
ALTER TABLE ovl.args ADD COLUMN n name;
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{n}', '{a,b}');
\echo :SQLSTATE
CREATE VIEW ovl.args_view AS SELECT * FROM ovl.args;
SELECT slotguard.add_overlap_rule('ovl.args_view', 'r', '{k}', '{a,b}');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.no_such_table', 'r', '{k}', '{a,b}');
\echo :SQLSTATE
-- the same name twice
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{k}', '{a,b}');
SELECT slotguard.add_overlap_rule('ovl.args', 'r', '{k2}', '{r}');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovl.args', 'r2', '{k,k2}', '{r}');
SELECT rule_name, key_columns, period_columns FROM slotguard.overlap_rules
 WHERE tbl = 'ovl.args'::regclass ORDER BY rule_name;
SELECT slotguard.drop_overlap_rule('ovl.args', 'nope');
\echo :SQLSTATE
SELECT slotguard.drop_overlap_rule('ovl.args', NULL);
\echo :SQLSTATE

-- ---------------------------------------------------------------------------------------------
-- 8. drop_overlap_rule removes the trigger, the index and the CHECK; the rows stay.
SELECT slotguard.drop_overlap_rule('ovl.booking', 'room_busy');
SELECT count(*) AS rules FROM slotguard.overlap_rules WHERE tbl = 'ovl.booking'::regclass;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'ovl.booking'::regclass;
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'ovl.booking'::regclass AND NOT indisprimary;
SELECT count(*) AS checks FROM pg_constraint WHERE conrelid = 'ovl.booking'::regclass AND contype = 'c';
SELECT count(*) AS bookings FROM ovl.booking;
INSERT INTO ovl.booking VALUES (100, 1, '2024-01-01 10:00', '2024-01-01 11:00');
INSERT INTO ovl.booking VALUES (101, 1, '2024-01-01 11:00', '2024-01-01 10:00');
SELECT count(*) FROM slotguard.find_conflicts('ovl.booking', '{"room_id": 1}');
-- and it can be added again (here it fails: the table now has overlaps and a reversed period)
SELECT slotguard.add_overlap_rule('ovl.booking', 'room_busy', '{room_id}', '{starts_at,ends_at}');
\echo :SQLSTATE
DELETE FROM ovl.booking WHERE id = 101;
SELECT slotguard.add_overlap_rule('ovl.booking', 'room_busy', '{room_id}', '{starts_at,ends_at}');
\echo :SQLSTATE
DELETE FROM ovl.booking WHERE id = 100;
SELECT slotguard.add_overlap_rule('ovl.booking', 'room_busy', '{room_id}', '{starts_at,ends_at}');
INSERT INTO ovl.booking VALUES (100, 1, '2024-01-01 10:00', '2024-01-01 11:00');
\echo :SQLSTATE
-- one rule of two dropped: the other still holds
SELECT slotguard.drop_overlap_rule('ovl.visit', 'doctor_busy');
INSERT INTO ovl.visit VALUES (6, 'who', 'dan', '2024-03-01 09:00', '2024-03-01 09:30');
INSERT INTO ovl.visit VALUES (7, 'xyz', 'dan', '2024-03-01 09:00', '2024-03-01 09:30');
\echo :SQLSTATE
SELECT tgname FROM pg_trigger WHERE tgrelid = 'ovl.visit'::regclass ORDER BY tgname;
-- DROP TABLE takes the rule's trigger and index with it; the view then shows no such rule
SELECT 'ovl.args'::regclass::oid AS args_oid \gset
DROP TABLE ovl.args CASCADE;
SELECT count(*) AS rules_of_dropped_table FROM slotguard.overlap_rules WHERE tbl::oid = :args_oid;

-- ---------------------------------------------------------------------------------------------
-- 9. Counters: scope 'rule', object table.rule, metrics checks and rejections (deltas only; the
--    counters are cluster-wide and since server start).
CREATE TABLE ovl.counted (id int PRIMARY KEY, k int, s int, e int, note text);
SELECT slotguard.add_overlap_rule('ovl.counted', 'one', '{k}', '{s,e}');
CREATE TABLE ovl.snap AS SELECT metric, value FROM slotguard.stats WHERE false;
CREATE FUNCTION ovl.delta() RETURNS TABLE (metric text, delta bigint) LANGUAGE sql AS $$
  SELECT m, coalesce((SELECT value FROM slotguard.stats
                       WHERE scope = 'rule' AND object = 'ovl.counted.one' AND metric = m), 0)
            - coalesce((SELECT value FROM ovl.snap WHERE metric = m), 0)
    FROM unnest(ARRAY['checks', 'rejections']) AS m
$$;
CREATE FUNCTION ovl.snap() RETURNS void LANGUAGE sql AS $$
  DELETE FROM ovl.snap;
  INSERT INTO ovl.snap SELECT metric, value FROM slotguard.stats
   WHERE scope = 'rule' AND object = 'ovl.counted.one';
$$;
SELECT ovl.snap();
INSERT INTO ovl.counted VALUES (1, 1, 1, 5), (2, 1, 5, 9), (3, 2, 1, 5);  -- 3 checks
INSERT INTO ovl.counted VALUES (4, 1, 4, 6);                               -- 1 check, rejected
INSERT INTO ovl.counted VALUES (4, NULL, 4, 6);                            -- NULL key: no check
SELECT * FROM ovl.delta();
SELECT ovl.snap();
SELECT count(*) FROM slotguard.find_conflicts('ovl.counted', '{"k": 1, "s": 0, "e": 9}');
SELECT * FROM ovl.delta();
SELECT scope, object, metric FROM slotguard.stats
 WHERE scope = 'rule' AND object LIKE 'ovl.counted.%' ORDER BY metric;

RESET TimeZone;
RESET DateStyle;
