#!/usr/bin/env bash
# Crash safety: kill -9 of one backend in the middle of a reservation, under load. 18 clients
# (10 over libpq, 8 through slotguardd's socket) reserve, confirm and cancel on 11 slots for 16
# seconds; once a backend whose transaction has reserved but not committed, and three times a
# backend busy in reserve / confirm / cancel is killed with SIGKILL. The
# postmaster then ends every other backend and reinitializes (crash recovery), all by itself.
# Clients reconnect and resend what had no answer, with the same idempotency key. Then: every
# acknowledged confirmation is there, no slot is over capacity, no seat label is held twice, each
# answered key has exactly one booking, and reservations work again. See
# tests/integration/crash/lib.bash. Runs a throwaway cluster of its own.
source "$(dirname "$0")/crash/lib.bash"

own_cluster
make_db
start_daemon
kills=0
# First, before the load, a transaction that has reserved and confirmed 2 seats and not committed
# yet: after its backend is killed, the booking must not exist (its seats are free: check.sql).
slot1=${SLOTS%%,*}
psql -X -q -d "$DB" -c "BEGIN" \
  -c "SELECT slotguard.reserve($slot1, 'uncommitted', 2, idempotency_key => 'uncommitted-1',
                               confirm => true)" \
  -c "SELECT pg_sleep(60)" -c "COMMIT" >"$WORK/uncommitted.out" 2>&1 &
sleeper=$!
victim=
for _ in $(seq 1 50); do
  victim=$(sql -c "SELECT pid FROM pg_stat_activity WHERE datname = current_database()
                     AND query ~ 'pg_sleep\(60\)' AND wait_event = 'PgSleep'")
  [[ -n $victim ]] && break
  sleep 0.1
done
[[ -n $victim ]] || fail "the uncommitted reservation did not start"
kill -KILL "$victim"
kills=$((kills + 1))
wait "$sleeper" 2>/dev/null || true
log "killed backend $victim, which had reserved without committing"
log "slots $SLOTS, numbered $SEATED; load: 10 SQL + 8 socket clients for 16 s"
start_load 10 8 16
# Then a backend busy in a reservation, every 3 seconds while the load runs (3 times).
while ((kills < 4)) && kill -0 "$LOAD_PID" 2>/dev/null; do
  sleep 3
  victim=
  for _ in $(seq 1 20); do
    victim=$(sql -c "SELECT pid FROM pg_stat_activity
                      WHERE datname = current_database() AND backend_type = 'client backend'
                        AND state = 'active' AND pid <> pg_backend_pid()
                        AND query ~ 'slotguard\.(reserve|reserve_seats|confirm|cancel)\('
                      ORDER BY random() LIMIT 1" 2>/dev/null || true)
    [[ -n $victim ]] && break
    sleep 0.1
  done
  [[ -n $victim ]] || continue
  kill -KILL "$victim"
  kills=$((kills + 1))
  log "killed backend $victim"
done
((kills >= 3)) || fail "only $((kills - 1)) backends could be killed in a reservation during the load"
wait_load
n=$(grep -c 'terminated by signal 9: Killed' "$SERVER_LOG" || true)
((n == kills)) || fail "the server log shows $n backends killed, expected $kills"
((n == $(grep -c 'all server processes terminated; reinitializing' "$SERVER_LOG" || true))) ||
  fail "the postmaster did not reinitialize after every kill"
[[ $(sql -c "SELECT count(*) FROM slotguard.bookings WHERE idempotency_key = 'uncommitted-1'") == 0 ]] ||
  fail "the booking of the killed, uncommitted transaction exists"
check
works_again
