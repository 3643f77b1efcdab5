-- slotguard 0.2 -> 0.3: hardening (docs/guarantees.md lists what each change guarantees).
\echo Use "ALTER EXTENSION slotguard UPDATE TO '0.3'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Backup and restore: the identity sequences of slotguard's configuration tables are dumped with
-- them, so a restored database hands out fresh ids instead of failing with 23505.
SELECT pg_catalog.pg_extension_config_dump('slotguard.slots_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('slotguard.bookings_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('slotguard.overlap_rule_defs_id_seq', '');

-- ---------------------------------------------------------------------------------------------
-- Reservation

-- A slot may name the role whose privileges a caller needs to act on it and its bookings
-- (docs/guarantees.md "Privileges"): managed_by. To know their caller, the functions acting on a slot or a
-- booking become SECURITY INVOKER (search_path still pinned): each notes its caller, checks it,
-- and then switches to the function's owner itself, as SECURITY DEFINER did before the body ran.
ALTER TABLE slotguard.slots ADD COLUMN managed_by regrole;

ALTER FUNCTION slotguard.reserve(bigint, text, int, interval, text, boolean) SECURITY INVOKER;
ALTER FUNCTION slotguard.reserve_seats(bigint, text, text[], interval, text, boolean) SECURITY INVOKER;
ALTER FUNCTION slotguard.confirm(bigint) SECURITY INVOKER;
ALTER FUNCTION slotguard.cancel(bigint) SECURITY INVOKER;
ALTER FUNCTION slotguard.availability(bigint) SECURITY INVOKER;

-- booking() moves from PL/pgSQL to C, which can know its caller.
CREATE OR REPLACE FUNCTION slotguard.booking(booking_id bigint) RETURNS slotguard.bookings
    LANGUAGE c VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'sg_booking';

-- create_slot gets a trailing parameter, managed_by. A new signature means a new function: the
-- old one's privileges (a DBA may have revoked EXECUTE from PUBLIC and granted it to an admin
-- role, as README suggests) are carried over to it. The grants made here are the DBA's, not the
-- extension's initial privileges: pg_init_privs forgets them, so pg_dump keeps dumping them.
DO $upgrade$
DECLARE
    old_acl pg_catalog.aclitem[];
    item record;
    new_fn pg_catalog.regprocedure;
BEGIN
    SELECT p.proacl INTO old_acl FROM pg_catalog.pg_proc p
     WHERE p.oid OPERATOR(pg_catalog.=) 'slotguard.create_slot(int, timestamptz, timestamptz, text, interval, text[], boolean)'::pg_catalog.regprocedure;
    DROP FUNCTION slotguard.create_slot(int, timestamptz, timestamptz, text, interval, text[], boolean);
    CREATE FUNCTION slotguard.create_slot(capacity int,
                                          starts_at timestamptz DEFAULT NULL,
                                          ends_at timestamptz DEFAULT NULL,
                                          resource text DEFAULT NULL,
                                          hold_ttl interval DEFAULT '2 minutes',
                                          seat_labels text[] DEFAULT NULL,
                                          one_per_holder boolean DEFAULT false,
                                          managed_by regrole DEFAULT NULL) RETURNS bigint
        LANGUAGE c VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
        AS 'MODULE_PATHNAME', 'sg_create_slot';
    new_fn := 'slotguard.create_slot(int, timestamptz, timestamptz, text, interval, text[], boolean, regrole)'::pg_catalog.regprocedure;
    IF old_acl IS NOT NULL THEN
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', new_fn);
        FOR item IN SELECT a.grantee, a.is_grantable FROM pg_catalog.aclexplode(old_acl) a
                     WHERE a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE' LOOP
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s%s', new_fn,
                CASE WHEN item.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                     ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(item.grantee)) END,
                CASE WHEN item.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
        END LOOP;
        DELETE FROM pg_catalog.pg_init_privs i
         WHERE i.objoid OPERATOR(pg_catalog.=) new_fn::pg_catalog.oid
           AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass;
    END IF;
END
$upgrade$;

