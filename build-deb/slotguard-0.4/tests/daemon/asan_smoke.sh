#!/usr/bin/env bash
# The daemon built with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/, `make asan`)
# through methods_errors.sh: every method and error reason, batches, the actor, malformed and
# oversized input, unauthorized peers, max_clients, restarts. Any sanitizer report fails the test:
# the daemon stops at the first error, and leaks are reported when it exits.
set -euo pipefail

ROOT=${SG_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
ASAN_BUILD=${SG_ASAN_BUILD:-$ROOT/build-asan}
if [[ ! -x $ASAN_BUILD/daemon/slotguardd ]]; then
  echo "missing $ASAN_BUILD/daemon/slotguardd (run make asan)" >&2
  exit 1
fi

reports=$(mktemp -d /tmp/sgasan.XXXXXX)
trap 'rm -rf "$reports"' EXIT
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:log_path=$reports/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan"
if command -v llvm-symbolizer-14 >/dev/null 2>&1; then
  export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer-14)
fi

rc=0
SG_SLOTGUARDD=$ASAN_BUILD/daemon/slotguardd SG_TEST_NAME=asan_smoke \
  "$(dirname "$0")/methods_errors.sh" || rc=$?
if compgen -G "$reports/*" >/dev/null; then
  echo "--- sanitizer reports of the daemon"
  cat "$reports"/*
  rc=1
fi
echo "asan_smoke: methods_errors.sh with the sanitized daemon: exit $rc"
exit "$rc"
