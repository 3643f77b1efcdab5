#!/usr/bin/env bash
# Crash safety: kill -9 of slotguardd under load. 20 clients (16 through the daemon's socket, 4
# over libpq) reserve, confirm and cancel on 11 slots for 14 seconds; twice slotguardd is killed
# with SIGKILL and started again a second later. Socket clients whose request got no answer
# reconnect and resend it with the same idempotency key. Then: each key that was answered has
# exactly one booking (the one the answer named), every acknowledged confirmation is there, no
# slot is over capacity, no seat label is held twice, and reservations work again through the new
# daemon. Uses the test cluster (PGHOST, PGPORT of tests/run-all.sh) and a database of its own.
# See tests/integration/crash/lib.bash.
source "$(dirname "$0")/crash/lib.bash"
: "${PGHOST:?needs PGHOST/PGPORT of a cluster with slotguard (run it through tests/run-all.sh)}"

make_db
start_daemon
log "slots $SLOTS, numbered $SEATED; load: 4 SQL + 16 socket clients for 14 s"
start_load 4 16 14
for pause in 4 4; do
  sleep "$pause"
  kill -KILL "$DPID"
  wait "$DPID" 2>/dev/null || true
  log "killed slotguardd ($DPID)"
  DPID=
  sleep 1
  start_daemon
  log "slotguardd restarted ($DPID)"
done
wait_load
resent=$(sed -E -n 's/.*resent_keys=([0-9]+).*/\1/p' "$WORK/load.out")
((resent > 0)) || fail "no reservation had to be sent again: the kills hit no request in flight"
check
works_again
