# lib.bash: the preamble and helpers of the benchmarks bench/<name>.sh (sourced, not run).
#
# A benchmark runs against the cluster bench/run.sh started for the whole run, found through
# PGHOST / PGPORT / PGUSER; pgbench and psql come from the same installation (scripts/lib.bash).
# Sourcing this file checks that environment, quiets NOTICEs, and gives the benchmark
#   BENCH_HOME  the directory of the benchmarks (bench/)
#   work        a temporary directory, removed at exit (a benchmark with its own EXIT trap
#               removes it there)
# and the helpers below.

# shellcheck source=scripts/lib.bash
source "$(dirname -- "${BASH_SOURCE[0]}")/../scripts/lib.bash"
# shellcheck disable=SC2034 # for the benchmarks
BENCH_HOME=$SG_ROOT/bench

: "${PGHOST:?$(basename -- "$0") needs PGHOST/PGPORT/PGUSER (run it through bench/run.sh)}"
: "${PGPORT:?$(basename -- "$0") needs PGHOST/PGPORT/PGUSER (run it through bench/run.sh)}"
export PGUSER=${PGUSER:-postgres}
# No NOTICEs ("table ... does not exist, skipping") in the report.
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"

work=$(mktemp -d /tmp/sgbench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# bench_db NAME: a fresh database NAME for this benchmark (nothing of an earlier run or of another
# benchmark is measured); psql_db then runs psql in it.
bench_db() {
  DB=$1
  psql -X -q -v ON_ERROR_STOP=1 -d postgres \
    -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
}
psql_db() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

# pgbench_tps SCRIPT CLIENTS THREADS SECONDS: one pgbench run of SCRIPT on $DB; prints the tps
# (without initial connection time). Fails, showing pgbench's output, if pgbench failed or
# reported failed transactions (pgbench exits non-zero when a client aborted on an error).
pgbench_tps() {
  local script=$1 clients=$2 threads=$3 secs=$4 out failed tps
  if ! out=$(pgbench -n -d "$DB" -f "$script" -c "$clients" -j "$threads" -T "$secs" 2>&1); then
    echo "$(basename -- "$0"): pgbench failed for $script:" >&2
    echo "$out" | tail -n 20 >&2
    return 1
  fi
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
  if [[ -n $failed && $failed != 0 ]]; then
    echo "$(basename -- "$0"): $failed failed transactions in $script:" >&2
    echo "$out" | tail -n 20 >&2
    return 1
  fi
  # PostgreSQL 15: "tps = 1234.567 (without initial connection time)"; no such line when no
  # transaction finished in time (e.g. connecting 128 clients took the whole run): 0 tps.
  tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' <<<"$out")
  if [[ -z $tps ]] && grep -q '^number of transactions actually processed: 0$' <<<"$out"; then
    tps=0
  fi
  [[ -n $tps ]] || {
    echo "$(basename -- "$0"): no tps in pgbench output for $script:" >&2
    echo "$out" >&2
    return 1
  }
  echo "$tps"
}

# median prints the median of its numeric arguments (the mean of the two middle ones for an even
# count).
median() {
  printf '%s\n' "$@" | sort -g |
    awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
}

# ratio A B [DECIMALS] prints A / B with DECIMALS decimals (default 2; 0 when B is 0).
ratio() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN {printf "%.*f", d, (b > 0 ? a / b : 0)}'; }

# measure_round R NAME...: one round of measurements, `tps NAME` for each name, starting with the
# R-th so that no variant always runs first (neighbouring measurements share the machine's load of
# the moment). Sets this[NAME] and appends the figure to results[NAME]: associative arrays the
# caller declares (declare -A results; declare -A this).
measure_round() {
  local r=$1 i n
  shift
  local nn=$#
  local order=("$@")
  for ((i = 0; i < nn; i++)); do
    n=${order[(r - 1 + i) % nn]}
    this[$n]=$(tps "$n")
    results[$n]="${results[$n]:-} ${this[$n]}"
  done
}
