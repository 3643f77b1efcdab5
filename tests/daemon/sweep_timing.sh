#!/usr/bin/env bash
# The sweep marks a 1-second hold expired within about a second (it wakes at next_expiry(), not
# at sweep.interval, which is 30 s here), in the bookings table, without anyone calling
# expire_holds — also a hold made with plain SQL rather than through the socket (the sweeper looks
# at next_expiry() every second while it sleeps); a confirmed booking is left alone; with the
# sweep disabled nothing is marked.
#
# How late a hold was marked is measured in the database, not by polling from here: a trigger on
# slotguard.bookings records clock_timestamp() when a booking turns 'expired', and the test compares
# it with the booking's expires_at. (Polling with psql measured the machine's load as much as the
# sweeper: on a busy machine each poll takes tens of milliseconds.)
source "$(dirname "$0")/lib.bash"

make_db
sql -c "CREATE TABLE sweep_marks (id bigint, marked_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION note_sweep() RETURNS trigger LANGUAGE plpgsql AS
  \$\$BEGIN INSERT INTO public.sweep_marks (id) VALUES (NEW.id); RETURN NULL; END\$\$;
CREATE TRIGGER note_sweep AFTER UPDATE OF status ON slotguard.bookings
  FOR EACH ROW WHEN (NEW.status = 'expired' AND OLD.status = 'pending') EXECUTE FUNCTION public.note_sweep();" >/dev/null

# lateness ID: milliseconds between the hold's expiry and the moment it was marked expired.
lateness() {
  sql -c "SELECT round(extract(epoch FROM m.marked_at - b.expires_at) * 1000)::bigint
            FROM sweep_marks m JOIN slotguard.bookings b USING (id) WHERE m.id = $1"
}

# wait_expired ID SECONDS: wait until booking ID is marked expired (fails after SECONDS).
wait_expired() {
  local t0
  t0=$(date +%s)
  until [[ $(sql -c "SELECT status FROM slotguard.bookings WHERE id = $1") == expired ]]; do
    (($(date +%s) - t0 < $2)) || return 1
    sleep 0.05
  done
}
write_config "sweep:
  enabled: true
  interval: 30s"
start_daemon
slot=$(sql -c "SELECT slotguard.create_slot(5, hold_ttl => '1 second')")
sleep 0.3 # the sweeper's first look has come and gone: it now sleeps for the 30 s interval

a=$(call reserve "{\"slot_id\": $slot, \"holder\": \"h1\"}")
expect_ok "$a"
hold=$(field "$a" id)
a=$(call reserve "{\"slot_id\": $slot, \"holder\": \"h2\", \"confirm\": true}")
kept=$(field "$a" id)
wait_expired "$hold" 5 || fail "the 1 s hold was not swept within 5 s"
ms=$(lateness "$hold")
log "the 1 s hold was marked expired ${ms} ms after it expired"
((ms >= 0)) || fail "the hold was marked before it expired (${ms} ms)"
((ms <= 1000)) || fail "the hold was marked ${ms} ms after it expired, expected well within 1 s"
[[ $(sql -c "SELECT status FROM slotguard.bookings WHERE id = $kept") == confirmed ]] ||
  fail "the confirmed booking changed"
a=$(call stats)
[[ $a == *'"sweeps":'* ]] || fail "stats do not count sweeps: $a"

log "several holds with different lifetimes, each swept on time"
ids=()
for ttl in 1 2; do
  a=$(call reserve "{\"slot_id\": $slot, \"holder\": \"t$ttl\", \"hold_ttl\": \"$ttl seconds\"}")
  ids+=("$(field "$a" id)")
done
for i in 0 1; do
  wait_expired "${ids[$i]}" 6 || fail "the hold of $((i + 1)) s was not swept"
  ms=$(lateness "${ids[$i]}")
  log "  the $((i + 1)) s hold was marked ${ms} ms after it expired"
  ((ms >= 0 && ms <= 1000)) || fail "the $((i + 1)) s hold was marked ${ms} ms after it expired"
done

log "a hold made with plain SQL (no poke through the socket) is swept on time too"
sleep 2.5 # nothing pending: the sweeper sleeps for the 30 s interval, looking every second
hold=$(sql -c "SELECT id FROM slotguard.reserve($slot, 'sql-holder', hold_ttl => '1 second')")
wait_expired "$hold" 6 || fail "the SQL-made hold was not swept within 6 s"
ms=$(lateness "$hold")
log "  the SQL-made 1 s hold was marked ${ms} ms after it expired"
# The sweeper looks at next_expiry() every second while it sleeps, so up to ~1 s more.
((ms >= 0 && ms <= 2000)) || fail "the SQL-made hold was marked ${ms} ms after it expired"

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
