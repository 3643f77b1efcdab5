-- versioning: enable_versioning / disable_versioning and the version trigger (docs/sql-api.md,
-- "Versioned updates"): every UPDATE, from any client, is a checked optimistic update.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS ver CASCADE;
RESET client_min_messages;
CREATE SCHEMA ver;

-- columns(tbl): the columns slotguard manages, with type, NOT NULL and default.
CREATE FUNCTION ver.columns(tbl regclass)
RETURNS TABLE(col name, type text, not_null boolean, default_value text) LANGUAGE sql AS $$
  SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
         pg_get_expr(d.adbin, d.adrelid)
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped
   ORDER BY a.attnum
$$;
-- triggers(tbl): slotguard's triggers on tbl.
CREATE FUNCTION ver.triggers(tbl regclass) RETURNS SETOF name LANGUAGE sql AS $$
  SELECT tgname FROM pg_trigger WHERE tgrelid = tbl AND NOT tgisinternal ORDER BY tgname
$$;

-- ---------------------------------------------------------------------------------------------
-- enable_versioning adds the missing columns, with the right types and defaults.
CREATE TABLE ver.item (id int PRIMARY KEY, note text);
INSERT INTO ver.item VALUES (1, 'before');
SELECT slotguard.enable_versioning('ver.item');
SELECT * FROM ver.columns('ver.item');
SELECT * FROM ver.triggers('ver.item');
-- existing rows got version 0
SELECT id, note, version FROM ver.item;
-- Calling it twice is harmless.
SELECT slotguard.enable_versioning('ver.item');
SELECT * FROM ver.columns('ver.item');
SELECT * FROM ver.triggers('ver.item');
SELECT * FROM slotguard.versioned_tables WHERE tbl = 'ver.item'::regclass;

-- timestamps => false adds no timestamp columns; a custom version column name.
CREATE TABLE ver.plain (id int PRIMARY KEY, note text);
SELECT slotguard.enable_versioning('ver.plain', version_column => 'lock_version',
                                   timestamps => false);
SELECT * FROM ver.columns('ver.plain');

-- Existing columns of an accepted type are kept as they are.
CREATE TABLE ver.ints (id int PRIMARY KEY, version integer NOT NULL DEFAULT 0,
                       created_at timestamp NOT NULL DEFAULT '2000-01-01',
                       updated_at timestamptz);
SELECT slotguard.enable_versioning('ver.ints');
SELECT * FROM ver.columns('ver.ints');
CREATE TABLE ver.smalls (id int PRIMARY KEY, version smallint NOT NULL DEFAULT 0);
SELECT slotguard.enable_versioning('ver.smalls', timestamps => false);
SELECT * FROM ver.columns('ver.smalls');
CREATE TABLE ver.uuids (id int PRIMARY KEY, version uuid);
SELECT slotguard.enable_versioning('ver.uuids', version_type => 'uuid', timestamps => false);
SELECT * FROM ver.columns('ver.uuids');
CREATE DOMAIN ver.counter AS bigint CHECK (VALUE >= 0);
CREATE TABLE ver.domains (id int PRIMARY KEY, version ver.counter NOT NULL DEFAULT 0);
SELECT slotguard.enable_versioning('ver.domains', timestamps => false);

-- Existing columns of a wrong type: 22023, nothing changed.
CREATE TABLE ver.wrong (id int PRIMARY KEY, version text, created_at date);
SELECT slotguard.enable_versioning('ver.wrong');
\echo :SQLSTATE
SELECT slotguard.enable_versioning('ver.wrong', version_column => 'v2');
\echo :SQLSTATE
SELECT slotguard.enable_versioning('ver.wrong', version_column => 'v3', timestamps => false,
                                   version_type => 'uuid');
SELECT slotguard.enable_versioning('ver.ints', version_type => 'uuid');
\echo :SQLSTATE
SELECT slotguard.enable_versioning('ver.uuids');
\echo :SQLSTATE
CREATE TABLE ver.numerics (id int PRIMARY KEY, version numeric);
SELECT slotguard.enable_versioning('ver.numerics');
\echo :SQLSTATE
SELECT * FROM ver.columns('ver.wrong');
SELECT * FROM ver.triggers('ver.numerics');

