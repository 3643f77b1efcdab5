#!/usr/bin/env bash
# run-all.sh: slotguard's whole test suite, run by `make check` (after `make deps`).
#
# Steps, in order; a step that fails is counted as a failed test and the rest still runs:
#   1. make all, make install, make asan, make package (into build/dist; a failure of any
#      counts as one failed test)
#   2. ctest in build/, then in build-asan/    (every unit test counts, twice: the second time
#      built with AddressSanitizer + UndefinedBehaviorSanitizer); then each libFuzzer target of
#      tests/fuzz/ for a share of SG_FUZZ_SECONDS (default 60; each target counts)
#   3. a throwaway cluster in .check/ on port $SG_CHECK_PORT (default 54329), slotguard preloaded
#   4. the regression tests of tests/regress/schedule (every test counts; results in build/regress)
#   5. the isolation specs of tests/isolation/isolation_schedule (each counts; build/isolation)
#      Both run as `make -C extension installcheck` does (PGXS: REGRESS and ISOLATION of
#      extension/Makefile), against the throwaway cluster; a test file missing from its schedule
#      counts as a failed test.
#   6. every executable tests/daemon/*.sh, tests/integration/*.sh, tests/apps/<app>/test.sh,
#      tests/failover/*.sh (Patroni + etcd failover under load) and,
#      last (they install the Debian packages for real, then put the tree's build back),
#      tests/packaging/*.sh
#      (exit 0 = pass; logs in build/integration), with PGHOST PGPORT PGUSER=postgres
#      PGDATABASE=postgres set for the cluster, SG_REPO=<repo root>, SG_BUILD=<repo root>/build
#      and SG_ASAN_BUILD=<repo root>/build-asan (tests/daemon/asan_smoke.sh runs the sanitized
#      daemon)
# The cluster is stopped at the end whatever happens. The last line printed is
# "N passed, M failed"; the exit status is non-zero when M > 0.
#
# Databases: pg_regress and pg_isolation_regress each drop and create their database
# (contrib_regression, isolation_regression) with the settings they need (lc_messages=C, ...).
# isolation_regression gets `CREATE EXTENSION slotguard` from --load-extension (ISOLATION_OPTS);
# spec setup blocks may also run `CREATE EXTENSION IF NOT EXISTS slotguard`. The regression tests
# create the extension themselves (install, first in the schedule).
#
# Environment knobs: SG_CHECK_PORT, SG_CHECK_SETTINGS (extra key=value server settings, space
# separated), SG_TEST_TIMEOUT (seconds per integration test, default 300), SG_REGRESS_DIR,
# SG_ISOLATION_DIR (directories with a schedule, sql/ or specs/, expected/), SG_INTEGRATION_DIRS
# (to point the runner elsewhere), SG_SKIP_BUILD=1 (use what is already built and installed),
# SG_FUZZ_SECONDS (0: no fuzzing).
set -uo pipefail
exec 2>&1

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT" || exit 1

# We run make ourselves with our own -j; a parent make's jobserver is not passed to this script.
unset MAKEFLAGS MFLAGS
NPROC=$(nproc 2>/dev/null || echo 2)

# shellcheck source=scripts/lib.bash
source "$ROOT/scripts/lib.bash"

PORT=${SG_CHECK_PORT:-54329}
CLUSTER=$ROOT/.check
BUILD=$ROOT/build
ASAN_BUILD=$ROOT/build-asan
LOGS=$BUILD/logs
REGRESS_DIR=${SG_REGRESS_DIR:-$ROOT/tests/regress}
ISOLATION_DIR=${SG_ISOLATION_DIR:-$ROOT/tests/isolation}
INTEGRATION_DIRS=${SG_INTEGRATION_DIRS:-$ROOT/tests/daemon $ROOT/tests/integration $ROOT/tests/apps $ROOT/tests/failover $ROOT/tests/packaging}
TEST_TIMEOUT=${SG_TEST_TIMEOUT:-300}

passed=0
failed=0
failures=()

pass() {
  passed=$((passed + 1))
}
fail() {
  failed=$((failed + 1))
  failures+=("$1")
  echo "FAILED: $1"
}
section() {
  echo
  echo "=== $* ($(date +%H:%M:%S))"
}

# run_logged NAME LOGFILE CMD...: runs CMD with its output in LOGFILE; counts only a failure.
run_logged() {
  local name=$1 log=$2
  shift 2
  if "$@" >"$log" 2>&1; then
    echo "ok: $name"
    return 0
  fi
  echo "--- last 60 lines of $log"
  tail -n 60 "$log"
  fail "$name"
  return 1
}

