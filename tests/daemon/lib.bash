# lib.bash: shared by the daemon's integration tests (tests/daemon/*.sh; sourced, not run).
#
# Each test gets a fresh database with CREATE EXTENSION slotguard on the test cluster (PGHOST,
# PGPORT, PGUSER from tests/run-all.sh), a temporary directory for its configuration and socket,
# and helpers to start and stop its own slotguardd there. Everything is cleaned up by an EXIT
# trap (the daemon is stopped, the database dropped). Needs only bash, psql and the programs the
# build makes: slotguardd, slotguardctl and sgload (bench/sgload.cpp: a socket session, bursts of
# concurrent clients).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ready.bash"

ROOT=${SG_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${SG_BUILD:-$ROOT/build}
SGD=${SG_SLOTGUARDD:-$BUILD/daemon/slotguardd} # asan_smoke.sh: the sanitized build's
CTL=$BUILD/daemon/slotguardctl
LOAD=$BUILD/bench/sgload
: "${PGHOST:?the daemon tests need PGHOST/PGPORT (run them through tests/run-all.sh)}"
: "${PGPORT:?}"
export PGUSER=${PGUSER:-postgres}
# shellcheck source=scripts/lib.bash
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.bash"
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
sg_require_built "$SGD" "$CTL" "$LOAD"

TEST=${SG_TEST_NAME:-$(basename "$0" .sh)}
DB=sgd_${TEST}_$$
WORK=$(mktemp -d /tmp/sgdt.XXXXXX) # short: Unix socket paths are limited to 107 bytes
chmod 755 "$WORK"
SOCK=$WORK/sgd.sock
CONF=$WORK/sgd.yaml
DLOG=$WORK/daemon.log
DPID=

log() { printf '[%s] %s\n' "$(date +%T.%3N)" "$*"; }
fail() {
  log "FAIL: $*"
  if [[ -s $DLOG ]]; then
    echo "--- daemon log (last 40 lines)"
    tail -n 40 "$DLOG"
  fi
  exit 1
}

# CLEANUP_HOOK: a command a test wants run first at exit (e.g. bring the database back).
CLEANUP_HOOK=
cleanup() {
  local rc=$?
  if [[ -n $CLEANUP_HOOK ]]; then $CLEANUP_HOOK || true; fi
  if [[ -n $DPID ]] && kill -0 "$DPID" 2>/dev/null; then
    kill -TERM "$DPID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DPID" 2>/dev/null || true
  fi
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
  if ((rc == 0)); then log "PASS: $TEST"; fi
  exit "$rc"
}
trap cleanup EXIT

# sql runs SQL in the test database, unaligned, tuples only.
sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

make_db() {
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
  sql -c "CREATE EXTENSION slotguard"
}

# write_config [YAML...]: the test configuration; extra lines replace whole sections
# (DB_EXTRA: more indented lines for the database section).
write_config() {
  local extra=${1:-}
  {
    echo "database:"
    echo "  conninfo: \"host=$PGHOST port=$PGPORT user=$PGUSER dbname=$DB\""
    echo "  pool_size: ${POOL_SIZE:-4}"
    if [[ -n ${DB_EXTRA:-} ]]; then printf '%s\n' "$DB_EXTRA"; fi
    echo "socket:"
    echo "  path: $SOCK"
    echo "  mode: \"0600\""
    echo "  group: \"\""
    if [[ $extra != *"sweep:"* ]]; then
      echo "sweep:"
      echo "  interval: 30s"
    fi
    if [[ $extra != *"log:"* ]]; then
      echo "log:"
      echo "  level: info"
    fi
    printf '%s\n' "$extra"
  } >"$CONF"
}

# start_daemon: starts slotguardd on $CONF and waits until it serves (health: database ok).
start_daemon() {
  : >"$DLOG"
  launch_daemon
}

# stop_daemon: SIGTERM, wait; returns its exit status.
stop_daemon() {
  local rc=0
  kill -TERM "$DPID"
  wait "$DPID" || rc=$?
  DPID=
  return "$rc"
}

# rss_kb PID: the resident set size of a process, in kB (from /proc).
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# ctl METHOD [name=value...]: slotguardctl on our socket.
ctl() { "$CTL" --socket "$SOCK" "$@"; }

# rpc LINE: sends one request line on a fresh connection and prints the answer line (compact
# JSON; "EOF" when the daemon answered nothing).
rpc() { printf "%s\n" "$1" | "$LOAD" session "$SOCK" | sed -n 1p; }

# call METHOD PARAMS_JSON: rpc of one request with id 1.
call() { rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":${2:-{\}}}"; }

# expect_ok ANSWER / expect_reason ANSWER REASON: check an answer line.
expect_ok() {
  [[ $1 == *'"result":'* && $1 != *'"error":'* ]] || fail "expected a result, got: $1"
}
expect_reason() {
  [[ $1 == *"\"reason\":\"$2\""* ]] || fail "expected reason $2, got: $1"
}

# field ANSWER NAME: the first numeric or string value of "NAME" in an answer line.
field() {
  sed -E -n "s/.*\"$2\":(\"([^\"]*)\"|(-?[0-9]+)).*/\2\3/p" <<<"$1" | head -n 1
}
