#!/usr/bin/env bash
# The sweep marks a 1-second hold expired within about a second (it wakes at next_expiry(), not
# at sweep.interval, which is 30 s here), in the bookings table, without anyone calling
# expire_holds — also a hold made with plain SQL rather than through the socket (the sweeper looks
# at next_expiry() every second while it sleeps); a confirmed booking is left alone; with the
# sweep disabled nothing is marked.
source "$(dirname "$0")/lib.bash"

make_db
write_config "sweep:
  enabled: true
  interval: 30s"
start_daemon
slot=$(sql -c "SELECT slotguard.create_slot(5, hold_ttl => '1 second')")
sleep 0.3 # the sweeper's first look has come and gone: it now sleeps for the 30 s interval

t0=$(date +%s%N)
a=$(call reserve "{\"slot_id\": $slot, \"holder\": \"h1\"}")
expect_ok "$a"
hold=$(field "$a" id)
a=$(call reserve "{\"slot_id\": $slot, \"holder\": \"h2\", \"confirm\": true}")
kept=$(field "$a" id)
status=
while :; do
  status=$(sql -c "SELECT status FROM slotguard.bookings WHERE id = $hold")
  [[ $status == expired ]] && break
  (($(date +%s%N) - t0 < 3000000000)) || break
  sleep 0.05
done
ms=$((($(date +%s%N) - t0) / 1000000))
log "the 1 s hold was '$status' after ${ms} ms"
[[ $status == expired ]] || fail "the hold was not swept within 3 s"
((ms <= 2000)) || fail "the hold was swept after ${ms} ms, expected within ~1.5 s (2 s with polling on a loaded machine)"
((ms >= 900)) || fail "the hold was swept too early (${ms} ms)"
[[ $(sql -c "SELECT status FROM slotguard.bookings WHERE id = $kept") == confirmed ]] ||
  fail "the confirmed booking changed"
a=$(call stats)
[[ $a == *'"sweeps":'* ]] || fail "stats do not count sweeps: $a"

log "several holds with different lifetimes, each swept on time"
t0=$(date +%s%N)
for ttl in 1 2; do
  call reserve "{\"slot_id\": $slot, \"holder\": \"t$ttl\", \"hold_ttl\": \"$ttl seconds\"}" >/dev/null
done
for ttl in 1 2; do
  while [[ $(sql -c "SELECT status FROM slotguard.bookings WHERE holder = 't$ttl'") != expired ]]; do
    (($(date +%s%N) - t0 < (ttl + 2) * 1000000000)) || fail "hold of ${ttl}s not swept"
    sleep 0.05
  done
  ms=$((($(date +%s%N) - t0) / 1000000))
  log "  the ${ttl} s hold expired after ${ms} ms"
  ((ms <= ttl * 1000 + 900)) || fail "the ${ttl} s hold was swept late (${ms} ms)"
done

log "a hold made with plain SQL (no poke through the socket) is swept on time too"
sleep 2.5 # nothing pending: the sweeper sleeps for the 30 s interval, looking every second
t0=$(date +%s%N)
hold=$(sql -c "SELECT id FROM slotguard.reserve($slot, 'sql-holder', hold_ttl => '1 second')")
while [[ $(sql -c "SELECT status FROM slotguard.bookings WHERE id = $hold") != expired ]]; do
  (($(date +%s%N) - t0 < 4000000000)) || fail "the SQL-made hold was not swept within 4 s"
  sleep 0.05
done
ms=$((($(date +%s%N) - t0) / 1000000))
log "  the SQL-made 1 s hold expired after ${ms} ms"
((ms <= 2300)) || fail "the SQL-made hold was swept late (${ms} ms)"

log "sweep disabled: holds stay pending (expiry is still lazy: they are free seats)"
stop_daemon || fail "the daemon did not exit 0"
write_config "sweep:
  enabled: false"
start_daemon
a=$(call reserve "{\"slot_id\": $slot, \"holder\": \"h3\", \"hold_ttl\": \"200 milliseconds\"}")
hold=$(field "$a" id)
sleep 1
[[ $(sql -c "SELECT status FROM slotguard.bookings WHERE id = $hold") == pending ]] ||
  fail "a disabled sweep marked a hold"
stop_daemon || fail "the daemon did not exit 0"
