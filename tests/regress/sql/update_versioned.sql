-- update_versioned: the JSON API for optimistic updates (docs/sql-api.md, "Versioned updates").
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS uv CASCADE;
DROP SCHEMA IF EXISTS "My Schema" CASCADE;
RESET client_min_messages;
CREATE SCHEMA uv;

CREATE TABLE uv.item (id int PRIMARY KEY, note text, qty int,
                      tags text[], meta jsonb, price numeric(10,2), flag boolean,
                      due date);
SELECT slotguard.enable_versioning('uv.item');
INSERT INTO uv.item (id, note, qty) VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3);

-- Key as an object and as a scalar; returns the new row as jsonb (timestamps masked).
SELECT slotguard.update_versioned('uv.item', '{"id": 1}', 0, '{"note": "one-a"}')
       - 'created_at' - 'updated_at' AS new_row;
SELECT slotguard.update_versioned('uv.item', '1', 1, '{"note": "one-b", "qty": 10}')
       - 'created_at' - 'updated_at' AS new_row;
-- a scalar given as a JSON string is converted like any input
SELECT slotguard.update_versioned('uv.item', '"1"', 2, '{"qty": 11}')
       - 'created_at' - 'updated_at' AS new_row;
-- the returned timestamps are the row's
SELECT (r ->> 'updated_at')::timestamptz = now() AS updated_now,
       (r ->> 'created_at')::timestamptz < now() AS created_kept,
       r ->> 'version' AS version
  FROM slotguard.update_versioned('uv.item', '2', 0, '{"note": "two-a"}') AS r;
-- empty changes: only the version moves
SELECT slotguard.update_versioned('uv.item', '3', 0, '{}') - 'created_at' - 'updated_at';
SELECT id, note, qty, version FROM uv.item ORDER BY id;