cluster_stop() {
  "$ROOT/scripts/pgcluster.sh" stop "$CLUSTER" >/dev/null 2>&1 || true
}
trap cluster_stop EXIT
trap 'echo "interrupted"; exit 130' INT TERM

mkdir -p "$LOGS"
start_time=$SECONDS

# --- 1. build and install ---------------------------------------------------------------------
if [[ ${SG_SKIP_BUILD:-0} != 1 ]]; then
  section "build: make all"
  run_logged "build (make all)" "$LOGS/build.log" make -j"$NPROC" all
  section "install: make install"
  run_logged "install (make install)" "$LOGS/install.log" make install
  section "sanitizer build: make asan (build-asan/, clang, ASan + UBSan, fuzz targets)"
  run_logged "sanitizer build (make asan)" "$LOGS/asan-build.log" make asan
  # The Debian packages, for tests/packaging/ (built here: a build is not a test and has no
  # per-test timeout).
  section "packages: make package (dpkg-buildpackage; into build/dist)"
  rm -rf "$BUILD/dist"
  run_logged "packages (make package)" "$LOGS/package.log" env SG_DIST="$BUILD/dist" make package
fi
[[ -d $BUILD/dist ]] && export SG_PACKAGE_DEBS=$BUILD/dist

# Sanitizers stop a program at its first error and report leaks at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# --- 2. unit tests (ctest), plain and sanitized; the fuzz targets ----------------------------
# run_ctest DIR LABEL: ctest in DIR, every test counted.
run_ctest() {
  local dir=$1 label=$2 log="$LOGS/$2.log"
  section "unit tests: $label in ${dir#"$ROOT"/}"
  if [[ ! -f $dir/CTestTestfile.cmake ]]; then
    fail "$label (${dir#"$ROOT"/} was not configured)"
    return
  fi
  ctest --test-dir "$dir" -j"$NPROC" --timeout 120 --output-on-failure >"$log" 2>&1
  local rc=$? summary n_failed n_total
  summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log")
  if [[ -n $summary ]]; then
    echo "$summary"
    n_failed=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$summary")
    n_total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$summary")
    passed=$((passed + n_total - n_failed))
    if ((n_failed > 0)); then
      grep -E '^\s+[0-9]+ - .*\((Failed|Timeout|Not Run|Exception|SEGFAULT|Subprocess).*\)' \
        "$log" | while read -r _ _ tname _; do echo "FAILED: $label $tname"; done
      failed=$((failed + n_failed))
      failures+=("$label: $n_failed unit test(s)")
      echo "--- $label output of failed tests (first 200 lines)"
      grep -v -E '^\s+(Start|[0-9]+/[0-9]+ Test) ' "$log" | head -n 200
    fi
  elif grep -q 'No tests were found' "$log" && ((rc == 0)); then
    echo "$label: no tests"
  else
    tail -n 40 "$log"
    fail "$label (did not run)"
  fi
}
run_ctest "$BUILD" ctest
run_ctest "$ASAN_BUILD" ctest-asan

FUZZ_SECONDS=${SG_FUZZ_SECONDS:-60}
if ((FUZZ_SECONDS > 0)); then
  section "fuzz: tests/fuzz/run.sh $FUZZ_SECONDS (libFuzzer, ASan + UBSan)"
  SG_ASAN_BUILD=$ASAN_BUILD "$ROOT/tests/fuzz/run.sh" "$FUZZ_SECONDS" >"$LOGS/fuzz.log" 2>&1
  cat "$LOGS/fuzz.log"
  while read -r _ target _ status _; do
    if [[ $status == ok ]]; then pass; else fail "fuzz $target"; fi
  done < <(grep -E '^fuzz [^ ]+ \.\.\. (ok|FAILED)' "$LOGS/fuzz.log")
  grep -qE '^fuzz [^ ]+ \.\.\. ' "$LOGS/fuzz.log" || fail "fuzz (did not run)"
fi

# --- 3. the throwaway cluster -----------------------------------------------------------------
# The regression tests and isolation specs are those of extension/Makefile (REGRESS, ISOLATION),
# read from the schedule files; MAKE_EXTENSION is make there, for these directories.
MAKE_EXTENSION=(make --no-print-directory -C "$ROOT/extension" PG_CONFIG="$PG_CONFIG"
  REGRESS_DIR="$REGRESS_DIR" ISOLATION_DIR="$ISOLATION_DIR")
