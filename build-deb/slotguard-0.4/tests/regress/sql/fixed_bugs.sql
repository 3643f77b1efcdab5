-- fixed_bugs: reproductions of bugs found while writing the suites, kept so they stay fixed.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS kb CASCADE;
DROP DATABASE IF EXISTS regress_sg_otherdb;
DROP ROLE IF EXISTS regress_sg_nsp_owner;
RESET client_min_messages;
CREATE SCHEMA kb;

-- 1. update_versioned keeps using a statement prepared for an earlier configuration of the table
--    (the cache key is relid + changed columns; not the version column, style or name).
CREATE TABLE kb.recfg (id int PRIMARY KEY, note text);
SELECT slotguard.enable_versioning('kb.recfg', timestamps => false);
INSERT INTO kb.recfg VALUES (1, 'x');
SELECT slotguard.update_versioned('kb.recfg', '1', 0, '{"note": "a"}');
-- 1a. switched to version_style 'increment': the right expected version must succeed
SELECT slotguard.enable_versioning('kb.recfg', timestamps => false, version_style => 'increment');
SELECT slotguard.update_versioned('kb.recfg', '1', 1, '{"note": "b"}');
-- 1b. switched to another version column: the new column must be checked (the second call is
--     stale), and the old column left alone
SELECT slotguard.enable_versioning('kb.recfg', timestamps => false, version_column => 'rev');
SELECT slotguard.update_versioned('kb.recfg', '1', 0, '{"note": "c"}');
SELECT slotguard.update_versioned('kb.recfg', '1', 0, '{"note": "d"}');
\echo :SQLSTATE
SELECT * FROM kb.recfg;

-- 2. After ALTER TABLE ... RENAME the cached statement still names the old table: 42P01, or, once
--    another table has that name, that other table is updated.
CREATE TABLE kb.acct (id int PRIMARY KEY, owner text);
SELECT slotguard.enable_versioning('kb.acct', timestamps => false);
INSERT INTO kb.acct VALUES (1, 'alice');
SELECT slotguard.update_versioned('kb.acct', '1', 0, '{"owner": "alice2"}');
ALTER TABLE kb.acct RENAME TO acct_old;
SELECT slotguard.update_versioned('kb.acct_old', '1', 1, '{"owner": "alice3"}');
CREATE TABLE kb.acct (id int PRIMARY KEY, owner text);
SELECT slotguard.enable_versioning('kb.acct', timestamps => false);
INSERT INTO kb.acct VALUES (1, 'bob');
SELECT slotguard.update_versioned('kb.acct_old', '1', 2, '{"owner": "alice4"}');
SELECT 'acct' AS tbl, * FROM kb.acct UNION ALL SELECT 'acct_old', * FROM kb.acct_old ORDER BY 1;

-- 3. The audit trigger switches to the owner of schema slotguard, not to the owner of
--    slotguard.audit: once the schema has another owner (ALTER SCHEMA ... OWNER TO, or a schema
--    that existed before CREATE EXTENSION) every write to an audited table fails with 42501.
CREATE ROLE regress_sg_nsp_owner;
CREATE TABLE kb.aud (id int PRIMARY KEY, note text);
SELECT slotguard.enable_versioning('kb.aud', audit => true, timestamps => false);
ALTER SCHEMA slotguard OWNER TO regress_sg_nsp_owner;
INSERT INTO kb.aud VALUES (1, 'x');
UPDATE kb.aud SET note = 'y';
ALTER SCHEMA slotguard OWNER TO CURRENT_USER;
SELECT op, changes FROM slotguard.audit WHERE tbl = 'kb.aud' ORDER BY id;
DROP ROLE regress_sg_nsp_owner;

-- 4. With a "" key, an INSERT with a NULL state is let through although NULL is not listed.
CREATE TABLE kb.job (id int PRIMARY KEY, state text);
SELECT slotguard.add_transition_rule('kb.job', 'state', '{"": ["queued"], "queued": ["running"]}');
INSERT INTO kb.job VALUES (1, NULL);
\echo :SQLSTATE

-- 5. An upsert that updates an existing row is refused as an "invalid initial state": the check
--    runs in the BEFORE INSERT trigger, before the conflict is known (an AFTER INSERT check would
--    see only rows really inserted).
INSERT INTO kb.job VALUES (2, 'queued');
INSERT INTO kb.job VALUES (2, 'running') ON CONFLICT (id) DO UPDATE SET state = excluded.state;
SELECT * FROM kb.job ORDER BY id;

-- 6. Counters are keyed by table OID alone, without the database: another database's tables
--    show up in this database's slotguard.stats (as a bare OID, or as the name of an unrelated
--    table of this database that happens to have the same OID, whose counters they then add to).
\set regress_db :DBNAME
CREATE DATABASE regress_sg_otherdb;
\c regress_sg_otherdb
SET client_min_messages = warning;
CREATE EXTENSION slotguard;
CREATE TABLE t (id int PRIMARY KEY, n int);
SELECT slotguard.enable_versioning('t', timestamps => false);
INSERT INTO t VALUES (1, 0);
UPDATE t SET n = 1;
SELECT 't'::regclass::oid AS other_oid \gset
\c :regress_db
SELECT count(*) AS rows_of_the_other_database
  FROM slotguard.stats WHERE scope = 'table' AND object = (:other_oid)::oid::regclass::text;
DROP DATABASE regress_sg_otherdb;

DROP SCHEMA kb CASCADE;
