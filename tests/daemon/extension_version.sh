#!/usr/bin/env bash
# slotguardd against the extension version of its database (docs/operations.md "Upgrades"):
#   - a database without the extension: the daemon starts, answers `unavailable` with a message
#     that says to run CREATE EXTENSION, and health says so; once the extension is created it
#     serves by itself (no restart);
#   - a database at the previous version (still to be updated with ALTER EXTENSION UPDATE): it
#     works — reservations, confirmations, create_slot;
#   - a database at a version older than the daemon needs: refused with a message naming the
#     version and ALTER EXTENSION slotguard UPDATE;
#   - health names the role of the server it is connected to (primary).
source "$(dirname "$0")/lib.bash"

control=$("$PG_CONFIG" --sharedir)/extension/slotguard.control
latest=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$control")
mapfile -t older < <(ls "$("$PG_CONFIG" --sharedir)"/extension/slotguard--*.sql |
  sed -n 's/.*slotguard--\([0-9.]*\)\(--[0-9.]*\)\?\.sql$/\1/p' | sort -uV | grep -vxF "$latest")
previous=${older[-1]}
oldest=${older[0]}
[[ $oldest != "$previous" ]] || fail "needs two earlier versions (found: ${older[*]})"

# wait_served WHAT: health says the database is ok within 6 s (h: the last answer), else fail.
wait_served() {
  for _ in $(seq 1 60); do
    h=$(call health)
    [[ $h == *'"database":"ok"'* ]] && return 0
    sleep 0.1
  done
  fail "the daemon did not come back after $1: $h"
}

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
write_config
"$SGD" --config "$CONF" 2>>"$DLOG" &
DPID=$!
for _ in $(seq 1 100); do [[ -S $SOCK ]] && break; sleep 0.1; done
[[ -S $SOCK ]] || fail "the daemon did not listen without the extension"

log "no extension: unavailable, saying what to run"
a=$(call reserve '{"slot_id":1,"holder":"ann"}')
expect_reason "$a" unavailable
[[ $a == *"CREATE EXTENSION slotguard"* ]] || fail "the answer does not say what to run: $a"
h=$(call health)
[[ $h == *'"database":"unavailable"'* && $h == *"CREATE EXTENSION slotguard"* ]] ||
  fail "health: $h"

log "CREATE EXTENSION slotguard VERSION '$previous': served without a restart"
sql -c "CREATE EXTENSION slotguard VERSION '$previous'"
wait_served "CREATE EXTENSION"
[[ $h == *'"role":"primary"'* ]] || fail "health does not name the role: $h"
a=$(call create_slot '{"capacity":2}')
expect_ok "$a"
slot=$(sed -E 's/.*"result":([0-9]+).*/\1/' <<<"$a")
a=$(call reserve "{\"slot_id\":$slot,\"holder\":\"ann\",\"seats\":2}")
expect_ok "$a"
expect_ok "$(call confirm "{\"booking_id\":$(field "$a" id)}")"
expect_reason "$(call reserve "{\"slot_id\":$slot,\"holder\":\"bob\"}")" sold_out
stop_daemon || fail "slotguardd did not stop cleanly"

log "version $oldest: refused, saying to update"
sql -c "DROP EXTENSION slotguard CASCADE" -c "CREATE EXTENSION slotguard VERSION '$oldest'"
start_or_not() {
  : >"$DLOG"
  "$SGD" --config "$CONF" 2>>"$DLOG" &
  DPID=$!
  for _ in $(seq 1 100); do [[ -S $SOCK ]] && break; sleep 0.1; done
}
start_or_not
a=$(call reserve "{\"slot_id\":1,\"holder\":\"ann\"}")
expect_reason "$a" unavailable
[[ $a == *"version $oldest"* && $a == *"ALTER EXTENSION slotguard UPDATE"* ]] ||
  fail "the answer does not name the version and the update: $a"
grep -q "ALTER EXTENSION slotguard UPDATE" "$DLOG" || fail "the log does not say what to run"
log "ALTER EXTENSION slotguard UPDATE: served again"
sql -c "ALTER EXTENSION slotguard UPDATE"
wait_served "the update"
expect_ok "$(call create_slot '{"capacity":1}')"
stop_daemon || fail "slotguardd did not stop cleanly"
