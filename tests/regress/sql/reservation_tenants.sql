-- reservation_tenants: which role may act on a slot and its bookings (docs/guarantees.md "Privileges";
-- hardened in 0.3), tried as plain roles.
-- - A slot created with managed_by admits only roles with the privileges of that role (members
--   that inherit it; superusers): reserve, reserve_seats, confirm, cancel, booking and
--   availability are 42501 for every other role, and the message names nothing of the tenant.
-- - The check is of the caller: a SECURITY DEFINER function of a member acts for its owner.
-- - Without managed_by, any role allowed to EXECUTE the functions may act (as before 0.3).
-- - An idempotency key reused by another holder of the slot is 22023 and never returns the other
--   holder's booking; SG003 texts name no other holder.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS tenant_a CASCADE;
DROP ROLE IF EXISTS regress_sgt_a;
DROP ROLE IF EXISTS regress_sgt_a_app;
DROP ROLE IF EXISTS regress_sgt_a_noinherit;
DROP ROLE IF EXISTS regress_sgt_b_app;
RESET client_min_messages;

CREATE ROLE regress_sgt_a;                                       -- tenant A (a group)
CREATE ROLE regress_sgt_a_app IN ROLE regress_sgt_a;             -- A's application
CREATE ROLE regress_sgt_a_noinherit NOINHERIT IN ROLE regress_sgt_a;  -- must SET ROLE first
CREATE ROLE regress_sgt_b_app;                                   -- tenant B's application
GRANT USAGE ON SCHEMA slotguard TO regress_sgt_a, regress_sgt_a_app, regress_sgt_a_noinherit,
                                   regress_sgt_b_app;
-- this test's slots and bookings are numbered from 30001
SELECT setval(pg_get_serial_sequence('slotguard.slots', 'id'), 30001, false),
       setval(pg_get_serial_sequence('slotguard.bookings', 'id'), 30001, false);

-- The functions acting on a slot or a booking know their caller: SECURITY INVOKER with a pinned
-- search_path (they switch to the owner themselves once the caller is checked).
SELECT p.proname, p.prosecdef, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'slotguard'::regnamespace
   AND p.proname IN ('create_slot', 'reserve', 'reserve_seats', 'confirm', 'cancel', 'booking',
                     'availability')
 ORDER BY p.proname;

-- Creating a slot managed by a role needs that role's privileges (as ALTER ... OWNER TO does).
SET ROLE regress_sgt_b_app;
SELECT slotguard.create_slot(3, managed_by => 'regress_sgt_a');
\echo :SQLSTATE
RESET ROLE;
SELECT slotguard.create_slot(3, managed_by => 0::oid::regrole) AS s0 \gset
SELECT managed_by IS NULL AS zero_is_unmanaged FROM slotguard.slots WHERE id = :s0;
SELECT slotguard.create_slot(3, managed_by => 4000000000::oid::regrole);
\echo :SQLSTATE

SET ROLE regress_sgt_a_app;
SELECT slotguard.create_slot(3, managed_by => 'regress_sgt_a', one_per_holder => true) AS sa \gset
SELECT slotguard.create_slot(2, seat_labels => ARRAY['A1', 'A2'], managed_by => 'regress_sgt_a')
    AS sn \gset
SELECT id AS ba FROM slotguard.reserve(:sa, 'alice', idempotency_key => 'k1') \gset
SELECT id AS bn FROM slotguard.reserve_seats(:sn, 'alice', ARRAY['A1']) \gset
SELECT current_user;           -- the switch to the owner is undone when the function returns
RESET ROLE;
SELECT managed_by FROM slotguard.slots WHERE id IN (:sa, :sn) ORDER BY id;

-- Tenant B: 42501 for every function on A's slots and bookings; the texts name only the id asked.
SET ROLE regress_sgt_b_app;
SELECT * FROM slotguard.reserve(:sa, 'bob');
\echo :SQLSTATE
SELECT * FROM slotguard.reserve(:sa, 'alice', idempotency_key => 'k1');  -- not A's booking back
\echo :SQLSTATE
SELECT * FROM slotguard.reserve_seats(:sn, 'bob', ARRAY['A2']);
\echo :SQLSTATE
SELECT * FROM slotguard.confirm(:ba);
\echo :SQLSTATE
SELECT * FROM slotguard.cancel(:ba);
\echo :SQLSTATE
SELECT * FROM slotguard.booking(:ba);
\echo :SQLSTATE
SELECT * FROM slotguard.cancel(:bn);
\echo :SQLSTATE
SELECT * FROM slotguard.availability(:sa);
\echo :SQLSTATE
-- a missing booking or slot is still SG002
SELECT * FROM slotguard.booking(-1);
\echo :SQLSTATE
SELECT * FROM slotguard.availability(-1);
\echo :SQLSTATE
-- B cannot read slotguard's tables either
SELECT count(*) FROM slotguard.bookings;
\echo :SQLSTATE
-- nor reach the bookings through a PL/pgSQL block that swallows the error
DO $$
BEGIN
  PERFORM slotguard.cancel(currval(pg_get_serial_sequence('slotguard.bookings', 'id')));
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'denied, and the caller is still %', current_user;
END $$;
RESET ROLE;
SELECT status FROM slotguard.bookings WHERE id IN (:ba, :bn) ORDER BY id;  -- untouched

