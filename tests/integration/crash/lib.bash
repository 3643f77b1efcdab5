# lib.bash: shared by the crash tests (tests/integration/crash_*.sh; sourced, not run).
#
# A crash test runs sg_crash_load (tests/integration/stress/crash_load.cpp: clients over libpq
# and over slotguardd's socket that reserve, confirm and cancel, retry with their idempotency
# keys, and write down every acknowledged answer) against a database with slots, kills something
# under that load, lets it come back, and then checks the database against what the clients were
# told (check.sql) and that reservations work again.
#
# Tests that kill the postmaster or a backend run a throwaway cluster of their own
# (own_cluster); the others use the test cluster of tests/run-all.sh (PGHOST, PGPORT).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../daemon/ready.bash"

ROOT=${SG_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd -P)}
BUILD=${SG_BUILD:-$ROOT/build}
SGD=$BUILD/daemon/slotguardd
CTL=$BUILD/daemon/slotguardctl
LOAD=$BUILD/tests/integration/stress/sg_crash_load
# shellcheck source=scripts/lib.bash
source "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/lib.bash"
export PGUSER=postgres
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
sg_require_built "$SGD" "$CTL" "$LOAD"

TEST=$(basename "$0" .sh)
WORK=$(mktemp -d /tmp/sgcrash.XXXXXX) # short: Unix socket paths are limited to 107 bytes
chmod 755 "$WORK"
SOCK=$WORK/sgd.sock
CONF=$WORK/sgd.yaml
DLOG=$WORK/daemon.log
DPID=
CLUSTER= # set by own_cluster
SERVER_LOG=
DB=sg_${TEST}_$$
SLOTS=
SEATED=
T0=$SECONDS

log() { printf '[%s +%ss] %s\n' "$(date +%T.%3N)" "$((SECONDS - T0))" "$*"; }
fail() {
  log "FAIL: $*"
  if [[ -s $DLOG ]]; then
    echo "--- daemon log (last 20 lines)"
    tail -n 20 "$DLOG"
  fi
  if [[ -n $SERVER_LOG && -s $SERVER_LOG ]]; then
    echo "--- server log (last 30 lines)"
    tail -n 30 "$SERVER_LOG"
  fi
  exit 1
}

cleanup() {
  local rc=$?
  if [[ -n $DPID ]] && kill -0 "$DPID" 2>/dev/null; then
    kill -TERM "$DPID" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DPID" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
  fi
  if [[ -n ${LOAD_PID:-} ]] && kill -0 "$LOAD_PID" 2>/dev/null; then
    kill -KILL "$LOAD_PID" 2>/dev/null || true
  fi
  if [[ -n $CLUSTER ]]; then
    "$ROOT/scripts/pgcluster.sh" destroy "$CLUSTER" >/dev/null 2>&1 || true
  else
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  if ((rc == 0)); then log "PASS: $TEST"; fi
  exit "$rc"
}
trap cleanup EXIT

# own_cluster: a throwaway cluster in $WORK/pg (Unix socket only, in that directory, so any port
# will do); PGHOST and PGPORT point at it from then on.
CLUSTER_SETTINGS=(max_connections=60 restart_after_crash=on)
own_cluster() {
  CLUSTER=$WORK/pg
  mkdir "$CLUSTER"
  CLUSTER_PORT=$((20000 + $$ % 10000))
  "$ROOT/scripts/pgcluster.sh" start "$CLUSTER" "$CLUSTER_PORT" "${CLUSTER_SETTINGS[@]}" >/dev/null
  eval "$("$ROOT/scripts/pgcluster.sh" env "$CLUSTER" "$CLUSTER_PORT")"
  export PGHOST PGPORT
  SERVER_LOG=$CLUSTER/log
}

# restart_cluster: start the cluster again (after a kill -9): crash recovery, then ready.
restart_cluster() {
  "$ROOT/scripts/pgcluster.sh" start "$CLUSTER" "$CLUSTER_PORT" "${CLUSTER_SETTINGS[@]}" \
    >/dev/null 2>&1 || fail "the cluster did not start again"
}

# postmaster_pid: the pid of our cluster's postmaster.
postmaster_pid() { head -n 1 "$CLUSTER/data/postmaster.pid"; }

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

