-- privileges: schema USAGE, table ownership, the caller's rights in update_versioned, row-level
-- security, search_path safety and the monitoring recipe (docs/guarantees.md, "Privileges").
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS priv CASCADE;
DROP SCHEMA IF EXISTS evil CASCADE;
DROP ROLE IF EXISTS regress_sg_owner;
DROP ROLE IF EXISTS regress_sg_other;
DROP ROLE IF EXISTS regress_sg_member;
DROP ROLE IF EXISTS regress_sg_evil;
DROP ROLE IF EXISTS regress_sg_monitor;
RESET client_min_messages;

CREATE ROLE regress_sg_owner;
CREATE ROLE regress_sg_other;
CREATE ROLE regress_sg_member IN ROLE regress_sg_owner;
CREATE SCHEMA priv AUTHORIZATION regress_sg_owner;
GRANT USAGE ON SCHEMA priv TO regress_sg_other;

-- Without USAGE on schema slotguard a role can call nothing (42501), not even on its own table.
SET ROLE regress_sg_owner;
CREATE TABLE priv.doc (id int PRIMARY KEY, owner_name text NOT NULL, status text, body text);
SELECT slotguard.enable_versioning('priv.doc');
\echo :SQLSTATE
SELECT slotguard.update_versioned('priv.doc', '1', 0, '{"body": "x"}');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('priv.doc', 'status', '{"new": ["done"]}');
\echo :SQLSTATE
SELECT * FROM slotguard.versioned_tables;
\echo :SQLSTATE
RESET ROLE;

-- With USAGE, the owner of a table may version it, audit it and give it rules.
GRANT USAGE ON SCHEMA slotguard TO regress_sg_owner, regress_sg_other;
SET ROLE regress_sg_owner;
SELECT slotguard.enable_versioning('priv.doc', audit => true, timestamps => false);
SELECT slotguard.add_transition_rule('priv.doc', 'status',
                                     '{"": ["new"], "new": ["done"], "done": []}');
