-- overlap_hardening: overlap rules against a hostile table owner, a careless DBA and every kind of
-- range bound: rules come only from slotguard's catalog; a table's own code (a
-- predicate, a column default) runs as the table's owner, never as the caller of find_conflicts;
-- a table altered under a rule gives clear errors; capacity counts right for every bound kind;
-- errors withhold values the writer may not read; btree_gist lands in a schema no role owns;
-- a BEFORE trigger cannot slip a period past the rule, nor ATTACH PARTITION conflicting rows.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS slotguard;
DROP SCHEMA IF EXISTS ovh CASCADE;
DROP SCHEMA IF EXISTS ovh_mine CASCADE;
DO $$
DECLARE r text;
BEGIN
  FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress\_ovh\_%' LOOP
    EXECUTE format('DROP OWNED BY %I', r);
    EXECUTE format('DROP ROLE %I', r);
  END LOOP;
END $$;
RESET client_min_messages;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
CREATE ROLE regress_ovh_owner;
CREATE ROLE regress_ovh_daemon;
CREATE ROLE regress_ovh_writer;
CREATE SCHEMA ovh AUTHORIZATION regress_ovh_owner;
GRANT USAGE ON SCHEMA ovh TO regress_ovh_daemon, regress_ovh_writer;
GRANT USAGE ON SCHEMA slotguard TO regress_ovh_owner, regress_ovh_daemon, regress_ovh_writer;

-- ---------------------------------------------------------------------------------------------
-- btree_gist: when the database has none, add_overlap_rule creates it in pg_catalog, not in the
-- caller's first search_path schema (which the caller owns and could drop with CASCADE)
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS btree_gist CASCADE;
RESET client_min_messages;
CREATE SCHEMA ovh_mine AUTHORIZATION regress_ovh_owner;
SET ROLE regress_ovh_owner;
SET search_path = ovh_mine, public;
CREATE TABLE ovh.first (id int PRIMARY KEY, room int, s int, e int);
SELECT slotguard.add_overlap_rule('ovh.first', 'room_busy', '{room}', '{s,e}');
RESET search_path;
RESET ROLE;
SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'btree_gist';
DROP SCHEMA ovh_mine CASCADE;
INSERT INTO ovh.first VALUES (1, 1, 1, 5);
INSERT INTO ovh.first VALUES (2, 1, 2, 3);
\echo :SQLSTATE

-- ---------------------------------------------------------------------------------------------
-- A trigger on slotguard.overlap_trigger() that add_overlap_rule did not make — named like a
-- rule's trigger, with arguments crafted to inject SQL — is refused, not trusted: neither the
-- writer nor find_conflicts runs anything from its arguments.
SET ROLE regress_ovh_owner;
CREATE TABLE ovh.forged (id int PRIMARY KEY, room int, s int, e int);
CREATE TRIGGER slotguard_30_overlap_x AFTER INSERT OR UPDATE ON ovh.forged FOR EACH ROW
  EXECUTE FUNCTION slotguard.overlap_trigger('1', 'x', '1', '',
    'true)) sg_n, LATERAL (SELECT ''(0,1)''::tid AS sg_tid, 12345 AS sg_key, 1 AS sg_row, 1 AS sg_range) x --',
    '', '1', 'room', 's', 'e');
CREATE TRIGGER slotguard_30_overlap_y AFTER INSERT ON ovh.forged FOR EACH ROW
  EXECUTE FUNCTION slotguard.overlap_trigger('x', 'y', '-7', 'pg_catalog.int4range', '', '', '99');
CREATE TRIGGER slotguard_30_overlap_z AFTER INSERT ON ovh.forged FOR EACH ROW
  EXECUTE FUNCTION slotguard.overlap_trigger();
