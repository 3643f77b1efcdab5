-- audit: enable_versioning(audit => true) appends one row per INSERT / UPDATE / DELETE to
-- slotguard.audit, in the writer's transaction, whatever the writer's rights.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS aud CASCADE;
DROP ROLE IF EXISTS regress_sg_aud_writer;
DROP ROLE IF EXISTS regress_sg_aud_reader;
DROP ROLE IF EXISTS regress_sg_nsp_owner;
RESET client_min_messages;
CREATE SCHEMA aud;
-- Audit rows of earlier runs or tests are left out: remember where we start.
SELECT coalesce(max(id), 0) AS start_id FROM slotguard.audit \gset
-- log: this test's audit rows, without the columns that vary from run to run.
CREATE VIEW aud.log AS
SELECT row_number() OVER (ORDER BY id) AS n, db_role, actor, actor_role, tbl, row_key, op, old_version, new_version,
       changes - 'created_at' - 'updated_at' AS changes
  FROM slotguard.audit WHERE id > :start_id;

CREATE TABLE aud.appt (id int PRIMARY KEY, status text, note text, qty int);
SELECT slotguard.enable_versioning('aud.appt', audit => true, timestamps => false);
SELECT * FROM slotguard.versioned_tables WHERE tbl = 'aud.appt'::regclass;

-- INSERT: every column, as [null, new].
INSERT INTO aud.appt (id, status, note, qty) VALUES (1, 'pending', 'first', 2);
-- UPDATE: only the changed columns, as [old, new] (the version among them).
UPDATE aud.appt SET status = 'confirmed' WHERE id = 1;
UPDATE aud.appt SET note = NULL, qty = 3, version = 1 WHERE id = 1;
-- An UPDATE that changes nothing but the version is still recorded.
UPDATE aud.appt SET note = NULL WHERE id = 1;
-- DELETE: every column, as [old, null].
DELETE FROM aud.appt WHERE id = 1;
SELECT * FROM aud.log ORDER BY n;

-- actor and actor_role come from slotguard.actor / slotguard.actor_role (SET LOCAL per request).
BEGIN;
SET LOCAL slotguard.actor = 'user:42';
SET LOCAL slotguard.actor_role = 'doctor';
INSERT INTO aud.appt (id, status) VALUES (2, 'pending');
UPDATE aud.appt SET status = 'confirmed' WHERE id = 2;
-- txid is the writer's transaction
SELECT count(*) AS rows_of_this_txid FROM slotguard.audit
 WHERE id > :start_id AND txid = txid_current();
COMMIT;
-- unset again after the transaction; an empty value counts as unset
BEGIN;
SET LOCAL slotguard.actor = '';
UPDATE aud.appt SET note = 'no actor' WHERE id = 2;
COMMIT;
SELECT n, actor, actor_role, op, changes FROM aud.log WHERE row_key = '{"id": 2}' ORDER BY n;

-- A rolled-back update leaves no audit row; a rolled-back savepoint neither.
SELECT count(*) AS before FROM aud.log \gset
BEGIN;
UPDATE aud.appt SET note = 'rolled back' WHERE id = 2;
ROLLBACK;
BEGIN;
UPDATE aud.appt SET note = 'kept' WHERE id = 2;
SAVEPOINT s;
UPDATE aud.appt SET note = 'undone' WHERE id = 2;
ROLLBACK TO SAVEPOINT s;
COMMIT;
-- a failed (stale) update leaves none either
UPDATE aud.appt SET note = 'stale', version = 0 WHERE id = 2;
SELECT count(*) - :before AS new_rows FROM aud.log;
SELECT n, op, old_version, new_version, changes FROM aud.log WHERE n > :before ORDER BY n;

-- Audit rows are written even when the writer has no rights on slotguard at all.
CREATE ROLE regress_sg_aud_writer;
GRANT USAGE ON SCHEMA aud TO regress_sg_aud_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON aud.appt TO regress_sg_aud_writer;
SELECT has_schema_privilege('regress_sg_aud_writer', 'slotguard', 'USAGE') AS writer_usage;
SET ROLE regress_sg_aud_writer;
BEGIN;
SET LOCAL slotguard.actor = 'app-user';
INSERT INTO aud.appt (id, status) VALUES (3, 'pending');
UPDATE aud.appt SET status = 'cancelled', version = 0 WHERE id = 3;
DELETE FROM aud.appt WHERE id = 3;
COMMIT;
-- the writer cannot read the audit
SELECT count(*) FROM slotguard.audit;
\echo :SQLSTATE
RESET ROLE;
SELECT n, db_role, actor, op, old_version, new_version, changes
  FROM aud.log WHERE row_key = '{"id": 3}' ORDER BY n;

-- Only the owner may UPDATE or DELETE audit rows; nobody else can forge them either.
CREATE ROLE regress_sg_aud_reader;
GRANT USAGE ON SCHEMA slotguard TO regress_sg_aud_reader;
GRANT SELECT ON slotguard.audit TO regress_sg_aud_reader;
SET ROLE regress_sg_aud_reader;
SELECT count(*) > 0 AS reader_sees_rows FROM slotguard.audit WHERE id > :start_id;
UPDATE slotguard.audit SET actor = 'someone else' WHERE id > :start_id;
\echo :SQLSTATE
DELETE FROM slotguard.audit WHERE id > :start_id;
\echo :SQLSTATE
INSERT INTO slotguard.audit (txid, db_role, tbl, op, changes)
VALUES (1, 'x', 'aud.appt', 'INSERT', '{}');
\echo :SQLSTATE
TRUNCATE slotguard.audit;
\echo :SQLSTATE
RESET ROLE;
SET ROLE regress_sg_aud_writer;
UPDATE slotguard.audit SET actor = 'someone else';
\echo :SQLSTATE
DELETE FROM slotguard.audit;
\echo :SQLSTATE
RESET ROLE;
SELECT count(*) AS forged FROM slotguard.audit WHERE id > :start_id AND actor = 'someone else';
-- the owner can (e.g. to purge old rows)
BEGIN;
DELETE FROM slotguard.audit WHERE id > :start_id AND op = 'DELETE';
ROLLBACK;

