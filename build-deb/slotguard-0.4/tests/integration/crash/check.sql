-- check.sql: the crash tests' check (tests/integration/crash/lib.bash runs it with @ACK@ replaced
-- by the prefix of sg_crash_load's files, and -v acks=1 or 0). Prints "figures ..." lines and one
-- "violation ..." line per violation.
--   acks=1: against what the clients were acknowledged (crash_load.cpp lists the files):
--     every acknowledged confirmation is there, confirmed (or cancelled, if a cancel of it was
--     sent), with its slot, seats and labels; every acknowledged cancel is cancelled; every
--     acknowledged reservation is there with its key; each key whose request was answered has
--     exactly one booking, a key answered sold out has none, and no booking has a key whose
--     request was not answered with it (or left unresolved).
--   always: the reservation invariants over all slots (those of
--     tests/integration/stress/reservation_stress.cpp): seats of confirmed and pending bookings
--     within capacity, a seat label in at most one of them, statuses and timestamps agree, the
--     shard rows and seat rows agree with the bookings.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
\if :acks
CREATE TEMP TABLE a_reserved (key text, id bigint, slot bigint, seats int, status text, labels text);
CREATE TEMP TABLE a_soldout (key text, slot bigint);
CREATE TEMP TABLE a_confirmed (id bigint, slot bigint, seats int, labels text);
CREATE TEMP TABLE a_cancel_sent (id bigint);
CREATE TEMP TABLE a_cancelled (id bigint);
CREATE TEMP TABLE a_unresolved (key text, slot bigint);
\copy a_reserved FROM '@ACK@.reserved'
\copy a_soldout FROM '@ACK@.soldout'
\copy a_confirmed FROM '@ACK@.confirmed'
\copy a_cancel_sent FROM '@ACK@.cancel_sent'
\copy a_cancelled FROM '@ACK@.cancelled'
\copy a_unresolved FROM '@ACK@.unresolved'
SELECT format('figures: %s acknowledged confirmations, %s acknowledged reservations, %s sold out, '
              '%s acknowledged cancels, %s unresolved; %s bookings in the database',
              (SELECT count(*) FROM a_confirmed), (SELECT count(*) FROM a_reserved),
              (SELECT count(*) FROM a_soldout), (SELECT count(*) FROM a_cancelled),
              (SELECT count(*) FROM a_unresolved), (SELECT count(*) FROM slotguard.bookings));

SELECT format('violation: acknowledged confirmation %s (slot %s, %s seats, labels %s) is %s',
              a.id, a.slot, a.seats, a.labels,
              CASE WHEN b.id IS NULL THEN 'missing'
                   ELSE format('%s (slot %s, %s seats, labels %s)', b.status, b.slot_id, b.seats,
                               array_to_string(b.seat_labels, ',')) END)
  FROM a_confirmed a LEFT JOIN slotguard.bookings b ON b.id = a.id
 WHERE b.id IS NULL OR b.slot_id <> a.slot OR b.seats <> a.seats
    OR coalesce(array_to_string(b.seat_labels, ','), '') <> a.labels
    OR NOT (b.status = 'confirmed'
            OR (b.status = 'cancelled' AND a.id IN (SELECT id FROM a_cancel_sent)));
SELECT format('violation: acknowledged cancel of booking %s, which is %s', a.id,
              coalesce(b.status, 'missing'))
  FROM a_cancelled a LEFT JOIN slotguard.bookings b ON b.id = a.id
 WHERE b.status IS DISTINCT FROM 'cancelled';
SELECT format('violation: acknowledged reservation %s (key %s, slot %s, %s seats) is %s', a.id,
              a.key, a.slot, a.seats,
              CASE WHEN b.id IS NULL THEN 'missing'
                   ELSE format('key %s, slot %s, %s seats', b.idempotency_key, b.slot_id, b.seats)
              END)
  FROM a_reserved a LEFT JOIN slotguard.bookings b ON b.id = a.id
 WHERE b.id IS NULL OR b.slot_id <> a.slot OR b.seats <> a.seats
    OR b.idempotency_key IS DISTINCT FROM a.key;
SELECT format('violation: key %s has %s bookings (%s), not one', a.key, count(b.id),
              string_agg(b.id::text, ', '))
  FROM a_reserved a LEFT JOIN slotguard.bookings b ON b.idempotency_key = a.key
 GROUP BY a.key HAVING count(b.id) <> 1;
SELECT format('violation: key %s was answered sold out but has booking %s', a.key, b.id)
  FROM a_soldout a JOIN slotguard.bookings b ON b.idempotency_key = a.key;
SELECT format('violation: booking %s has key %s, which no answer named', b.id, b.idempotency_key)
  FROM slotguard.bookings b
 WHERE b.idempotency_key IS NOT NULL
   AND NOT EXISTS (SELECT FROM a_reserved a WHERE a.key = b.idempotency_key)
   AND NOT EXISTS (SELECT FROM a_unresolved u WHERE u.key = b.idempotency_key);