-- Stale: SG001 with table, key, expected and current version. Missing: SG002.
SELECT slotguard.update_versioned('uv.item', '1', 1, '{"note": "stale"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '1', -5, '{"note": "stale"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '42', 0, '{"note": "missing"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '{"id": 42}', 0, '{"note": "missing"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '{"id": null}', 0, '{"note": "missing"}');
\echo :SQLSTATE
SELECT id, note, qty, version FROM uv.item WHERE id = 1;

-- Bad keys.
SELECT slotguard.update_versioned('uv.item', '{"id": 1, "note": "x"}', 3, '{"qty": 1}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '{"nope": 1}', 3, '{"qty": 1}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '{}', 3, '{"qty": 1}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '[1]', 3, '{"qty": 1}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', 'null', 3, '{"qty": 1}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '"abc"', 3, '{"qty": 1}');
\echo :SQLSTATE
-- Bad changes: the version or the primary key → 22023, an unknown column → 42703.
SELECT slotguard.update_versioned('uv.item', '1', 3, '{"version": 9}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '1', 3, '{"id": 9}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '1', 3, '{"nope": 9}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '1', 3, '{"note": "ok", "nope": 9}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '1', 3, '[]');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '1', 3, '"note"');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '1', 3, '{"qty": "many"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '1', 3, '{"qty": 1.5}');
\echo :SQLSTATE
-- NULL arguments → 22023.
SELECT slotguard.update_versioned(NULL, '1', 3, '{"qty": 1}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', NULL, 3, '{"qty": 1}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '1', NULL::bigint, '{"qty": 1}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '1', NULL::uuid, '{"qty": 1}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '1', 3, NULL);
\echo :SQLSTATE
-- Nothing above changed the row.
SELECT id, note, qty, version FROM uv.item WHERE id = 1;

-- Arrays, jsonb, numeric, boolean, date and NULL values through changes.
SELECT slotguard.update_versioned('uv.item', '1', 3,
         '{"tags": ["a", "b c", "d,e"], "meta": {"k": [1, {"x": null}]}, "price": 12.345,
           "flag": true, "due": "2024-02-29", "qty": null}')
       - 'created_at' - 'updated_at' AS new_row;
SELECT id, tags, meta, price, flag, due, qty, version FROM uv.item WHERE id = 1;
SELECT slotguard.update_versioned('uv.item', '1', 4, '{"tags": null, "meta": null, "note": null}')
       - 'created_at' - 'updated_at' AS new_row;
SELECT slotguard.update_versioned('uv.item', '1', 5, '{"meta": "just a string", "tags": []}')
       ->> 'meta' AS meta;

-- Composite primary key: the key must be an object with every key column.
CREATE TABLE uv.comp (a int, b text, note text, PRIMARY KEY (a, b));
SELECT slotguard.enable_versioning('uv.comp', timestamps => false);
INSERT INTO uv.comp VALUES (1, 'x', 'n'), (1, 'y', 'n');
SELECT slotguard.update_versioned('uv.comp', '{"a": 1, "b": "y"}', 0, '{"note": "m"}');
SELECT slotguard.update_versioned('uv.comp', '{"b": "y", "a": 1}', 1, '{"note": "o"}');
SELECT slotguard.update_versioned('uv.comp', '1', 0, '{"note": "m"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.comp', '{"a": 1}', 0, '{"note": "m"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.comp', '{"a": 1, "b": "x", "note": "n"}', 0, '{"note": "m"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.comp', '{"a": 1, "b": "y"}', 0, '{"note": "stale"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.comp', '{"a": 1, "b": "z"}', 0, '{"note": "missing"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.comp', '{"a": 1, "b": "x"}', 0, '{"b": "z"}');
\echo :SQLSTATE
SELECT * FROM uv.comp ORDER BY a, b;

-- A text primary key, given as a scalar.
CREATE TABLE uv.tkey (code text PRIMARY KEY, note text);
SELECT slotguard.enable_versioning('uv.tkey', timestamps => false);
INSERT INTO uv.tkey VALUES ('A-1', 'n');
SELECT slotguard.update_versioned('uv.tkey', '"A-1"', 0, '{"note": "m"}');
SELECT slotguard.update_versioned('uv.tkey', '"a-1"', 1, '{"note": "m"}');
\echo :SQLSTATE

-- Soft delete: a row with deleted_at set counts as not found.
CREATE TABLE uv.soft (id int PRIMARY KEY, note text, deleted_at timestamptz);
SELECT slotguard.enable_versioning('uv.soft', timestamps => false);
INSERT INTO uv.soft VALUES (1, 'live', NULL), (2, 'gone', '2020-01-01');
SELECT slotguard.update_versioned('uv.soft', '1', 0, '{"note": "still live"}');
SELECT slotguard.update_versioned('uv.soft', '2', 0, '{"note": "revived?"}');
\echo :SQLSTATE
-- soft-deleting through update_versioned works; afterwards the row is not found
SELECT slotguard.update_versioned('uv.soft', '1', 1, '{"deleted_at": "2024-01-01T00:00:00Z"}')
       ->> 'version' AS version;
SELECT slotguard.update_versioned('uv.soft', '1', 2, '{"note": "after delete"}');
\echo :SQLSTATE
SELECT id, note, deleted_at IS NOT NULL AS deleted, version FROM uv.soft ORDER BY id;

-- Tables it does not work on: not versioned, no primary key, not a table.
CREATE TABLE uv.plain (id int PRIMARY KEY, note text);
INSERT INTO uv.plain VALUES (1, 'x');
SELECT slotguard.update_versioned('uv.plain', '1', 0, '{"note": "y"}');
\echo :SQLSTATE
CREATE TABLE uv.nokey (id int, note text);
SELECT slotguard.enable_versioning('uv.nokey');
SELECT slotguard.update_versioned('uv.nokey', '1', 0, '{"note": "y"}');
\echo :SQLSTATE
CREATE VIEW uv.item_view AS SELECT * FROM uv.item;
SELECT slotguard.update_versioned('uv.item_view', '1', 0, '{"note": "y"}');
\echo :SQLSTATE
-- after disable_versioning it is refused too
SELECT slotguard.disable_versioning('uv.nokey');
SELECT slotguard.update_versioned('uv.nokey', '1', 0, '{"note": "y"}');
\echo :SQLSTATE

-- UUID versions: the uuid overload; the wrong overload for the table → 22023.
CREATE TABLE uv.u (id int PRIMARY KEY, note text);
SELECT slotguard.enable_versioning('uv.u', version_type => 'uuid', timestamps => false);
INSERT INTO uv.u (id, note, version) VALUES (1, 'x', '00000000-0000-4000-8000-000000000001');
SELECT r ->> 'note' AS note, (r ->> 'version')::uuid <> '00000000-0000-4000-8000-000000000001' AS fresh
  FROM slotguard.update_versioned('uv.u', '1', '00000000-0000-4000-8000-000000000001'::uuid,
                                  '{"note": "y"}') AS r;
-- (terse: the DETAIL names the random current version)
\set VERBOSITY terse
SELECT slotguard.update_versioned('uv.u', '1', '00000000-0000-4000-8000-000000000001'::uuid,
                                  '{"note": "z"}');
\echo :SQLSTATE
\set VERBOSITY default
SELECT r ->> 'note' AS note
  FROM slotguard.update_versioned('uv.u', '1', (SELECT version FROM uv.u WHERE id = 1),
                                  '{"note": "z"}') AS r;
SELECT slotguard.update_versioned('uv.u', '2', '00000000-0000-4000-8000-000000000001'::uuid,
                                  '{"note": "z"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.u', '1', 0, '{"note": "bigint?"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '1', '00000000-0000-4000-8000-000000000001'::uuid,
                                  '{"note": "uuid?"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.u', '1', 0::bigint, '{"version": "x"}');
\echo :SQLSTATE

-- version_style 'increment': expected_version is still the version read.
CREATE TABLE uv.inc (id int PRIMARY KEY, note text);
SELECT slotguard.enable_versioning('uv.inc', version_style => 'increment', timestamps => false,
                                   require_version => true);
INSERT INTO uv.inc VALUES (1, 'x');
SELECT slotguard.update_versioned('uv.inc', '1', 0, '{"note": "y"}');
SELECT slotguard.update_versioned('uv.inc', '1', 0, '{"note": "z"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.inc', '1', 1, '{"note": "z"}');

-- A custom version column.
CREATE TABLE uv.lv (id int PRIMARY KEY, note text);
SELECT slotguard.enable_versioning('uv.lv', version_column => 'lock_version', timestamps => false);
INSERT INTO uv.lv VALUES (1, 'x');
SELECT slotguard.update_versioned('uv.lv', '1', 0, '{"note": "y"}');
SELECT slotguard.update_versioned('uv.lv', '1', 1, '{"lock_version": 7}');
\echo :SQLSTATE

-- Adding deleted_at later makes update_versioned honour it from then on.
CREATE TABLE uv.later (id int PRIMARY KEY, note text);
SELECT slotguard.enable_versioning('uv.later', timestamps => false);
INSERT INTO uv.later VALUES (1, 'x');
SELECT slotguard.update_versioned('uv.later', '1', 0, '{"note": "a"}');
ALTER TABLE uv.later ADD COLUMN deleted_at timestamptz;
SELECT slotguard.update_versioned('uv.later', '1', 1, '{"note": "b"}');
UPDATE uv.later SET deleted_at = now();
SELECT slotguard.update_versioned('uv.later', '1', 3, '{"note": "c"}');
\echo :SQLSTATE

-- Identifiers that need quoting: schema, table and columns.
CREATE SCHEMA "My Schema";
CREATE TABLE "My Schema"."Order Items" ("Id" int PRIMARY KEY, "Select" int, "weird""quote" text,
                                        "has space" boolean, "UPPER" text);
SELECT slotguard.enable_versioning('"My Schema"."Order Items"');
INSERT INTO "My Schema"."Order Items" ("Id", "Select", "weird""quote", "has space", "UPPER")
VALUES (1, 1, 'q', false, 'u');
SELECT slotguard.update_versioned('"My Schema"."Order Items"', '{"Id": 1}', 0,
         '{"Select": 2, "weird\"quote": "it''s \"quoted\"", "has space": true, "UPPER": "v"}')
       - 'created_at' - 'updated_at' AS new_row;
SELECT slotguard.update_versioned('"My Schema"."Order Items"', '1', 1, '{"Select": 3}')
       - 'created_at' - 'updated_at' AS new_row;
SELECT slotguard.update_versioned('"My Schema"."Order Items"', '1', 1, '{"Select": 4}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('"My Schema"."Order Items"', '{"id": 1}', 2, '{"Select": 4}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('"My Schema"."Order Items"', '1', 2, '{"select": 4}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('"My Schema"."Order Items"', '9', 2, '{"Select": 4}');
\echo :SQLSTATE
SELECT "Id", "Select", "weird""quote", "has space", "UPPER", version
  FROM "My Schema"."Order Items";

-- Injection attempts through column names and the version column name.
CREATE TABLE uv.victim (id int PRIMARY KEY);
SELECT slotguard.update_versioned('uv.item', '1', 6, '{"note = 1; DROP TABLE uv.victim; --": 1}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '1', 6, '{"note\" = 1; DROP TABLE uv.victim; --": 1}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '{"id = 1 OR true; DROP TABLE uv.victim; --": 1}', 6,
                                  '{"note": 1}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.item', '{"id\") OR true; DROP TABLE uv.victim; --": 1}', 6,
                                  '{"note": 1}');
\echo :SQLSTATE
SELECT to_regclass('uv.victim') AS victim;
CREATE TABLE uv.evil (id int PRIMARY KEY, note text);
INSERT INTO uv.evil VALUES (1, 'x');
SELECT slotguard.enable_versioning('uv.evil', version_column => 'v"; DROP TABLE uv.victim; --');
SELECT id, note, "v""; DROP TABLE uv.victim; --" FROM uv.evil;
SELECT version_column FROM slotguard.versioned_tables WHERE tbl = 'uv.evil'::regclass;
UPDATE uv.evil SET note = 'y', "v""; DROP TABLE uv.victim; --" = 0 RETURNING id, note,
       "v""; DROP TABLE uv.victim; --";
UPDATE uv.evil SET note = 'z', "v""; DROP TABLE uv.victim; --" = 0;
\echo :SQLSTATE
SELECT slotguard.update_versioned('uv.evil', '1', 1, '{"note": "w"}')
       - 'created_at' - 'updated_at' AS new_row;
SELECT slotguard.update_versioned('uv.evil', '1', 1, '{"note": "v"}');
\echo :SQLSTATE
SELECT slotguard.disable_versioning('uv.evil');
SELECT to_regclass('uv.victim') AS victim;
-- a column whose name is a quoted injection attempt, updated legitimately
ALTER TABLE uv.item ADD COLUMN "x'); DROP TABLE uv.victim; --" text;
SELECT slotguard.update_versioned('uv.item', '1', 6, '{"x''); DROP TABLE uv.victim; --": "fine"}')
       ->> 'x''); DROP TABLE uv.victim; --' AS value;
SELECT to_regclass('uv.victim') AS victim;

-- Kept fixed: update_versioned must not keep using a statement prepared for an earlier
-- configuration of the table (the cache key is relid + changed columns; not the version column,
-- style or name).
CREATE TABLE uv.recfg (id int PRIMARY KEY, note text);
SELECT slotguard.enable_versioning('uv.recfg', timestamps => false);
INSERT INTO uv.recfg VALUES (1, 'x');
SELECT slotguard.update_versioned('uv.recfg', '1', 0, '{"note": "a"}');
-- switched to version_style 'increment': the right expected version must succeed
SELECT slotguard.enable_versioning('uv.recfg', timestamps => false, version_style => 'increment');
SELECT slotguard.update_versioned('uv.recfg', '1', 1, '{"note": "b"}');
-- switched to another version column: the new column must be checked (the second call is
-- stale), and the old column left alone
SELECT slotguard.enable_versioning('uv.recfg', timestamps => false, version_column => 'rev');
SELECT slotguard.update_versioned('uv.recfg', '1', 0, '{"note": "c"}');
SELECT slotguard.update_versioned('uv.recfg', '1', 0, '{"note": "d"}');
\echo :SQLSTATE
SELECT * FROM uv.recfg;

-- Kept fixed: after ALTER TABLE ... RENAME a cached statement must not still name the old table
-- (that gave 42P01, or, once another table had that name, updated that other table).
CREATE TABLE uv.acct (id int PRIMARY KEY, owner text);
SELECT slotguard.enable_versioning('uv.acct', timestamps => false);
INSERT INTO uv.acct VALUES (1, 'alice');
SELECT slotguard.update_versioned('uv.acct', '1', 0, '{"owner": "alice2"}');
ALTER TABLE uv.acct RENAME TO acct_old;
SELECT slotguard.update_versioned('uv.acct_old', '1', 1, '{"owner": "alice3"}');
CREATE TABLE uv.acct (id int PRIMARY KEY, owner text);
SELECT slotguard.enable_versioning('uv.acct', timestamps => false);
INSERT INTO uv.acct VALUES (1, 'bob');
SELECT slotguard.update_versioned('uv.acct_old', '1', 2, '{"owner": "alice4"}');
SELECT 'acct' AS tbl, * FROM uv.acct UNION ALL SELECT 'acct_old', * FROM uv.acct_old ORDER BY 1;

DROP SCHEMA uv CASCADE;
DROP SCHEMA "My Schema" CASCADE;
