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

-- ---------------------------------------------------------------------------------------------
-- Monitoring
