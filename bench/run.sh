#!/usr/bin/env bash
# run.sh: `make bench`. Builds and installs the extension, starts ONE private cluster under .bench/
# for the whole run, runs every other bench/*.sh against it in turn, and stops the cluster at the
# end (also on error or Ctrl-C).
#
# The cluster has PostgreSQL's default durability (fsync on, synchronous_commit on), as a
# production server would, and shared_buffers 512MB; max_connections leaves room for 150
# clients. slotguard is preloaded. Each benchmark gets PGHOST / PGPORT / PGUSER=postgres.
#
# Environment (all optional):
#   BENCH_PORT  the cluster's port (default 54340; Unix socket only, no TCP)
#   BENCH_DIR   the cluster's directory (default .bench in the repository root)
#   BENCH_ONLY  run only the benchmarks whose file name (without .sh) is listed, e.g. "versioning"
#   plus whatever the benchmarks themselves read (BENCH_SECONDS, BENCH_ROUNDS, ...).
#
# Exit status: 0 if every benchmark ran (whether or not its goal was met), 1 otherwise.
set -euo pipefail

# PG_CONFIG, and pgbench and psql of the same installation as the server first on PATH.
# shellcheck source=scripts/lib.bash
source "$(dirname -- "${BASH_SOURCE[0]}")/../scripts/lib.bash"
ROOT=$SG_ROOT
cd "$ROOT"
export PATH

PORT=${BENCH_PORT:-54340}
DIR=${BENCH_DIR:-$ROOT/.bench}
CLUSTER=$ROOT/scripts/pgcluster.sh

# 1. The extensions (slotguard, slotguard_router), built and installed (quietly; the log is shown
#    if it fails).
echo "bench: building and installing the extension"
buildlog=$(mktemp)
if ! { make -C extension PG_CONFIG="$PG_CONFIG" install &&
  make -C router PG_CONFIG="$PG_CONFIG" install; } >"$buildlog" 2>&1; then
  cat "$buildlog" >&2
  rm -f "$buildlog"
  echo "bench: make -C extension install (or -C router) failed" >&2
  exit 1
fi
rm -f "$buildlog"

# 2. One cluster for the whole run. pgcluster.sh defaults to fsync=off (fine for tests, wrong for
#    a benchmark), so durability is set back to the server defaults explicitly.
stop_cluster() { "$CLUSTER" stop "$DIR" || true; }
trap stop_cluster EXIT
"$CLUSTER" start "$DIR" "$PORT" \
  fsync=on synchronous_commit=on full_page_writes=on \
  shared_buffers=512MB max_connections=200 >/dev/null
eval "$("$CLUSTER" env "$DIR" "$PORT")" # exports PGHOST PGPORT PGUSER PGDATABASE
export PGUSER=postgres
echo "bench: cluster on port $PGPORT, socket in $PGHOST"

# 3. Every benchmark in turn; one failing does not stop the others.
failed=()
ran=0
for bench in "$ROOT"/bench/*.sh; do
  name=$(basename -- "$bench" .sh)
  [[ $name == run ]] && continue
  if [[ -n ${BENCH_ONLY:-} && " $BENCH_ONLY " != *" $name "* ]]; then continue; fi
  echo
  echo "bench: ---- $name ----"
  ran=$((ran + 1))
  if ! bash "$bench"; then
    failed+=("$name")
    echo "bench: $name FAILED" >&2
  fi
done

echo
if ((${#failed[@]})); then
  echo "bench: $ran benchmark(s) run, failed: ${failed[*]}"
  exit 1
fi
echo "bench: $ran benchmark(s) run"
