#!/usr/bin/env bash
# The server ends the daemon's idle connections (pg_terminate_backend, as an idle-session timeout
# or a DBA would): `health` still answers "database": "ok" every time, from a new connection, and
# the daemon never logs the database as unreachable. (A health check that ran on the dead
# connection used to mark a reachable database down and answer "Could not obtain client
# encoding: not connected.")
source "$(dirname "$0")/lib.bash"

make_db
POOL_SIZE=4 write_config
start_daemon
slot=$(sql -c "SELECT slotguard.create_slot(100000)")

for round in 1 2 3; do
  # Every worker gets a connection: 8 requests at once on a pool of 4.
  pids=()
  for i in $(seq 1 8); do
    call reserve "{\"slot_id\": $slot, \"holder\": \"r$round-$i\"}" >/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"
  n=$(sql -c "SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_catalog.pg_backend_pid()
                AND backend_type = 'client backend'")
  log "round $round: the server ended $n idle connections of the daemon"
  sleep 0.2
  for i in $(seq 1 8); do
    a=$(call health)
    [[ $a == *'"database":"ok"'* ]] || fail "health after the server ended idle connections: $a"
  done
  expect_ok "$(call reserve "{\"slot_id\": $slot, \"holder\": \"after$round\"}")"
done
if grep -Eq 'database unreachable|not connected' "$DLOG"; then
  fail "the daemon logged the reachable database as away: $(grep -E 'unreachable|not connected' "$DLOG" | head -3)"
fi
stop_daemon || fail "the daemon did not exit 0"
