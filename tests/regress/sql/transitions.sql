-- transitions: add_transition_rule / drop_transition_rule and the trigger that refuses changes a
-- rule does not allow (docs/sql-api.md, "Transition rules").
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS tr CASCADE;
DROP ROLE IF EXISTS regress_sg_doctor;
DROP ROLE IF EXISTS regress_sg_patient;
RESET client_min_messages;
CREATE SCHEMA tr;

CREATE TABLE tr.appt (id int PRIMARY KEY, status text, note text);
SELECT slotguard.add_transition_rule('tr.appt', 'status',
  '{"pending": ["confirmed", "rejected", "cancelled"], "confirmed": ["completed", "cancelled"]}');
SELECT * FROM slotguard.transition_rules WHERE tbl = 'tr.appt'::regclass;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'tr.appt'::regclass AND NOT tgisinternal;

-- Without "" any initial state is allowed.
INSERT INTO tr.appt VALUES (1, 'pending'), (2, 'confirmed'), (3, 'whatever'), (4, NULL);
-- Allowed transitions.
UPDATE tr.appt SET status = 'confirmed' WHERE id = 1;
UPDATE tr.appt SET status = 'completed' WHERE id = 1;
UPDATE tr.appt SET status = 'cancelled' WHERE id = 2;
-- Forbidden: SG005, the HINT lists the allowed next states.
INSERT INTO tr.appt VALUES (5, 'confirmed');
UPDATE tr.appt SET status = 'pending' WHERE id = 5;
\echo :SQLSTATE
UPDATE tr.appt SET status = 'bogus' WHERE id = 5;
\echo :SQLSTATE
-- From a state with no entry (or an empty list): nothing is allowed.
UPDATE tr.appt SET status = 'pending' WHERE id = 1;
\echo :SQLSTATE
UPDATE tr.appt SET status = 'pending' WHERE id = 3;
\echo :SQLSTATE
-- To NULL is a change like any other.
UPDATE tr.appt SET status = NULL WHERE id = 5;
\echo :SQLSTATE
-- An unchanged value is always allowed, and so is an UPDATE of other columns.
UPDATE tr.appt SET status = 'completed' WHERE id = 1;
UPDATE tr.appt SET status = 'whatever', note = 'n' WHERE id = 3;
UPDATE tr.appt SET note = 'n';
UPDATE tr.appt SET status = status;
-- A bulk UPDATE with one forbidden row fails as a whole.
UPDATE tr.appt SET status = 'cancelled' WHERE id IN (2, 5);
UPDATE tr.appt SET status = 'cancelled', note = 'bulk' WHERE id IN (1, 5);
\echo :SQLSTATE
SELECT id, status, note FROM tr.appt ORDER BY id;

-- Initial states: the "" key restricts INSERTs.
CREATE TABLE tr.job (id int PRIMARY KEY, state text);
SELECT slotguard.add_transition_rule('tr.job', 'state',
  '{"": ["queued"], "queued": ["running"], "running": ["done", "failed"], "failed": ["queued"]}');
INSERT INTO tr.job VALUES (1, 'queued');
INSERT INTO tr.job VALUES (2, 'running');
\echo :SQLSTATE
INSERT INTO tr.job VALUES (2, 'queued'), (3, 'done');
\echo :SQLSTATE
UPDATE tr.job SET state = 'running' WHERE id = 1;
UPDATE tr.job SET state = 'failed' WHERE id = 1;
UPDATE tr.job SET state = 'queued' WHERE id = 1;
UPDATE tr.job SET state = 'done' WHERE id = 1;
\echo :SQLSTATE
-- An upsert's update is checked like an UPDATE.
INSERT INTO tr.job VALUES (1, 'queued') ON CONFLICT (id) DO UPDATE SET state = 'done';
\echo :SQLSTATE
INSERT INTO tr.job VALUES (1, 'queued') ON CONFLICT (id) DO UPDATE SET state = 'running';
INSERT INTO tr.job VALUES (1, 'queued') ON CONFLICT (id) DO UPDATE SET state = 'queued';
\echo :SQLSTATE
SELECT * FROM tr.job ORDER BY id;
-- No initial state allowed at all.
CREATE TABLE tr.closed (id int PRIMARY KEY, state text);
SELECT slotguard.add_transition_rule('tr.closed', 'state', '{"": []}');
INSERT INTO tr.closed VALUES (1, 'x');
\echo :SQLSTATE

