-- reservation: slots, holds and bookings (docs/sql-api.md, "Slot-seat reservation" and the slot
-- counters of "Monitoring"; docs/errors.md; docs/guarantees.md, "Privileges"). Concurrency is in the isolation specs
-- tests/isolation/specs/reservation-*.spec; this file covers every function and error serially.
CREATE EXTENSION IF NOT EXISTS slotguard;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS resevil CASCADE;
DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['regress_sgres_app', 'regress_sgres_admin', 'regress_sgres_evil',
                           'regress_sgres_nobody'] LOOP
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('DROP OWNED BY %I', r);
      EXECUTE format('DROP ROLE %I', r);
    END IF;
  END LOOP;
END $$;
RESET client_min_messages;
SELECT current_user AS superuser \gset

-- Counters are kept per slot id since server start: remember them, print only the differences.
CREATE TEMP TABLE stats0 AS
  SELECT object, metric, value FROM slotguard.stats WHERE scope = 'slot';
CREATE FUNCTION pg_temp.stat_deltas(slot bigint)
  RETURNS TABLE (metric text, delta bigint) LANGUAGE sql AS $$
  SELECT m, coalesce((SELECT s.value FROM slotguard.stats s
                       WHERE s.scope = 'slot' AND s.object = slot::text AND s.metric = m), 0)
          - coalesce((SELECT s0.value FROM stats0 s0
                       WHERE s0.object = slot::text AND s0.metric = m), 0)
    FROM unnest(ARRAY['reservations', 'sold_out', 'confirmations', 'cancellations',
                      'expirations']) WITH ORDINALITY AS u(m, o)
   ORDER BY o
$$;
-- A booking as this test prints it: nothing that varies from run to run.
CREATE FUNCTION pg_temp.show(b bigint)
  RETURNS TABLE (holder text, seats int, seat_labels text[], status text, idempotency_key text,
                 has_expiry boolean, has_confirmed_at boolean, has_cancelled_at boolean)
  LANGUAGE sql AS $$
  SELECT holder, seats, seat_labels, status, idempotency_key, expires_at IS NOT NULL,
         confirmed_at IS NOT NULL, cancelled_at IS NOT NULL
    FROM slotguard.bookings WHERE id = b
$$;

-- The API is there with the documented signatures and defaults (docs/sql-api.md).
SELECT p.oid::regprocedure AS function, pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS result
  FROM pg_proc p
 WHERE p.pronamespace = 'slotguard'::regnamespace
   AND p.proname IN ('create_slot', 'reserve', 'reserve_seats', 'confirm', 'cancel',
                     'expire_holds', 'availability', 'next_expiry')
 ORDER BY p.proname;
-- slotguard.bookings has at least these columns.
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_attribute a
 WHERE a.attrelid = 'slotguard.bookings'::regclass
   AND a.attname IN ('id', 'slot_id', 'holder', 'seats', 'seat_labels', 'status',
                     'idempotency_key', 'created_at', 'expires_at', 'confirmed_at', 'cancelled_at')
 ORDER BY a.attnum;

-- =============================================================================================
-- create_slot: validation (22023)
-- =============================================================================================
SELECT count(*) AS slots_before FROM slotguard.slots \gset
SELECT slotguard.create_slot(-1);
\echo :SQLSTATE
SELECT slotguard.create_slot(NULL);
\echo :SQLSTATE
-- numbered seats: capacity must equal the number of labels
SELECT slotguard.create_slot(3, seat_labels => ARRAY['A1', 'A2']);
\echo :SQLSTATE
SELECT slotguard.create_slot(1, seat_labels => ARRAY['A1', 'A2']);
\echo :SQLSTATE
SELECT slotguard.create_slot(3, seat_labels => ARRAY['A1', 'A2', 'A1']);
\echo :SQLSTATE
SELECT slotguard.create_slot(2, seat_labels => ARRAY['A1', NULL]);
\echo :SQLSTATE
SELECT slotguard.create_slot(2, seat_labels => ARRAY['A1', '']);
\echo :SQLSTATE
SELECT slotguard.create_slot(4, seat_labels => ARRAY[['A1', 'A2'], ['B1', 'B2']]);
\echo :SQLSTATE
-- an end before its start
SELECT slotguard.create_slot(1, '2030-01-01 10:00+00', '2030-01-01 09:00+00');
\echo :SQLSTATE
-- hold_ttl must be positive
SELECT slotguard.create_slot(1, hold_ttl => '0 seconds');
\echo :SQLSTATE
SELECT slotguard.create_slot(1, hold_ttl => '-1 minute');
\echo :SQLSTATE
-- nothing was created by the failures
SELECT count(*) - :slots_before AS new_slots FROM slotguard.slots;

-- Error messages name slot and booking ids. So that this output is stable, this test's slots are
-- numbered from 10001 and its bookings from 50001 (rows left there by an earlier run of this file
-- against the same database are removed first). Queries still use the ids they got (\gset).
DELETE FROM slotguard.bookings WHERE id >= 50001;
DELETE FROM slotguard.slots WHERE id >= 10001;
SELECT setval(pg_get_serial_sequence('slotguard.slots', 'id'), 10001, false) IS NOT NULL AS ok,
       setval(pg_get_serial_sequence('slotguard.bookings', 'id'), 50001, false) IS NOT NULL AS ok;

-- Valid slots. An end equal to its start is fine; the slot row keeps what was given.
SELECT slotguard.create_slot(3) AS s3 \gset
SELECT :s3 AS first_slot_id;
SELECT slotguard.create_slot(2, '2030-01-01 09:00+00', '2030-01-01 09:00+00', 'room 1',
                             '5 minutes', NULL, true) AS sfull \gset
SELECT capacity, starts_at = ends_at AS zero_length, resource, hold_ttl, seat_labels, one_per_holder
  FROM slotguard.slots WHERE id = :sfull;
SELECT capacity, starts_at, ends_at, resource, hold_ttl, seat_labels, one_per_holder
  FROM slotguard.slots WHERE id = :s3;
