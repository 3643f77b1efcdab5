-- stats: the slotguard.stats view (docs/sql-api.md, "Monitoring"). The test cluster preloads the
-- library, so the counters are on. Counters are cluster-wide and since server start: only
-- differences are printed.
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS st CASCADE;
DROP DATABASE IF EXISTS regress_sg_otherdb;
RESET client_min_messages;
CREATE SCHEMA st;

SELECT * FROM slotguard.stats WHERE scope = 'global';

CREATE TABLE st.a (id int PRIMARY KEY, note text);
CREATE TABLE st.b (id int PRIMARY KEY, note text);
-- counter(tbl, metric): the current value (0 before the table's first count).
CREATE FUNCTION st.counter(tbl regclass, m text) RETURNS bigint LANGUAGE sql AS $$
  SELECT coalesce((SELECT value FROM slotguard.stats
                    WHERE scope = 'table' AND object = tbl::text AND metric = m), 0)
$$;
CREATE TABLE st.snap (tbl regclass, metric text, value bigint);
CREATE FUNCTION st.snap() RETURNS void LANGUAGE sql AS $$
  DELETE FROM st.snap;
  INSERT INTO st.snap
  SELECT t, m, st.counter(t, m)
    FROM unnest(ARRAY['st.a'::regclass, 'st.b'::regclass]) AS t,
         unnest(ARRAY['versioned_updates', 'version_conflicts']) AS m;
$$;
-- delta(): what changed since the last snap().
CREATE FUNCTION st.delta() RETURNS TABLE(tbl text, metric text, delta bigint) LANGUAGE sql AS $$
  SELECT s.tbl::text, s.metric, st.counter(s.tbl, s.metric) - s.value
    FROM st.snap s ORDER BY 1, 2
$$;

SELECT slotguard.enable_versioning('st.a', timestamps => false);
SELECT slotguard.enable_versioning('st.b', timestamps => false, require_version => true);
INSERT INTO st.a SELECT g, 'x' FROM generate_series(1, 5) g;
INSERT INTO st.b VALUES (1, 'x');

-- A new table has no counters yet (0).
SELECT st.snap();
SELECT * FROM st.delta();

-- Three successful UPDATEs of single rows, one of a bulk UPDATE of five rows: +8 updates.
UPDATE st.a SET note = 'y' WHERE id = 1;
UPDATE st.a SET note = 'z', version = 1 WHERE id = 1;
SELECT slotguard.update_versioned('st.a', '1', 2, '{"note": "w"}') ->> 'version' AS version;
UPDATE st.a SET note = 'bulk';
SELECT * FROM st.delta();

-- Conflicts: a stale UPDATE, a stale update_versioned, a require_version refusal: +1 each.
SELECT st.snap();
UPDATE st.a SET note = 'stale', version = 0 WHERE id = 2;
SELECT slotguard.update_versioned('st.a', '2', 0, '{"note": "stale"}');
UPDATE st.b SET note = 'no version' WHERE id = 1;
SELECT * FROM st.delta();

-- Things that are neither: not found, a bad argument, an UPDATE matching no row, INSERT, DELETE,
-- an update of an unversioned table.
SELECT st.snap();
SELECT slotguard.update_versioned('st.a', '99', 0, '{"note": "missing"}');
SELECT slotguard.update_versioned('st.a', '2', 1, '{"nope": 1}');
UPDATE st.a SET note = 'none' WHERE id = 99;
INSERT INTO st.a VALUES (6, 'new');
DELETE FROM st.a WHERE id = 6;
SELECT * FROM st.delta();

-- A successful update of the other table counts there only.
SELECT st.snap();
UPDATE st.b SET note = 'with version', version = 0 WHERE id = 1;
SELECT * FROM st.delta();

-- Each versioned table that was counted has its two metrics.
SELECT object, metric FROM slotguard.stats WHERE object IN ('st.a', 'st.b') ORDER BY 1, 2;

-- After disable_versioning nothing is counted.
SELECT st.snap();
SELECT slotguard.disable_versioning('st.b');
UPDATE st.b SET note = 'unversioned';
UPDATE st.b SET note = 'unversioned', version = 42;
SELECT * FROM st.delta();

-- The view can be read in a read-only transaction.
BEGIN READ ONLY;
SELECT count(*) > 0 AS readable FROM slotguard.stats WHERE scope = 'table';
COMMIT;

-- stats_reset() zeroes every counter (as a superuser).
UPDATE st.a SET note = 'before reset' WHERE id = 3;
SELECT st.counter('st.a', 'versioned_updates') > 0 AS counted;
SELECT slotguard.stats_reset();
SELECT count(*) FILTER (WHERE value <> 0) AS nonzero_counters
  FROM slotguard.stats WHERE scope <> 'global';
SELECT * FROM slotguard.stats WHERE scope = 'global';
SELECT st.counter('st.a', 'versioned_updates') AS updates,
       st.counter('st.a', 'version_conflicts') AS conflicts;
-- and counting goes on from zero
UPDATE st.a SET note = 'after reset' WHERE id = 3;
UPDATE st.a SET note = 'after reset', version = 0 WHERE id = 3;
SELECT st.counter('st.a', 'versioned_updates') AS updates,
       st.counter('st.a', 'version_conflicts') AS conflicts;

-- The table of counters has a fixed size, set at server start (slotguard.stats_max_entries);
-- stats_capacity() says how full it is. tests/integration/stats_bounded.sh fills it.
SELECT name, setting, context FROM pg_settings WHERE name = 'slotguard.stats_max_entries';
SELECT objects_tracked BETWEEN 0 AND objects_max AS within, objects_max, counts_dropped >= 0 AS ok
  FROM slotguard.stats_capacity();
SET slotguard.stats_max_entries = 10;

-- Kept fixed: counters are keyed by database and table OID: another database's tables must not
-- show up in this database's slotguard.stats (as a bare OID, or as the name of an unrelated table
-- of this database that happens to have the same OID, whose counters they then add to).
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

DROP SCHEMA st CASCADE;