SELECT format('violation: key %s (unresolved) has %s bookings', u.key, count(*))
  FROM a_unresolved u JOIN slotguard.bookings b ON b.idempotency_key = u.key
 GROUP BY u.key HAVING count(*) > 1;
\endif

SELECT format('figures: %s slots, %s confirmed seats, %s live held seats, %s cancelled bookings',
              (SELECT count(*) FROM slotguard.slots),
              (SELECT coalesce(sum(seats), 0) FROM slotguard.bookings WHERE status = 'confirmed'),
              (SELECT coalesce(sum(seats), 0) FROM slotguard.bookings
                WHERE status = 'pending' AND expires_at > clock_timestamp()),
              (SELECT count(*) FROM slotguard.bookings WHERE status = 'cancelled'));
SELECT format('violation: slot %s: capacity %s, but its confirmed and pending bookings hold %s '
              '(%s confirmed, %s live held)', s.id, s.capacity, c.all_held, c.confirmed, c.live)
  FROM slotguard.slots s CROSS JOIN LATERAL (SELECT
         coalesce(sum(b.seats) FILTER (WHERE b.status = 'confirmed'), 0) AS confirmed,
         coalesce(sum(b.seats) FILTER (WHERE b.status = 'pending'
                                         AND b.expires_at > clock_timestamp()), 0) AS live,
         coalesce(sum(b.seats), 0) AS all_held
         FROM slotguard.bookings b
        WHERE b.slot_id = s.id AND b.status IN ('pending', 'confirmed')) c
 WHERE c.all_held > s.capacity;
SELECT format('violation: slot %s: seat %s belongs to %s bookings: %s', b.slot_id, l.label,
              count(*), string_agg(format('%s %s', b.id, b.status), ', ' ORDER BY b.id))
  FROM slotguard.bookings b CROSS JOIN LATERAL unnest(b.seat_labels) AS l(label)
 WHERE b.status IN ('pending', 'confirmed')
 GROUP BY b.slot_id, l.label HAVING count(*) > 1;
SELECT format('violation: booking %s (slot %s, %s, seats %s, shard %s, labels %s): %s', b.id,
              b.slot_id, b.status, b.seats, b.shard, b.seat_labels, p.problem)
  FROM slotguard.bookings b JOIN slotguard.slots s ON s.id = b.slot_id
 CROSS JOIN LATERAL (SELECT CASE
     WHEN b.status = 'expired' AND b.expires_at IS NULL THEN 'expired, but it was confirmed'
     WHEN b.status = 'confirmed' AND (b.expires_at IS NOT NULL OR b.confirmed_at IS NULL)
       THEN 'confirmed, but expires_at is set or confirmed_at is not'
     WHEN b.status = 'pending' AND (b.expires_at IS NULL OR b.confirmed_at IS NOT NULL)
       THEN 'pending without a hold, or with confirmed_at'
     WHEN b.status = 'cancelled' AND b.cancelled_at IS NULL THEN 'cancelled without cancelled_at'
     WHEN s.seat_labels IS NULL AND (b.seat_labels IS NOT NULL OR b.shard IS NULL
          OR b.shard < 0 OR b.shard >= s.shards) THEN 'plain-slot booking without a valid shard'
     WHEN s.seat_labels IS NOT NULL AND (b.shard IS NOT NULL
          OR cardinality(b.seat_labels) IS DISTINCT FROM b.seats
          OR NOT b.seat_labels <@ s.seat_labels)
       THEN 'numbered-seat booking whose labels do not match its seats or the slot'
     END AS problem) p
 WHERE p.problem IS NOT NULL;
SELECT format('violation: slot %s: capacity %s, shards %s, but %s shard rows with capacities '
              'adding up to %s', s.id, s.capacity, s.shards, count(sh.shard),
              coalesce(sum(sh.capacity), 0))
  FROM slotguard.slots s LEFT JOIN slotguard.slot_shards sh ON sh.slot_id = s.id
 WHERE s.seat_labels IS NULL
 GROUP BY s.id HAVING coalesce(sum(sh.capacity), 0) <> s.capacity OR count(sh.shard) <> s.shards;
SELECT format('violation: slot %s shard %s: capacity %s, used %s, but its pending and confirmed '
              'bookings hold %s seats', sh.slot_id, sh.shard, sh.capacity, sh.used, b.seats)
  FROM slotguard.slot_shards sh CROSS JOIN LATERAL (SELECT coalesce(sum(seats), 0) AS seats
         FROM slotguard.bookings
        WHERE slot_id = sh.slot_id AND shard = sh.shard AND status IN ('pending', 'confirmed')) b
 WHERE sh.used <> b.seats OR sh.used > sh.capacity;
SELECT format('violation: slot %s: booking %s (%s) has seat %s, but the seat row points at %s',
              b.slot_id, b.id, b.status, l.label, coalesce(se.booking_id::text, 'nothing'))
  FROM slotguard.bookings b CROSS JOIN LATERAL unnest(b.seat_labels) AS l(label)
  LEFT JOIN slotguard.seats se ON se.slot_id = b.slot_id AND se.label = l.label
 WHERE b.status IN ('pending', 'confirmed') AND se.booking_id IS DISTINCT FROM b.id;
