#!/usr/bin/env bash
# Crash safety: kill -9 of the postmaster and all its backends under load. 18 clients (10 over
# libpq, 8 through slotguardd's socket) reserve, confirm and cancel on 11 slots for 20 seconds;
# twice the postmaster and every backend are killed with SIGKILL at once, and the cluster is
# started again (crash recovery). Clients reconnect and resend what had no answer, with the same
# idempotency key. Then: every acknowledged confirmation is there, no slot is over capacity, no
# seat label is held twice, each answered key has exactly one booking, and reservations work
# again (over SQL and through the daemon, which reconnected by itself). See
# tests/integration/crash/lib.bash. Runs a throwaway cluster of its own.
source "$(dirname "$0")/crash/lib.bash"

# kill_all: SIGKILL to the postmaster and all its children at once; waits until they are gone.
kill_all() {
  local pm kids
  pm=$(postmaster_pid)
  kids=$(ps -o pid= --ppid "$pm" | tr '\n' ' ')
  # shellcheck disable=SC2086 # a list of pids
  kill -KILL "$pm" $kids
  log "killed the postmaster ($pm) and its $(wc -w <<<"$kids") children"
  for _ in $(seq 1 100); do
    # shellcheck disable=SC2086
    if ! kill -0 "$pm" $kids 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  fail "processes of the killed cluster are still alive"
}

own_cluster
make_db
start_daemon
log "slots $SLOTS, numbered $SEATED; load: 10 SQL + 8 socket clients for 20 s"
start_load 10 8 20
kills=0
while ((kills < 2)); do
  sleep 4
  kill -0 "$LOAD_PID" 2>/dev/null || break
  n=$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
              AND state = 'active' AND pid <> pg_backend_pid()")
  log "$n backends busy"
  kill_all
  kills=$((kills + 1))
  sleep 0.5
  restart_cluster
  log "cluster restarted"
done
((kills > 0)) || fail "the load ended before the cluster could be killed"
wait_load
grep -q 'database system was interrupted' "$SERVER_LOG" || fail "no crash recovery in the server log"
check
works_again
