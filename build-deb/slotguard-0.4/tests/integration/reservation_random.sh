#!/usr/bin/env bash
# Randomized concurrency test of slot-seat reservation: sg_reservation_stress runs 32 clients for
# 20 seconds against a database of its own (reserve, reserve_seats, confirm, cancel, availability,
# expire_holds, in autocommit and in explicit transactions of every isolation level) and checks the
# invariants during the run and at the end; see tests/integration/stress/reservation_stress.cpp.
# Needs PGHOST, PGPORT, PGUSER (superuser) and PGDATABASE of a cluster with slotguard installed,
# and SG_BUILD, the CMake build directory (default: build/ of the repository).
# SG_STRESS_ARGS adds options, e.g. SG_STRESS_ARGS="--seconds 120 --seed 42".
set -uo pipefail

repo=${SG_REPO:-$(cd "$(dirname "$0")/../.." && pwd -P)}
build=${SG_BUILD:-$repo/build}
bin=$build/tests/integration/stress/sg_reservation_stress
if [[ ! -x $bin ]]; then
  bin=$(find "$build" -type f -name sg_reservation_stress -perm -u+x 2>/dev/null | head -n 1)
fi
if [[ -z $bin || ! -x $bin ]]; then
  echo "sg_reservation_stress is not built under $build (cmake --build $build)"
  exit 1
fi

db=sg_reservation_random
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_q -d "${PGDATABASE:-postgres}" -c "SET client_min_messages = warning" \
  -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" || exit 1
trap 'psql -X -q -d "${PGDATABASE:-postgres}" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1' EXIT
psql_q -d $db -c "CREATE EXTENSION slotguard" || exit 1

# shellcheck disable=SC2086 # SG_STRESS_ARGS is a list of options on purpose
PGDATABASE=$db "$bin" --clients 32 --seconds 20 ${SG_STRESS_ARGS:-}
