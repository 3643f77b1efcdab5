#!/usr/bin/env bash
# Crash safety: kill -9 of one backend in the middle of a reservation, under load. 18 clients
# (10 over libpq, 8 through slotguardd's socket) reserve, confirm and cancel on 11 slots for 14
# seconds; three times a backend busy in reserve / confirm / cancel is killed with SIGKILL. The
# postmaster then ends every other backend and reinitializes (crash recovery), all by itself.
# Clients reconnect and resend what had no answer, with the same idempotency key. Then: every
# acknowledged confirmation is there, no slot is over capacity, no seat label is held twice, each
# answered key has exactly one booking, and reservations work again. See
# tests/integration/crash/lib.bash. Runs a throwaway cluster of its own.
source "$(dirname "$0")/crash/lib.bash"

own_cluster
make_db
start_daemon
log "slots $SLOTS, numbered $SEATED; load: 10 SQL + 8 socket clients for 14 s"
start_load 10 8 14
kills=0
for pause in 3 4 4; do
  sleep "$pause"
  victim=
  for _ in $(seq 1 50); do
    victim=$(sql -c "SELECT pid FROM pg_stat_activity
                      WHERE datname = current_database() AND backend_type = 'client backend'
                        AND state = 'active' AND pid <> pg_backend_pid()
                        AND query ~ 'slotguard\.(reserve|reserve_seats|confirm|cancel)\('
                      ORDER BY random() LIMIT 1" 2>/dev/null || true)
    [[ -n $victim ]] && break
    sleep 0.1
  done
  [[ -n $victim ]] || fail "no backend busy in a reservation to kill"
  kill -KILL "$victim"
  kills=$((kills + 1))
  log "killed backend $victim"
done
wait_load
n=$(grep -c 'terminated by signal 9: Killed' "$SERVER_LOG" || true)
((n == kills)) || fail "the server log shows $n backends killed, expected $kills"
((n == $(grep -c 'all server processes terminated; reinitializing' "$SERVER_LOG" || true))) ||
  fail "the postmaster did not reinitialize after every kill"
check
works_again
