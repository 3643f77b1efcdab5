#!/usr/bin/env bash
# test.sh: doctor-slots-http (node:http + pg) against slotguard, with slotguardd sweeping holds.
source "$(dirname "$0")/../lib.bash"
need_node_modules
make_db
sql -f "$APP_DIR/schema.sql"
start_app_daemon # sweep interval 1s; it also wakes at slotguard.next_expiry()
cd "$APP_DIR"
node --test --test-reporter=spec test/ || fail "doctor-slots-http tests failed"
