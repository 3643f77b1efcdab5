-- privileges_hardening: every rule of docs/guarantees.md "Privileges" proved as plain roles, and the privilege
-- escapes found in the hardening review: rules read from trigger arguments and predicates run as
-- the caller of find_conflicts, btree_gist created in a caller's schema, a 23P01 DETAIL naming a
-- row the writer may not see, slotguard's locks taken with pg_advisory_lock, and bookings acted on
-- by roles that do not manage their slot.
--
-- It runs in a database of its own (btree_gist must not be installed yet), and prints SQLSTATEs
-- (via try()) rather than messages where only the outcome matters.
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_sg_hardening;
DO $$
DECLARE r text;
BEGIN
  FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress\_sgh\_%' ORDER BY 1 DESC LOOP
    EXECUTE format('DROP ROLE %I', r);
  END LOOP;
END $$;
RESET client_min_messages;
CREATE DATABASE regress_sg_hardening;
CREATE ROLE regress_sgh_owner;                                 -- owns the tables
CREATE ROLE regress_sgh_member IN ROLE regress_sgh_owner;      -- counts as owner
CREATE ROLE regress_sgh_app;                                   -- an application
CREATE ROLE regress_sgh_outsider;                              -- no USAGE on slotguard
CREATE ROLE regress_sgh_monitor;
CREATE ROLE regress_sgh_auditor;
CREATE ROLE regress_sgh_admin;
CREATE ROLE regress_sgh_updater;                               -- UPDATE on one table only
CREATE ROLE regress_sgh_evil;
CREATE ROLE regress_sgh_daemon;                                -- calls find_conflicts
CREATE ROLE regress_sgh_carol;
CREATE ROLE regress_sgh_bob;
CREATE ROLE regress_sgh_dave;
CREATE ROLE regress_sgh_tenant_a;
CREATE ROLE regress_sgh_tenant_b;
CREATE ROLE regress_sgh_a_user IN ROLE regress_sgh_tenant_a;
CREATE ROLE regress_sgh_b_user IN ROLE regress_sgh_tenant_b;
\c regress_sg_hardening
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET client_min_messages = warning;
CREATE EXTENSION slotguard CASCADE;
RESET client_min_messages;

-- try(sql) runs sql with the caller's rights and returns 'ok' or the SQLSTATE it failed with.
CREATE FUNCTION public.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text;
BEGIN
  EXECUTE sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
  RETURN st;
