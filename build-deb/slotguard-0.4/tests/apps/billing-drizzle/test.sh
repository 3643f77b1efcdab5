#!/usr/bin/env bash
# test.sh: billing-drizzle (Drizzle ORM + node-postgres, UUID versions) against slotguard.
source "$(dirname "$0")/../lib.bash"
need_node_modules
make_db
sql -f "$APP_DIR/schema.sql" >/dev/null
cd "$APP_DIR"
node --test --test-reporter=spec test/ || fail "billing-drizzle tests failed"