-- Bad arguments: 22023.
SELECT slotguard.enable_versioning('ver.item', version_type => 'int');
\echo :SQLSTATE
SELECT slotguard.enable_versioning('ver.item', version_type => 'UUID');
\echo :SQLSTATE
SELECT slotguard.enable_versioning('ver.item', version_style => 'bump');
\echo :SQLSTATE
SELECT slotguard.enable_versioning('ver.plain', version_type => 'uuid', version_style => 'increment');
\echo :SQLSTATE
SELECT slotguard.enable_versioning(NULL);
\echo :SQLSTATE
SELECT slotguard.enable_versioning('ver.item', version_column => NULL);
\echo :SQLSTATE
SELECT slotguard.enable_versioning('ver.item', version_type => NULL);
\echo :SQLSTATE
SELECT slotguard.enable_versioning('ver.item', timestamps => NULL);
\echo :SQLSTATE
SELECT slotguard.enable_versioning('ver.item', audit => NULL);
\echo :SQLSTATE
SELECT slotguard.enable_versioning('ver.item', require_version => NULL);
\echo :SQLSTATE
SELECT slotguard.enable_versioning('ver.item', version_style => NULL);
\echo :SQLSTATE
SELECT slotguard.enable_versioning('ver.item', version_column => '');
\echo :SQLSTATE
SELECT slotguard.enable_versioning('ver.item', version_column => 'updated_at');
\echo :SQLSTATE
SELECT slotguard.enable_versioning('ver.item', version_column => 'xmin');
\echo :SQLSTATE
-- Only tables: a view, a sequence, a materialized view are refused with 22023.
CREATE VIEW ver.item_view AS SELECT * FROM ver.item;
SELECT slotguard.enable_versioning('ver.item_view');
\echo :SQLSTATE
CREATE SEQUENCE ver.seq;
SELECT slotguard.enable_versioning('ver.seq');
\echo :SQLSTATE
CREATE MATERIALIZED VIEW ver.item_mv AS SELECT * FROM ver.item;
SELECT slotguard.enable_versioning('ver.item_mv');
\echo :SQLSTATE
SELECT slotguard.enable_versioning('ver.no_such_table');
\echo :SQLSTATE
-- the failed calls changed nothing
SELECT * FROM slotguard.versioned_tables WHERE tbl = 'ver.item'::regclass;

-- ---------------------------------------------------------------------------------------------
-- The trigger, version_style 'assert' (the default).
TRUNCATE ver.item;
INSERT INTO ver.item (id, note, created_at, updated_at)
VALUES (1, 'one', '2000-01-01 00:00+00', '2000-01-01 00:00+00'),
       (2, 'two', '2000-01-01 00:00+00', '2000-01-01 00:00+00');
-- Setting the version to the stored value succeeds and bumps it by one.
UPDATE ver.item SET note = 'one-a', version = 0 WHERE id = 1 RETURNING id, note, version;
-- The stale version again: SG001 with table, key, expected and current version.
UPDATE ver.item SET note = 'one-b', version = 0 WHERE id = 1;
\echo :SQLSTATE
UPDATE ver.item SET note = 'one-b', version = 7 WHERE id = 1;
\echo :SQLSTATE
UPDATE ver.item SET note = 'one-b', version = NULL WHERE id = 1;
\echo :SQLSTATE
-- An UPDATE that does not mention the version still bumps it.
UPDATE ver.item SET note = 'one-b' WHERE id = 1 RETURNING id, note, version;
UPDATE ver.item SET note = note WHERE id = 1 RETURNING id, note, version;
-- A version computed from itself is "set to the stored value": accepted and bumped.
UPDATE ver.item SET version = version WHERE id = 1 RETURNING id, note, version;
-- updated_at is set, created_at kept, even when the UPDATE sets them.
SELECT id, created_at = '2000-01-01 00:00+00' AS created_kept,
       updated_at > '2000-01-01 00:00+00' AS updated_set
  FROM ver.item ORDER BY id;
BEGIN;
UPDATE ver.item SET note = 'one-c' WHERE id = 1
RETURNING id, version, updated_at = now() AS updated_now;
ROLLBACK;
UPDATE ver.item SET created_at = now(), updated_at = '1999-01-01 00:00+00' WHERE id = 2
RETURNING id, version, created_at = '2000-01-01 00:00+00' AS created_kept,
          updated_at > '2000-01-01 00:00+00' AS updated_set;
