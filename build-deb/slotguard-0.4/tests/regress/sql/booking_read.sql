-- booking_read: slotguard.booking(booking_id) reads one booking as its holder sees it now (a dead
-- hold reads as expired before any sweep), with the extension's rights; and create_slot takes a
-- NULL hold_ttl as its default.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS slotguard;
DROP ROLE IF EXISTS regress_sgbk_app;
RESET client_min_messages;

SELECT slotguard.create_slot(2, resource => 'booking_read') AS slot \gset
-- NULL hold_ttl: the default, 2 minutes (drivers that bind every parameter cannot leave it out)
SELECT slotguard.create_slot(1, hold_ttl => NULL) AS null_ttl_slot \gset
SELECT hold_ttl FROM slotguard.slots WHERE id = :null_ttl_slot;

SELECT id AS held FROM slotguard.reserve(:slot, 'ann', hold_ttl => '1 hour') \gset
SELECT id AS short FROM slotguard.reserve(:slot, 'bob', hold_ttl => '1 millisecond') \gset
SELECT pg_sleep(0.05);

SELECT holder, status, expires_at IS NOT NULL AS has_expiry
  FROM slotguard.booking(:held);
-- bob's hold is dead: booking() says expired; the row itself is not written
SELECT holder, status FROM slotguard.booking(:short);
SELECT status FROM slotguard.bookings WHERE id = :short;
-- after confirm and cancel it reads like the row
SELECT status, expires_at IS NULL AS no_expiry FROM slotguard.confirm(:held);
SELECT status FROM slotguard.booking(:held);
SELECT status FROM slotguard.cancel(:held);
SELECT status FROM slotguard.booking(:held);

-- booking() sees a booking made earlier in the same statement (it is VOLATILE)
SELECT holder, status FROM slotguard.booking((SELECT id FROM slotguard.reserve(:slot, 'cy')));

-- errors
SELECT * FROM slotguard.booking(-1);
\echo :SQLSTATE
SELECT * FROM slotguard.booking(NULL);
\echo :SQLSTATE

-- an application role with USAGE on the schema reads a booking without SELECT on the table
CREATE ROLE regress_sgbk_app;
GRANT USAGE ON SCHEMA slotguard TO regress_sgbk_app;
SET ROLE regress_sgbk_app;
SELECT holder, status FROM slotguard.booking(:short);
SELECT count(*) FROM slotguard.bookings;
\echo :SQLSTATE
RESET ROLE;
REVOKE USAGE ON SCHEMA slotguard FROM regress_sgbk_app;
DROP ROLE regress_sgbk_app;