INSERT INTO ovh.forged VALUES (1, 1, 1, 5);
\echo :SQLSTATE
RESET ROLE;
GRANT SELECT ON ovh.forged TO regress_ovh_daemon;
SET ROLE regress_ovh_daemon;
SELECT * FROM slotguard.find_conflicts('ovh.forged', '{"room": 1, "s": 1, "e": 5}');
RESET ROLE;
-- fired BEFORE, per statement, or for DELETE: refused as well
SET ROLE regress_ovh_owner;
DROP TRIGGER slotguard_30_overlap_x ON ovh.forged;
DROP TRIGGER slotguard_30_overlap_y ON ovh.forged;
DROP TRIGGER slotguard_30_overlap_z ON ovh.forged;
CREATE TRIGGER t_before BEFORE INSERT ON ovh.forged FOR EACH ROW
  EXECUTE FUNCTION slotguard.overlap_trigger();
INSERT INTO ovh.forged VALUES (1, 1, 1, 5);
\echo :SQLSTATE
DROP TRIGGER t_before ON ovh.forged;
CREATE TRIGGER t_delete AFTER DELETE ON ovh.forged FOR EACH ROW
  EXECUTE FUNCTION slotguard.overlap_trigger();
INSERT INTO ovh.forged VALUES (1, 1, 1, 5);
DELETE FROM ovh.forged;
\echo :SQLSTATE
DROP TRIGGER t_delete ON ovh.forged;
-- a real rule's trigger works with the catalog; a second, hand-made trigger of the same function
-- next to it is refused
SELECT slotguard.add_overlap_rule('ovh.forged', 'x', '{room}', '{s,e}');
INSERT INTO ovh.forged VALUES (2, 1, 2, 3);
\echo :SQLSTATE
CREATE TRIGGER slotguard_30_overlap_w AFTER INSERT ON ovh.forged FOR EACH ROW
  EXECUTE FUNCTION slotguard.overlap_trigger('1', 'x', '1', '', '', '', '1', 'room', 's', 'e');
INSERT INTO ovh.forged VALUES (3, 2, 2, 3);
\echo :SQLSTATE
DROP TRIGGER slotguard_30_overlap_w ON ovh.forged;
RESET ROLE;

-- only_when must be one expression: text that closes its parenthesis and goes on is refused
SET ROLE regress_ovh_owner;
SELECT slotguard.add_overlap_rule('ovh.forged', 'inj', '{room}', '{s,e}',
                                  only_when => 'true) UNION ALL (SELECT');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovh.forged', 'inj', '{room}', '{s,e}',
                                  only_when => 'true), (1');
\echo :SQLSTATE
SELECT slotguard.add_overlap_rule('ovh.forged', 'inj', '{room}', '{s,e}',
                                  only_when => 'true) --');
