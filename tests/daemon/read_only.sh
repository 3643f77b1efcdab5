#!/usr/bin/env bash
# A read-only server (25006: what a standby, or a primary demoted by a failover, answers a write)
# is `unavailable`, not `internal`: the daemon answers at once, drops the connection and connects
# again, so that a multi-host conninfo (target_session_attrs=read-write) finds the writable server.
# Here the database is made read-only for new sessions (default_transaction_read_only), then
# writable again: the daemon serves writes again by itself, without a restart. Reads keep working
# meanwhile.
#
# A 25006 is decided in one place: drop that connection and connect again. It does not say the
# database is away (it answered): the sweeper, whose expire_holds meets the read-only server too
# (a 1-second hold expires meanwhile), must not mark the database circuit down on it, so the log
# shows no "database unreachable" / "database reachable" flapping and requests are not refused
# as if the database were gone. Nor may a connection the server closed be reported with libpqxx's
# "Could not obtain client encoding" (the server's termination is what happened).
source "$(dirname "$0")/lib.bash"
make_db
write_config
start_daemon
slot=$(sql -c "SELECT slotguard.create_slot(5)")
expect_ok "$(call reserve "{\"slot_id\":$slot,\"holder\":\"ann\"}")"
short=$(sql -c "SELECT id FROM slotguard.reserve($slot, 'short', hold_ttl => '1 second')")
from=$(($(wc -l <"$DLOG") + 1))

log "read-only: writes answer unavailable"
sql -c "ALTER DATABASE $DB SET default_transaction_read_only = on"
sql -c "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_catalog.pg_backend_pid()" >/dev/null
for i in 1 2 3; do
  a=$(call reserve "{\"slot_id\":$slot,\"holder\":\"ro$i\"}")
  [[ $a == *'"error"'* ]] || fail "a write on a read-only server succeeded: $a"
  [[ $a == *'"reason":"unavailable"'* ]] || fail "a write on a read-only server: $a"
done
[[ $a == *25006* || $a == *"read-only"* || $a == *"unavailable"* ]] || fail "$a"
expect_ok "$(call availability "{\"slot_id\":$slot}")"

log "read-only: the sweeper meets 25006 (the 1-second hold is due) without marking the database down"
# (its expire_holds gets 25006: logged once, whatever the daemon makes of it)
for _ in $(seq 1 50); do
  tail -n +"$from" "$DLOG" | grep -q "read-only transaction" && break
  sleep 0.1
done
tail -n +"$from" "$DLOG" | grep -q "read-only transaction" ||
  fail "the sweeper did not run into the read-only server"
sleep 1.5 # a few more sweeps back off meanwhile
expect_ok "$(call availability "{\"slot_id\":$slot}")"
if tail -n +"$from" "$DLOG" | grep -E "database (unreachable|reachable)"; then
  fail "a read-only server marked the database circuit down (log above)"
fi
if tail -n +"$from" "$DLOG" | grep "Could not obtain client encoding"; then
  fail "a closed connection was reported as libpqxx's client-encoding error"
fi

log "writable again: served without a restart"
psql -X -q -d postgres -c "ALTER DATABASE $DB RESET default_transaction_read_only"
ok=
for _ in $(seq 1 50); do
  a=$(call reserve "{\"slot_id\":$slot,\"holder\":\"bob\",\"idempotency_key\":\"kb\"}")
  if [[ $a == *'"result"'* ]]; then ok=1 && break; fi
  sleep 0.1
done
[[ -n $ok ]] || fail "writes did not come back: $a"
[[ $(sql -c "SELECT count(*) FROM slotguard.bookings WHERE slot_id = $slot") == 3 ]] ||
  fail "bookings: $(sql -c "SELECT holder, status FROM slotguard.bookings")"
# the sweeper works again by itself: the short hold is marked expired
for _ in $(seq 1 50); do
  [[ $(sql -c "SELECT status FROM slotguard.bookings WHERE id = $short") == expired ]] && break
  sleep 0.1
done
[[ $(sql -c "SELECT status FROM slotguard.bookings WHERE id = $short") == expired ]] ||
  fail "the sweeper did not expire the short hold once writable again"
if grep -E "database (unreachable|reachable)" <(tail -n +"$from" "$DLOG"); then
  fail "the database circuit flapped (log above)"
fi
stop_daemon || fail "slotguardd did not stop cleanly"
