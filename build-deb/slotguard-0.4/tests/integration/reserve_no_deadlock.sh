#!/usr/bin/env bash
# Buyers who start at the same instant on a small slot never deadlock each other: reserve must
# never wait for a shard while holding another (a locking scan keeps the lock of a row it skips
# after a recheck, so every waiting step runs with no shard lock of ours left behind). Rounds of
# 10 sessions on capacity-3 slots, one seat each and two seats each (the slow path that gathers
# capacity across shards), with and without idempotency keys and one_per_holder: no session may
# get 40P01, the server log may not mention a deadlock, and exactly the capacity is booked.
# Needs PGHOST, PGPORT, PGUSER (superuser) and PGDATABASE of a cluster with slotguard installed.
set -uo pipefail

db=sg_nodeadlock
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_q -d "${PGDATABASE:-postgres}" -c "SET client_min_messages = warning" \
  -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" || exit 1
trap 'psql -X -q -d "${PGDATABASE:-postgres}" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1; rm -rf "$work"' EXIT
psql_q -d $db -c "CREATE EXTENSION slotguard" || exit 1
server_log=$(psql -X -At -d $db -c "SELECT pg_current_logfile()")
data_dir=$(psql -X -At -d $db -c "SHOW data_directory")
[[ -n $server_log && $server_log != /* ]] && server_log=$data_dir/$server_log
log_lines() { if [[ -r $server_log ]]; then wc -l <"$server_log"; else echo 0; fi; }
start_line=$(log_lines)

work=$(mktemp -d)
fail=0
rounds=${SG_DEADLOCK_ROUNDS:-12}

# round CAPACITY SEATS OPTS: a fresh slot, 10 buyers released at one instant.
round() {
  local capacity=$1 seats=$2 opts=$3 slot i
  slot=$(psql -X -At -d $db -c "SELECT slotguard.create_slot($capacity $opts)") || return 1
  rm -f "$work"/out.*
  for i in $(seq 1 10); do
    psql -X -q -d $db -v VERBOSITY=verbose \
      -c "SELECT pg_sleep(0.25 - extract(epoch from clock_timestamp())::numeric % 0.25)" \
      -c "BEGIN" -c "SELECT id FROM slotguard.reserve($slot, 'p$i', $seats)" -c "COMMIT" \
      >"$work/out.$i" 2>&1 &
  done
  wait
  if grep -l '40P01\|deadlock' "$work"/out.* >/dev/null 2>&1; then
    echo "FAIL: capacity $capacity, $seats seat(s) ($opts): a buyer got a deadlock:"
    grep -h -A2 '40P01\|deadlock' "$work"/out.* | head -n 12
    fail=1
  fi
  local booked
  booked=$(psql -X -At -d $db -c "SELECT coalesce(sum(seats), 0) FROM slotguard.bookings WHERE slot_id = $slot AND status = 'pending'")
  local want=$((capacity / seats * seats))
  if [[ $booked != "$want" ]]; then
    echo "FAIL: capacity $capacity, $seats seat(s) ($opts): $booked seats booked, want $want"
    fail=1
  fi
}

for r in $(seq 1 "$rounds"); do
  round 3 1 ""
  round 3 1 ", one_per_holder => true"
  round 5 2 ""
  round 4 1 ""
done
# idempotency keys: the same rounds through the keyed path
idem_round() {
  local slot i
  slot=$(psql -X -At -d $db -c "SELECT slotguard.create_slot(3)") || return 1
  rm -f "$work"/out.*
  for i in $(seq 1 10); do
    psql -X -q -d $db -v VERBOSITY=verbose \
      -c "SELECT pg_sleep(0.25 - extract(epoch from clock_timestamp())::numeric % 0.25)" \
      -c "BEGIN" -c "SELECT id FROM slotguard.reserve($slot, 'p$i', idempotency_key => 'k$i')" \
      -c "COMMIT" >"$work/out.$i" 2>&1 &
  done
  wait
  if grep -l '40P01\|deadlock' "$work"/out.* >/dev/null 2>&1; then
    echo "FAIL: idempotency keys: a buyer got a deadlock"
    fail=1
  fi
  [[ $(psql -X -At -d $db -c "SELECT count(*) FROM slotguard.bookings WHERE slot_id = $slot") == 3 ]] ||
    { echo "FAIL: idempotency keys: not exactly 3 bookings"; fail=1; }
}
for r in $(seq 1 "$rounds"); do idem_round; done

if [[ -r $server_log ]] && tail -n +"$((start_line + 1))" "$server_log" | grep -q 'deadlock detected'; then
  echo "FAIL: the server log reports deadlocks:"
  tail -n +"$((start_line + 1))" "$server_log" | grep -A8 'deadlock detected' | head -n 30
  fail=1
fi
if ((fail)); then exit 1; fi
echo "ok: $((rounds * 5)) rounds of 10 simultaneous buyers, no deadlock, never overbooked"
