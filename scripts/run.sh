#!/usr/bin/env bash
# run.sh (make run): a private cluster under .run/ with slotguard, in the foreground. Prints how to
# connect; Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=.run
PORT=${SG_RUN_PORT:-54320}

scripts/pgcluster.sh start "$RUN_DIR" "$PORT" >/dev/null
trap 'echo; scripts/pgcluster.sh stop "$RUN_DIR" >/dev/null 2>&1 || true; echo "stopped"' EXIT
export PGHOST=$PWD/$RUN_DIR/sock PGPORT=$PORT PGUSER=postgres
psql -X -q -d postgres -At -c "SELECT 1 FROM pg_database WHERE datname = 'app'" | grep -q 1 ||
  psql -X -q -d postgres -c "CREATE DATABASE app"
psql -X -q -d app -c "CREATE EXTENSION IF NOT EXISTS slotguard"
cat <<MSG
slotguard is running (cluster in $RUN_DIR/, database "app").

  psql -h $PGHOST -p $PORT -U postgres app

Ctrl-C stops it. Server log follows.
MSG
tail -n 0 -F "$RUN_DIR/log"
