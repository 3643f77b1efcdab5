#!/usr/bin/env bash
# Caller-sized label arrays cost O(n log n) and honour statement_timeout (before
# 0.3 the duplicate-label check was quadratic and never checked for interrupts, so 20,000 labels
# ignored a 3 s statement_timeout for 29 s and 200,000 grew memory until the OOM killer came).
# - create_slot with 100,000 numbered seats, and reserve_seats of 50,000 of them, each well
#   within LIMIT seconds;
# - with statement_timeout = 1s, create_slot and reserve_seats with 3,000,000 labels (prepared
#   beforehand, so the time goes to slotguard) end with 57014 within CANCEL_LIMIT seconds;
# - the server log shows no "terminated by signal" and no "out of memory".
# Needs PGHOST, PGPORT, PGUSER (superuser) and PGDATABASE of a cluster with slotguard installed.
set -uo pipefail

db=sg_res_bounds
LIMIT=${SG_BOUNDS_LIMIT:-20}
CANCEL_LIMIT=${SG_BOUNDS_CANCEL_LIMIT:-6}
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_q -d "${PGDATABASE:-postgres}" -c "SET client_min_messages = warning" \
  -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" || exit 1
trap 'psql -X -q -d "${PGDATABASE:-postgres}" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1' EXIT
psql_q -d $db -c "CREATE EXTENSION slotguard" || exit 1
server_log=$(psql -X -At -d $db -c "SELECT pg_current_logfile()")
data_dir=$(psql -X -At -d $db -c "SHOW data_directory")
[[ -n $server_log && $server_log != /* ]] && server_log=$data_dir/$server_log
log_lines() { if [[ -r $server_log ]]; then wc -l <"$server_log"; else echo 0; fi; }
start_line=$(log_lines)
fail=0

# timed SECONDS_LIMIT WHAT SQL...: runs the statements in one session (killed after 3x the limit)
# and prints the output; fails when it took longer than the limit.
timed() {
  local limit=$1 what=$2 t0 t1 out rc ms
  shift 2
  t0=$(date +%s%3N)
  out=$(timeout $((limit * 3)) psql -X -q -d $db -v VERBOSITY=verbose "$@" 2>&1)
  rc=$?
  t1=$(date +%s%3N)
  ms=$((t1 - t0))
  echo "$what: ${ms} ms (limit ${limit} s)"
  if [[ $rc -eq 124 ]] || ((ms > limit * 1000)); then
    echo "FAIL: $what took ${ms} ms"
    fail=1
  fi
  last_output=$out
}

psql_q -d $db -c "CREATE TABLE big_labels AS
  SELECT array_agg('S' || i ORDER BY i) AS a FROM generate_series(1, 3000000) i" || exit 1

timed "$LIMIT" "create_slot, 100000 labels" \
  -c "SELECT slotguard.create_slot(100000, seat_labels =>
        (SELECT array_agg('S' || i ORDER BY i) FROM generate_series(1, 100000) i))"
grep -q ERROR <<<"$last_output" && { echo "FAIL: $last_output"; fail=1; }
timed "$LIMIT" "reserve_seats, 50000 labels" \
  -c "SELECT seats FROM slotguard.reserve_seats(1, 'fan', (SELECT array_agg('S' || i ORDER BY i)
        FROM generate_series(1, 100000, 2) i))"
grep -q 50000 <<<"$last_output" || { echo "FAIL: $last_output"; fail=1; }

for what in create_slot reserve_seats; do
  if [[ $what == create_slot ]]; then
    sql="SELECT slotguard.create_slot(3000000, seat_labels => (SELECT a FROM big_labels))"
  else
    sql="SELECT slotguard.reserve_seats(1, 'fan2', (SELECT a FROM big_labels))"
  fi
  timed "$CANCEL_LIMIT" "$what, 3000000 labels, statement_timeout 1s" \
    -c "SET statement_timeout = '1s'" -c "$sql"
  if ! grep -q 57014 <<<"$last_output"; then
    echo "FAIL: $what with statement_timeout: expected 57014, got: ${last_output:0:300}"
    fail=1
  fi
done

if [[ -r $server_log ]] &&
  tail -n +"$((start_line + 1))" "$server_log" | grep -E "terminated by signal|out of memory"; then
  echo "FAIL: the server log shows a crash or out of memory"
  fail=1
fi
((fail)) && exit 1
echo "ok"
