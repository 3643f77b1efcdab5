#!/usr/bin/env bash
# Random-call test of slotguard's SQL API: tests/random/random_api.cpp (sg_random_api) calls
# every function of schema slotguard thousands of times with generated arguments (NULLs, extreme
# values, huge arrays, deep jsonb, names needing quotes), on tables altered after slotguard was
# enabled and with slotguard's trigger functions attached by hand, as superuser and as a plain
# role. A crash restarts the whole cluster, so it runs against a throwaway cluster of its own
# (build/random_api.cluster, a private port) whose backends may use at most 2 GB of address space
# each, and then reads that cluster's log.
#
# Pass: every statement returns a result or an error with a SQLSTATE other than XX000 / 58xxx /
# 53200 (out of memory), none runs past three times its statement_timeout (5 s), no
# connection is lost, no statement ignores a cancel, and the server log shows no "terminated by
# signal", "out of memory", PANIC or TRAP.
#
# Knobs: SG_RANDOM_SEED (a number, or "random"; printed either way, so a run can be replayed),
# SG_RANDOM_CALLS (default 10000), SG_RANDOM_SECONDS (time budget, default 70),
# SG_RANDOM_PORT (default PGPORT + 17, or 54346). Longer runs, e.g.:
#   SG_RANDOM_SEED=random SG_RANDOM_CALLS=200000 SG_RANDOM_SECONDS=1800 tests/integration/random_api.sh
# Needs SG_BUILD (the CMake build directory; default build/) and slotguard installed for the
# PostgreSQL of PG_CONFIG.
set -uo pipefail

repo=${SG_REPO:-$(cd "$(dirname "$0")/../.." && pwd -P)}
build=${SG_BUILD:-$repo/build}
bin=$build/tests/random/sg_random_api
if [[ ! -x $bin ]]; then
  echo "sg_random_api is not built under $build (cmake --build $build)"
  exit 1
fi

port=${SG_RANDOM_PORT:-$((${PGPORT:-54329} + 17))}
cluster=$build/random_api.cluster
outdir=$build/integration
mkdir -p "$outdir"
stmt_log=$outdir/random_api.statements.sql

cleanup() {
  "$repo/scripts/pgcluster.sh" destroy "$cluster" >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$repo/scripts/pgcluster.sh" destroy "$cluster" >/dev/null 2>&1
# Each server process may map at most 2 GB: a runaway allocation fails with "out of memory"
# (which fails this test) instead of waking the OOM killer of a shared machine.
if ! (ulimit -v 2097152 && "$repo/scripts/pgcluster.sh" start "$cluster" "$port" \
  log_min_messages=warning restart_after_crash=on >/dev/null); then
  echo "could not start the throwaway cluster on port $port"
  exit 1
fi
eval "$("$repo/scripts/pgcluster.sh" env "$cluster" "$port")"
export PGHOST PGPORT PGUSER PGDATABASE
server_log=$(readlink -f "$cluster")/log

"$bin" --seed "${SG_RANDOM_SEED:-20261206}" --calls "${SG_RANDOM_CALLS:-10000}" \
  --seconds "${SG_RANDOM_SECONDS:-70}" --log "$stmt_log"
rc=$?

echo
echo "statements run: $stmt_log"
if grep -E -q 'terminated by signal|out of memory|PANIC|TRAP:' "$server_log"; then
  echo "the server log of the throwaway cluster shows a crash or an allocation failure:"
  grep -E -B2 -A6 'terminated by signal|out of memory|PANIC|TRAP:' "$server_log" | head -n 120
  cp "$server_log" "$outdir/random_api.server.log"
  echo "(whole log: $outdir/random_api.server.log)"
  rc=1
elif ((rc != 0)); then
  cp "$server_log" "$outdir/random_api.server.log"
fi
if ((rc == 0)); then echo "random_api: ok"; else echo "random_api: FAILED"; fi
exit "$rc"