regress_tests=()
isolation_tests=()
integration_tests=()
unscheduled=()
while read -r kind names; do
  # shellcheck disable=SC2206 # names are words
  case $kind in
    regress) regress_tests=($names) ;;
    isolation) isolation_tests=($names) ;;
  esac
done < <("${MAKE_EXTENSION[@]}" -s print-tests)
# not_in_schedule DIR EXT TESTS...: the files DIR/*.EXT that are not among TESTS.
not_in_schedule() {
  local dir=$1 ext=$2 f
  shift 2
  [[ -d $dir ]] || return 0
  for f in "$dir"/*."$ext"; do
    [[ -e $f ]] || continue
    [[ " $* " == *" $(basename "$f" ".$ext") "* ]] || echo "${f#"$ROOT"/}"
  done
}
mapfile -t unscheduled < <(not_in_schedule "$REGRESS_DIR/sql" sql "${regress_tests[@]}"
  not_in_schedule "$ISOLATION_DIR/specs" spec "${isolation_tests[@]}")
for f in "${unscheduled[@]}"; do fail "$f (not in its schedule file: never run)"; done
for d in $INTEGRATION_DIRS; do
  [[ -d $d ]] || continue
  if [[ $(basename "$d") == apps ]]; then
    # the applications: tests/apps/<app>/test.sh
    mapfile -t found < <(find "$d" -mindepth 2 -maxdepth 2 -name test.sh | LC_ALL=C sort)
  else
    mapfile -t found < <(find "$d" -maxdepth 1 -name '*.sh' | LC_ALL=C sort)
  fi
  for f in "${found[@]}"; do
    if [[ -x $f ]]; then
      integration_tests+=("$f")
    else
      echo "note: $f is not executable; not run as a test"
    fi
  done
done

section "cluster: start in .check on port $PORT"
cluster_ok=0
"$ROOT/scripts/pgcluster.sh" destroy "$CLUSTER" >/dev/null 2>&1
# shellcheck disable=SC2086 # SG_CHECK_SETTINGS is a space-separated list on purpose
if "$ROOT/scripts/pgcluster.sh" start "$CLUSTER" "$PORT" ${SG_CHECK_SETTINGS:-}; then
  cluster_ok=1
  eval "$("$ROOT/scripts/pgcluster.sh" env "$CLUSTER" "$PORT")"
  export PGHOST PGPORT PGUSER PGDATABASE
  SERVER_LOG=$(readlink -f "$CLUSTER")/log
else
  fail "cluster start"
  for t in "${regress_tests[@]}"; do fail "regress $t (not run: no cluster)"; done
  for t in "${isolation_tests[@]}"; do fail "isolation $t (not run: no cluster)"; done
  for t in "${integration_tests[@]}"; do fail "integration ${t#"$ROOT"/} (not run: no cluster)"; done
fi

# count_pg_regress KIND LOG TESTS...: counts each test's "... ok" / "... FAILED" line of a
# pg_regress run; a test without a result line (the run was cut short) counts as failed.
count_pg_regress() {
  local kind=$1 log=$2
  shift 2
  local t re line status any_failed=0
  for t in "$@"; do
    # shellcheck disable=SC2001,SC2016 # escape regex characters of the test name
    re=$(sed 's/[][\.|$(){}?+*^]/\\&/g' <<<"$t")
    line=$(grep -E "^(test )?[[:space:]]*${re}[[:space:]]+\.\.\. " "$log" | tail -n 1)
    status=$(sed -E 's/.*\.\.\.[[:space:]]+([A-Za-z]+).*/\1/' <<<"$line")
    if [[ $status == ok ]]; then
      pass
    elif [[ -z $line ]]; then
      fail "$kind $t (no result)"
      any_failed=1
    else
      fail "$kind $t"
      any_failed=1
    fi
  done
  return $any_failed
}

# show_diffs DIR: prints the start of DIR/regression.diffs.
show_diffs() {
  if [[ -s $1/regression.diffs ]]; then
    echo "--- $1/regression.diffs (first 200 lines)"
    head -n 200 "$1/regression.diffs"
  fi
}

