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

-- ---------------------------------------------------------------------------------------------
-- Versioned updates, audit and transition rules

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