-- The row is unchanged after an error.
SELECT id, note, version FROM ver.item ORDER BY id;
-- Every path that updates is checked: UPDATE ... FROM, upsert, a PL/pgSQL function.
UPDATE ver.item i SET note = v.note, version = v.version
  FROM (VALUES (1, 'from-join', 4), (2, 'from-join', 1)) AS v(id, note, version)
 WHERE i.id = v.id RETURNING i.id, i.note, i.version;
UPDATE ver.item i SET note = 'stale-join', version = v.version
  FROM (VALUES (1, 4)) AS v(id, version) WHERE i.id = v.id;
\echo :SQLSTATE
INSERT INTO ver.item (id, note) VALUES (1, 'upsert')
ON CONFLICT (id) DO UPDATE SET note = excluded.note RETURNING id, note, version;
INSERT INTO ver.item (id, note) VALUES (1, 'upsert-stale')
ON CONFLICT (id) DO UPDATE SET note = excluded.note, version = 2;
\echo :SQLSTATE
INSERT INTO ver.item (id, note) VALUES (1, 'upsert-ok')
ON CONFLICT (id) DO UPDATE SET note = excluded.note, version = ver.item.version
RETURNING id, note, version;
DO $$ BEGIN UPDATE ver.item SET note = 'plpgsql', version = 1 WHERE id = 1; END $$;
\echo :SQLSTATE
SELECT id, note, version FROM ver.item ORDER BY id;
-- INSERT and DELETE are not affected.
INSERT INTO ver.item (id, note, version) VALUES (3, 'three', 42);
DELETE FROM ver.item WHERE id = 3 RETURNING id, version;

-- Bulk UPDATEs are checked row by row: one stale row fails the whole statement.
SELECT id, version FROM ver.item ORDER BY id;
UPDATE ver.item SET note = 'bulk', version = 7 WHERE id IN (1, 2);
\echo :SQLSTATE
SELECT id, note, version FROM ver.item ORDER BY id;
UPDATE ver.item SET note = 'bulk', version = CASE id WHEN 1 THEN 7 ELSE 1 END;
\echo :SQLSTATE
SELECT id, note, version FROM ver.item ORDER BY id;
-- every row asserting its own stored version: all pass, all bumped
WITH u AS (UPDATE ver.item SET note = 'bulk', version = CASE id WHEN 1 THEN 7 ELSE 2 END
           RETURNING id, note, version)
SELECT * FROM u ORDER BY id;
-- A bulk UPDATE that does not set the version bumps every row.
WITH u AS (UPDATE ver.item SET note = 'bulk2' RETURNING id, note, version)
SELECT * FROM u ORDER BY id;

-- Through an updatable view and MERGE too.
CREATE VIEW ver.item_v AS SELECT id, note, version FROM ver.item;
UPDATE ver.item_v SET note = 'via view' WHERE id = 2 RETURNING *;
UPDATE ver.item_v SET note = 'via view, stale', version = 4 WHERE id = 2;
\echo :SQLSTATE
UPDATE ver.item_v SET note = 'via view', version = 5 WHERE id = 2 RETURNING *;
MERGE INTO ver.item i USING (VALUES (2, 'merged', 6)) AS s(id, note, version) ON i.id = s.id
  WHEN MATCHED THEN UPDATE SET note = s.note, version = s.version;
MERGE INTO ver.item i USING (VALUES (2, 'merged, stale', 6)) AS s(id, note, version) ON i.id = s.id
  WHEN MATCHED THEN UPDATE SET note = s.note, version = s.version;
\echo :SQLSTATE
MERGE INTO ver.item i USING (VALUES (2, 'merged again')) AS s(id, note) ON i.id = s.id
  WHEN MATCHED THEN UPDATE SET note = s.note;
SELECT id, note, version FROM ver.item ORDER BY id;

-- ---------------------------------------------------------------------------------------------
-- Existing integer / timestamp columns: the trigger works with them too.
INSERT INTO ver.ints (id, updated_at) VALUES (1, '2000-01-01 00:00+00');
UPDATE ver.ints SET version = 0 WHERE id = 1
RETURNING id, version, created_at = '2000-01-01' AS created_kept,
          updated_at > '2000-01-01 00:00+00' AS updated_set;
UPDATE ver.ints SET version = 0 WHERE id = 1;
\echo :SQLSTATE
INSERT INTO ver.domains VALUES (1, 0);
UPDATE ver.domains SET version = 0 WHERE id = 1 RETURNING *;
UPDATE ver.domains SET version = 0 WHERE id = 1;
\echo :SQLSTATE
INSERT INTO ver.smalls VALUES (1, 7);
UPDATE ver.smalls SET version = 7 WHERE id = 1 RETURNING *;
UPDATE ver.smalls SET version = 7 WHERE id = 1;
\echo :SQLSTATE

