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