# run_suite KIND INPUTDIR TESTS...: runs TESTS as `make -C extension installcheck` does (KIND
# regress: REGRESS, pg_regress; isolation: ISOLATION, pg_isolation_regress) with results in
# build/KIND, and counts each test. A test without an expected file would make the tool stop
# after it, so such tests run afterwards, one by one, into build/KIND-new (their results/X.out is
# the output to review and bless) and count as failed.
run_suite() {
  local kind=$1 inputdir=$2
  shift 2
  local only=(REGRESS= ISOLATION=)
  local list=REGRESS
  [[ $kind == isolation ]] && list=ISOLATION
  local t with=() without=()
  for t in "$@"; do
    if [[ -f $inputdir/expected/$t.out ]]; then with+=("$t"); else without+=("$t"); fi
  done
  if ((${#with[@]} > 0)); then
    rm -rf "${BUILD:?}/$kind"
    mkdir -p "$BUILD/$kind"
    timeout 1200 "${MAKE_EXTENSION[@]}" installcheck "${only[@]}" "$list=${with[*]}" \
      EXTRA_REGRESS_OPTS="--outputdir=$BUILD/$kind" 2>&1 | tee "$LOGS/$kind.log"
    if ! count_pg_regress "$kind" "$LOGS/$kind.log" "${with[@]}"; then
      show_diffs "$BUILD/$kind"
    fi
  fi
  if ((${#without[@]} > 0)); then
    rm -rf "${BUILD:?}/$kind-new"
    mkdir -p "$BUILD/$kind-new"
    for t in "${without[@]}"; do
      timeout 600 "${MAKE_EXTENSION[@]}" installcheck "${only[@]}" "$list=$t" \
        EXTRA_REGRESS_OPTS="--outputdir=$BUILD/$kind-new" >"$LOGS/$kind-new-$t.log" 2>&1
      echo "test $t: no expected/$t.out; its output is in $BUILD/$kind-new/results/$t.out:"
      head -n 60 "$BUILD/$kind-new/results/$t.out" 2>/dev/null
      fail "$kind $t (no expected output)"
    done
  fi
}

# --- 4. regression tests ----------------------------------------------------------------------
if ((cluster_ok)) && ((${#regress_tests[@]} > 0)); then
  section "regress: ${#regress_tests[@]} test(s) (make -C extension installcheck, REGRESS)"
  run_suite regress "$REGRESS_DIR" "${regress_tests[@]}"
fi

# --- 5. isolation specs -----------------------------------------------------------------------
if ((cluster_ok)) && ((${#isolation_tests[@]} > 0)); then
  section "isolation: ${#isolation_tests[@]} spec(s) (make -C extension installcheck, ISOLATION)"
  run_suite isolation "$ISOLATION_DIR" "${isolation_tests[@]}"
fi

# --- 6. daemon and integration tests ----------------------------------------------------------
if ((cluster_ok)) && ((${#integration_tests[@]} > 0)); then
  section "integration: ${#integration_tests[@]} test(s)"
  rm -rf "$BUILD/integration"
  mkdir -p "$BUILD/integration"
  for t in "${integration_tests[@]}"; do
    name=${t#"$ROOT"/}
    log="$BUILD/integration/$(basename "$(dirname "$t")")-$(basename "$t" .sh).log"
    t0=$SECONDS
    PGUSER=postgres PGDATABASE=postgres SG_REPO=$ROOT SG_BUILD=$BUILD SG_ASAN_BUILD=$ASAN_BUILD \
      timeout -k 10 "$TEST_TIMEOUT" "$t" </dev/null >"$log" 2>&1
    rc=$?
    if ((rc == 0)); then
      pass
      printf 'test %-40s ... ok %6ss\n' "$name" "$((SECONDS - t0))"
    else
      reason="exit $rc"
      ((rc == 124)) && reason="timed out after ${TEST_TIMEOUT}s"
      printf 'test %-40s ... FAILED (%s)\n' "$name" "$reason"
      echo "--- output of $name (last 100 lines of $log)"
      tail -n 100 "$log"
      fail "integration $name"
    fi
  done
fi

# --- the end ----------------------------------------------------------------------------------
# The server log is checked after the cluster stopped, so that a process dying at shutdown (a
# library's exit-time code) is caught too. A crash anywhere counts as a failed test: an extension
# that takes a backend down restarts the whole cluster (the OOM killer's kill shows as signal 9).
cluster_stop
if ((cluster_ok)); then
  if grep -E 'terminated by signal|PANIC|TRAP:' "$SERVER_LOG" >/dev/null 2>&1; then
    echo
    echo "--- the server log mentions crashes ($SERVER_LOG):"
    grep -E -B2 -A2 'terminated by signal|PANIC|TRAP:' "$SERVER_LOG" | head -n 60
    fail "server log: a crash or PANIC"
  else
    pass
    echo "ok: server log (no crash or PANIC)"
  fi
fi

section "summary ($((SECONDS - start_time))s)"
if ((failed > 0)); then
  echo "failed:"
  printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
((failed == 0))
