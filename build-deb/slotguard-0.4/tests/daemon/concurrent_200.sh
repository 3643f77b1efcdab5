#!/usr/bin/env bash
# 200 socket clients race for the 20 seats of one slot, all at the same instant: exactly 20 are
# booked, the other 180 get sold_out, and nothing else happens.
source "$(dirname "$0")/lib.bash"

make_db
POOL_SIZE=8 write_config "limits:
  max_clients: 256"
start_daemon
slot=$(sql -c "SELECT slotguard.create_slot(20, resource => 'race')")

out=$("$LOAD" burst "$SOCK" 200 \
  "{\"jsonrpc\":\"2.0\",\"id\":%i,\"method\":\"reserve\",\"params\":{\"slot_id\":$slot,\"holder\":\"racer-%i\",\"confirm\":true}}")
log "outcomes: $(tr '\n' ' ' <<<"$out")"
[[ $(awk '$1 == "ok" {print $2}' <<<"$out") == 20 ]] || fail "expected 20 ok: $out"
[[ $(awk '$1 == "sold_out" {print $2}' <<<"$out") == 180 ]] || fail "expected 180 sold_out: $out"
[[ $(wc -l <<<"$out") == 2 ]] || fail "unexpected outcomes: $out"
booked=$(sql -c "SELECT count(*) FROM slotguard.bookings WHERE slot_id = $slot AND status = 'confirmed'")
[[ $booked == 20 ]] || fail "expected 20 confirmed bookings, found $booked"
[[ $(sql -c "SELECT free FROM slotguard.availability($slot)") == 0 ]] || fail "free seats left"
a=$(call stats)
[[ $a == *'"sold_out"'* ]] || fail "stats do not count sold_out: $a"
stop_daemon || fail "the daemon did not exit 0"