-- require_version: an UPDATE that does not set the version is refused with SG001 and a HINT.
CREATE TABLE ver.strict (id int PRIMARY KEY, note text);
INSERT INTO ver.strict VALUES (1, 'x');
SELECT slotguard.enable_versioning('ver.strict', require_version => true, timestamps => false);
UPDATE ver.strict SET note = 'y' WHERE id = 1;
\echo :SQLSTATE
UPDATE ver.strict SET note = 'y', version = 0 WHERE id = 1 RETURNING *;
UPDATE ver.strict SET note = 'z', version = 0 WHERE id = 1;
\echo :SQLSTATE
UPDATE ver.strict SET note = 'z', version = version WHERE id = 1 RETURNING *;
-- an UPDATE matching no row is no error
UPDATE ver.strict SET note = 'none' WHERE id = 99;
SELECT * FROM slotguard.versioned_tables WHERE tbl = 'ver.strict'::regclass;
-- Calling enable_versioning again reconfigures the table.
SELECT slotguard.enable_versioning('ver.strict', timestamps => false);
UPDATE ver.strict SET note = 'free' WHERE id = 1 RETURNING *;
SELECT * FROM slotguard.versioned_tables WHERE tbl = 'ver.strict'::regclass;

-- version_style 'increment' (Rails lock_version, JPA @Version, Mongoose __v).
CREATE TABLE ver.inc (id int PRIMARY KEY, note text);
INSERT INTO ver.inc VALUES (1, 'x');
SELECT slotguard.enable_versioning('ver.inc', version_style => 'increment', timestamps => false);
-- SET version = read + 1 WHERE version = read: accepted and kept, not bumped again.
UPDATE ver.inc SET note = 'a', version = 1 WHERE id = 1 AND version = 0 RETURNING *;
UPDATE ver.inc SET note = 'b', version = version + 1 WHERE id = 1 RETURNING *;
-- stored (2) or stored + 2 (4): SG001
UPDATE ver.inc SET note = 'c', version = 2 WHERE id = 1;
\echo :SQLSTATE
UPDATE ver.inc SET note = 'c', version = 4 WHERE id = 1;
\echo :SQLSTATE
UPDATE ver.inc SET note = 'c', version = 1 WHERE id = 1;
\echo :SQLSTATE
-- omitted: + 1
UPDATE ver.inc SET note = 'd' WHERE id = 1 RETURNING *;
-- with require_version
SELECT slotguard.enable_versioning('ver.inc', version_style => 'increment', timestamps => false,
                                   require_version => true);
UPDATE ver.inc SET note = 'e' WHERE id = 1;
\echo :SQLSTATE
UPDATE ver.inc SET note = 'e', version = 4 WHERE id = 1 RETURNING *;
SELECT * FROM slotguard.versioned_tables WHERE tbl = 'ver.inc'::regclass;

-- UUID versions: a fresh UUID on every update; a stale one is SG001.
CREATE TABLE ver.u (id int PRIMARY KEY, note text);
SELECT slotguard.enable_versioning('ver.u', version_type => 'uuid');
SELECT * FROM ver.columns('ver.u');
INSERT INTO ver.u (id, note) VALUES (1, 'x'), (2, 'y');
SELECT count(DISTINCT version) AS distinct_versions FROM ver.u;
CREATE TABLE ver.u_seen AS SELECT id, version FROM ver.u;
UPDATE ver.u SET note = 'x2', version = s.version FROM ver.u_seen s
 WHERE u.id = s.id AND s.id = 1 RETURNING u.id, u.note, u.version <> s.version AS changed;
UPDATE ver.u SET note = 'x3' WHERE id = 1;
SELECT (SELECT version FROM ver.u WHERE id = 1) <> ALL (SELECT version FROM ver.u_seen) AS fresh;
-- stale: the version read before the updates (terse: the DETAIL names random UUIDs)
\set VERBOSITY terse
UPDATE ver.u SET note = 'x4', version = s.version FROM ver.u_seen s WHERE u.id = s.id AND s.id = 1;
\echo :SQLSTATE
UPDATE ver.u SET note = 'x4', version = NULL WHERE id = 1;
\echo :SQLSTATE
\set VERBOSITY default
-- The DETAIL, with the UUIDs masked.
CREATE FUNCTION ver.u_conflict(v_new uuid) RETURNS text LANGUAGE plpgsql AS $$
DECLARE det text; hnt text; v_old uuid; v_cur uuid;
BEGIN
  SELECT version INTO v_old FROM ver.u_seen WHERE id = 1;
  SELECT version INTO v_cur FROM ver.u WHERE id = 1;
  UPDATE ver.u SET version = v_new WHERE id = 1;
  RETURN 'no error';
