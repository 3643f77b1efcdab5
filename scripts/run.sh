#!/usr/bin/env bash
# run.sh (make run): the main job on an embedded default. A private cluster under .run/ with
# slotguard in database "app", and slotguardd in the foreground on .run/slotguardd.sock with a
# configuration it writes to .run/slotguardd.yaml. Prints how to connect; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN_DIR=.run
PORT=${SG_RUN_PORT:-54320}
BUILD=${SG_BUILD:-$ROOT/build}
SGD=$BUILD/daemon/slotguardd
CTL=$BUILD/daemon/slotguardctl
# shellcheck source=scripts/lib.bash
source scripts/lib.bash
sg_require_built "$SGD" "$CTL"

# Files of ours in the cluster directory go away when we stop (pgcluster.sh destroy, i.e.
# make clean, refuses to remove a directory holding files it did not create).
cleanup() {
  rm -f "$RUN_DIR/slotguardd.yaml" "$RUN_DIR/slotguardd.sock" "$RUN_DIR/slotguardd.log"
  scripts/pgcluster.sh stop "$RUN_DIR" >/dev/null 2>&1 || true
}
scripts/pgcluster.sh start "$RUN_DIR" "$PORT" >/dev/null
trap 'cleanup; echo "stopped"' EXIT
export PGHOST=$ROOT/$RUN_DIR/sock PGPORT=$PORT PGUSER=postgres
PGHOST=$(readlink -f "$RUN_DIR")/sock
psql -X -q -d postgres -At -c "SELECT 1 FROM pg_database WHERE datname = 'app'" | grep -q 1 ||
  psql -X -q -d postgres -c "CREATE DATABASE app"
psql -X -q -d app -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS slotguard"

# The socket: .run/slotguardd.sock, or the same file by its real path when the checkout is so
# deep that the path exceeds the 107 bytes a Unix socket path may have.
SOCK=$ROOT/$RUN_DIR/slotguardd.sock
((${#SOCK} <= 100)) || SOCK=$(readlink -f "$RUN_DIR")/slotguardd.sock
rm -f "$RUN_DIR/slotguardd.sock"
cat >"$RUN_DIR/slotguardd.yaml" <<YAML
# written by scripts/run.sh (make run); removed when it stops
database:
  conninfo: "host=$PGHOST port=$PORT user=postgres dbname=app"
  pool_size: 4
socket:
  path: $SOCK
  mode: "0660"
  group: ""
sweep:
  interval: 30s
log:
  level: ${SG_RUN_LOG_LEVEL:-info}
YAML

cat <<MSG
slotguard is running: cluster in $RUN_DIR/ (database "app"), slotguardd on $RUN_DIR/slotguardd.sock.

  psql -h $PGHOST -p $PORT -U postgres app
  $CTL --socket $SOCK health
  $CTL --socket $SOCK create_slot capacity=10 hold_ttl='1 minute'
  $CTL --socket $SOCK reserve slot_id=1 holder=ann

(or: export SLOTGUARD_SOCKET=$SOCK and drop --socket). Ctrl-C stops it; daemon log follows.
MSG
rc=0
"$SGD" --config "$RUN_DIR/slotguardd.yaml" || rc=$?
exit "$rc"