-- A NOINHERIT member has A's privileges only after SET ROLE, as for tables.
SET ROLE regress_sgt_a_noinherit;
SELECT * FROM slotguard.availability(:sa);
\echo :SQLSTATE
SET ROLE regress_sgt_a;
SELECT * FROM slotguard.availability(:sa);
RESET ROLE;

-- Members of A: everything works.
SET ROLE regress_sgt_a_app;
SELECT holder, status FROM slotguard.booking(:ba);
SELECT holder, status FROM slotguard.confirm(:ba);
SELECT * FROM slotguard.availability(:sa);
SELECT holder, seat_labels, status FROM slotguard.cancel(:bn);
-- the idempotency key of alice's booking, used by another holder of the same tenant: 22023, and
-- the message does not give alice's booking away
SELECT * FROM slotguard.reserve(:sa, 'carol', idempotency_key => 'k1');
\echo :SQLSTATE
SELECT * FROM slotguard.reserve_seats(:sn, 'carol', ARRAY['A2'], idempotency_key => 'k1') \gset c_
SELECT * FROM slotguard.reserve_seats(:sn, 'dave', ARRAY['A2'], idempotency_key => 'k1');
\echo :SQLSTATE
-- alice's own retry still gets her booking
SELECT id = :ba AS same_booking, holder FROM slotguard.reserve(:sa, 'alice', idempotency_key => 'k1');
-- SG003 texts name seats, never another holder
SELECT * FROM slotguard.reserve_seats(:sn, 'erin', ARRAY['A2']);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve(:sa, 'alice');
\echo :SQLSTATE
RESET ROLE;

-- The caller is the role that calls: a SECURITY DEFINER function owned by a member of A lets B
-- book A's slot through it (that is what the function's owner decided), and only through it.
CREATE SCHEMA tenant_a AUTHORIZATION regress_sgt_a_app;
GRANT USAGE ON SCHEMA tenant_a TO regress_sgt_b_app;
SET ROLE regress_sgt_a_app;
CREATE FUNCTION tenant_a.book(slot bigint, who text) RETURNS text
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
    AS $$ SELECT status FROM slotguard.reserve(slot, who) $$;
RESET ROLE;
SET ROLE regress_sgt_b_app;
SELECT tenant_a.book(:sa, 'bob');
SELECT * FROM slotguard.reserve(:sa, 'bob2');
\echo :SQLSTATE
RESET ROLE;

-- Without managed_by nothing changes: any role allowed to EXECUTE acts on the slot.
SELECT slotguard.create_slot(2) AS so \gset
SET ROLE regress_sgt_b_app;
SELECT id AS bo FROM slotguard.reserve(:so, 'bob', idempotency_key => 'kb') \gset
RESET ROLE;
SET ROLE regress_sgt_a_app;
SELECT holder, status FROM slotguard.booking(:bo);
SELECT holder, status FROM slotguard.confirm(:bo);
-- but the key is still bob's
SELECT * FROM slotguard.reserve(:so, 'alice', idempotency_key => 'kb');
\echo :SQLSTATE
RESET ROLE;

-- Superusers act on every slot.
SELECT * FROM slotguard.availability(:sa);

SET client_min_messages = warning;
DROP SCHEMA tenant_a CASCADE;
DELETE FROM slotguard.bookings WHERE slot_id IN (:sa, :sn, :so);
DELETE FROM slotguard.slots WHERE id IN (:s0, :sa, :sn, :so);
REVOKE USAGE ON SCHEMA slotguard FROM regress_sgt_a, regress_sgt_a_app, regress_sgt_a_noinherit,
                                      regress_sgt_b_app;
DROP ROLE regress_sgt_a_app;
DROP ROLE regress_sgt_a_noinherit;
DROP ROLE regress_sgt_b_app;
DROP ROLE regress_sgt_a;
