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
-- (README "Privileges"): managed_by. To know their caller, the functions acting on a slot or a
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

-- ---------------------------------------------------------------------------------------------
-- Versioned updates, audit and transition rules

-- ---------------------------------------------------------------------------------------------
-- Monitoring