-- by_role: the writer's role is slotguard.actor_role, or current_user where that is unset.
CREATE TABLE tr.visit (id int PRIMARY KEY, status text);
SELECT slotguard.add_transition_rule('tr.visit', 'status',
  '{"": ["pending"], "pending": ["cancelled"]}',
  '{"doctor":  {"pending": ["confirmed", "rejected"], "confirmed": ["completed"]},
    "patient": {"confirmed": ["cancelled"]},
    "regress_sg_doctor": {"pending": ["confirmed"], "confirmed": ["completed"]},
    "admin": {"": ["confirmed"]}}');
SELECT tbl, column_name, transitions, jsonb_pretty(by_role) AS by_role
  FROM slotguard.transition_rules WHERE tbl = 'tr.visit'::regclass;
INSERT INTO tr.visit VALUES (1, 'pending'), (2, 'pending'), (3, 'pending');
-- no role: only the common transitions
UPDATE tr.visit SET status = 'confirmed' WHERE id = 1;
\echo :SQLSTATE
BEGIN;
SET LOCAL slotguard.actor_role = 'doctor';
UPDATE tr.visit SET status = 'confirmed' WHERE id = 1;
UPDATE tr.visit SET status = 'confirmed' WHERE id = 2;
UPDATE tr.visit SET status = 'completed' WHERE id = 1;
UPDATE tr.visit SET status = 'cancelled' WHERE id = 2;
\echo :SQLSTATE
COMMIT;
BEGIN;
SET LOCAL slotguard.actor_role = 'patient';
UPDATE tr.visit SET status = 'cancelled' WHERE id = 2;
UPDATE tr.visit SET status = 'rejected' WHERE id = 3;
\echo :SQLSTATE
COMMIT;
-- the role's own initial states add to the common ones
BEGIN;
SET LOCAL slotguard.actor_role = 'admin';
INSERT INTO tr.visit VALUES (4, 'confirmed');
COMMIT;
INSERT INTO tr.visit VALUES (5, 'confirmed');
\echo :SQLSTATE
-- an unknown role gets the common transitions only
BEGIN;
SET LOCAL slotguard.actor_role = 'nobody';
UPDATE tr.visit SET status = 'confirmed' WHERE id = 3;
\echo :SQLSTATE
COMMIT;
-- SET LOCAL ended with its transaction: no role again
UPDATE tr.visit SET status = 'confirmed' WHERE id = 3;
\echo :SQLSTATE
-- Falling back to current_user: a database role named in by_role.
CREATE ROLE regress_sg_doctor;
CREATE ROLE regress_sg_patient;
GRANT USAGE ON SCHEMA tr TO regress_sg_doctor, regress_sg_patient;
GRANT SELECT, INSERT, UPDATE ON tr.visit TO regress_sg_doctor, regress_sg_patient;
SET ROLE regress_sg_patient;
UPDATE tr.visit SET status = 'confirmed' WHERE id = 3;
\echo :SQLSTATE
RESET ROLE;
SET ROLE regress_sg_doctor;
UPDATE tr.visit SET status = 'confirmed' WHERE id = 3;
UPDATE tr.visit SET status = 'completed' WHERE id = 3;
-- slotguard.actor_role, when set, wins over current_user
BEGIN;
SET LOCAL slotguard.actor_role = 'patient';
INSERT INTO tr.visit VALUES (6, 'pending');
UPDATE tr.visit SET status = 'confirmed' WHERE id = 6;
\echo :SQLSTATE
COMMIT;
-- an empty actor_role counts as unset
BEGIN;
SET LOCAL slotguard.actor_role = '';
INSERT INTO tr.visit VALUES (6, 'pending');
UPDATE tr.visit SET status = 'confirmed' WHERE id = 6;
COMMIT;
RESET ROLE;
SELECT * FROM tr.visit ORDER BY id;

