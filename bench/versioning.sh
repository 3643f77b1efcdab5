#!/usr/bin/env bash
# versioning.sh: what does slotguard's versioned-update trigger cost?
#
# Measures, in one run and on one server, pgbench tps of three one-statement transactions:
#   plain             UPDATE t_plain     SET balance = balance + 1 WHERE id = :id
#   versioned         UPDATE t_versioned SET balance = balance + 1 WHERE id = :id
#                     (the trigger checks the row and bumps version and updated_at)
#   versioned-assert  UPDATE t_versioned SET balance = balance + 1, version = version WHERE id = :id
#                     (the writer asserts the version it "read"; always the stored one here)
# Both tables have the same columns and 100,000 rows; ids are uniformly random.
#
# The three are interleaved for BENCH_ROUNDS rounds so that drift of this noisy machine hits all of
# them alike, with VACUUM + CHECKPOINT before each measurement. Each round starts one variant later
# (plain, versioned, assert | versioned, assert, plain | assert, plain, versioned | ...), so no
# variant always runs first or last in a round. The headline ratios are the medians of the per-round
# ratios (each taken from measurements a few seconds apart, so one disturbed measurement moves one
# round, not the result). Only ratios mean anything; absolute tps vary by 2x between runs on a
# shared machine.
#
# Needs a running server with slotguard installed and preloaded: PGHOST / PGPORT / PGUSER, as
# bench/run.sh sets them. Exit status: 0 whether or not the goal is met; 1 if the setup failed, a
# pgbench run failed or the sanity check after the runs did not add up.
#
# Environment (all optional):
#   BENCH_SECONDS  seconds per measurement (default 10)
#   BENCH_ROUNDS   interleaved rounds, 2 or more (default 3)
#   BENCH_WARMUP   seconds of untimed warm-up per variant before round 1 (default 3; 0 = none)
#   BENCH_CLIENTS  pgbench -c (default 8)
#   BENCH_THREADS  pgbench -j (default 2)
#   BENCH_DB       database to (re)create for this benchmark (default bench_versioning)
set -euo pipefail
# shellcheck source=bench/lib.bash
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-3}
CLIENTS=${BENCH_CLIENTS:-8}
THREADS=${BENCH_THREADS:-2}
GOAL=0.95

((ROUNDS >= 2)) || {
  echo "versioning.sh: BENCH_ROUNDS must be 2 or more" >&2
  exit 1
}

# Variant names, in the order they run within a round, and their pgbench scripts.
VARIANTS=(plain versioned versioned-assert)
declare -A SCRIPT=(
  [plain]=$BENCH_HOME/versioning_plain.sql
  [versioned]=$BENCH_HOME/versioning_versioned.sql
  [versioned-assert]=$BENCH_HOME/versioning_assert.sql
)

# settle: the same starting point for every measurement: no dead tuples, no dirty buffers.
settle() {
  psql_db -c 'VACUUM t_plain' -c 'VACUUM t_versioned' -c 'CHECKPOINT' >/dev/null
}

# run_pgbench VARIANT SECONDS: prints the tps of one measurement of VARIANT.
run_pgbench() { pgbench_tps "${SCRIPT[$1]}" "$CLIENTS" "$THREADS" "$2"; }

echo "== versioning: plain UPDATE vs versioned UPDATE (slotguard.enable_versioning)"
echo "   $CLIENTS clients / $THREADS threads, ${SECONDS_PER_RUN} s per measurement, $ROUNDS interleaved rounds"
echo "   server: $(psql -X -At -d postgres -c "SELECT 'fsync=' || current_setting('fsync') ||
  ', synchronous_commit=' || current_setting('synchronous_commit') ||
  ', shared_buffers=' || current_setting('shared_buffers') ||
  ', max_connections=' || current_setting('max_connections')")"

bench_db "${BENCH_DB:-bench_versioning}"
psql_db -f "$BENCH_HOME/versioning_setup.sql" >/dev/null

# Warm-up: a few untimed seconds of each variant (plan caches, buffers, CPU frequency).
if ((WARMUP > 0)); then
  for v in "${VARIANTS[@]}"; do run_pgbench "$v" "$WARMUP" >/dev/null; done
fi

# The measurements, interleaved. TPS[variant,round] holds each result.
declare -A TPS
status=0
nv=${#VARIANTS[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  for ((k = 0; k < nv; k++)); do
    v=${VARIANTS[(r - 1 + k) % nv]} # rotate the order by one each round
    settle
    if tps=$(run_pgbench "$v" "$SECONDS_PER_RUN"); then
      TPS[$v,$r]=$tps
    else
      TPS[$v,$r]=0
      status=1
    fi
    printf '   round %d  %-17s %10.1f tps\n' "$r" "$v" "${TPS[$v,$r]}"
  done
done

# Table: one row per variant, one column per round, then the median tps; below it the per-round
# ratios to plain and their median (the headline numbers).
echo
printf '%-24s' "tps"
for ((r = 1; r <= ROUNDS; r++)); do printf '%12s' "round $r"; done
printf '%12s\n' "median"
for v in "${VARIANTS[@]}"; do
  vals=()
  printf '%-24s' "$v"
  for ((r = 1; r <= ROUNDS; r++)); do
    printf '%12.1f' "${TPS[$v,$r]}"
    vals+=("${TPS[$v,$r]}")
  done
  printf '%12.1f\n' "$(median "${vals[@]}")"
done
declare -A RATIO # RATIO[variant] = median over rounds of tps(variant) / tps(plain)
for v in versioned versioned-assert; do
  vals=()
  printf '%-24s' "$v/plain"
  for ((r = 1; r <= ROUNDS; r++)); do
    vals+=("$(ratio "${TPS[$v,$r]}" "${TPS[plain,$r]}" 3)")
    printf '%12s' "${vals[-1]}"
  done
  RATIO[$v]=$(median "${vals[@]}" | awk '{ printf "%.3f", $1 }')
  printf '%12s\n' "${RATIO[$v]}"
done

# Sanity: every update of t_versioned (warm-up included) added 1 to balance and, through the
# trigger, 1 to version; t_plain's version must never move.
read -r v_balance v_version p_version < <(psql_db -At -F ' ' -c \
  "SELECT (SELECT sum(balance) FROM t_versioned), (SELECT sum(version) FROM t_versioned),
          (SELECT sum(version) FROM t_plain)")
if [[ $v_balance == "$v_version" && $p_version == 0 && $v_version != 0 ]]; then
  echo "check: t_versioned sum(version) = sum(balance) = $v_version (every update bumped the version); t_plain untouched: ok"
else
  echo "check: FAILED: t_versioned sum(balance)=$v_balance sum(version)=$v_version; t_plain sum(version)=$p_version"
  status=1
fi

echo
echo "versioned/plain        = ${RATIO[versioned]}  (median of the $ROUNDS per-round ratios)"
echo "versioned-assert/plain = ${RATIO[versioned-assert]}"
vr=${RATIO[versioned]}
if awk -v r="$vr" -v g="$GOAL" 'BEGIN { exit !(r >= g) }'; then verdict=PASS; else verdict=BELOW; fi
echo "goal: versioned >= $GOAL of plain: $verdict ($vr)"

# The database is kept for inspection; the next run drops and recreates it.
exit "$status"