SELECT slotguard.create_slot(0) AS s0 \gset
SELECT slotguard.create_slot(0, seat_labels => '{}') AS s0n \gset
SELECT * FROM slotguard.availability(:s0);
SELECT * FROM slotguard.availability(:s0n);

-- =============================================================================================
-- reserve, confirm, cancel, availability: plain capacity
-- =============================================================================================
SELECT * FROM slotguard.availability(:s3);
SELECT id AS b1 FROM slotguard.reserve(:s3, 'alice') \gset
SELECT :b1 AS first_booking_id;
SELECT * FROM pg_temp.show(:b1);
SELECT slot_id = :s3 AS right_slot, created_at IS NOT NULL AS has_created_at,
       -- the slot's hold_ttl (2 minutes by default), counted from the call
       expires_at BETWEEN clock_timestamp() + interval '110 seconds'
                      AND clock_timestamp() + interval '2 minutes' AS expires_in_2_minutes
  FROM slotguard.bookings WHERE id = :b1;
SELECT * FROM slotguard.availability(:s3);
-- the returned row is the stored booking
SELECT id AS b2, row_to_json(r)::text AS returned
  FROM slotguard.reserve(:s3, 'bob', hold_ttl => '10 minutes') r \gset
SELECT row_to_json(b)::text = :'returned' AS returned_row_is_stored
  FROM slotguard.bookings b WHERE id = :b2;
-- hold_ttl per call
SELECT expires_at BETWEEN clock_timestamp() + interval '9 minutes'
                      AND clock_timestamp() + interval '10 minutes' AS expires_in_10_minutes
  FROM slotguard.bookings WHERE id = :b2;
SELECT * FROM slotguard.availability(:s3);

-- sold out: SG003 with DETAIL saying how many are free; nothing is booked
SELECT * FROM slotguard.reserve(:s3, 'carol', 2);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve(:s3, 'carol', 4);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve(:s0, 'carol');
\echo :SQLSTATE
SELECT count(*) AS carol_bookings FROM slotguard.bookings WHERE holder = 'carol';
SELECT id AS b3 FROM slotguard.reserve(:s3, 'carol') \gset
SELECT * FROM slotguard.availability(:s3);
SELECT * FROM slotguard.reserve(:s3, 'dave');
\echo :SQLSTATE

-- bad arguments (22023)
SELECT * FROM slotguard.reserve(:s3, 'dave', 0);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve(:s3, 'dave', -2);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve(:s3, 'dave', NULL);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve(:s3, NULL);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve(:s3, '');
\echo :SQLSTATE
SELECT * FROM slotguard.reserve(:s3, 'dave', hold_ttl => '0 seconds');
\echo :SQLSTATE
SELECT * FROM slotguard.reserve(:s3, 'dave', hold_ttl => '-5 minutes');
\echo :SQLSTATE
SELECT * FROM slotguard.reserve(NULL, 'dave');
\echo :SQLSTATE
-- unknown slot / booking (SG002)
SELECT * FROM slotguard.reserve(999999999, 'dave');
\echo :SQLSTATE
SELECT * FROM slotguard.availability(999999999);
\echo :SQLSTATE
SELECT * FROM slotguard.confirm(999999999);
\echo :SQLSTATE
SELECT * FROM slotguard.cancel(999999999);
\echo :SQLSTATE

-- confirm: confirmed_at set, expires_at NULL; confirming again returns it unchanged
SELECT * FROM pg_temp.show(:b1);
SELECT status, expires_at IS NULL AS no_expiry, confirmed_at IS NOT NULL AS has_confirmed_at
  FROM slotguard.confirm(:b1);
SELECT confirmed_at AS b1_confirmed_at FROM slotguard.bookings WHERE id = :b1 \gset
SELECT c = b AS unchanged FROM slotguard.confirm(:b1) c JOIN slotguard.bookings b ON b.id = c.id;
SELECT confirmed_at = :'b1_confirmed_at' AS same_confirmed_at FROM slotguard.bookings WHERE id = :b1;
SELECT * FROM slotguard.availability(:s3);
-- cancel of a hold frees its seat; cancelling again returns it unchanged
SELECT status, cancelled_at IS NOT NULL AS has_cancelled_at FROM slotguard.cancel(:b2);
SELECT c = b AS unchanged FROM slotguard.cancel(:b2) c JOIN slotguard.bookings b ON b.id = c.id;
SELECT * FROM slotguard.availability(:s3);
-- a cancelled booking cannot be confirmed (SG005)
SELECT * FROM slotguard.confirm(:b2);
\echo :SQLSTATE
SELECT * FROM pg_temp.show(:b2);
-- cancel of a confirmed booking frees its seat too
SELECT status FROM slotguard.cancel(:b1);
SELECT * FROM pg_temp.show(:b1);
SELECT * FROM slotguard.availability(:s3);
-- reserve(confirm => true) books confirmed at once
SELECT status, expires_at IS NULL AS no_expiry, confirmed_at IS NOT NULL AS has_confirmed_at
  FROM slotguard.reserve(:s3, 'erin', 2, confirm => true);
SELECT * FROM slotguard.availability(:s3);
SELECT * FROM slotguard.reserve(:s3, 'frank');
\echo :SQLSTATE
SELECT status FROM slotguard.cancel(:b3);
-- several seats at once, spread capacity gathered for them
SELECT slotguard.create_slot(5, hold_ttl => '10 minutes') AS s5 \gset
SELECT holder, seats, status FROM slotguard.reserve(:s5, 'a', 1);
SELECT holder, seats, status FROM slotguard.reserve(:s5, 'b', 3);
SELECT * FROM slotguard.reserve(:s5, 'c', 2);
\echo :SQLSTATE
SELECT holder, seats, status FROM slotguard.reserve(:s5, 'c', 1);
SELECT * FROM slotguard.availability(:s5);
SELECT * FROM slotguard.reserve(:s5, 'd', 1);
\echo :SQLSTATE
-- cancel everything, then the whole slot in one booking
SELECT count(slotguard.cancel(id)) AS cancelled FROM slotguard.bookings WHERE slot_id = :s5;
SELECT * FROM slotguard.availability(:s5);
SELECT holder, seats, status FROM slotguard.reserve(:s5, 'e', 5);
SELECT * FROM slotguard.availability(:s5);

