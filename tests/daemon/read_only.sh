#!/usr/bin/env bash
# A read-only server (25006: what a standby, or a primary demoted by a failover, answers a write)
# is `unavailable`, not `internal`: the daemon answers at once, drops the connection and connects
# again, so that a multi-host conninfo (target_session_attrs=read-write) finds the writable server.
# Here the database is made read-only for new sessions (default_transaction_read_only), then
# writable again: the daemon serves writes again by itself, without a restart. Reads keep working
# meanwhile.
source "$(dirname "$0")/lib.bash"
make_db
write_config
start_daemon
slot=$(sql -c "SELECT slotguard.create_slot(5)")
expect_ok "$(call reserve "{\"slot_id\":$slot,\"holder\":\"ann\"}")"

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

log "writable again: served without a restart"
psql -X -q -d postgres -c "ALTER DATABASE $DB RESET default_transaction_read_only"
ok=
for _ in $(seq 1 50); do
  a=$(call reserve "{\"slot_id\":$slot,\"holder\":\"bob\",\"idempotency_key\":\"kb\"}")
  if [[ $a == *'"result"'* ]]; then ok=1 && break; fi
  sleep 0.1
done
[[ -n $ok ]] || fail "writes did not come back: $a"
[[ $(sql -c "SELECT count(*) FROM slotguard.bookings WHERE slot_id = $slot") == 2 ]] ||
  fail "bookings: $(sql -c "SELECT holder, status FROM slotguard.bookings")"
stop_daemon || fail "slotguardd did not stop cleanly"