EXCEPTION WHEN SQLSTATE 'SG001' THEN
  GET STACKED DIAGNOSTICS det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
  RETURN replace(replace(det, v_old::text, '<read>'), v_cur::text, '<current>') || ' ' || hnt;
END $$;
SELECT ver.u_conflict((SELECT version FROM ver.u_seen WHERE id = 1));
SELECT ver.u_conflict(NULL);
SELECT id, note FROM ver.u ORDER BY id;

-- Composite primary keys: the DETAIL names the whole key.
CREATE TABLE ver.comp (a int, b text, note text, PRIMARY KEY (a, b));
SELECT slotguard.enable_versioning('ver.comp', timestamps => false);
INSERT INTO ver.comp VALUES (1, 'x', 'n');
UPDATE ver.comp SET note = 'm', version = 0 WHERE a = 1 AND b = 'x' RETURNING *;
UPDATE ver.comp SET note = 'o', version = 0 WHERE a = 1 AND b = 'x';
\echo :SQLSTATE
-- and a table without a primary key
CREATE TABLE ver.nokey (note text);
SELECT slotguard.enable_versioning('ver.nokey', timestamps => false);
INSERT INTO ver.nokey VALUES ('n');
UPDATE ver.nokey SET note = 'm', version = 5;
\echo :SQLSTATE

-- Partitioned tables: the trigger is cloned onto the partitions.
CREATE TABLE ver.parted (id int, region text, note text, PRIMARY KEY (id, region))
  PARTITION BY LIST (region);
CREATE TABLE ver.parted_eu PARTITION OF ver.parted FOR VALUES IN ('eu');
SELECT slotguard.enable_versioning('ver.parted', timestamps => false);
CREATE TABLE ver.parted_us PARTITION OF ver.parted FOR VALUES IN ('us');
INSERT INTO ver.parted VALUES (1, 'eu', 'a'), (2, 'us', 'b');
UPDATE ver.parted SET note = 'c', version = 0 RETURNING *;
UPDATE ver.parted SET note = 'd', version = 0 WHERE id = 2;
\echo :SQLSTATE

-- ---------------------------------------------------------------------------------------------
-- disable_versioning removes the triggers and keeps the columns; updates are no longer checked.
SELECT slotguard.disable_versioning('ver.item');
SELECT * FROM ver.triggers('ver.item');
SELECT * FROM ver.columns('ver.item');
SELECT id, version FROM ver.item ORDER BY id;
UPDATE ver.item SET note = 'unversioned' WHERE id = 1 RETURNING id, note, version;
UPDATE ver.item SET note = 'any version', version = 100 WHERE id = 1 RETURNING id, note, version;
-- On a table that is not versioned (any more): 22023.
SELECT slotguard.disable_versioning('ver.item');
\echo :SQLSTATE
CREATE TABLE ver.never (id int);
SELECT slotguard.disable_versioning('ver.never');
\echo :SQLSTATE
SELECT slotguard.disable_versioning('ver.item_view');
\echo :SQLSTATE
SELECT slotguard.disable_versioning(NULL);
\echo :SQLSTATE
-- and it can be enabled again; the column keeps its data
SELECT slotguard.enable_versioning('ver.item');
UPDATE ver.item SET note = 'again', version = 100 WHERE id = 1 RETURNING id, note, version;

-- The view lists every versioned table with its configuration (partitions have the trigger
-- too; they are left out here).
SELECT * FROM slotguard.versioned_tables
 WHERE tbl::text LIKE 'ver.%' AND NOT tbl::text LIKE 'ver.parted\_%' ORDER BY tbl::text;

-- Dropping a versioned table leaves nothing behind in the view.
DROP TABLE ver.nokey;
SELECT count(*) FROM slotguard.versioned_tables WHERE tbl::text = 'ver.nokey';

DROP SCHEMA ver CASCADE;