-- Bad rule documents: 22023; an unknown column: 42703; nothing is installed.
CREATE TABLE tr.bad (id int PRIMARY KEY, status text);
SELECT slotguard.add_transition_rule('tr.bad', 'status', '[]');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('tr.bad', 'status', '"pending"');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('tr.bad', 'status', '{"a": "b"}');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('tr.bad', 'status', '{"a": [1]}');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('tr.bad', 'status', '{"a": [null]}');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('tr.bad', 'status', '{"a": ["b", ""]}');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('tr.bad', 'status', '{"a": {"b": true}}');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('tr.bad', 'status', '{}', '[]');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('tr.bad', 'status', '{}', '{"doctor": []}');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('tr.bad', 'status', '{}', '{"doctor": {"a": "b"}}');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('tr.bad', 'status', '{}', '{"doctor": {"a": [2]}}');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('tr.bad', 'status', NULL);
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('tr.bad', NULL, '{}');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule(NULL, 'status', '{}');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('tr.bad', 'nope', '{"a": ["b"]}');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('tr.bad', 'Status', '{"a": ["b"]}');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('tr.bad', 'ctid', '{"a": ["b"]}');
\echo :SQLSTATE
CREATE VIEW tr.bad_view AS SELECT * FROM tr.bad;
SELECT slotguard.add_transition_rule('tr.bad_view', 'status', '{"a": ["b"]}');
\echo :SQLSTATE
SELECT count(*) AS rules_on_bad FROM slotguard.transition_rules WHERE tbl = 'tr.bad'::regclass;
-- An empty rule and a null by_role are fine (nothing allowed but keeping the value).
SELECT slotguard.add_transition_rule('tr.bad', 'status', '{}', 'null');
SELECT * FROM slotguard.transition_rules WHERE tbl = 'tr.bad'::regclass;
INSERT INTO tr.bad VALUES (1, 'a');
UPDATE tr.bad SET status = 'b';
\echo :SQLSTATE

-- Replacing a rule: adding one for the same column replaces it.
SELECT slotguard.add_transition_rule('tr.appt', 'status', '{"cancelled": ["pending"]}');
SELECT * FROM slotguard.transition_rules WHERE tbl = 'tr.appt'::regclass;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'tr.appt'::regclass AND NOT tgisinternal;
UPDATE tr.appt SET status = 'pending' WHERE id = 2;
UPDATE tr.appt SET status = 'confirmed' WHERE id = 2;
\echo :SQLSTATE

-- Two rules on two columns, both enforced; drop one, the other stays.
CREATE TABLE tr.order_ (id int PRIMARY KEY, status text, payment text);
SELECT slotguard.add_transition_rule('tr.order_', 'status', '{"new": ["shipped"]}');
SELECT slotguard.add_transition_rule('tr.order_', 'payment', '{"unpaid": ["paid"], "paid": ["refunded"]}');
SELECT * FROM slotguard.transition_rules WHERE tbl = 'tr.order_'::regclass ORDER BY column_name;
INSERT INTO tr.order_ VALUES (1, 'new', 'unpaid');
UPDATE tr.order_ SET status = 'shipped', payment = 'paid' WHERE id = 1;
UPDATE tr.order_ SET payment = 'unpaid' WHERE id = 1;
\echo :SQLSTATE
UPDATE tr.order_ SET status = 'new' WHERE id = 1;
\echo :SQLSTATE
SELECT slotguard.drop_transition_rule('tr.order_', 'status');
UPDATE tr.order_ SET status = 'new' WHERE id = 1;
UPDATE tr.order_ SET payment = 'unpaid' WHERE id = 1;
\echo :SQLSTATE
SELECT * FROM slotguard.transition_rules WHERE tbl = 'tr.order_'::regclass ORDER BY column_name;
-- Dropping a rule that does not exist: 42704.
SELECT slotguard.drop_transition_rule('tr.order_', 'status');
\echo :SQLSTATE
SELECT slotguard.drop_transition_rule('tr.order_', 'nope');
\echo :SQLSTATE
SELECT slotguard.drop_transition_rule('tr.order_', NULL);
\echo :SQLSTATE