\echo :SQLSTATE
RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- Trojans: the owner's predicate and column defaults run as the owner (restricted), never as the
-- role that calls find_conflicts (e.g. the daemon's) or writes the row.
SET ROLE regress_ovh_owner;
CREATE TABLE ovh.seen (who text, what text);
GRANT INSERT ON ovh.seen TO PUBLIC;
CREATE FUNCTION ovh.spy(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ovh.seen VALUES (current_user, what);
  RETURN true;
END $$;
CREATE FUNCTION ovh.spy_default() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ovh.seen VALUES (current_user, 'default');
  RETURN 'd';
END $$;
CREATE TABLE ovh.trojan (id int PRIMARY KEY, room int, s int, e int, tag text DEFAULT ovh.spy_default());
SELECT slotguard.add_overlap_rule('ovh.trojan', 'room_busy', '{room}', '{s,e}',
                                  only_when => $$ovh.spy('predicate')$$);
INSERT INTO ovh.trojan VALUES (1, 1, 1, 5, 'x');
RESET ROLE;
GRANT SELECT ON ovh.trojan TO regress_ovh_daemon;
DELETE FROM ovh.seen;
SET ROLE regress_ovh_daemon;
SELECT rule_name, conflicting_key FROM slotguard.find_conflicts('ovh.trojan', '{"room": 1, "s": 2, "e": 3}');
RESET ROLE;
SELECT DISTINCT who, what FROM ovh.seen ORDER BY 1, 2;

-- ---------------------------------------------------------------------------------------------
-- The table altered under a rule: clear errors (42703, 42804), never a crash, for the trigger and
-- for find_conflicts alike.
SET ROLE regress_ovh_owner;
CREATE TABLE ovh.alt (id int PRIMARY KEY, room int, s int, e int, during int4range);
SELECT slotguard.add_overlap_rule('ovh.alt', 'pair', '{room}', '{s,e}');
SELECT slotguard.add_overlap_rule('ovh.alt', 'range', '{room}', '{during}');
INSERT INTO ovh.alt VALUES (1, 1, 1, 5, '[1,5)');
-- a renamed key column
ALTER TABLE ovh.alt RENAME COLUMN room TO room_no;
INSERT INTO ovh.alt VALUES (2, 1, 7, 9, '[7,9)');
\echo :SQLSTATE
SELECT * FROM slotguard.find_conflicts('ovh.alt', '{"room_no": 1, "s": 2, "e": 3}');
\echo :SQLSTATE
ALTER TABLE ovh.alt RENAME COLUMN room_no TO room;
INSERT INTO ovh.alt VALUES (2, 1, 7, 9, '[7,9)');
-- the range column's type changed (its index dropped first, as ALTER would rebuild it)
DROP INDEX ovh.alt_range_overlap_idx;
ALTER TABLE ovh.alt ALTER COLUMN during TYPE text;
INSERT INTO ovh.alt VALUES (3, 2, 1, 2, '[1,2)');
\echo :SQLSTATE
SELECT * FROM slotguard.find_conflicts('ovh.alt', '{"room": 1, "s": 2, "e": 3}');
\echo :SQLSTATE
SELECT slotguard.drop_overlap_rule('ovh.alt', 'range');
-- a period column dropped
ALTER TABLE ovh.alt DROP COLUMN e CASCADE;
INSERT INTO ovh.alt (id, room, s) VALUES (4, 3, 1);
\echo :SQLSTATE
SELECT * FROM slotguard.find_conflicts('ovh.alt', '{"room": 1, "s": 2}');
\echo :SQLSTATE
SELECT slotguard.drop_overlap_rule('ovh.alt', 'pair');
INSERT INTO ovh.alt (id, room, s) VALUES (4, 3, 1);
RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- Capacity rules count right for every kind of bound: exclusive and inclusive lower and upper
-- bounds, infinite bounds, single points, empty ranges.
CREATE TABLE ovh.cap (id int PRIMARY KEY, pool int, during numrange);
SELECT slotguard.add_overlap_rule('ovh.cap', 'two', '{pool}', '{during}', capacity => 2);
-- (1,5) three times: the third is one too many
INSERT INTO ovh.cap VALUES (1, 1, '(1,5)'), (2, 1, '(1,5)');
INSERT INTO ovh.cap VALUES (3, 1, '(1,5)');
\echo :SQLSTATE
-- touching at an exclusive bound: (5,9) meets (1,5) nowhere
INSERT INTO ovh.cap VALUES (3, 1, '(5,9)'), (4, 1, '[5,9)');
-- [5,5] is covered by (1,5]? no: (1,5) ends before 5; [5,9) and (5,9) are there: [5,5] is the 2nd
-- row at 5 ([5,9) covers 5, (5,9) does not)
INSERT INTO ovh.cap VALUES (5, 1, '[5,5]');
\echo :SQLSTATE
-- now 5 is full ([5,9) and [5,5]): another row containing 5 is refused, one just after it is
-- refused too ((5,9) and [5,9) cover (5,6))
INSERT INTO ovh.cap VALUES (6, 1, '[4,5]');
\echo :SQLSTATE
INSERT INTO ovh.cap VALUES (6, 1, '(5,6)');
\echo :SQLSTATE
-- inclusive upper bounds meeting an inclusive lower bound share the instant
CREATE TABLE ovh.cap2 (id int PRIMARY KEY, pool int, during numrange);
SELECT slotguard.add_overlap_rule('ovh.cap2', 'two', '{pool}', '{during}', capacity => 2);
INSERT INTO ovh.cap2 VALUES (1, 1, '[1,3]'), (2, 1, '[3,5]');
INSERT INTO ovh.cap2 VALUES (3, 1, '[3,3]');
\echo :SQLSTATE
INSERT INTO ovh.cap2 VALUES (3, 1, '(3,4)');
-- infinite bounds: two unbounded-below rows fill everything before their ends
INSERT INTO ovh.cap2 VALUES (4, 2, '(,10)'), (5, 2, '(,0]');
INSERT INTO ovh.cap2 VALUES (6, 2, '(-100,-99)');
\echo :SQLSTATE
INSERT INTO ovh.cap2 VALUES (6, 2, '(0,5)');
-- unbounded above: [9,) meets only (,10); [10,) meets [9,) at 10; (10,) would be the third
-- just after 10
INSERT INTO ovh.cap2 VALUES (7, 2, '[9,)'), (8, 2, '[10,)');
INSERT INTO ovh.cap2 VALUES (9, 2, '(10,)');
\echo :SQLSTATE
INSERT INTO ovh.cap2 VALUES (9, 2, '(,)');
\echo :SQLSTATE
-- empty ranges overlap nothing
INSERT INTO ovh.cap2 VALUES (9, 2, 'empty'), (10, 2, 'empty'), (11, 2, 'empty');
-- find_conflicts agrees and names the rows covering the worst instant
SELECT rule_name, conflicting_key FROM slotguard.find_conflicts('ovh.cap', '{"pool": 1, "during": "(1,5)"}')
 ORDER BY conflicting_key::text;
SELECT count(*) FROM slotguard.find_conflicts('ovh.cap', '{"pool": 1, "during": "(5,5.5)"}');
-- timestamptz columns with the default [) bounds, and a capacity of 3
CREATE TABLE ovh.cap3 (id int PRIMARY KEY, pool int, s timestamptz, e timestamptz);
SELECT slotguard.add_overlap_rule('ovh.cap3', 'three', '{pool}', '{s,e}', capacity => 3);
INSERT INTO ovh.cap3 VALUES (1, 1, '2024-01-01 10:00', '2024-01-01 11:00'),
                            (2, 1, '2024-01-01 10:30', '2024-01-01 11:30'),
                            (3, 1, '2024-01-01 10:59', NULL);
INSERT INTO ovh.cap3 VALUES (4, 1, '2024-01-01 11:00', '2024-01-01 12:00');
INSERT INTO ovh.cap3 VALUES (5, 1, NULL, '2024-01-01 11:00');
\echo :SQLSTATE
INSERT INTO ovh.cap3 VALUES (5, 1, NULL, '2024-01-01 10:59');
-- adding a capacity rule to rows that exceed it is refused the same way
CREATE TABLE ovh.cap4 (id int PRIMARY KEY, pool int, during numrange);
INSERT INTO ovh.cap4 VALUES (1, 1, '(1,5)'), (2, 1, '(1,5)'), (3, 1, '(1,5)');
SELECT slotguard.add_overlap_rule('ovh.cap4', 'two', '{pool}', '{during}', capacity => 2);
\echo :SQLSTATE

-- ---------------------------------------------------------------------------------------------
-- What a 23P01 shows: the conflicting row's key and period only to a writer who may read them
-- (SELECT on the table, or on its primary key, key and period columns) and whom no row-level
-- security policy filters; otherwise the DETAIL says there is a conflict without the values.
CREATE TABLE ovh.vis (id int PRIMARY KEY, room int, s int, e int, secret text);
SELECT slotguard.add_overlap_rule('ovh.vis', 'room_busy', '{room}', '{s,e}');
SELECT slotguard.add_overlap_rule('ovh.vis', 'room_two', '{room}', '{s,e}', capacity => 2);
INSERT INTO ovh.vis VALUES (1, 1, 1, 5, 'a'), (2, 2, 1, 5, 'b'), (3, 2, 6, 9, 'c');
GRANT INSERT ON ovh.vis TO regress_ovh_writer;
SET ROLE regress_ovh_writer;
INSERT INTO ovh.vis VALUES (10, 1, 2, 3);
RESET ROLE;
GRANT SELECT (id, room, s, e) ON ovh.vis TO regress_ovh_writer;
SET ROLE regress_ovh_writer;
INSERT INTO ovh.vis VALUES (10, 1, 2, 3);
RESET ROLE;
REVOKE SELECT (e) ON ovh.vis FROM regress_ovh_writer;
SET ROLE regress_ovh_writer;
INSERT INTO ovh.vis VALUES (10, 1, 2, 3);
RESET ROLE;
GRANT SELECT ON ovh.vis TO regress_ovh_writer;
ALTER TABLE ovh.vis ENABLE ROW LEVEL SECURITY;
CREATE POLICY see_all ON ovh.vis FOR SELECT USING (true);
CREATE POLICY add_all ON ovh.vis FOR INSERT WITH CHECK (true);
SET ROLE regress_ovh_writer;
INSERT INTO ovh.vis VALUES (10, 1, 2, 3);
RESET ROLE;
-- find_conflicts under row-level security: rows the caller's policies hide are listed with key
-- and row withheld
DROP POLICY see_all ON ovh.vis;
CREATE POLICY see_room_2 ON ovh.vis FOR SELECT USING (room = 2);
SET ROLE regress_ovh_writer;
SELECT rule_name, conflicting_key, conflicting_row FROM slotguard.find_conflicts('ovh.vis', '{"room": 1, "s": 2, "e": 3}');
SELECT rule_name, conflicting_key FROM slotguard.find_conflicts('ovh.vis', '{"room": 2, "s": 2, "e": 3}');
-- ignore_key cannot leave out a row the caller cannot see (that would tell it conflicts)
SELECT count(*) FROM slotguard.find_conflicts('ovh.vis', '{"room": 1, "s": 2, "e": 3}', '1');
SELECT count(*) FROM slotguard.find_conflicts('ovh.vis', '{"room": 2, "s": 2, "e": 3}', '2');
RESET ROLE;
-- the owner's FORCE ROW LEVEL SECURITY hides no row from the check
ALTER TABLE ovh.vis OWNER TO regress_ovh_owner;
ALTER TABLE ovh.vis FORCE ROW LEVEL SECURITY;
SET ROLE regress_ovh_owner;
INSERT INTO ovh.vis VALUES (11, 1, 2, 3);
\echo :SQLSTATE
RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- A BEFORE trigger that computes a period column: the rule sees the row as written, even when
-- the UPDATE's SET list names no rule column.
CREATE TABLE ovh.computed (id int PRIMARY KEY, room int, s int, len int, e int);
CREATE FUNCTION ovh.compute_end() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.e := NEW.s + NEW.len;
  RETURN NEW;
END $$;
CREATE TRIGGER compute_end BEFORE INSERT OR UPDATE ON ovh.computed FOR EACH ROW
  EXECUTE FUNCTION ovh.compute_end();
SELECT slotguard.add_overlap_rule('ovh.computed', 'room_busy', '{room}', '{s,e}');
INSERT INTO ovh.computed (id, room, s, len) VALUES (1, 1, 0, 5), (2, 1, 10, 5);
UPDATE ovh.computed SET len = 20 WHERE id = 1;
\echo :SQLSTATE
SELECT id, s, e FROM ovh.computed ORDER BY id;

-- ---------------------------------------------------------------------------------------------
-- ATTACH PARTITION brings rows in without the trigger: they are validated against the rules of
-- the partitioned table (and its ancestors); conflicting rows make the ATTACH fail with 23P01.
CREATE TABLE ovh.parted (id int, room int, s int, e int) PARTITION BY RANGE (id);
SELECT slotguard.add_overlap_rule('ovh.parted', 'room_busy', '{room}', '{s,e}');
CREATE TABLE ovh.parted_1 PARTITION OF ovh.parted FOR VALUES FROM (0) TO (100);
INSERT INTO ovh.parted VALUES (1, 1, 0, 10);
CREATE TABLE ovh.parted_2 (LIKE ovh.parted INCLUDING CONSTRAINTS);
INSERT INTO ovh.parted_2 VALUES (100, 1, 5, 15);
ALTER TABLE ovh.parted ATTACH PARTITION ovh.parted_2 FOR VALUES FROM (100) TO (200);
\echo :SQLSTATE
-- rows that conflict among themselves only
UPDATE ovh.parted_2 SET s = 20, e = 30;
INSERT INTO ovh.parted_2 VALUES (101, 1, 25, 35);
ALTER TABLE ovh.parted ATTACH PARTITION ovh.parted_2 FOR VALUES FROM (100) TO (200);
\echo :SQLSTATE
DELETE FROM ovh.parted_2 WHERE id = 101;
ALTER TABLE ovh.parted ATTACH PARTITION ovh.parted_2 FOR VALUES FROM (100) TO (200);
SELECT tableoid::regclass, * FROM ovh.parted ORDER BY id;
-- and the attached partition is checked from then on
INSERT INTO ovh.parted_2 VALUES (102, 1, 25, 35);
\echo :SQLSTATE
-- a sub-partitioned table attached: its leaves are validated
CREATE TABLE ovh.parted_3 (LIKE ovh.parted INCLUDING CONSTRAINTS) PARTITION BY RANGE (id);
CREATE TABLE ovh.parted_3a PARTITION OF ovh.parted_3 FOR VALUES FROM (200) TO (300);
INSERT INTO ovh.parted_3 VALUES (200, 1, 0, 1);
ALTER TABLE ovh.parted ATTACH PARTITION ovh.parted_3 FOR VALUES FROM (200) TO (300);
\echo :SQLSTATE
-- a rule on a sub-partitioned table covers its own rows, not those of its sibling branches
CREATE TABLE ovh.tree (site int, id int, room int, s int, e int) PARTITION BY LIST (site);
CREATE TABLE ovh.tree_a PARTITION OF ovh.tree FOR VALUES IN (1) PARTITION BY RANGE (id);
CREATE TABLE ovh.tree_a1 PARTITION OF ovh.tree_a FOR VALUES FROM (0) TO (100);
CREATE TABLE ovh.tree_b PARTITION OF ovh.tree FOR VALUES IN (2);
SELECT slotguard.add_overlap_rule('ovh.tree_a', 'room_busy', '{room}', '{s,e}');
INSERT INTO ovh.tree VALUES (2, 1, 1, 0, 10);
INSERT INTO ovh.tree VALUES (1, 2, 1, 0, 10);
INSERT INTO ovh.tree VALUES (1, 3, 1, 5, 15);
\echo :SQLSTATE
-- tables without rules attach as before
CREATE TABLE ovh.free (id int, room int) PARTITION BY RANGE (id);
CREATE TABLE ovh.free_1 (id int, room int);
INSERT INTO ovh.free_1 VALUES (1, 1), (2, 1);
ALTER TABLE ovh.free ATTACH PARTITION ovh.free_1 FOR VALUES FROM (0) TO (10);

SET client_min_messages = warning;
DROP SCHEMA ovh CASCADE;
DO $$
DECLARE r text;
BEGIN
  FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress\_ovh\_%' LOOP
    EXECUTE format('DROP OWNED BY %I', r);
    EXECUTE format('DROP ROLE %I', r);
  END LOOP;
END $$;
