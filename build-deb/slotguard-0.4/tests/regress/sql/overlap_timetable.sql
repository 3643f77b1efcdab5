-- overlap_timetable: a class timetable (rooms, instructors, cohorts of students, sections) where
-- every section row is checked by three overlap rules at once: a room holds one section at a
-- time, an instructor teaches one section at a time, and a cohort attends one section at a time.
-- Weekly periods are (weekday, time of day); cancelled sections take no time.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS slotguard;
DROP SCHEMA IF EXISTS tt CASCADE;
RESET client_min_messages;
CREATE SCHEMA tt;

CREATE TABLE tt.room (id int PRIMARY KEY, name text NOT NULL UNIQUE, seats int NOT NULL);
CREATE TABLE tt.instructor (id int PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE tt.section (
  id            int PRIMARY KEY,
  course        text NOT NULL,
  instructor_id int REFERENCES tt.instructor,
  room_id       int REFERENCES tt.room,
  cohort        text,
  weekday       int NOT NULL CHECK (weekday BETWEEN 1 AND 7),
  starts        time NOT NULL,
  ends          time NOT NULL,
  status        text NOT NULL DEFAULT 'scheduled'
);
INSERT INTO tt.room VALUES (1, 'A101', 30), (2, 'A102', 30), (3, 'Lab 1', 16);
INSERT INTO tt.instructor VALUES (1, 'Ada'), (2, 'Grace'), (3, 'Edsger');

SELECT slotguard.add_overlap_rule('tt.section', 'room_busy', '{room_id,weekday}', '{starts,ends}',
  only_when => $$status <> 'cancelled'$$,
  message => 'room {room_id} is taken on day {weekday} between {starts} and {ends}');
SELECT slotguard.add_overlap_rule('tt.section', 'instructor_busy', '{instructor_id,weekday}',
  '{starts,ends}', only_when => $$status <> 'cancelled'$$,
  message => 'instructor {instructor_id} already teaches on day {weekday} between {starts} and {ends}');
SELECT slotguard.add_overlap_rule('tt.section', 'cohort_busy', '{cohort,weekday}', '{starts,ends}',
  only_when => $$status <> 'cancelled'$$,
  message => 'cohort {cohort} already has a class on day {weekday} between {starts} and {ends}');
SELECT rule_name, key_columns, period_columns, capacity, only_when
  FROM slotguard.overlap_rules WHERE tbl = 'tt.section'::regclass ORDER BY rule_name;

-- Monday
INSERT INTO tt.section VALUES
  (1, 'Algorithms',  1, 1, 'cs1', 1, '09:00', '10:30'),
  (2, 'Databases',   2, 2, 'cs2', 1, '09:00', '10:30'),
  (3, 'Compilers',   3, 3, 'cs3', 1, '09:00', '10:30'),
  (4, 'Logic',       1, 1, 'cs2', 1, '10:30', '12:00'),   -- right after, in the same room
  (5, 'Databases',   2, 2, 'cs1', 1, '10:30', '12:00');
-- Tuesday: the same rooms, instructors and cohorts at the same times are fine on another day
INSERT INTO tt.section VALUES
  (6, 'Algorithms',  1, 1, 'cs1', 2, '09:00', '10:30'),
  (7, 'Databases',   2, 2, 'cs2', 2, '09:00', '10:30');

-- each rule on its own: the error names the rule and the section in the way
INSERT INTO tt.section VALUES (10, 'Networks', 3, 1, 'cs3', 1, '10:30', '11:00');  -- room A101
\echo :SQLSTATE
INSERT INTO tt.section VALUES (10, 'Networks', 1, 3, 'cs3', 1, '11:00', '12:00');  -- Ada
\echo :SQLSTATE
INSERT INTO tt.section VALUES (10, 'Networks', 3, 3, 'cs1', 1, '11:30', '13:00');  -- cohort cs1
\echo :SQLSTATE
-- a section that breaks all three: one error, the first rule in name order (cohort_busy)
INSERT INTO tt.section VALUES (10, 'Networks', 1, 1, 'cs1', 1, '09:30', '10:00');
\echo :SQLSTATE
-- a section without a room yet (NULL key) is checked by the other two rules only
INSERT INTO tt.section VALUES (10, 'Networks', 3, NULL, 'cs3', 1, '10:30', '12:00');
INSERT INTO tt.section VALUES (11, 'Seminar', NULL, NULL, NULL, 1, '09:00', '17:00');

-- find_conflicts for a proposed section lists what is in its way, rule by rule
SELECT rule_name, conflicting_key, conflicting_row->>'course' AS course
  FROM slotguard.find_conflicts('tt.section',
    '{"course": "Networks", "instructor_id": 2, "room_id": 1, "cohort": "cs2",
      "weekday": 1, "starts": "10:00", "ends": "11:00"}')
 ORDER BY rule_name, (conflicting_key->>'id')::int;
-- which rooms are free on Monday 12:00-13:30 for Grace and cohort cs3?
SELECT r.name FROM tt.room r
 WHERE NOT EXISTS (SELECT FROM slotguard.find_conflicts('tt.section',
         jsonb_build_object('course', 'Networks', 'instructor_id', 2, 'room_id', r.id,
                            'cohort', 'cs3', 'weekday', 1, 'starts', '12:00', 'ends', '13:30')))
 ORDER BY r.name;
-- and on Monday 10:30-12:00 for a new cohort cs4, instructor to be found?
SELECT r.name FROM tt.room r
 WHERE NOT EXISTS (SELECT FROM slotguard.find_conflicts('tt.section',
         jsonb_build_object('course', 'Networks', 'room_id', r.id,
                            'cohort', 'cs4', 'weekday', 1, 'starts', '10:30', 'ends', '12:00')))
 ORDER BY r.name;

-- re-planning with UPDATE: the same row is checked by all three rules again
-- Logic (section 4) moves to the lab at the same time: room A101 frees up
UPDATE tt.section SET room_id = 3 WHERE id = 4;
-- Compilers (section 3) starts an hour earlier: nothing else of Edsger, Lab 1 or cs3 then
UPDATE tt.section SET starts = '08:00' WHERE id = 3;
-- but it cannot run longer: Networks (cs3, Edsger) and Logic (Lab 1) follow it
UPDATE tt.section SET ends = '11:00' WHERE id = 3;
\echo :SQLSTATE
-- Databases (section 5) to A101 at 10:30: free now
UPDATE tt.section SET room_id = 1 WHERE id = 5;
-- Grace to take Algorithms (section 1): she teaches Databases then
UPDATE tt.section SET instructor_id = 2 WHERE id = 1;
\echo :SQLSTATE
-- cancelling Databases (section 2) frees Grace, A102 and cs2 at 09:00; Networks takes it
UPDATE tt.section SET status = 'cancelled' WHERE id = 2;
INSERT INTO tt.section VALUES (12, 'Networks', 2, 2, 'cs2', 1, '09:00', '10:30');
-- and the cancelled section cannot come back
UPDATE tt.section SET status = 'scheduled' WHERE id = 2;
\echo :SQLSTATE

-- the week as planned
SELECT s.weekday, s.starts, s.ends, s.course, i.name AS instructor, r.name AS room, s.cohort,
       s.status
  FROM tt.section s LEFT JOIN tt.instructor i ON i.id = s.instructor_id
       LEFT JOIN tt.room r ON r.id = s.room_id
 ORDER BY s.weekday, s.starts, r.name NULLS LAST, s.id;
-- no room, instructor or cohort is anywhere twice at once
SELECT count(*) AS double_bookings
  FROM tt.section a JOIN tt.section b ON a.id < b.id AND a.weekday = b.weekday
   AND a.status <> 'cancelled' AND b.status <> 'cancelled'
   AND (a.room_id = b.room_id OR a.instructor_id = b.instructor_id OR a.cohort = b.cohort)
   AND a.starts < b.ends AND b.starts < a.ends;
