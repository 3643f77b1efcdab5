-- reservation_bounds: caller-sized inputs of create_slot, reserve and reserve_seats
-- (hardened in 0.3). Label arrays are checked in O(n log n) (a 100,000-seat slot is created and booked
-- here in seconds; tests/integration/reservation_bounds.sh times it and shows statement_timeout
-- cancelling pathological sizes); NULLs, empty and over-long labels, multi-dimensional arrays,
-- over-long holders and idempotency keys are 22023; error texts name at most five labels and
-- count the rest.
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT setval(pg_get_serial_sequence('slotguard.slots', 'id'), 31001, false),
       setval(pg_get_serial_sequence('slotguard.bookings', 'id'), 31001, false);

-- err(sql): the SQLSTATE, the length of message + detail + hint, and the message (cut at 120).
CREATE FUNCTION pg_temp.err(sql text) RETURNS TABLE(state text, text_bytes int, message text)
LANGUAGE plpgsql AS $$
DECLARE m text; d text; h text;
BEGIN
  EXECUTE sql;
  RETURN QUERY SELECT '00000'::text, 0, ''::text;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL,
                          h = PG_EXCEPTION_HINT;
  RETURN QUERY SELECT state, octet_length(m) + coalesce(octet_length(d), 0)
                             + coalesce(octet_length(h), 0), left(m, 120);
END $$;

-- create_slot: bad label arrays
SELECT * FROM pg_temp.err($$SELECT slotguard.create_slot(2, seat_labels => ARRAY['A1', NULL])$$);
SELECT * FROM pg_temp.err($$SELECT slotguard.create_slot(2, seat_labels => ARRAY['A1', ''])$$);
SELECT * FROM pg_temp.err($$SELECT slotguard.create_slot(2, seat_labels => ARRAY['A1', repeat('x', 257)])$$);
SELECT * FROM pg_temp.err($$SELECT slotguard.create_slot(4, seat_labels => '{{A1,A2},{B1,B2}}')$$);
SELECT * FROM pg_temp.err($$SELECT slotguard.create_slot(0, seat_labels => '{}')$$);
-- a label of 256 bytes is fine; so is an array with another lower bound
SELECT slotguard.create_slot(2, seat_labels => ARRAY['A1', repeat('x', 256)]) > 0 AS ok;
SELECT slotguard.create_slot(2, seat_labels => '[5:6]={A1,A2}') AS s_lb \gset
SELECT ord, label FROM slotguard.seats WHERE slot_id = :s_lb ORDER BY ord;
-- a duplicate among 100,000 labels, the first and the last: found at once
SELECT * FROM pg_temp.err($$SELECT slotguard.create_slot(100000, seat_labels =>
  (SELECT array_agg(CASE WHEN i = 100000 THEN 'S1' ELSE 'S' || i END ORDER BY i)
     FROM generate_series(1, 100000) i))$$);

-- A 100,000-seat stadium.
SELECT slotguard.create_slot(100000, seat_labels =>
  (SELECT array_agg('S' || i ORDER BY i) FROM generate_series(1, 100000) i)) AS big \gset
SELECT count(*) AS seats FROM slotguard.seats WHERE slot_id = :big;
-- half of it by label, in one call
SELECT seats, seat_labels[1:3] AS first_labels FROM slotguard.reserve_seats(:big, 'fan:1',
  (SELECT array_agg('S' || i ORDER BY i) FROM generate_series(1, 100000, 2) i));
-- 33,334 labels, 16,667 of them taken: SG003 names five and counts the rest
SELECT * FROM pg_temp.err(format($$SELECT slotguard.reserve_seats(%s, 'fan:2',
  (SELECT array_agg('S' || i ORDER BY i) FROM generate_series(1, 100000, 3) i))$$, :big));
-- 33,334 labels the slot does not have: 22023, five named
SELECT * FROM pg_temp.err(format($$SELECT slotguard.reserve_seats(%s, 'fan:2',
  (SELECT array_agg('T' || i ORDER BY i) FROM generate_series(1, 100000, 3) i))$$, :big));
-- the other half, without labels: picked in label order
SELECT seats, seat_labels[1:3] AS first_labels FROM slotguard.reserve(:big, 'fan:3', 50000);
SELECT * FROM slotguard.availability(:big);

-- reserve_seats: bad label arrays
SELECT slotguard.create_slot(3, seat_labels => ARRAY['A1', 'A2', 'A3']) AS sn \gset
SELECT * FROM pg_temp.err(format($$SELECT slotguard.reserve_seats(%s, 'x', ARRAY['A1', NULL])$$, :sn));
SELECT * FROM pg_temp.err(format($$SELECT slotguard.reserve_seats(%s, 'x', ARRAY['A1', ''])$$, :sn));
SELECT * FROM pg_temp.err(format($$SELECT slotguard.reserve_seats(%s, 'x', ARRAY[repeat('x', 100000)])$$, :sn));
SELECT * FROM pg_temp.err(format($$SELECT slotguard.reserve_seats(%s, 'x', '{{A1},{A2}}')$$, :sn));
SELECT * FROM pg_temp.err(format($$SELECT slotguard.reserve_seats(%s, 'x', '{}')$$, :sn));
SELECT * FROM pg_temp.err(format($$SELECT slotguard.reserve_seats(%s, 'x', ARRAY['A2', 'A1', 'A2'])$$, :sn));
-- holders and idempotency keys: at most 1024 bytes
SELECT * FROM pg_temp.err(format($$SELECT slotguard.reserve(%s, repeat('h', 1025))$$, :sn));
SELECT * FROM pg_temp.err(format($$SELECT slotguard.reserve(%s, 'x', idempotency_key => repeat('k', 1025))$$, :sn));
SELECT * FROM pg_temp.err(format($$SELECT slotguard.reserve(%s, repeat('h', 1000000))$$, :sn));
SELECT holder = repeat('h', 1024) AS long_holder_ok
  FROM slotguard.reserve(:sn, repeat('h', 1024), idempotency_key => repeat('k', 1024));

-- an error message longer than the boundary's buffer is cut at a character boundary, never inside
-- a multibyte character (a cut character made the message invalid UTF-8): the holder's own name,
-- 1020 bytes of two-byte characters, in its one_per_holder SG003, both parities of the cut
CREATE FUNCTION pg_temp.long_message(h text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE m text; s bigint;
BEGIN
  s := slotguard.create_slot(2, one_per_holder => true);
  PERFORM slotguard.reserve(s, h);
  PERFORM slotguard.reserve(s, h);
  RETURN 'no error';
EXCEPTION WHEN others THEN
  GET STACKED DIAGNOSTICS m = MESSAGE_TEXT;
  DELETE FROM slotguard.bookings WHERE slot_id = s;
  DELETE FROM slotguard.slots WHERE id = s;
  RETURN format('%s, at most 1023 bytes: %s, valid: %s', SQLSTATE, octet_length(m) <= 1023,
                convert_from(textsend(m), 'UTF8') = m);
END $$;
SELECT pg_temp.long_message(repeat(U&'\00E9', 510));
SELECT pg_temp.long_message('x' || repeat(U&'\00E9', 509));

DELETE FROM slotguard.bookings WHERE slot_id >= 31001;
DELETE FROM slotguard.slots WHERE id >= 31001;