-- ---------------------------------------------------------------------------------------------
-- Overlap rules
-- A rule's trigger reads its rule from slotguard.overlap_rule_defs (only the extension's owner
-- writes it) and no longer from its arguments, and fires on every UPDATE (an UPDATE OF list missed
-- a period column a BEFORE trigger computes). The triggers rules already have are made again so.
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.'
                  OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname) AS tbl, d.trigger_name
             FROM slotguard.overlap_rule_defs d
             JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.tbl::pg_catalog.oid
             JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  LOOP
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', r.trigger_name, r.tbl);
    EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER INSERT OR UPDATE ON %s FOR EACH ROW '
                              'EXECUTE FUNCTION slotguard.overlap_trigger()', r.trigger_name, r.tbl);
  END LOOP;
END
$$;

-- Rows that would reach a table with overlap rules without its trigger: ATTACH PARTITION is
-- validated against the rules, inheritance children (and foreign partitions) are refused.
CREATE FUNCTION slotguard._overlap_ddl_check() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'sg_overlap_ddl_check';
CREATE EVENT TRIGGER slotguard_overlap_ddl_check ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE FOREIGN TABLE', 'ALTER TABLE', 'ALTER FOREIGN TABLE')
    EXECUTE FUNCTION slotguard._overlap_ddl_check();

-- ---------------------------------------------------------------------------------------------
-- Versioned updates, audit and transition rules

-- The catalog views read the triggers' arguments. Any table owner can create a trigger of these
-- names by hand, with arguments of their choice: the views list only triggers that run
-- slotguard's own functions, and convert the arguments with expressions that cannot fail, so that
-- such a trigger neither breaks the views for everyone nor passes for a rule.
CREATE FUNCTION slotguard._jsonb_or_null(doc text) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp AS
$$BEGIN
  RETURN doc::pg_catalog.jsonb;
EXCEPTION WHEN others THEN
  RETURN NULL;
END$$;

CREATE OR REPLACE VIEW slotguard.versioned_tables AS
SELECT t.tgrelid::pg_catalog.regclass AS tbl,
       a[1]::pg_catalog.name AS version_column,
       a[2] AS version_type,
       a[3] OPERATOR(pg_catalog.=) 't' AS timestamps,
       EXISTS (SELECT FROM pg_catalog.pg_trigger x
                WHERE x.tgrelid OPERATOR(pg_catalog.=) t.tgrelid
                  AND x.tgname OPERATOR(pg_catalog.=) 'slotguard_90_audit'
                  AND x.tgfoid OPERATOR(pg_catalog.=)
                      'slotguard.audit_trigger()'::pg_catalog.regprocedure) AS audit,
       a[4] OPERATOR(pg_catalog.=) 't' AS require_version,
       a[5] AS version_style
  FROM pg_catalog.pg_trigger t,
       LATERAL (SELECT slotguard._tgargs(t.tgargs) AS a) s
 WHERE t.tgname OPERATOR(pg_catalog.=) 'slotguard_10_version' AND NOT t.tgisinternal
   AND t.tgfoid OPERATOR(pg_catalog.=) 'slotguard.version_trigger()'::pg_catalog.regprocedure
   AND t.tgnargs OPERATOR(pg_catalog.=) 5
   AND a[2] OPERATOR(pg_catalog.=) ANY ('{bigint,uuid}'::pg_catalog.text[])
   AND a[3] OPERATOR(pg_catalog.=) ANY ('{t,f}'::pg_catalog.text[])
   AND a[4] OPERATOR(pg_catalog.=) ANY ('{t,f}'::pg_catalog.text[])
   AND a[5] OPERATOR(pg_catalog.=) ANY ('{assert,increment}'::pg_catalog.text[]);

