#!/usr/bin/env bash
# test.sh: the class-scheduling app on Sequelize against slotguard (run by make check).
source "$(dirname "$0")/../lib.bash"
need_node_modules
make_db
cd "$APP_DIR"
node --test --test-reporter=spec test/ || fail "scheduling-sequelize tests failed"