-- =============================================================================================
-- numbered seats
-- =============================================================================================
SELECT slotguard.create_slot(5, seat_labels => ARRAY['A1', 'A2', 'A3', 'B1', 'B2'],
                             hold_ttl => '10 minutes') AS sn \gset
SELECT * FROM slotguard.availability(:sn);
-- reserve without labels picks the free labels in label order
SELECT id AS n1 FROM slotguard.reserve(:sn, 'x', 2) \gset
SELECT * FROM pg_temp.show(:n1);
SELECT id AS n2 FROM slotguard.reserve_seats(:sn, 'y', ARRAY['B2', 'A3']) \gset
SELECT * FROM pg_temp.show(:n2);
SELECT * FROM slotguard.availability(:sn);
-- a label the slot does not have: 22023 (also when another requested label is taken)
SELECT * FROM slotguard.reserve_seats(:sn, 'z', ARRAY['Z9']);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve_seats(:sn, 'z', ARRAY['B1', 'Z9', 'a1']);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve_seats(:sn, 'z', ARRAY['A1', 'Z9']);
\echo :SQLSTATE
-- a taken label: SG003 naming the taken labels; all or nothing (B1 is not booked)
SELECT * FROM slotguard.reserve_seats(:sn, 'z', ARRAY['B1', 'A1']);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve_seats(:sn, 'z', ARRAY['A2', 'B1', 'A1', 'B2']);
\echo :SQLSTATE
SELECT count(*) AS z_bookings FROM slotguard.bookings WHERE slot_id = :sn AND holder = 'z';
SELECT * FROM slotguard.availability(:sn);
-- bad label lists (22023)
SELECT * FROM slotguard.reserve_seats(:sn, 'z', ARRAY['B1', 'B1']);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve_seats(:sn, 'z', ARRAY[]::text[]);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve_seats(:sn, 'z', NULL);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve_seats(:sn, 'z', ARRAY['B1', NULL]);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve_seats(:sn, '', ARRAY['B1']);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve_seats(:sn, NULL, ARRAY['B1']);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve_seats(:sn, 'z', ARRAY['B1'], hold_ttl => '0 seconds');
\echo :SQLSTATE
-- reserve_seats on a slot without numbered seats
SELECT * FROM slotguard.reserve_seats(:s5, 'z', ARRAY['A1']);
\echo :SQLSTATE
-- unknown slot
SELECT * FROM slotguard.reserve_seats(999999999, 'z', ARRAY['A1']);
\echo :SQLSTATE
-- B1 is still free; the last seat goes, then the slot is sold out
SELECT id AS n3 FROM slotguard.reserve(:sn, 'z') \gset
SELECT * FROM pg_temp.show(:n3);
SELECT * FROM slotguard.reserve(:sn, 'w');
\echo :SQLSTATE
SELECT * FROM slotguard.reserve(:sn, 'w', 6);
\echo :SQLSTATE
-- cancelling frees the labels; reserve takes the first free ones again
SELECT status FROM slotguard.cancel(:n1);
SELECT * FROM slotguard.availability(:sn);
SELECT * FROM slotguard.reserve(:sn, 'w', 3);
\echo :SQLSTATE
SELECT id AS n4 FROM slotguard.reserve(:sn, 'w', 1) \gset
SELECT * FROM pg_temp.show(:n4);
-- confirm / cancel of numbered bookings
SELECT status, seat_labels, expires_at IS NULL AS no_expiry FROM slotguard.confirm(:n2);
SELECT * FROM slotguard.reserve_seats(:sn, 'v', ARRAY['A3']);
\echo :SQLSTATE
SELECT status, seat_labels FROM slotguard.reserve_seats(:sn, 'v', ARRAY['A2'], confirm => true);
SELECT * FROM slotguard.availability(:sn);
SELECT status FROM slotguard.cancel(:n2);
SELECT seat_labels, status FROM slotguard.reserve_seats(:sn, 'u', ARRAY['B2', 'A3']);
SELECT * FROM slotguard.availability(:sn);
-- a numbered slot may also be sold by count
SELECT slotguard.create_slot(3, seat_labels => ARRAY['R1', 'R2', 'R3']) AS sn3 \gset
SELECT seat_labels FROM slotguard.reserve_seats(:sn3, 'a', ARRAY['R2']);
SELECT seat_labels FROM slotguard.reserve(:sn3, 'b', 2);
SELECT * FROM slotguard.reserve(:sn3, 'c');
\echo :SQLSTATE
-- every label of the slot is held by at most one live booking
SELECT label, count(*) AS live_bookings
  FROM slotguard.bookings b, unnest(b.seat_labels) AS label
 WHERE b.slot_id IN (:sn, :sn3)
   AND (b.status = 'confirmed' OR (b.status = 'pending' AND b.expires_at > clock_timestamp()))
 GROUP BY b.slot_id, label HAVING count(*) > 1;

-- =============================================================================================
-- idempotency keys
-- =============================================================================================
SELECT slotguard.create_slot(2) AS si \gset
SELECT slotguard.create_slot(2) AS si2 \gset
SELECT id AS k1 FROM slotguard.reserve(:si, 'alice', idempotency_key => 'order-1') \gset
SELECT * FROM pg_temp.show(:k1);
-- the same key returns the same booking instead of booking twice
SELECT id = :k1 AS same_booking, status
  FROM slotguard.reserve(:si, 'alice', idempotency_key => 'order-1');
SELECT * FROM slotguard.availability(:si);
-- another key books again
SELECT id <> :k1 AS new_booking, status
  FROM slotguard.reserve(:si, 'alice', idempotency_key => 'order-2');
SELECT * FROM slotguard.availability(:si);
-- the slot is sold out now, but a retry still gets its booking back (no SG003)
SELECT id = :k1 AS same_booking, status
  FROM slotguard.reserve(:si, 'alice', idempotency_key => 'order-1');