INSERT INTO priv.doc (id, owner_name, status, body)
VALUES (1, 'regress_sg_owner', 'new', 'mine'), (2, 'regress_sg_other', 'new', 'theirs');
GRANT SELECT ON priv.doc TO regress_sg_other;
RESET ROLE;
-- (the views are the extension owner's: a DBA reads them)
SELECT * FROM slotguard.versioned_tables WHERE tbl = 'priv.doc'::regclass;
SELECT * FROM slotguard.transition_rules WHERE tbl = 'priv.doc'::regclass;

-- A member of the owning role counts as owner, as for ALTER TABLE.
SET ROLE regress_sg_member;
SELECT slotguard.enable_versioning('priv.doc', audit => true, timestamps => false);
RESET ROLE;

-- A non-owner gets 42501 from everything that changes the table's behaviour.
SET ROLE regress_sg_other;
SELECT slotguard.enable_versioning('priv.doc');
\echo :SQLSTATE
SELECT slotguard.enable_versioning('priv.doc', audit => false, timestamps => false);
\echo :SQLSTATE
SELECT slotguard.disable_versioning('priv.doc');
\echo :SQLSTATE
SELECT slotguard.add_transition_rule('priv.doc', 'status', '{"new": ["done", "gone"]}');
\echo :SQLSTATE
SELECT slotguard.drop_transition_rule('priv.doc', 'status');
\echo :SQLSTATE
-- (a non-owner learns nothing about columns either: the ownership check comes first)
SELECT slotguard.add_transition_rule('priv.doc', 'no_such_column', '{}');
\echo :SQLSTATE
RESET ROLE;
SELECT * FROM slotguard.versioned_tables WHERE tbl = 'priv.doc'::regclass;
SELECT * FROM slotguard.transition_rules WHERE tbl = 'priv.doc'::regclass;

-- update_versioned runs with the caller's rights: SELECT alone is not enough.
SET ROLE regress_sg_other;
SELECT slotguard.update_versioned('priv.doc', '2', 0, '{"body": "edited"}');
\echo :SQLSTATE
UPDATE priv.doc SET body = 'edited' WHERE id = 2;
\echo :SQLSTATE
RESET ROLE;
-- With UPDATE on the table it works.
GRANT UPDATE ON priv.doc TO regress_sg_other;
SET ROLE regress_sg_other;
SELECT slotguard.update_versioned('priv.doc', '2', 0, '{"body": "edited"}');
RESET ROLE;

-- Row-level security applies: hidden rows are not found (SG002), WITH CHECK violations are 42501.
-- The superuser calls first, so that a plan made without row security is in the session's cache.
SELECT slotguard.update_versioned('priv.doc', '1', 0, '{"body": "by superuser"}');
ALTER TABLE priv.doc ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON priv.doc USING (owner_name = current_user)
  WITH CHECK (owner_name = current_user);
SET ROLE regress_sg_other;
SELECT id, body, version FROM priv.doc ORDER BY id;
SELECT slotguard.update_versioned('priv.doc', '1', 1, '{"body": "not yours"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('priv.doc', '{"id": 1}', 1, '{"body": "not yours"}');
\echo :SQLSTATE
SELECT slotguard.update_versioned('priv.doc', '2', 1, '{"body": "still mine"}');
SELECT slotguard.update_versioned('priv.doc', '2', 2, '{"owner_name": "regress_sg_owner"}');
\echo :SQLSTATE
RESET ROLE;
SELECT id, owner_name, body, version FROM priv.doc ORDER BY id;
ALTER TABLE priv.doc DISABLE ROW LEVEL SECURITY;

-- Column privileges: UPDATE of body alone allows a plain UPDATE of body (the trigger bumps the
-- version), but asserting a version needs UPDATE on the version column, in SQL as through
-- update_versioned.
REVOKE UPDATE ON priv.doc FROM regress_sg_other;
GRANT UPDATE (body) ON priv.doc TO regress_sg_other;
SET ROLE regress_sg_other;
UPDATE priv.doc SET body = 'column grant' WHERE id = 2 RETURNING id, body, version;
UPDATE priv.doc SET body = 'column grant', version = 3 WHERE id = 2;
\echo :SQLSTATE
SELECT slotguard.update_versioned('priv.doc', '2', 3, '{"body": "column grant"}');
\echo :SQLSTATE
RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- search_path safety: a writer's own objects shadowing pg_catalog's are never called by the
-- audit trigger (which runs with the extension owner's rights) nor by slotguard's statements.
CREATE ROLE regress_sg_evil;
GRANT USAGE ON SCHEMA priv TO regress_sg_evil;
GRANT SELECT, INSERT, UPDATE, DELETE ON priv.doc TO regress_sg_evil;
GRANT USAGE ON SCHEMA slotguard TO regress_sg_evil;
CREATE SCHEMA evil AUTHORIZATION regress_sg_evil;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
SET ROLE regress_sg_evil;
CREATE FUNCTION evil.trap(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'evil % called as %', what, current_user;
END $$;
CREATE FUNCTION evil.text_eq(text, text) RETURNS boolean LANGUAGE sql
  AS $$ SELECT evil.trap('text = text') $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_eq);
CREATE FUNCTION evil.name_eq(name, name) RETURNS boolean LANGUAGE sql
  AS $$ SELECT evil.trap('name = name') $$;
CREATE OPERATOR evil.= (LEFTARG = name, RIGHTARG = name, FUNCTION = evil.name_eq);
CREATE FUNCTION evil.jsonb_eq(jsonb, jsonb) RETURNS boolean LANGUAGE sql
  AS $$ SELECT evil.trap('jsonb = jsonb') $$;
CREATE OPERATOR evil.= (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = evil.jsonb_eq);
CREATE FUNCTION evil.int4_eq(int, int) RETURNS boolean LANGUAGE sql
  AS $$ SELECT evil.trap('int = int') $$;
CREATE OPERATOR evil.= (LEFTARG = int, RIGHTARG = int, FUNCTION = evil.int4_eq);
CREATE FUNCTION evil.int8_plus(bigint, int) RETURNS bigint LANGUAGE sql
  AS $$ SELECT CASE WHEN evil.trap('bigint + int') THEN 0 END $$;
CREATE OPERATOR evil.+ (LEFTARG = bigint, RIGHTARG = int, FUNCTION = evil.int8_plus);
CREATE FUNCTION evil.jsonb_field(jsonb, text) RETURNS text LANGUAGE sql
  AS $$ SELECT CASE WHEN evil.trap('jsonb ->> text') THEN '' END $$;
CREATE OPERATOR evil.->> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = evil.jsonb_field);
CREATE FUNCTION evil.jsonb_each(jsonb, OUT key text, OUT value jsonb) RETURNS SETOF record
  LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.trap('jsonb_each'); END $$;
CREATE FUNCTION evil.agg_step(jsonb, text, jsonb) RETURNS jsonb LANGUAGE sql
  AS $$ SELECT CASE WHEN evil.trap('jsonb_object_agg') THEN $1 END $$;
CREATE AGGREGATE evil.jsonb_object_agg(text, jsonb) (SFUNC = evil.agg_step, STYPE = jsonb);
CREATE FUNCTION evil.current_setting(text, boolean) RETURNS text LANGUAGE sql
  AS $$ SELECT CASE WHEN evil.trap('current_setting') THEN '' END $$;
CREATE FUNCTION evil.txid_current() RETURNS bigint LANGUAGE sql
  AS $$ SELECT CASE WHEN evil.trap('txid_current') THEN 0 END $$;
CREATE FUNCTION evil.jsonb_build_array(jsonb, jsonb) RETURNS jsonb LANGUAGE sql
  AS $$ SELECT CASE WHEN evil.trap('jsonb_build_array') THEN '[]'::jsonb END $$;
CREATE FUNCTION evil.jsonb_populate_record(anyelement, jsonb) RETURNS anyelement LANGUAGE sql
  AS $$ SELECT CASE WHEN evil.trap('jsonb_populate_record') THEN $1 END $$;
CREATE FUNCTION evil.jsonb_build_object(text, jsonb) RETURNS jsonb LANGUAGE sql
  AS $$ SELECT CASE WHEN evil.trap('jsonb_build_object') THEN '{}'::jsonb END $$;
CREATE FUNCTION evil.to_jsonb(anyelement) RETURNS jsonb LANGUAGE sql
  AS $$ SELECT CASE WHEN evil.trap('to_jsonb') THEN '{}'::jsonb END $$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql
  AS $$ SELECT CASE WHEN evil.trap('now') THEN pg_catalog.now() END $$;
CREATE FUNCTION evil.gen_random_uuid() RETURNS uuid LANGUAGE sql
  AS $$ SELECT CASE WHEN evil.trap('gen_random_uuid') THEN NULL::uuid END $$;
-- The traps work: unqualified names now resolve to evil's objects.
SET search_path = evil, pg_catalog;
SELECT 'a'::text = 'a'::text;
SELECT current_setting('slotguard.actor', true);
SELECT jsonb_object_agg(k, v) FROM (VALUES ('a', '1'::jsonb)) AS x(k, v);
SELECT 1 = 1;
RESET search_path;

-- The evil role writes to the audited, rule-checked, versioned table with that search_path
-- (its own statements spell out pg_catalog's = so as not to trip its own traps).
SET search_path = evil, pg_catalog;
BEGIN;
SET LOCAL slotguard.actor = 'evil-actor';
INSERT INTO priv.doc (id, owner_name, status, body) VALUES (3, 'regress_sg_evil', 'new', 'e');
UPDATE priv.doc SET status = 'done', version = 0 WHERE id OPERATOR(pg_catalog.=) 3;
UPDATE priv.doc SET body = 'e2' WHERE id OPERATOR(pg_catalog.=) 3;
SELECT slotguard.update_versioned('priv.doc', '3', 2, '{"body": "e3"}');
SELECT slotguard.update_versioned('priv.doc', '{"id": 3}', 3, '{"body": "e4"}');
DELETE FROM priv.doc WHERE id OPERATOR(pg_catalog.=) 3;
COMMIT;
-- and the errors are still slotguard's
UPDATE priv.doc SET body = 'stale', version = 0 WHERE id OPERATOR(pg_catalog.=) 1;
\echo :SQLSTATE
UPDATE priv.doc SET status = 'bogus' WHERE id OPERATOR(pg_catalog.=) 2;
\echo :SQLSTATE
SELECT slotguard.update_versioned('priv.doc', '3', 0, '{"body": "gone"}');
\echo :SQLSTATE
RESET search_path;
RESET ROLE;
SELECT db_role, actor, op, old_version, new_version, changes
  FROM slotguard.audit WHERE tbl = 'priv.doc' AND row_key = '{"id": 3}' ORDER BY id;

-- A superuser with that search_path (tricked into it) runs slotguard's functions safely too.
SET search_path = evil, pg_catalog;
CREATE TABLE priv.admin_t (id int PRIMARY KEY, note text);
SELECT slotguard.enable_versioning('priv.admin_t', audit => true);
CREATE TABLE priv.admin_u (id int PRIMARY KEY, note text);
SELECT slotguard.enable_versioning('priv.admin_u', version_type => 'uuid');
SELECT slotguard.add_transition_rule('priv.admin_t', 'note', '{"a": ["b"]}');
INSERT INTO priv.admin_t (id, note) VALUES (1, 'a');
INSERT INTO priv.admin_u (id, note) VALUES (1, 'a');
SELECT slotguard.update_versioned('priv.admin_t', '1', 0, '{"note": "b"}')
       OPERATOR(pg_catalog.-) 'created_at' OPERATOR(pg_catalog.-) 'updated_at' AS new_row;
SELECT slotguard.update_versioned('priv.admin_u', '1', (SELECT version FROM priv.admin_u),
                                  '{"note": "b"}') OPERATOR(pg_catalog.->>) 'note' AS note;
SELECT count(*) FROM slotguard.versioned_tables WHERE tbl::text LIKE 'priv.admin%';
SELECT count(*) FROM slotguard.transition_rules WHERE tbl::text LIKE 'priv.admin%';
SELECT count(*) FROM slotguard.stats WHERE scope OPERATOR(pg_catalog.=) 'global';
SELECT slotguard.drop_transition_rule('priv.admin_t', 'note');
SELECT slotguard.disable_versioning('priv.admin_t');
RESET search_path;

-- ---------------------------------------------------------------------------------------------
-- The README's monitoring recipe: USAGE on the schema plus SELECT on the views.
CREATE ROLE regress_sg_monitor;
GRANT USAGE ON SCHEMA slotguard TO regress_sg_monitor;
SET ROLE regress_sg_monitor;
SELECT * FROM slotguard.stats WHERE scope = 'global';
\echo :SQLSTATE
RESET ROLE;
GRANT SELECT ON slotguard.stats, slotguard.versioned_tables, slotguard.transition_rules
   TO regress_sg_monitor;
SET ROLE regress_sg_monitor;
SELECT * FROM slotguard.stats WHERE scope = 'global';
SELECT count(*) > 0 AS sees_table_counters FROM slotguard.stats
 WHERE scope = 'table' AND object = 'priv.doc';
SELECT * FROM slotguard.versioned_tables WHERE tbl::text = 'priv.doc';
SELECT * FROM slotguard.transition_rules WHERE tbl::text = 'priv.doc';
-- and nothing more: no audit, no reset, no table changes
SELECT count(*) FROM slotguard.audit;
\echo :SQLSTATE
SELECT slotguard.stats_reset();
\echo :SQLSTATE
SELECT slotguard.disable_versioning('priv.doc');
\echo :SQLSTATE
RESET ROLE;
-- stats_reset is for superusers (or whom they grant it to).
SET ROLE regress_sg_owner;
SELECT slotguard.stats_reset();
\echo :SQLSTATE
RESET ROLE;

-- The README's recipe for letting only an admin change table configuration: EXECUTE is revoked
-- from PUBLIC; then even a table's owner gets 42501.
REVOKE EXECUTE ON FUNCTION slotguard.enable_versioning(regclass, name, text, boolean, boolean, boolean, text),
                           slotguard.disable_versioning(regclass) FROM PUBLIC;
GRANT  EXECUTE ON FUNCTION slotguard.enable_versioning(regclass, name, text, boolean, boolean, boolean, text),
                           slotguard.disable_versioning(regclass) TO regress_sg_member;
SET ROLE regress_sg_owner;
SELECT slotguard.disable_versioning('priv.doc');
\echo :SQLSTATE
SELECT slotguard.update_versioned('priv.doc', '1', 1, '{"body": "owner edit"}') ->> 'body' AS body;
RESET ROLE;
SET ROLE regress_sg_member;
SELECT slotguard.disable_versioning('priv.doc');
RESET ROLE;
GRANT EXECUTE ON FUNCTION slotguard.enable_versioning(regclass, name, text, boolean, boolean, boolean, text),
                          slotguard.disable_versioning(regclass) TO PUBLIC;
REVOKE EXECUTE ON FUNCTION slotguard.enable_versioning(regclass, name, text, boolean, boolean, boolean, text),
                           slotguard.disable_versioning(regclass) FROM regress_sg_member;

-- Clean up (roles are cluster-wide).
DROP SCHEMA priv CASCADE;
DROP SCHEMA evil CASCADE;
REVOKE ALL ON SCHEMA slotguard FROM regress_sg_owner, regress_sg_other, regress_sg_evil,
  regress_sg_monitor;
REVOKE ALL ON slotguard.stats, slotguard.versioned_tables, slotguard.transition_rules
  FROM regress_sg_monitor;
DROP ROLE regress_sg_member;
DROP ROLE regress_sg_owner;
DROP ROLE regress_sg_other;
DROP ROLE regress_sg_evil;
DROP ROLE regress_sg_monitor;
