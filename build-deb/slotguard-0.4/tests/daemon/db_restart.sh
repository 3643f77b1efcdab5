#!/usr/bin/env bash
# The database goes away while slotguardd runs: requests answer `unavailable` quickly (no hang,
# no crash), health says so; when the database is back the daemon serves again by itself, and a
# client that stayed connected throughout is served too. Restarts the test cluster (fast
# shutdown, then start with the same data directory and configuration) and always brings it back.
source "$(dirname "$0")/lib.bash"

make_db
write_config "retry:
  max_attempts: 3
  base_delay_ms: 50
  max_delay_ms: 200"
start_daemon
slot=$(sql -c "SELECT slotguard.create_slot(1000)")
expect_ok "$(call reserve "{\"slot_id\": $slot, \"holder\": \"before\"}")"

DATA=$(psql -X -At -d postgres -c "SHOW data_directory")
OWNER=$(stat -c %U "$DATA")
PGLOG=$(dirname "$DATA")/log
[[ -w $(dirname "$DATA") || $(id -u) == 0 ]] || PGLOG=$WORK/pg.log
pg_ctl_as_owner() {
  if [[ $(id -u) == 0 && $OWNER != root ]]; then
    (cd / && runuser -u "$OWNER" -- pg_ctl "$@")
  else
    pg_ctl "$@"
  fi
}
db_start() {
  pg_ctl_as_owner start -D "$DATA" -l "$PGLOG" -w -t 60 >/dev/null
  for _ in $(seq 1 120); do pg_isready -q && return 0; sleep 0.25; done
  return 1
}
db_running() { pg_ctl_as_owner status -D "$DATA" >/dev/null 2>&1; }
bring_back() { db_running || db_start; }
CLEANUP_HOOK=bring_back

coproc S { "$LOAD" session "$SOCK"; }
spid=$S_PID
ask() {
  local line
  printf '%s\n' "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"availability\",\"params\":{\"slot_id\":$slot}}" >&"${S[1]}"
  read -t 10 -r line <&"${S[0]}" || fail "the long-lived client got no answer"
  echo "$line"
}
expect_ok "$(ask)"

log "stopping the database (pg_ctl stop -m fast)"
pg_ctl_as_owner stop -D "$DATA" -m fast -w -t 60 >/dev/null
for i in 1 2 3 4 5; do
  t0=$(date +%s%N)
  a=$(call reserve "{\"slot_id\": $slot, \"holder\": \"during-$i\"}")
  ms=$((($(date +%s%N) - t0) / 1000000))
  log "  request $i while down: ${ms} ms: $a"
  expect_reason "$a" unavailable
  ((ms < 2500)) || fail "request $i took ${ms} ms to answer unavailable"
done
a=$(ask)
expect_reason "$a" unavailable
a=$(call health)
[[ $a == *'"database":"unavailable"'* ]] || fail "health while down: $a"
a=$(call stats)
[[ $a == *'"daemon":'* ]] || fail "stats while down: $a"
kill -0 "$DPID" || fail "the daemon died while the database was down"

log "starting the database again"
db_start || fail "the database did not come back"
t0=$(date +%s%N)
while :; do
  a=$(call reserve "{\"slot_id\": $slot, \"holder\": \"after\"}")
  [[ $a == *'"result":'* ]] && break
  (($(date +%s%N) - t0 < 15000000000)) || fail "not serving 15 s after the database came back: $a"
  sleep 0.1
done
ms=$((($(date +%s%N) - t0) / 1000000))
log "serving again ${ms} ms after the database came back"
expect_ok "$(ask)"
for i in 1 2 3; do expect_ok "$(call reserve "{\"slot_id\": $slot, \"holder\": \"after-$i\"}")"; done
[[ $(sql -c "SELECT count(*) FROM slotguard.bookings WHERE slot_id = $slot AND holder LIKE 'during-%'") == 0 ]] ||
  fail "a request answered unavailable was booked"
a=$(call health)
[[ $a == *'"database":"ok"'* ]] || fail "health after: $a"
exec {S[1]}>&-
wait "$spid" 2>/dev/null || true
stop_daemon || fail "the daemon did not exit 0"