-- Composite keys, no primary key, timestamps, quoted names; tbl outlives the table.
CREATE TABLE aud."Line Items" ("Order" int, line int, "the note" text, PRIMARY KEY ("Order", line));
SELECT slotguard.enable_versioning('aud."Line Items"', audit => true);
INSERT INTO aud."Line Items" VALUES (7, 1, 'a');
UPDATE aud."Line Items" SET "the note" = 'b';
CREATE TABLE aud.nokey (note text);
SELECT slotguard.enable_versioning('aud.nokey', audit => true, timestamps => false,
                                   version_column => 'rev');
INSERT INTO aud.nokey VALUES ('x');
UPDATE aud.nokey SET note = 'y';
SELECT n, tbl, row_key, op, old_version, new_version, changes
  FROM aud.log WHERE tbl IN ('aud."Line Items"', 'aud.nokey') ORDER BY n;
-- the timestamps are audited too (masked above)
SELECT op, jsonb_typeof(a.changes -> 'updated_at') AS updated_at,
       a.changes ? 'created_at' AS has_created_at
  FROM slotguard.audit a WHERE id > :start_id AND tbl = 'aud."Line Items"' ORDER BY id;
DROP TABLE aud.nokey;
SELECT count(*) AS rows_of_dropped_table FROM aud.log WHERE tbl = 'aud.nokey';

-- Types: numbers, booleans, arrays, jsonb and NULLs are recorded as JSON values.
CREATE TABLE aud.types (id int PRIMARY KEY, n numeric, b boolean, a int[], j jsonb, t text);
SELECT slotguard.enable_versioning('aud.types', audit => true, timestamps => false);
INSERT INTO aud.types VALUES (1, 1.50, true, '{1,2}', '{"k": "v"}', NULL);
UPDATE aud.types SET n = 2, b = false, a = '{1,2,3}', j = '{"k": "w"}', t = 'x';
UPDATE aud.types SET j = '{"k": "w"}', a = '{1,2,3}';
SELECT n, op, changes FROM aud.log WHERE tbl = 'aud.types' ORDER BY n;

-- UUID versions are recorded as text.
CREATE TABLE aud.u (id int PRIMARY KEY, note text);
SELECT slotguard.enable_versioning('aud.u', audit => true, timestamps => false,
                                   version_type => 'uuid');
INSERT INTO aud.u VALUES (1, 'x', '00000000-0000-4000-8000-000000000001');
UPDATE aud.u SET note = 'y';
SELECT op, old_version,
       CASE WHEN new_version = '00000000-0000-4000-8000-000000000001' THEN new_version
            WHEN new_version = (SELECT version::text FROM aud.u) THEN 'the new version'
       END AS new_version,
       jsonb_typeof(changes -> 'version' -> 1) AS json_type
  FROM slotguard.audit WHERE id > :start_id AND tbl = 'aud.u' ORDER BY id;

-- Calling enable_versioning again with audit => false stops auditing (versioning stays).
SELECT slotguard.enable_versioning('aud.appt', timestamps => false);
SELECT * FROM slotguard.versioned_tables WHERE tbl = 'aud.appt'::regclass;
SELECT count(*) AS before FROM aud.log \gset
INSERT INTO aud.appt (id, status) VALUES (4, 'pending');
UPDATE aud.appt SET status = 'x' WHERE id = 4 RETURNING id, status, version;
DELETE FROM aud.appt WHERE id = 4;
SELECT count(*) - :before AS new_rows FROM aud.log;
-- and audit => true again resumes it; disable_versioning removes it
SELECT slotguard.enable_versioning('aud.appt', timestamps => false, audit => true);
INSERT INTO aud.appt (id, status) VALUES (5, 'pending');
SELECT slotguard.disable_versioning('aud.appt');
SELECT * FROM slotguard.versioned_tables WHERE tbl = 'aud.appt'::regclass;
UPDATE aud.appt SET status = 'x' WHERE id = 5;
SELECT count(*) - :before AS new_rows FROM aud.log;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'aud.appt'::regclass;

-- Kept fixed: the audit trigger writes as the owner of slotguard.audit, not as the owner of
-- schema slotguard: a schema with another owner (ALTER SCHEMA ... OWNER TO, or a schema that
-- existed before CREATE EXTENSION) made every write to an audited table fail with 42501.
CREATE ROLE regress_sg_nsp_owner;
CREATE TABLE aud.nsp_owner (id int PRIMARY KEY, note text);
SELECT slotguard.enable_versioning('aud.nsp_owner', audit => true, timestamps => false);
ALTER SCHEMA slotguard OWNER TO regress_sg_nsp_owner;
INSERT INTO aud.nsp_owner VALUES (1, 'x');
UPDATE aud.nsp_owner SET note = 'y';
ALTER SCHEMA slotguard OWNER TO CURRENT_USER;
SELECT op, changes FROM slotguard.audit WHERE tbl = 'aud.nsp_owner' ORDER BY id;
DROP ROLE regress_sg_nsp_owner;

DROP SCHEMA aud CASCADE;
DROP ROLE regress_sg_aud_writer;
REVOKE ALL ON SCHEMA slotguard FROM regress_sg_aud_reader;
REVOKE ALL ON slotguard.audit FROM regress_sg_aud_reader;
DROP ROLE regress_sg_aud_reader;