-- Quoted column names and enum columns.
CREATE TYPE tr.mood AS ENUM ('calm', 'angry', 'happy');
CREATE TABLE tr.quoted (id int PRIMARY KEY, "The State" text, mood tr.mood);
SELECT slotguard.add_transition_rule('tr.quoted', 'The State', '{"a": ["b"]}');
SELECT slotguard.add_transition_rule('tr.quoted', 'mood', '{"calm": ["angry"], "angry": ["calm"]}');
INSERT INTO tr.quoted VALUES (1, 'a', 'calm');
UPDATE tr.quoted SET "The State" = 'b', mood = 'angry';
UPDATE tr.quoted SET "The State" = 'a';
\echo :SQLSTATE
UPDATE tr.quoted SET mood = 'happy';
\echo :SQLSTATE
SELECT * FROM slotguard.transition_rules WHERE tbl = 'tr.quoted'::regclass ORDER BY column_name;
SELECT slotguard.drop_transition_rule('tr.quoted', 'The State');
SELECT slotguard.drop_transition_rule('tr.quoted', 'mood');

-- Together with versioning on the same table: the version is checked first, then the rule.
CREATE TABLE tr.booking (id int PRIMARY KEY, status text);
SELECT slotguard.enable_versioning('tr.booking', timestamps => false, audit => true);
SELECT slotguard.add_transition_rule('tr.booking', 'status',
  '{"": ["pending"], "pending": ["confirmed", "cancelled"], "confirmed": ["cancelled"]}');
INSERT INTO tr.booking VALUES (1, 'pending');
-- stale version and a bad transition: SG001
UPDATE tr.booking SET status = 'done', version = 5 WHERE id = 1;
\echo :SQLSTATE
-- right version, bad transition: SG005, the version stays
UPDATE tr.booking SET status = 'done', version = 0 WHERE id = 1;
\echo :SQLSTATE
-- stale version and a good transition: SG001
UPDATE tr.booking SET status = 'confirmed', version = 5 WHERE id = 1;
\echo :SQLSTATE
UPDATE tr.booking SET status = 'confirmed', version = 0 WHERE id = 1 RETURNING *;
-- through update_versioned
SELECT slotguard.update_versioned('tr.booking', '1', 1, '{"status": "pending"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('tr.booking', '1', 0, '{"status": "pending"}');
\echo :SQLSTATE
BEGIN;
SET LOCAL slotguard.actor = 'user:1';
SET LOCAL slotguard.actor_role = 'patient';
SELECT slotguard.update_versioned('tr.booking', '1', 1, '{"status": "cancelled"}');
COMMIT;
SELECT * FROM tr.booking;
-- the audit saw only what was committed, with actor and actor_role
SELECT op, actor, actor_role, old_version, new_version, changes
  FROM slotguard.audit WHERE tbl = 'tr.booking' ORDER BY id;

-- A rule on a column of a table that is dropped goes with it.
DROP TABLE tr.booking;
SELECT count(*) FROM slotguard.transition_rules WHERE tbl::text = 'tr.booking';

-- Kept fixed: with a "" key, an INSERT with a NULL state must be refused unless NULL is listed.
CREATE TABLE tr.nulljob (id int PRIMARY KEY, state text);
SELECT slotguard.add_transition_rule('tr.nulljob', 'state', '{"": ["queued"], "queued": ["running"]}');
INSERT INTO tr.nulljob VALUES (1, NULL);
\echo :SQLSTATE

-- Kept fixed: an upsert that updates an existing row must not be refused as an "invalid initial
-- state" (the check runs in the BEFORE INSERT trigger, before the conflict is known; an AFTER
-- INSERT check would see only rows really inserted).
INSERT INTO tr.nulljob VALUES (2, 'queued');
INSERT INTO tr.nulljob VALUES (2, 'running') ON CONFLICT (id) DO UPDATE SET state = excluded.state;
SELECT * FROM tr.nulljob ORDER BY id;

DROP SCHEMA tr CASCADE;
DROP ROLE regress_sg_doctor;
DROP ROLE regress_sg_patient;
