# lib.bash: shared by the application tests (tests/apps/<app>/test.sh; sourced, not run).
#
# Each application test gets what tests/daemon/lib.bash gives a daemon test: a fresh database with
# CREATE EXTENSION slotguard on the test cluster, a temporary directory, and helpers to start its
# own slotguardd (write_config, start_daemon, stop_daemon). On top of that it exports, for the
# application's own test program:
#   PGHOST PGPORT PGUSER PGDATABASE   the test database (libpq variables; node-postgres and our
#                                     PDO helper read them too)
#   SLOTGUARD_SOCKET                  slotguardd's socket (once start_daemon has run)
#   APP_DIR                           the application's directory
# and checks that a Node application's npm packages are installed (`make deps` runs `npm ci`;
# when they are missing, e.g. `make deps` was skipped, we run `npm ci` here).
APP_DIR=$(cd "$(dirname "$0")" && pwd -P)
SG_TEST_NAME=app_$(basename "$APP_DIR" | tr -c 'a-zA-Z0-9\n' '_')
export SG_TEST_NAME APP_DIR
# shellcheck source=../daemon/lib.bash
source "$APP_DIR/../../daemon/lib.bash"

export PGDATABASE=$DB
export SLOTGUARD_SOCKET=$SOCK

# need_node_modules: `npm ci` in APP_DIR unless node_modules matches package-lock.json.
need_node_modules() {
  command -v node >/dev/null || fail "node is not installed (make deps installs it)"
  "$ROOT/scripts/npm-ci.sh" "$APP_DIR" || fail "npm ci failed"
}

# start_app_daemon [YAML...]: write_config + start_daemon, with a fast sweep (interval 1s).
start_app_daemon() {
  write_config "${1:-$'sweep:\n  interval: 1s'}"
  start_daemon
}
