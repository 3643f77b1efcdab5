-- orm_columns: tables whose ORM created the version and timestamp columns itself (Sequelize
-- `version: true` + `underscored: true`, ActiveRecord lock_version + timestamps): enable_versioning
-- adopts them, gives those without a default the default slotguard would have created, and its
-- SG001 for an 'increment' table says how to set the version.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS slotguard;
DROP SCHEMA IF EXISTS orm CASCADE;
RESET client_min_messages;
CREATE SCHEMA orm;

-- As Sequelize's sync() creates it: NOT NULL timestamps without defaults, version with default 0.
CREATE TABLE orm.sessions (id serial PRIMARY KEY, title text,
                           version integer NOT NULL DEFAULT 0,
                           created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
SELECT slotguard.enable_versioning('orm.sessions', version_style => 'increment');
SELECT attname, pg_get_expr(d.adbin, d.adrelid) AS default
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = 'orm.sessions'::regclass AND attname IN ('version', 'created_at', 'updated_at')
ORDER BY attnum;
-- A raw INSERT that leaves them out works.
INSERT INTO orm.sessions (title) VALUES ('CS101 A') RETURNING id, version, created_at IS NOT NULL AS has_created;
-- Calling it again changes nothing.
SELECT slotguard.enable_versioning('orm.sessions', version_style => 'increment');

-- A version column without a default gets 0 (bigint) or gen_random_uuid() (uuid).
CREATE TABLE orm.nodefault (id int PRIMARY KEY, lock_version bigint NOT NULL);
SELECT slotguard.enable_versioning('orm.nodefault', 'lock_version', timestamps => false);
SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef
WHERE adrelid = 'orm.nodefault'::regclass;
CREATE TABLE orm.uuids (id int PRIMARY KEY, v uuid);
SELECT slotguard.enable_versioning('orm.uuids', 'v', 'uuid', timestamps => false);
SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'orm.uuids'::regclass;
INSERT INTO orm.uuids (id) VALUES (1);
SELECT v IS NOT NULL AS has_version FROM orm.uuids;

-- increment style: the stale writer is told how this table wants its version set.
UPDATE orm.sessions SET title = 'x', version = 0 WHERE id = 1;
UPDATE orm.sessions SET title = 'x', version = 1 WHERE id = 1 RETURNING version;

SET client_min_messages = warning;
DROP SCHEMA orm CASCADE;
