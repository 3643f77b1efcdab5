#!/usr/bin/env bash
# test.sh: clinic-pg (node-postgres + slotguardd socket) against slotguard (run by make check).
source "$(dirname "$0")/../lib.bash"
need_node_modules
make_db
sql -f "$APP_DIR/schema.sql" >/dev/null
start_app_daemon
cd "$APP_DIR"
node --test --test-reporter=spec test/*.test.js || fail "clinic-pg tests failed"