SELECT * FROM slotguard.reserve(:si, 'alice', idempotency_key => 'order-3');
\echo :SQLSTATE
-- keys are per slot: the same key on another slot is another booking
SELECT id <> :k1 AS new_booking, slot_id = :si2 AS other_slot, status
  FROM slotguard.reserve(:si2, 'alice', idempotency_key => 'order-1');
SELECT count(*) AS bookings_with_key_order_1
  FROM slotguard.bookings WHERE slot_id IN (:si, :si2) AND idempotency_key = 'order-1';
-- a retry after confirm returns the confirmed booking
SELECT status FROM slotguard.confirm(:k1);
SELECT id = :k1 AS same_booking, status
  FROM slotguard.reserve(:si, 'alice', idempotency_key => 'order-1');
-- keys work for numbered seats too
SELECT slotguard.create_slot(2, seat_labels => ARRAY['K1', 'K2']) AS sik \gset
SELECT id AS k2 FROM slotguard.reserve_seats(:sik, 'c', ARRAY['K2'], idempotency_key => 'seat-1') \gset
SELECT id = :k2 AS same_booking, seat_labels, status
  FROM slotguard.reserve_seats(:sik, 'c', ARRAY['K2'], idempotency_key => 'seat-1');
SELECT id = :k2 AS same_booking, seat_labels, status
  FROM slotguard.reserve(:sik, 'c', idempotency_key => 'seat-1');
SELECT seat_labels FROM slotguard.reserve(:sik, 'c', idempotency_key => 'seat-2');
SELECT count(*) AS bookings_with_key_seat_1
  FROM slotguard.bookings WHERE slot_id = :sik AND idempotency_key = 'seat-1';

-- =============================================================================================
-- one_per_holder
-- =============================================================================================
SELECT slotguard.create_slot(5, one_per_holder => true, hold_ttl => '10 minutes') AS so \gset
SELECT id AS o1 FROM slotguard.reserve(:so, 'alice', idempotency_key => 'a-1') \gset
SELECT * FROM slotguard.reserve(:so, 'alice');
\echo :SQLSTATE
-- a retry of the same request is not a second booking
SELECT id = :o1 AS same_booking, status
  FROM slotguard.reserve(:so, 'alice', idempotency_key => 'a-1');
-- other holders are not affected
SELECT holder, status FROM slotguard.reserve(:so, 'bob');
-- a confirmed booking is live too
SELECT status FROM slotguard.confirm(:o1);
SELECT * FROM slotguard.reserve(:so, 'alice', 2);
\echo :SQLSTATE
-- after cancel the holder may book again
SELECT status FROM slotguard.cancel(:o1);
SELECT id AS o2, holder, status FROM slotguard.reserve(:so, 'alice') \gset
\echo :holder :status
SELECT count(*) AS alice_live_bookings FROM slotguard.bookings
 WHERE slot_id = :so AND holder = 'alice' AND status IN ('pending', 'confirmed');
-- numbered seats: one live booking per holder as well
SELECT slotguard.create_slot(3, seat_labels => ARRAY['S1', 'S2', 'S3'], one_per_holder => true,
                             hold_ttl => '10 minutes') AS son \gset
SELECT seat_labels FROM slotguard.reserve_seats(:son, 'alice', ARRAY['S2']);
SELECT * FROM slotguard.reserve_seats(:son, 'alice', ARRAY['S3']);
\echo :SQLSTATE
SELECT * FROM slotguard.reserve(:son, 'alice');
\echo :SQLSTATE