CREATE OR REPLACE VIEW slotguard.transition_rules AS
SELECT t.tgrelid::pg_catalog.regclass AS tbl,
       a[1]::pg_catalog.name AS column_name,
       slotguard._jsonb_or_null(a[2]) AS transitions,
       slotguard._jsonb_or_null(NULLIF(a[3], '')) AS by_role
  FROM pg_catalog.pg_trigger t,
       LATERAL (SELECT slotguard._tgargs(t.tgargs) AS a) s
 WHERE t.tgname OPERATOR(pg_catalog.~~) 'slotguard\_20\_transition\_%'
   AND t.tgnargs OPERATOR(pg_catalog.=) 3 AND NOT t.tgisinternal
   AND t.tgfoid OPERATOR(pg_catalog.=) 'slotguard.transition_trigger()'::pg_catalog.regprocedure;

-- A transition rule on a partitioned table now also fires on DELETE, to see the first half of an
-- UPDATE that moves a row to another partition (docs/sql-api.md "Transition rules"): re-install the rules
-- of partitioned tables made by 0.2. A trigger whose arguments are not a valid rule (made by hand)
-- is left as it is, with a warning.
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT t.tgrelid::pg_catalog.regclass AS tbl, a[1] AS col, a[2] AS transitions,
           NULLIF(a[3], '') AS by_role
      FROM pg_catalog.pg_trigger t
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid,
           LATERAL (SELECT slotguard._tgargs(t.tgargs) AS a) s
     WHERE t.tgfoid OPERATOR(pg_catalog.=) 'slotguard.transition_trigger()'::pg_catalog.regprocedure
       AND t.tgname OPERATOR(pg_catalog.~~) 'slotguard\_20\_transition\_%'
       AND t.tgnargs OPERATOR(pg_catalog.=) 3 AND t.tgparentid OPERATOR(pg_catalog.=) 0 AND NOT t.tgisinternal
       AND c.relkind OPERATOR(pg_catalog.=) 'p'
  LOOP
    BEGIN
      PERFORM slotguard.add_transition_rule(r.tbl, r.col::pg_catalog.name,
                                            r.transitions::pg_catalog.jsonb,
                                            r.by_role::pg_catalog.jsonb);
    EXCEPTION WHEN others THEN
      RAISE WARNING 'transition rule on %.% left as it was: %', r.tbl, r.col, SQLERRM;
    END;
  END LOOP;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Monitoring
-- The counters' table in shared memory has a fixed number of entries (slotguard.stats_max_entries).
-- stats_capacity() says how many objects have counters (all databases), how many fit, and how
-- many counts were dropped for want of room; the view shows the last as ('global', '',
-- 'counts_dropped', n). stats_reset() frees this database's entries.
CREATE FUNCTION slotguard.stats_capacity(OUT objects_tracked bigint, OUT objects_max bigint,
                                         OUT counts_dropped bigint)
    RETURNS record LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sg_stats_capacity';

CREATE OR REPLACE VIEW slotguard.stats AS
SELECT 'global'::text AS scope, ''::text AS object, 'counters_enabled'::text AS metric,
       CASE WHEN slotguard._counters_enabled() THEN 1 ELSE 0 END::bigint AS value
UNION ALL
SELECT 'global'::text, ''::text, 'counts_dropped'::text, c.counts_dropped
  FROM slotguard.stats_capacity() c WHERE c.counts_dropped IS NOT NULL
UNION ALL
SELECT s.scope,
       CASE s.scope
         WHEN 'table' THEN s.object::oid::regclass::text
         WHEN 'rule' THEN coalesce((SELECT r.tbl::text OPERATOR(pg_catalog.||) '.'
                                           OPERATOR(pg_catalog.||) r.rule_name
                                      FROM slotguard.overlap_rule_defs r
                                     WHERE r.id OPERATOR(pg_catalog.=) s.object),
                                   s.object::text)
         ELSE s.object::text END COLLATE "default",
       s.metric, s.value
  FROM slotguard._stats() s
 -- counters of dropped tables and rules are left out (their entries are freed by stats_reset())
 WHERE CASE s.scope
         WHEN 'table' THEN EXISTS (SELECT FROM pg_catalog.pg_class c
                                    WHERE c.oid OPERATOR(pg_catalog.=) s.object::oid)
         WHEN 'rule' THEN EXISTS (SELECT FROM slotguard.overlap_rule_defs r
                                   WHERE r.id OPERATOR(pg_catalog.=) s.object)
         ELSE true END;
