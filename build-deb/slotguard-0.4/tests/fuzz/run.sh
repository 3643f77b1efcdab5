#!/usr/bin/env bash
# run.sh: runs the libFuzzer targets of tests/fuzz/ (built by `make asan` into build-asan/).
#
#   tests/fuzz/run.sh SECONDS [TARGET...]     the targets (default: all), SECONDS in all, shared
#                                             equally, one after the other
#
# `make fuzz` (FUZZ_SECONDS, default 600) and `make check` (60 s) run it. Each target <t> starts from
# its seeds (tests/fuzz/<t>/) plus what earlier runs found (build-asan/fuzz/<t>/corpus/, kept
# between runs, never committed), with tests/fuzz/<t>.dict when there is one, on 1 worker.
# Prints one line per target, "fuzz <t> ... ok" or "fuzz <t> ... FAILED"; on a failure (a
# sanitizer report, a crash, a timeout, a leak, a broken check of the target) the input that
# failed is saved under build-asan/fuzz/<t>/ and printed in base64 and hex with the command that
# replays it. Exit status: the number of targets that failed.
#
# Environment: SG_ASAN_BUILD (default <repo>/build-asan), SG_FUZZ_ARGS (more libFuzzer options),
# SG_FUZZ_MAX_LEN (longest input tried, default 65536).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd -P)
BUILD=${SG_ASAN_BUILD:-$ROOT/build-asan}
TOTAL=${1:?usage: tests/fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(find "$ROOT/tests/fuzz" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' |
    LC_ALL=C sort)
fi
SECONDS_EACH=$((TOTAL / ${#targets[@]}))
((SECONDS_EACH > 0)) || SECONDS_EACH=1

# Sanitizers: stop at the first error, report leaks, symbolize.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
if command -v llvm-symbolizer-14 >/dev/null 2>&1; then
  export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer-14)
fi

failed=0
for t in "${targets[@]}"; do
  bin=$BUILD/tests/fuzz/fuzz_$t
  work=$BUILD/fuzz/$t
  if [[ ! -x $bin ]]; then
    echo "fuzz $t ... FAILED (no $bin: run make asan)"
    failed=$((failed + 1))
    continue
  fi
  mkdir -p "$work/corpus"
  rm -f "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$work"/slow-unit-*
  opts=(-max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048
    -max_len="${SG_FUZZ_MAX_LEN:-65536}" -close_fd_mask=2 -print_final_stats=1
    -artifact_prefix="$work/")
  [[ -f $ROOT/tests/fuzz/$t.dict ]] && opts+=(-dict="$ROOT/tests/fuzz/$t.dict")
  # shellcheck disable=SC2086 # SG_FUZZ_ARGS is a list of options
  "$bin" "${opts[@]}" ${SG_FUZZ_ARGS:-} "$work/corpus" "$ROOT/tests/fuzz/$t" >"$work/log" 2>&1
  rc=$?
  stats=$(grep -E '^stat::(number_of_executed_units|new_units_added)' "$work/log" |
    sed -E 's/^stat::([a-z_]+):[[:space:]]*/\1=/' | tr '\n' ' ')
  if ((rc == 0)); then
    echo "fuzz $t ... ok (${SECONDS_EACH}s: ${stats% })"
    continue
  fi
  failed=$((failed + 1))
  echo "fuzz $t ... FAILED (exit $rc after $(grep -c '' "$work/log") log lines)"
  echo "--- $work/log (the report)"
  grep -v -E '^(#[0-9]+|INFO:|MS:|stat::)' "$work/log" | head -n 80
  for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
    [[ -f $a ]] || continue
    echo "--- failing input: $a ($(stat -c %s "$a") bytes)"
    echo "base64:"
    head -c 4096 "$a" | base64 -w 100
    echo "hex:"
    head -c 1024 "$a" | od -A x -t x1z -v
    echo "replay: $bin $a"
  done
done
exit "$failed"