-- =============================================================================================
-- lazy expiry: a hold is dead the moment its expires_at passes, swept or not
-- =============================================================================================
-- Clear holds left dead by earlier tests, so that expire_holds counts only this section's.
SELECT slotguard.expire_holds() >= 0 AS swept;
SELECT slotguard.create_slot(2, hold_ttl => '1 second') AS se \gset
SELECT slotguard.create_slot(2, seat_labels => ARRAY['E1', 'E2'], hold_ttl => '1 second') AS sen \gset
SELECT slotguard.create_slot(3, hold_ttl => '1 second') AS sx \gset
SELECT slotguard.create_slot(4, seat_labels => ARRAY['X1', 'X2', 'X3', 'X4']) AS sxn \gset
-- se: its two seats held by one booking (the slot's TTL)
SELECT id AS e1 FROM slotguard.reserve(:se, 'alice', 2) \gset
SELECT * FROM slotguard.reserve(:se, 'bob');
\echo :SQLSTATE
-- sen: E1 held (the slot's TTL), E2 confirmed
SELECT id AS e2 FROM slotguard.reserve_seats(:sen, 'alice', ARRAY['E1']) \gset
SELECT id AS e3 FROM slotguard.reserve_seats(:sen, 'bob', ARRAY['E2'], confirm => true) \gset
SELECT * FROM slotguard.reserve_seats(:sen, 'carol', ARRAY['E1']);
\echo :SQLSTATE
-- sx, sxn: holds with a per-call TTL, plus one that outlives the sleep
SELECT id AS x1 FROM slotguard.reserve(:sx, 'p', hold_ttl => '1 second') \gset
SELECT id AS x2 FROM slotguard.reserve(:sx, 'q', hold_ttl => '1 second') \gset
SELECT id AS x3 FROM slotguard.reserve(:sx, 'r', hold_ttl => '10 minutes') \gset
SELECT id AS x4 FROM slotguard.reserve(:sxn, 'p', hold_ttl => '1 second') \gset
SELECT id AS x5 FROM slotguard.reserve(:sxn, 'q', hold_ttl => '1 second') \gset
SELECT id AS x6 FROM slotguard.reserve(:sxn, 'r', hold_ttl => '10 minutes') \gset
SELECT id AS x7 FROM slotguard.reserve(:sxn, 's', hold_ttl => '1 second') \gset
-- sbig: more seats than shards (64); bookings larger than any shard gather capacity
SELECT slotguard.create_slot(100, hold_ttl => '10 minutes') AS sbig \gset
SELECT seats, status FROM slotguard.reserve(:sbig, 'big1', 60, hold_ttl => '1 second');
SELECT seats, status FROM slotguard.reserve(:sbig, 'big2', 30);
SELECT * FROM slotguard.reserve(:sbig, 'big3', 11);
\echo :SQLSTATE
-- next_expiry is never later than the first pending hold's expiry
SELECT slotguard.next_expiry() <= (SELECT min(expires_at) FROM slotguard.bookings
                                    WHERE status = 'pending') AS next_expiry_in_time;
SELECT pg_sleep(1.2);
-- dead holds count as free at once, before any sweep; their rows still say pending
SELECT * FROM slotguard.availability(:se);
SELECT * FROM slotguard.availability(:sen);
SELECT * FROM slotguard.availability(:sx);
SELECT * FROM slotguard.availability(:sxn);
SELECT status FROM slotguard.bookings WHERE id = :e1;
-- a hold waiting to be swept: next_expiry is in the past
SELECT slotguard.next_expiry() <= clock_timestamp() AS next_expiry_passed;
-- reserve reuses the seats of dead holds before any sweep
SELECT id AS e4, holder, seats, status
  FROM slotguard.reserve(:se, 'bob', 2, hold_ttl => '10 minutes') \gset
\echo :holder :seats :status
SELECT status FROM slotguard.bookings WHERE id = :e1;
SELECT * FROM slotguard.availability(:se);
SELECT id AS e5, seat_labels, status
  FROM slotguard.reserve_seats(:sen, 'carol', ARRAY['E1'], hold_ttl => '10 minutes') \gset
\echo :seat_labels :status
SELECT status FROM slotguard.bookings WHERE id = :e2;
SELECT * FROM slotguard.availability(:sen);
SELECT * FROM slotguard.availability(:sbig);
SELECT seats, status FROM slotguard.reserve(:sbig, 'big3', 70);
SELECT holder, seats, status FROM slotguard.bookings WHERE slot_id = :sbig ORDER BY id;
SELECT * FROM slotguard.availability(:sbig);
SELECT * FROM slotguard.reserve(:sbig, 'big4');
\echo :SQLSTATE
-- confirm of an expired hold: SG004, whether it was swept (e1, e2) or not (x1, x4)
SELECT * FROM slotguard.confirm(:e1);
\echo :SQLSTATE
SELECT * FROM slotguard.confirm(:e2);
\echo :SQLSTATE
SELECT * FROM slotguard.confirm(:x1);
\echo :SQLSTATE
SELECT * FROM slotguard.confirm(:x4);
\echo :SQLSTATE
-- ... and it stays unconfirmed
SELECT holder, seat_labels, status FROM slotguard.bookings WHERE id IN (:e1, :e2, :x1, :x4)
 ORDER BY id;
-- cancel of an expired hold returns it with status 'expired', swept or not, and no cancelled_at
SELECT status, cancelled_at IS NULL AS no_cancelled_at FROM slotguard.cancel(:e1);
SELECT status, cancelled_at IS NULL AS no_cancelled_at FROM slotguard.cancel(:e2);
SELECT status, cancelled_at IS NULL AS no_cancelled_at FROM slotguard.cancel(:x1);
SELECT status, cancelled_at IS NULL AS no_cancelled_at FROM slotguard.cancel(:x4);
SELECT * FROM slotguard.availability(:sx);
SELECT * FROM slotguard.availability(:sxn);
-- expire_holds marks the remaining dead holds (x2, x5, x7) and says how many; again: 0
SELECT slotguard.expire_holds() AS expired;
SELECT slotguard.expire_holds() AS expired;
SELECT CASE slot_id WHEN :sx THEN 'sx' ELSE 'sxn' END AS slot, holder, seat_labels, status
  FROM slotguard.bookings WHERE slot_id IN (:sx, :sxn) ORDER BY id;
SELECT * FROM slotguard.availability(:sx);
SELECT * FROM slotguard.availability(:sxn);
SELECT seat_labels FROM slotguard.reserve(:sxn, 't', 2);
-- max_rows caps one sweep
SELECT id AS m1 FROM slotguard.reserve(:sx, 'm1', hold_ttl => '1 second') \gset
SELECT id AS m2 FROM slotguard.reserve(:sx, 'm2', hold_ttl => '1 second') \gset
SELECT pg_sleep(1.2);
SELECT slotguard.expire_holds(1) AS expired;
SELECT slotguard.expire_holds(1) AS expired;
SELECT slotguard.expire_holds(1) AS expired;
SELECT slotguard.expire_holds(0);
\echo :SQLSTATE
-- one_per_holder: once the holder's hold has expired, the holder may book again
SELECT slotguard.create_slot(2, one_per_holder => true) AS soe \gset
SELECT status FROM slotguard.reserve(:soe, 'alice', hold_ttl => '1 second');
SELECT * FROM slotguard.reserve(:soe, 'alice');
\echo :SQLSTATE
SELECT pg_sleep(1.2);
SELECT holder, status FROM slotguard.reserve(:soe, 'alice');
SELECT holder, status FROM slotguard.bookings WHERE slot_id = :soe ORDER BY id;

-- next_expiry: the first expiry of a pending hold, NULL when none is pending (also after the only
-- holds were confirmed or cancelled)
SELECT slotguard.expire_holds() >= 0 AS swept;
SELECT slotguard.next_expiry() IS NOT DISTINCT FROM
       (SELECT min(expires_at) FROM slotguard.bookings WHERE status = 'pending') AS exact;
SELECT slotguard.create_slot(2) AS sne \gset
SELECT id AS ne1 FROM slotguard.reserve(:sne, 'a', hold_ttl => '1 minute') \gset
SELECT slotguard.next_expiry() = expires_at AS is_the_new_hold
  FROM slotguard.bookings WHERE id = :ne1;
SELECT status FROM slotguard.confirm(:ne1);
SELECT slotguard.next_expiry() IS NOT DISTINCT FROM
       (SELECT min(expires_at) FROM slotguard.bookings WHERE status = 'pending') AS exact;

-- expire_holds sweeps every dead hold, however many shards there are: 64 confirmed bookings
-- (one per shard of a 64-seat slot) do not hide a dead hold of another slot.
SELECT slotguard.create_slot(64, hold_ttl => '1 second') AS s64 \gset
SELECT count(slotguard.confirm(id)) AS confirmed
  FROM (SELECT (slotguard.reserve(:s64, 'h' || g)).id FROM generate_series(1, 64) g) r;
SELECT * FROM slotguard.availability(:s64);
SELECT pg_sleep(0.1);
SELECT slotguard.create_slot(1) AS sdead \gset
SELECT status FROM slotguard.reserve(:sdead, 'x', hold_ttl => '1 second');
SELECT pg_sleep(1.2);
SELECT slotguard.expire_holds() AS expired;
SELECT slotguard.expire_holds() AS expired;

-- =============================================================================================
-- counters (docs/sql-api.md, "Monitoring", scope 'slot')
-- =============================================================================================
SELECT slotguard.create_slot(3, hold_ttl => '1 second') AS sc \gset
SELECT id AS c1 FROM slotguard.reserve(:sc, 'a') \gset
SELECT id AS c2 FROM slotguard.reserve(:sc, 'b', hold_ttl => '1 hour') \gset
SELECT id AS c3 FROM slotguard.reserve(:sc, 'c', hold_ttl => '1 hour') \gset
SELECT * FROM slotguard.reserve(:sc, 'd');
\echo :SQLSTATE
SELECT * FROM slotguard.reserve(:sc, 'd', 4);
\echo :SQLSTATE
SELECT status FROM slotguard.confirm(:c2);
SELECT status FROM slotguard.confirm(:c2);
SELECT status FROM slotguard.cancel(:c3);
SELECT status FROM slotguard.cancel(:c3);
SELECT pg_sleep(1.2);
-- a buyer takes back the dead hold c1: one expiration, one reservation
SELECT status FROM slotguard.reserve(:sc, 'e', confirm => true);
SELECT status FROM slotguard.reserve(:sc, 'f', hold_ttl => '1 second');
SELECT * FROM pg_temp.stat_deltas(:sc);
SELECT pg_sleep(1.2);
-- a dead hold that is cancelled counts as an expiration, not a cancellation
SELECT id AS c6 FROM slotguard.bookings WHERE slot_id = :sc AND holder = 'f' \gset
SELECT status FROM slotguard.cancel(:c6);
SELECT * FROM pg_temp.stat_deltas(:sc);
-- expirations by expire_holds are counted too (x2, x5, x7 above)
SELECT * FROM pg_temp.stat_deltas(:sx);
SELECT * FROM pg_temp.stat_deltas(:sxn);
SELECT * FROM pg_temp.stat_deltas(:sn);

-- =============================================================================================
-- privileges (docs/guarantees.md, "Privileges")
-- =============================================================================================
CREATE ROLE regress_sgres_app;
CREATE ROLE regress_sgres_admin;
CREATE ROLE regress_sgres_nobody;
GRANT USAGE ON SCHEMA slotguard TO regress_sgres_app, regress_sgres_admin;
SELECT slotguard.create_slot(2, hold_ttl => '10 minutes') AS sp \gset
SELECT slotguard.create_slot(2, seat_labels => ARRAY['P1', 'P2']) AS spn \gset

-- without USAGE on schema slotguard nothing can be called
SET ROLE regress_sgres_nobody;
SELECT * FROM slotguard.reserve(:sp, 'nobody');
\echo :SQLSTATE
SELECT * FROM slotguard.availability(:sp);
\echo :SQLSTATE
RESET ROLE;

-- with USAGE only (no rights on slotguard's tables) a role can use every function
SELECT has_table_privilege('regress_sgres_app', 'slotguard.bookings', 'SELECT') AS app_reads_bookings,
       has_table_privilege('regress_sgres_app', 'slotguard.slots', 'SELECT') AS app_reads_slots;
SET ROLE regress_sgres_app;
SELECT id AS pa1, holder, status FROM slotguard.reserve(:sp, 'app') \gset
\echo :holder :status
SELECT status FROM slotguard.confirm(:pa1);
SELECT id AS pa2, status FROM slotguard.reserve(:sp, 'app2', idempotency_key => 'p-1') \gset
\echo :status
SELECT id = :pa2 AS same_booking FROM slotguard.reserve(:sp, 'app2', idempotency_key => 'p-1');
SELECT * FROM slotguard.availability(:sp);
SELECT * FROM slotguard.reserve(:sp, 'app3');
\echo :SQLSTATE
SELECT status FROM slotguard.cancel(:pa2);
SELECT seat_labels, status FROM slotguard.reserve_seats(:spn, 'app', ARRAY['P2']);
SELECT seat_labels, status FROM slotguard.reserve(:spn, 'app');
SELECT * FROM slotguard.availability(:spn);
SELECT slotguard.expire_holds() >= 0 AS swept;
SELECT slotguard.next_expiry() IS NOT NULL AS has_next_expiry;
SELECT slotguard.create_slot(1) > :sp AS created;
-- ... but cannot touch the tables themselves
SELECT count(*) FROM slotguard.bookings;
\echo :SQLSTATE
SELECT count(*) FROM slotguard.slots;
\echo :SQLSTATE
UPDATE slotguard.bookings SET status = 'confirmed' WHERE id = :pa2;
\echo :SQLSTATE
INSERT INTO slotguard.bookings (slot_id, holder, seats, status) VALUES (:sp, 'x', 1, 'confirmed');
\echo :SQLSTATE
RESET ROLE;
SELECT status FROM slotguard.bookings WHERE id = :pa2;

-- the README recipe: only an admin role may create slots; apps reserve, confirm and cancel
REVOKE EXECUTE ON FUNCTION
  slotguard.create_slot(int, timestamptz, timestamptz, text, interval, text[], boolean, regrole) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  slotguard.create_slot(int, timestamptz, timestamptz, text, interval, text[], boolean, regrole)
  TO regress_sgres_admin;
SET ROLE regress_sgres_app;
SELECT slotguard.create_slot(1);
\echo :SQLSTATE
RESET ROLE;
SET ROLE regress_sgres_admin;
SELECT slotguard.create_slot(1, hold_ttl => '10 minutes') AS sadm \gset
RESET ROLE;
SET ROLE regress_sgres_app;
SELECT id AS pa3, status FROM slotguard.reserve(:sadm, 'app') \gset
\echo :status
SELECT status FROM slotguard.confirm(:pa3);
SELECT status FROM slotguard.cancel(:pa3);
SELECT * FROM slotguard.availability(:sadm);
RESET ROLE;
-- (restore the default)
GRANT EXECUTE ON FUNCTION
  slotguard.create_slot(int, timestamptz, timestamptz, text, interval, text[], boolean, regrole) TO PUBLIC;
REVOKE EXECUTE ON FUNCTION
  slotguard.create_slot(int, timestamptz, timestamptz, text, interval, text[], boolean, regrole)
  FROM regress_sgres_admin;

-- search_path safety: a caller's functions and operators that shadow pg_catalog's never run
-- inside the SECURITY DEFINER functions. Every such function pins its search_path ...
SELECT p.oid::regprocedure AS unpinned_security_definer
  FROM pg_proc p
 WHERE p.pronamespace = 'slotguard'::regnamespace AND p.prosecdef
   AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false);
-- ... and a caller whose search_path puts its own operators and functions first gets its
-- reservations done without any of them running. The caller works in a fresh session, so that
-- its calls are the first to plan slotguard's statements.
CREATE ROLE regress_sgres_evil LOGIN;
GRANT USAGE ON SCHEMA slotguard TO regress_sgres_evil;
CREATE SCHEMA resevil AUTHORIZATION regress_sgres_evil;
\c - regress_sgres_evil
CREATE FUNCTION resevil.trap(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'evil % called as %', what, current_user;
END $$;
CREATE FUNCTION resevil.now() RETURNS timestamptz LANGUAGE sql
  AS $$ SELECT CASE WHEN resevil.trap('now()') THEN NULL::timestamptz END $$;
CREATE FUNCTION resevil.clock_timestamp() RETURNS timestamptz LANGUAGE sql
  AS $$ SELECT CASE WHEN resevil.trap('clock_timestamp()') THEN NULL::timestamptz END $$;
CREATE FUNCTION resevil.text_eq(text, text) RETURNS boolean LANGUAGE sql
  AS $$ SELECT resevil.trap('text = text') $$;
CREATE OPERATOR resevil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = resevil.text_eq);
CREATE FUNCTION resevil.int8_eq(bigint, bigint) RETURNS boolean LANGUAGE sql
  AS $$ SELECT resevil.trap('bigint = bigint') $$;
CREATE OPERATOR resevil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = resevil.int8_eq);
CREATE FUNCTION resevil.int4_eq(int, int) RETURNS boolean LANGUAGE sql
  AS $$ SELECT resevil.trap('int = int') $$;
CREATE OPERATOR resevil.= (LEFTARG = int, RIGHTARG = int, FUNCTION = resevil.int4_eq);
CREATE FUNCTION resevil.int4_ne(int, int) RETURNS boolean LANGUAGE sql
  AS $$ SELECT resevil.trap('int <> int') $$;
CREATE OPERATOR resevil.<> (LEFTARG = int, RIGHTARG = int, FUNCTION = resevil.int4_ne);
CREATE FUNCTION resevil.int4_ge(int, int) RETURNS boolean LANGUAGE sql
  AS $$ SELECT resevil.trap('int >= int') $$;
CREATE OPERATOR resevil.>= (LEFTARG = int, RIGHTARG = int, FUNCTION = resevil.int4_ge);
CREATE FUNCTION resevil.int4_minus(int, int) RETURNS int LANGUAGE sql
  AS $$ SELECT CASE WHEN resevil.trap('int - int') THEN 0 END $$;
CREATE OPERATOR resevil.- (LEFTARG = int, RIGHTARG = int, FUNCTION = resevil.int4_minus);
CREATE FUNCTION resevil.int4_plus(int, int) RETURNS int LANGUAGE sql
  AS $$ SELECT CASE WHEN resevil.trap('int + int') THEN 0 END $$;
CREATE OPERATOR resevil.+ (LEFTARG = int, RIGHTARG = int, FUNCTION = resevil.int4_plus);
CREATE FUNCTION resevil.int4_mod(int, int) RETURNS int LANGUAGE sql
  AS $$ SELECT CASE WHEN resevil.trap('int % int') THEN 0 END $$;
CREATE OPERATOR resevil.% (LEFTARG = int, RIGHTARG = int, FUNCTION = resevil.int4_mod);
CREATE FUNCTION resevil.int4_div(int, int) RETURNS int LANGUAGE sql
  AS $$ SELECT CASE WHEN resevil.trap('int / int') THEN 0 END $$;
CREATE OPERATOR resevil./ (LEFTARG = int, RIGHTARG = int, FUNCTION = resevil.int4_div);
CREATE FUNCTION resevil.int4_lt(int, int) RETURNS boolean LANGUAGE sql
  AS $$ SELECT resevil.trap('int < int') $$;
CREATE OPERATOR resevil.< (LEFTARG = int, RIGHTARG = int, FUNCTION = resevil.int4_lt);
CREATE FUNCTION resevil.tstz_gt(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql
  AS $$ SELECT resevil.trap('timestamptz > timestamptz') $$;
CREATE OPERATOR resevil.> (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = resevil.tstz_gt);
CREATE FUNCTION resevil.tstz_le(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql
  AS $$ SELECT resevil.trap('timestamptz <= timestamptz') $$;
CREATE OPERATOR resevil.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = resevil.tstz_le);
CREATE FUNCTION resevil.tstz_pl(timestamptz, interval) RETURNS timestamptz LANGUAGE sql
  AS $$ SELECT CASE WHEN resevil.trap('timestamptz + interval') THEN NULL::timestamptz END $$;
CREATE OPERATOR resevil.+ (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = resevil.tstz_pl);
CREATE FUNCTION resevil.sum_step(bigint, int) RETURNS bigint LANGUAGE sql
  AS $$ SELECT CASE WHEN resevil.trap('sum(int)') THEN 0::bigint END $$;
CREATE AGGREGATE resevil.sum(int) (SFUNC = resevil.sum_step, STYPE = bigint);
CREATE FUNCTION resevil.count_step(bigint) RETURNS bigint LANGUAGE sql
  AS $$ SELECT CASE WHEN resevil.trap('count(*)') THEN 0::bigint END $$;
CREATE AGGREGATE resevil.count(*) (SFUNC = resevil.count_step, STYPE = bigint);
CREATE FUNCTION resevil.count_any_step(bigint, bigint) RETURNS bigint LANGUAGE sql
  AS $$ SELECT CASE WHEN resevil.trap('count(bigint)') THEN 0::bigint END $$;
CREATE AGGREGATE resevil.count(bigint) (SFUNC = resevil.count_any_step, STYPE = bigint);
CREATE FUNCTION resevil.min_step(timestamptz, timestamptz) RETURNS timestamptz LANGUAGE sql
  AS $$ SELECT CASE WHEN resevil.trap('min(timestamptz)') THEN NULL::timestamptz END $$;
CREATE AGGREGATE resevil.min(timestamptz) (SFUNC = resevil.min_step, STYPE = timestamptz);
CREATE FUNCTION resevil.generate_series(int, int) RETURNS SETOF int LANGUAGE plpgsql
  AS $$ BEGIN PERFORM resevil.trap('generate_series'); END $$;
CREATE FUNCTION resevil.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE plpgsql
  AS $$ BEGIN PERFORM resevil.trap('unnest'); END $$;
SET search_path = resevil, pg_catalog;
-- the traps work for the caller's own statements
SELECT 'a' = 'a';
SELECT now();
-- ... but not inside slotguard's functions
SELECT slotguard.create_slot(3, hold_ttl => '10 minutes') AS sev \gset
SELECT slotguard.create_slot(2, seat_labels => ARRAY['V1', 'V2']) AS sevn \gset
SELECT id AS v1, status FROM slotguard.reserve(:sev, 'evil', idempotency_key => 'ev-1') \gset
\echo :status
SELECT id OPERATOR(pg_catalog.=) :v1 AS same_booking
  FROM slotguard.reserve(:sev, 'evil', idempotency_key => 'ev-1');
SELECT status FROM slotguard.reserve(:sev, 'evil', confirm => true);
SELECT * FROM slotguard.reserve(:sev, 'evil', 2);
\echo :SQLSTATE
SELECT status FROM slotguard.confirm(:v1);
SELECT status FROM slotguard.cancel(:v1);
-- (two seats from two shards: the slow path)
SELECT seats, status FROM slotguard.reserve(:sev, 'evil', 2, hold_ttl => '1 second');
SELECT seat_labels, status FROM slotguard.reserve_seats(:sevn, 'evil', ARRAY['V2'],
                                                        hold_ttl => '1 second');
SELECT id AS v2, seat_labels FROM slotguard.reserve(:sevn, 'evil', hold_ttl => '10 minutes') \gset
\echo :seat_labels
SELECT * FROM slotguard.reserve_seats(:sevn, 'evil', ARRAY['V1']);
\echo :SQLSTATE
SELECT status FROM slotguard.cancel(:v2);
SELECT pg_sleep(1.2);
SELECT * FROM slotguard.availability(:sev);
SELECT * FROM slotguard.availability(:sevn);
SELECT slotguard.next_expiry() IS NOT NULL AS has_next_expiry;
-- (taking back dead holds)
SELECT seats, status FROM slotguard.reserve(:sev, 'evil', 2, hold_ttl => '1 second');
SELECT seat_labels, status FROM slotguard.reserve_seats(:sevn, 'evil', ARRAY['V2', 'V1'],
                                                        hold_ttl => '1 second');
SELECT pg_sleep(1.2);
SELECT slotguard.expire_holds() OPERATOR(pg_catalog.>=) 2 AS swept;
SELECT id OPERATOR(pg_catalog.=) :v1 AS same_booking, status
  FROM slotguard.reserve(:sev, 'evil', idempotency_key => 'ev-1');
RESET search_path;
\c - :superuser

-- clean up the roles (the bookings stay, they belong to the extension)
DROP SCHEMA resevil CASCADE;
DROP OWNED BY regress_sgres_app, regress_sgres_admin, regress_sgres_evil, regress_sgres_nobody;
DROP ROLE regress_sgres_app, regress_sgres_admin, regress_sgres_evil, regress_sgres_nobody;

-- =============================================================================================
-- a replay (a known idempotency key) writes: it locks its booking row, so on a read-only server
-- (a standby, a demoted primary) it fails with 25006 instead of answering from data a failover
-- may rewind, and its commit waits for synchronous replication (docs/operations.md "Failover")
-- =============================================================================================
SELECT slotguard.create_slot(3) AS rep \gset
SELECT status FROM slotguard.reserve(:rep, 'ann', 1, idempotency_key => 'rep-1');
BEGIN;
SELECT status FROM slotguard.reserve(:rep, 'ann', 1, idempotency_key => 'rep-1');
SELECT pg_catalog.pg_current_xact_id_if_assigned() IS NOT NULL AS wrote;
COMMIT;
BEGIN READ ONLY;
SELECT status FROM slotguard.reserve(:rep, 'ann', 1, idempotency_key => 'rep-1');
ROLLBACK;
SELECT count(*) AS one_booking FROM slotguard.bookings WHERE slot_id = :rep;

-- =============================================================================================
-- the invariant, over every slot of this test: confirmed seats plus live held seats never exceed
-- capacity, and availability agrees with the bookings
-- =============================================================================================
SELECT s.id, s.capacity, a.confirmed, a.held, a.free
  FROM slotguard.slots s, slotguard.availability(s.id) a
 WHERE s.id >= 10001
   AND (a.confirmed + a.held > s.capacity OR a.free < 0 OR a.capacity <> s.capacity
        OR a.confirmed <> (SELECT coalesce(sum(seats), 0) FROM slotguard.bookings
                            WHERE slot_id = s.id AND status = 'confirmed'));