END $$;
-- reveals(sql, secret) runs sql and tells whether its error's message, detail or hint mentions
-- any of the secret strings.
CREATE FUNCTION public.reveals(sql text, VARIADIC secrets text[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; m text; d text; h text; s text;
BEGIN
  EXECUTE sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL,
                          h = PG_EXCEPTION_HINT;
  FOREACH s IN ARRAY secrets LOOP
    IF concat_ws(' ', m, d, h) LIKE '%' || s || '%' THEN
      RETURN st || ': reveals ' || s;
    END IF;
  END LOOP;
  RETURN st || ': reveals nothing';
END $$;

CREATE SCHEMA hz AUTHORIZATION regress_sgh_owner;
GRANT USAGE ON SCHEMA hz TO PUBLIC;
SET ROLE regress_sgh_owner;
CREATE TABLE hz.doc (id int PRIMARY KEY, status text, body text);
INSERT INTO hz.doc VALUES (1, 'new', 'a'), (2, 'new', 'b');
RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- Rule: slotguard grants nothing to PUBLIC. Without USAGE on schema slotguard a role can call
-- nothing and read nothing, not even for its own table.
SELECT c.oid::regclass AS readable_by_public
  FROM pg_class c
 WHERE c.relnamespace = 'slotguard'::regnamespace
   AND (has_table_privilege('public', c.oid, 'SELECT') OR has_table_privilege('public', c.oid, 'INSERT')
        OR has_table_privilege('public', c.oid, 'UPDATE') OR has_table_privilege('public', c.oid, 'DELETE'));
SELECT has_schema_privilege('public', 'slotguard', 'USAGE') AS public_usage;
SELECT slotguard.create_slot(3) AS slot_open \gset
SET ROLE regress_sgh_owner;
CREATE TABLE hz.own (id int PRIMARY KEY, room int, starts_at timestamptz, ends_at timestamptz);
RESET ROLE;
GRANT regress_sgh_owner TO regress_sgh_outsider;  -- owns hz.own through membership
SET ROLE regress_sgh_outsider;
SELECT try($$SELECT slotguard.enable_versioning('hz.own')$$) AS enable_versioning,
       try($$SELECT slotguard.add_overlap_rule('hz.own', 'r', '{room}', '{starts_at,ends_at}')$$) AS add_overlap_rule,
       try($$SELECT slotguard.find_conflicts('hz.own', '{}')$$) AS find_conflicts,
       try(format('SELECT slotguard.reserve(%s, %L)', :slot_open, 'x')) AS reserve,
       try(format('SELECT slotguard.availability(%s)', :slot_open)) AS availability,
       try('SELECT slotguard.create_slot(1)') AS create_slot,
       try('SELECT * FROM slotguard.stats') AS stats;
RESET ROLE;
REVOKE regress_sgh_owner FROM regress_sgh_outsider;

GRANT USAGE ON SCHEMA slotguard
   TO regress_sgh_owner, regress_sgh_app, regress_sgh_monitor, regress_sgh_auditor,
      regress_sgh_admin, regress_sgh_updater, regress_sgh_evil, regress_sgh_daemon,
      regress_sgh_carol, regress_sgh_bob, regress_sgh_dave, regress_sgh_tenant_a, regress_sgh_tenant_b;

-- ---------------------------------------------------------------------------------------------
-- Escape: add_overlap_rule installed btree_gist, as superuser, into the first schema of the
-- caller's search_path — a schema the caller may own and later drop with CASCADE. (First: no
-- overlap rule may have installed it yet.)
SELECT count(*) AS btree_gist_before FROM pg_extension WHERE extname = 'btree_gist'
   AND extnamespace <> 'slotguard'::regnamespace AND extnamespace <> 'public'::regnamespace
   AND extnamespace <> 'pg_catalog'::regnamespace;
CREATE SCHEMA own_s AUTHORIZATION regress_sgh_owner;
SET ROLE regress_sgh_owner;
CREATE TABLE own_s.room (id int PRIMARY KEY, room int, during tstzrange);
SET search_path = own_s, public;
SELECT slotguard.add_overlap_rule('own_s.room', 'busy', '{room}', '{during}');
RESET search_path;
RESET ROLE;
SELECT extnamespace::regnamespace::text <> 'own_s' AS btree_gist_not_in_callers_schema
  FROM pg_extension WHERE extname = 'btree_gist';
SET ROLE regress_sgh_owner;
SET client_min_messages = warning;
DROP SCHEMA own_s CASCADE;
RESET client_min_messages;
RESET ROLE;
SELECT count(*) AS btree_gist_survives FROM pg_extension WHERE extname = 'btree_gist';

-- ---------------------------------------------------------------------------------------------
-- Rule: functions that change how a table behaves require ownership of it (42501), as ALTER
-- TABLE does; a member of the owning role counts as owner. The app has every table privilege.
GRANT ALL ON hz.doc, hz.own TO regress_sgh_app;
SET ROLE regress_sgh_app;
SELECT try($$SELECT slotguard.enable_versioning('hz.doc')$$) AS enable_versioning,
       try($$SELECT slotguard.add_transition_rule('hz.doc', 'status', '{"new": ["done"]}')$$) AS add_transition_rule,
       try($$SELECT slotguard.add_overlap_rule('hz.own', 'r', '{room}', '{starts_at,ends_at}')$$) AS add_overlap_rule;
RESET ROLE;
SET ROLE regress_sgh_member;
SELECT try($$SELECT slotguard.enable_versioning('hz.doc', audit => true, timestamps => false)$$) AS enable_versioning,
       try($$SELECT slotguard.add_transition_rule('hz.doc', 'status', '{"": ["new"], "new": ["done"], "done": []}')$$) AS add_transition_rule;
RESET ROLE;
SET ROLE regress_sgh_app;
SELECT try($$SELECT slotguard.disable_versioning('hz.doc')$$) AS disable_versioning,
       try($$SELECT slotguard.drop_transition_rule('hz.doc', 'status')$$) AS drop_transition_rule;
RESET ROLE;
SELECT tbl, version_column, audit FROM slotguard.versioned_tables;
SELECT tbl, column_name FROM slotguard.transition_rules;

-- ---------------------------------------------------------------------------------------------
-- Rule: update_versioned runs with the caller's rights: it needs SELECT and UPDATE on the table,
-- and row-level security applies (a hidden row is simply not found: SG002).
GRANT SELECT ON hz.doc TO regress_sgh_dave;
SET ROLE regress_sgh_dave;
SELECT try($$SELECT slotguard.update_versioned('hz.doc', '1', 0, '{"body": "x"}')$$) AS select_only;
RESET ROLE;
REVOKE SELECT ON hz.doc FROM regress_sgh_dave;
GRANT UPDATE ON hz.doc TO regress_sgh_dave;
SET ROLE regress_sgh_dave;
SELECT try($$SELECT slotguard.update_versioned('hz.doc', '1', 0, '{"body": "x"}')$$) AS update_only;
RESET ROLE;
GRANT SELECT ON hz.doc TO regress_sgh_dave;
SET ROLE regress_sgh_owner;
ALTER TABLE hz.doc ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_one ON hz.doc USING (id = 1);
RESET ROLE;
SET ROLE regress_sgh_dave;
SELECT try($$SELECT slotguard.update_versioned('hz.doc', '1', 0, '{"body": "by dave"}')$$) AS visible_row,
       try($$SELECT slotguard.update_versioned('hz.doc', '2', 0, '{"body": "by dave"}')$$) AS hidden_row;
RESET ROLE;
SELECT id, body, version FROM hz.doc ORDER BY id;

-- ---------------------------------------------------------------------------------------------
-- Rule: the triggers write slotguard.audit whatever the writer's rights: a role with nothing but
-- UPDATE (and SELECT for its WHERE) on the table leaves its trail. Only the audit table's owner
-- may UPDATE or DELETE audit rows; nobody else may write them.
GRANT SELECT, UPDATE ON hz.doc TO regress_sgh_updater;
SET ROLE regress_sgh_updater;
UPDATE hz.doc SET status = 'done' WHERE id = 1;
SELECT try('SELECT count(*) FROM slotguard.audit') AS read_audit;
RESET ROLE;
SELECT db_role, tbl, op, changes->'status' AS status FROM slotguard.audit
 WHERE db_role = 'regress_sgh_updater';

-- ---------------------------------------------------------------------------------------------
-- Rule (the auditor recipe): GRANT SELECT ON slotguard.audit lets a role read it, and nothing
-- more; the owner of an audited table cannot change or delete its audit rows either.
GRANT SELECT ON slotguard.audit TO regress_sgh_auditor;
SET ROLE regress_sgh_auditor;
SELECT try('SELECT count(*) FROM slotguard.audit') AS read,
       try($$UPDATE slotguard.audit SET actor = 'forged'$$) AS update,
       try('DELETE FROM slotguard.audit') AS delete,
       try($$INSERT INTO slotguard.audit (txid, db_role, tbl, op, changes) VALUES (1, 'x', 'x', 'INSERT', '{}')$$) AS insert,
       try('TRUNCATE slotguard.audit') AS truncate;
RESET ROLE;
SET ROLE regress_sgh_owner;
SELECT try($$UPDATE slotguard.audit SET actor = 'forged'$$) AS owner_update,
       try('DELETE FROM slotguard.audit') AS owner_delete;
RESET ROLE;
SELECT count(*) > 0 AS audit_rows_kept FROM slotguard.audit WHERE actor IS DISTINCT FROM 'forged';

-- ---------------------------------------------------------------------------------------------
-- Rule (the monitoring recipe): USAGE plus SELECT on stats, versioned_tables and
-- transition_rules; everything else stays closed.
GRANT SELECT ON slotguard.stats, slotguard.versioned_tables, slotguard.transition_rules
   TO regress_sgh_monitor;
SET ROLE regress_sgh_monitor;
SELECT try('SELECT * FROM slotguard.stats') AS stats,
       try('SELECT * FROM slotguard.versioned_tables') AS versioned_tables,
       try('SELECT * FROM slotguard.transition_rules') AS transition_rules,
       try('SELECT * FROM slotguard.audit') AS audit,
       try('SELECT * FROM slotguard.bookings') AS bookings,
       try('SELECT * FROM slotguard.overlap_rule_defs') AS overlap_rule_defs,
       try('SELECT slotguard.stats_reset()') AS stats_reset;
SELECT tbl FROM slotguard.versioned_tables;
RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- Rule: EXECUTE on single functions is granted and revoked as usual (the README's recipe: only
-- an admin role changes table configuration).
REVOKE EXECUTE ON FUNCTION slotguard.enable_versioning(regclass, name, text, boolean, boolean, boolean, text),
                           slotguard.disable_versioning(regclass) FROM PUBLIC;
GRANT  EXECUTE ON FUNCTION slotguard.enable_versioning(regclass, name, text, boolean, boolean, boolean, text),
                           slotguard.disable_versioning(regclass) TO regress_sgh_admin;
GRANT regress_sgh_owner TO regress_sgh_admin;
SET ROLE regress_sgh_owner;
SELECT try($$SELECT slotguard.enable_versioning('hz.own')$$) AS owner_without_execute;
RESET ROLE;
SET ROLE regress_sgh_admin;
SELECT try($$SELECT slotguard.enable_versioning('hz.own')$$) AS admin,
       try($$SELECT slotguard.disable_versioning('hz.own')$$) AS admin_disable;
RESET ROLE;
GRANT EXECUTE ON FUNCTION slotguard.enable_versioning(regclass, name, text, boolean, boolean, boolean, text),
                          slotguard.disable_versioning(regclass) TO PUBLIC;
REVOKE regress_sgh_owner FROM regress_sgh_admin;

-- ---------------------------------------------------------------------------------------------
-- Rule: code that runs with the extension owner's rights (the audit writer, the reservation
-- functions, the overlap check) uses only schema-qualified names and operators: objects on the
-- writer's search_path never run, however the writer orders it.
SET ROLE regress_sgh_owner;
ALTER TABLE hz.own ADD COLUMN status text;
SELECT slotguard.add_overlap_rule('hz.own', 'room_busy', '{room}', '{starts_at,ends_at}',
                                  only_when => $$status IS DISTINCT FROM 'cancelled'$$);