# make_db: the test database with slotguard, 8 plain slots (capacity 12 .. 200) and 3 slots with 32
# numbered seats A1..D8; SLOTS and SEATED list their ids.
make_db() {
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
  sql -c "CREATE EXTENSION slotguard"
  SLOTS=$(sql -c "SELECT string_agg(slotguard.create_slot(c)::text, ',')
                    FROM unnest(ARRAY[12, 20, 40, 60, 80, 100, 150, 200]) c")
  SEATED=$(sql -c "SELECT string_agg(slotguard.create_slot(32, seat_labels =>
                     (SELECT array_agg(r || n ORDER BY r, n)
                        FROM unnest('{A,B,C,D}'::text[]) r, generate_series(1, 8) n))::text, ',')
                     FROM generate_series(1, 3)")
}

# start_daemon: slotguardd on our database (as tests/daemon/lib.bash starts it), ready.
start_daemon() {
  cat >"$CONF" <<YAML
database:
  conninfo: "host=$PGHOST port=$PGPORT user=postgres dbname=$DB"
  pool_size: 4
socket:
  path: $SOCK
  mode: "0600"
  group: ""
sweep:
  interval: 30s
retry:
  max_attempts: 3
  base_delay_ms: 50
  multiplier: 2
  max_delay_ms: 500
log:
  level: info
YAML
  launch_daemon
}

# start_load SQL_CLIENTS SOCKET_CLIENTS SECONDS: sg_crash_load in the background.
start_load() {
  "$LOAD" --out "$WORK/ack" --slots "$SLOTS" --seated "$SEATED" --seconds "$3" --grace 40 \
    --sql-clients "$1" --conninfo "host=$PGHOST port=$PGPORT user=postgres dbname=$DB \
application_name=sg_crash_load connect_timeout=5" \
    --socket-clients "$2" --socket "$SOCK" --tag "$TEST" >"$WORK/load.out" 2>"$WORK/load.err" &
  LOAD_PID=$!
}

# wait_load: waits for sg_crash_load and fails on its unexpected errors.
wait_load() {
  local rc=0
  wait "$LOAD_PID" || rc=$?
  LOAD_PID=
  log "load: $(tail -n 1 "$WORK/load.out")"
  if ((rc != 0)); then
    head -n 20 "$WORK/load.err"
    fail "sg_crash_load exited $rc"
  fi
  ! grep -q 'unresolved=[1-9]' "$WORK/load.out" || fail "some requests had no answer in time"
}

# check [0]: the database against the clients' acknowledgements (not with 0) and the reservation
# invariants.
check() {
  local out
  out=$(sed "s|@ACK@|$WORK/ack|g" "$ROOT/tests/integration/crash/check.sql" |
    sql -v acks="${1:-1}" 2>&1) ||
    fail "check.sql failed: $out"
  echo "$out" | grep '^figures' | sed 's/^/  /'
  if echo "$out" | grep -q '^violation'; then
    echo "$out" | grep '^violation' | head -n 30
    fail "$(echo "$out" | grep -c '^violation') violation(s)"
  fi
  log "check: no violation"
}

# works_again: a confirmed booking of every slot is cancelled, then one seat of every slot is
# reserved and confirmed, over SQL and over the socket; a new slot is created.
works_again() {
  local s
  sql -c "SELECT slotguard.cancel(b.id) FROM (SELECT DISTINCT ON (slot_id) id FROM slotguard.bookings
          WHERE status = 'confirmed' ORDER BY slot_id, seats DESC, id) b" >/dev/null
  sql -c "SELECT slotguard.cancel(b.id) FROM (SELECT DISTINCT ON (slot_id) id FROM slotguard.bookings
          WHERE status = 'confirmed' ORDER BY slot_id, seats DESC, id) b" >/dev/null
  for s in ${SLOTS//,/ } ${SEATED//,/ }; do
    [[ $(sql -c "SELECT status FROM slotguard.reserve($s, 'after', confirm => true)") == confirmed ]] ||
      fail "reserve over SQL on slot $s after the crash"
    if [[ -n $DPID ]]; then
      "$CTL" --socket "$SOCK" --timeout 10 reserve slot_id="$s" holder=after-socket confirm=true |
        grep -q '"confirmed"' || fail "reserve over the socket on slot $s after the crash"
    fi
  done
  sql -c "SELECT slotguard.reserve(slotguard.create_slot(3), 'new', confirm => true)" >/dev/null ||
    fail "create_slot and reserve after the crash"
  # the counters work (they start again from zero when the server reinitializes shared memory)
  [[ $(sql -c "SELECT value FROM slotguard.stats WHERE metric = 'counters_enabled'") == 1 &&
    $(sql -c "SELECT count(*) > 0 FROM slotguard.stats WHERE scope = 'slot'") == t ]] ||
    fail "slotguard.stats after the crash"
  check 0
  log "reservations work again on all $(($(tr -cd , <<<"$SLOTS,$SEATED" | wc -c) + 1)) slots"
}