SELECT slotguard.enable_versioning('hz.own', audit => true, timestamps => false);
RESET ROLE;
GRANT SELECT, INSERT, UPDATE ON hz.own TO regress_sgh_evil;
CREATE SCHEMA evil AUTHORIZATION regress_sgh_evil;
SET ROLE regress_sgh_evil;
CREATE FUNCTION evil.trap(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'evil code ran as %', current_user; END $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.trap);
CREATE FUNCTION evil.trap_int(int, int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'evil code ran as %', current_user; END $$;
CREATE OPERATOR evil.= (LEFTARG = int, RIGHTARG = int, FUNCTION = evil.trap_int);
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'evil code ran as %', current_user; END $$;
CREATE FUNCTION evil.txid_current() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'evil code ran as %', current_user; END $$;
CREATE FUNCTION evil.jsonb_object_agg(text, jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb';
SET search_path = evil, pg_catalog, public;
SELECT try($$INSERT INTO hz.own (id, room, starts_at, ends_at, status) VALUES (1, 1, '2030-01-01 10:00', '2030-01-01 11:00', 'new')$$) AS insert_checked_and_audited,
       try($$INSERT INTO hz.own (id, room, starts_at, ends_at, status) VALUES (2, 1, '2030-01-01 10:30', '2030-01-01 11:30', 'new')$$) AS overlapping_insert,
       try($$UPDATE hz.own SET status = 'cancelled', version = 0 WHERE id OPERATOR(pg_catalog.=) 1$$) AS update_audited,
       try(format('SELECT slotguard.reserve(%s, %L)', :slot_open, 'evil')) AS reserve;
RESET search_path;
RESET ROLE;
SELECT op, db_role FROM slotguard.audit WHERE tbl = 'hz.own' ORDER BY id;

-- ---------------------------------------------------------------------------------------------
-- Rule (docs/apps.md): the reservation functions need nothing
-- but USAGE on the schema; find_conflicts runs with the caller's rights (SELECT on the table).
SET ROLE regress_sgh_app;
SELECT id AS app_booking FROM slotguard.reserve(:slot_open, 'app-holder') \gset
SELECT try(format('SELECT slotguard.confirm(%s)', :app_booking)) AS confirm,
       try(format('SELECT slotguard.booking(%s)', :app_booking)) AS booking,
       try(format('SELECT slotguard.availability(%s)', :slot_open)) AS availability,
       try(format('SELECT slotguard.cancel(%s)', :app_booking)) AS cancel;
RESET ROLE;
SET ROLE regress_sgh_dave;
SELECT try($$SELECT slotguard.find_conflicts('hz.own', '{"room": 1}')$$) AS find_conflicts_without_select;
RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- Escape: find_conflicts took its rules from the arguments of any trigger named
-- slotguard_30_overlap_*, so a table owner could make whoever calls find_conflicts on its table
-- run SQL of its choosing. Rules come from slotguard's catalog: a hand-made trigger is no rule.
SET ROLE regress_sgh_evil;
CREATE TABLE evil.t (id int PRIMARY KEY, room int, starts_at timestamptz, ends_at timestamptz);
INSERT INTO evil.t VALUES (1, 1, '2030-01-01 10:00', '2030-01-01 11:00');
CREATE FUNCTION evil.steal() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF current_user <> 'regress_sgh_evil' THEN
    RAISE EXCEPTION 'evil code ran as %', current_user;
  END IF;
  RETURN true;
END $$;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
GRANT SELECT ON evil.t TO regress_sgh_daemon;
CREATE TRIGGER slotguard_30_overlap_x AFTER INSERT OR UPDATE ON evil.t FOR EACH ROW
  EXECUTE FUNCTION slotguard.overlap_trigger('1', 'x', '1', 'pg_catalog.tstzrange', 'evil.steal()',
                                             '', '1', 'room', 'starts_at', 'ends_at');
RESET ROLE;
SET ROLE regress_sgh_daemon;
SELECT try($$SELECT slotguard.find_conflicts('evil.t', '{"room": 1, "starts_at": "2030-01-01 10:30", "ends_at": "2030-01-01 10:45"}')$$) AS crafted_trigger,
       (SELECT count(*) FROM slotguard.find_conflicts('evil.t', '{"room": 2}')) AS rules_found;
RESET ROLE;

-- Escape: a rule's only_when ran with the rights of whoever called find_conflicts (a Trojan for
-- the daemon's role). It runs as the table's owner, as in the trigger.
SET ROLE regress_sgh_evil;
DROP TRIGGER slotguard_30_overlap_x ON evil.t;
CREATE FUNCTION evil.is_live(status text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF current_user <> 'regress_sgh_evil' THEN
    RAISE EXCEPTION 'only_when ran as %', current_user;
  END IF;
  RETURN true;
END $$;
ALTER TABLE evil.t ADD COLUMN status text;
SELECT slotguard.add_overlap_rule('evil.t', 'busy', '{room}', '{starts_at,ends_at}',
                                  only_when => 'evil.is_live(status)');
RESET ROLE;
SET ROLE regress_sgh_daemon;
SELECT try($$SELECT slotguard.find_conflicts('evil.t', '{"room": 1, "starts_at": "2030-01-01 10:30", "ends_at": "2030-01-01 10:45"}')$$) AS only_when_trojan;
SELECT rule_name, conflicting_key
  FROM slotguard.find_conflicts('evil.t', '{"room": 1, "starts_at": "2030-01-01 10:30", "ends_at": "2030-01-01 10:45"}');
RESET ROLE;
-- (the trigger path always ran it as the owner)
GRANT INSERT ON evil.t TO regress_sgh_daemon;
SET ROLE regress_sgh_daemon;
SELECT try($$INSERT INTO evil.t VALUES (2, 2, '2030-01-01 10:00', '2030-01-01 11:00', 'new')$$) AS insert_by_daemon;
RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- Escape: the 23P01 error named the conflicting row's key and period even when the writer may
-- not see that row (row-level security, or no SELECT right). As PostgreSQL's own exclusion
-- constraints do, the DETAIL is withheld then.
SET ROLE regress_sgh_owner;
CREATE TABLE hz.visit (id int PRIMARY KEY, room int, holder name NOT NULL DEFAULT current_user,
                       starts_at timestamptz, ends_at timestamptz);
SELECT slotguard.add_overlap_rule('hz.visit', 'room_busy', '{room}', '{starts_at,ends_at}');
ALTER TABLE hz.visit ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON hz.visit USING (holder = current_user);
GRANT SELECT, INSERT ON hz.visit TO regress_sgh_carol, regress_sgh_bob;
GRANT INSERT ON hz.visit TO regress_sgh_dave;
RESET ROLE;
SET ROLE regress_sgh_carol;
INSERT INTO hz.visit (id, room, starts_at, ends_at) VALUES (1001, 1, '2030-01-01 10:00', '2030-01-01 11:00');
RESET ROLE;
SET ROLE regress_sgh_bob;   -- row-level security hides carol's row
SELECT reveals($$INSERT INTO hz.visit (id, room, starts_at, ends_at) VALUES (2002, 1, '2030-01-01 10:30', '2030-01-01 11:30')$$,
               '1001', '10:00:00', 'carol') AS writer_under_rls;
RESET ROLE;
SET ROLE regress_sgh_dave;  -- INSERT but no SELECT
SELECT reveals($$INSERT INTO hz.visit (id, room, holder, starts_at, ends_at) VALUES (3003, 1, 'regress_sgh_dave', '2030-01-01 10:30', '2030-01-01 11:30')$$,
               '1001', '10:00:00', 'carol') AS writer_without_select;
RESET ROLE;
SET ROLE regress_sgh_owner; -- the owner sees every row: told which one
SELECT reveals($$INSERT INTO hz.visit (id, room, starts_at, ends_at) VALUES (4004, 1, '2030-01-01 10:30', '2030-01-01 11:30')$$,
               '1001') AS owner;
RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- Escape: slotguard's rule and holder locks lived in the SQL advisory-lock key space, where any
-- role could take them with pg_advisory_lock and block a room or a holder. They are of a lock
-- class SQL cannot take: another session of a plain role takes every SQL advisory lock with the
-- same keys while we hold slotguard's, without waiting, and we are not blocked by its locks.
SET client_min_messages = warning;
CREATE EXTENSION dblink;
RESET client_min_messages;
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
                                      split_part(current_setting('unix_socket_directories'), ',', 1),
                                      current_setting('port'), current_database(), current_user));
SELECT dblink_exec('other', 'SET ROLE regress_sgh_app');
SET ROLE regress_sgh_owner;
CREATE TABLE hz.lockt (id int PRIMARY KEY, room int, during tstzrange);
SELECT slotguard.add_overlap_rule('hz.lockt', 'busy', '{room}', '{during}', capacity => 2);
GRANT SELECT, INSERT ON hz.lockt TO regress_sgh_app;
RESET ROLE;
SELECT slotguard.create_slot(2, one_per_holder => true) AS slot_holder \gset
BEGIN;
INSERT INTO hz.lockt VALUES (1, 7, '[2030-01-01 10:00, 2030-01-01 11:00)');
SELECT id > 0 AS reserved FROM slotguard.reserve(:slot_holder, 'h1');
CREATE TEMP TABLE held AS
  SELECT classid, objid, objsubid FROM pg_locks
   WHERE locktype = 'advisory' AND pid = pg_backend_pid();
SELECT count(*) > 0 AS holds_slotguard_locks, bool_and(objsubid NOT IN (1, 2)) AS none_takeable_from_sql
  FROM held;
SELECT bool_and(a AND b) AS other_session_took_every_sql_lock
  FROM held h,
       LATERAL dblink('other', format('SELECT pg_try_advisory_lock(%s::int8 << 32 | %s::int8), '
                                      'pg_try_advisory_lock(%s::int4, %s::int4)',
                                      h.classid, h.objid, h.classid::int4, h.objid::int4))
               AS r(a boolean, b boolean);
COMMIT;
-- and while the other session holds all of them, we still take ours
SET lock_timeout = '2s';
BEGIN;
SELECT try($$INSERT INTO hz.lockt VALUES (2, 7, '[2030-01-01 10:30, 2030-01-01 11:30)')$$) AS insert_not_blocked;
-- (SG003: h1 already holds its one booking; what matters is that it did not wait)
SELECT try(format('SELECT slotguard.reserve(%s, %L)', :slot_holder, 'h1')) AS reserve_not_blocked;
COMMIT;
RESET lock_timeout;
SELECT dblink_disconnect('other');

-- ---------------------------------------------------------------------------------------------
-- Escape: any role with USAGE could confirm, cancel or read any booking by id, and an
-- idempotency key found another holder's booking. A slot may name the role that manages it
-- (create_slot(..., managed_by)): then only members of that role may act on the slot and its
-- bookings (42501). A slot without managed_by is open to every role with USAGE, as before.
SELECT slotguard.create_slot(2, managed_by => 'regress_sgh_tenant_a') AS slot_a \gset
SELECT slotguard.create_slot(2, seat_labels => '{A1,A2}', managed_by => 'regress_sgh_tenant_a') AS slot_a_seats \gset
SET ROLE regress_sgh_a_user;
SELECT id AS booking_a FROM slotguard.reserve(:slot_a, 'alice', idempotency_key => 'k1') \gset
SELECT status FROM slotguard.booking(:booking_a);
RESET ROLE;
SET ROLE regress_sgh_b_user;
SELECT try(format('SELECT slotguard.reserve(%s, %L)', :slot_a, 'mallory')) AS reserve,
       try(format('SELECT slotguard.reserve(%s, %L, idempotency_key => %L)', :slot_a, 'alice', 'k1')) AS reserve_same_key,
       try(format('SELECT slotguard.reserve_seats(%s, %L, %L)', :slot_a_seats, 'mallory', '{A1}')) AS reserve_seats,
       try(format('SELECT slotguard.confirm(%s)', :booking_a)) AS confirm,
       try(format('SELECT slotguard.cancel(%s)', :booking_a)) AS cancel,
       try(format('SELECT slotguard.booking(%s)', :booking_a)) AS booking,
       try(format('SELECT slotguard.availability(%s)', :slot_a)) AS availability;
RESET ROLE;
SET ROLE regress_sgh_a_user;
SELECT status FROM slotguard.confirm(:booking_a);
SELECT capacity, confirmed, held, free FROM slotguard.availability(:slot_a);
RESET ROLE;
-- An idempotency key names one holder's request: another holder's retry with it is refused
-- (22023) instead of handed that booking.
SET ROLE regress_sgh_a_user;
SELECT id AS booking_open FROM slotguard.reserve(:slot_open, 'alice', idempotency_key => 'k2') \gset
RESET ROLE;
SET ROLE regress_sgh_b_user;
SELECT try(format('SELECT slotguard.reserve(%s, %L, idempotency_key => %L)', :slot_open, 'bob', 'k2')) AS other_holder_same_key;
SELECT id = :booking_open AS same_holder_retry_gets_it
  FROM slotguard.reserve(:slot_open, 'alice', idempotency_key => 'k2');
RESET ROLE;

\c contrib_regression
SET client_min_messages = warning;
DROP DATABASE regress_sg_hardening;
DO $$
DECLARE r text;
BEGIN
  FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress\_sgh\_%' ORDER BY 1 DESC LOOP
    EXECUTE format('DROP ROLE %I', r);
  END LOOP;
END $$;
RESET client_min_messages;
