#!/usr/bin/env bash
# 16 sessions book the same room at the same time, at the same instant, in each isolation level:
# exactly one row is written; the other 15 are refused with 23P01 (exclusion_violation) under
# READ COMMITTED, and with 23P01 or PostgreSQL's 40001 (serialization_failure) under REPEATABLE
# READ / SERIALIZABLE. The same race on a rule with capacity 2 writes exactly two rows.
# Needs PGHOST, PGPORT, PGUSER (superuser) and PGDATABASE of a cluster with slotguard installed.
set -uo pipefail

db=sg_overlap16
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_q -d "${PGDATABASE:-postgres}" -c "SET client_min_messages = warning" \
  -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" || exit 1
trap 'psql -X -q -d "${PGDATABASE:-postgres}" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1' EXIT
psql_q -d $db -o /dev/null <<'SQL' || exit 1
SET client_min_messages = warning;
CREATE EXTENSION slotguard;
CREATE TABLE booking (id int PRIMARY KEY, room int NOT NULL, starts_at timestamptz NOT NULL,
                      ends_at timestamptz NOT NULL, holder text NOT NULL);
SELECT slotguard.add_overlap_rule('booking', 'room_busy', '{room}', '{starts_at,ends_at}');
CREATE TABLE lane (id int PRIMARY KEY, pool int NOT NULL, starts_at timestamptz NOT NULL,
                   ends_at timestamptz NOT NULL, holder text NOT NULL);
SELECT slotguard.add_overlap_rule('lane', 'two_lanes', '{pool}', '{starts_at,ends_at}',
                                  capacity => 2);
SQL

work=$(mktemp -d)
fail=0

# race LEVEL TABLE WINNERS: empty TABLE, start 16 writers of one key and period at once, count
# the outcomes; WINNERS rows must be written.
race() {
  local level=$1 table=$2 winners=$3 key i
  key=$([[ $table == booking ]] && echo room || echo pool)
  psql_q -d $db -c "TRUNCATE $table" || return 1
  rm -f "$work"/out.*
  # Every writer connects, then waits for the same wall-clock instant (2 s from now) so that they
  # really overlap; the periods differ a little but all share 10:16-11:01.
  local start
  start=$(($(date +%s) + 2))
  for i in $(seq 1 16); do
    psql -X -q -d $db -v VERBOSITY=verbose \
      -c "SELECT pg_sleep($start - extract(epoch from clock_timestamp()))" \
      -c "BEGIN ISOLATION LEVEL $level" \
      -c "INSERT INTO $table (id, $key, starts_at, ends_at, holder)
          VALUES ($i, 1, '2024-06-03 10:00+00'::timestamptz + interval '1 minute' * $i,
                  '2024-06-03 11:00+00'::timestamptz + interval '1 minute' * $i, 'writer $i')" \
      -c "COMMIT" >"$work/out.$i" 2>&1 &
  done
  wait
  local ok=0 excl=0 ser=0 other=0 rows overlapping
  for i in $(seq 1 16); do
    if grep -q "23P01" "$work/out.$i"; then excl=$((excl + 1))
    elif grep -q "40001" "$work/out.$i"; then ser=$((ser + 1))
    elif grep -q "ERROR" "$work/out.$i"; then other=$((other + 1)); cat "$work/out.$i"
    else ok=$((ok + 1)); fi
  done
  rows=$(psql -X -At -d $db -c "SELECT count(*) FROM $table")
  # rows covering 10:30 (all of them cover it)
  overlapping=$(psql -X -At -d $db -c "SELECT count(*) FROM $table
                 WHERE starts_at <= '2024-06-03 10:30+00' AND ends_at > '2024-06-03 10:30+00'")
  echo "$level $table: $ok committed, $excl 23P01, $ser 40001, $other other; $rows rows," \
    "$overlapping at 10:30"
  if [[ $ok -ne $winners || $rows -ne $winners || $overlapping -ne $winners || $other -ne 0 ]]; then
    fail=1
  fi
  if [[ $level == "READ COMMITTED" && $excl -ne $((16 - winners)) ]]; then fail=1; fi
  if [[ $((excl + ser)) -ne $((16 - winners)) ]]; then fail=1; fi
}

for level in "READ COMMITTED" "REPEATABLE READ" "SERIALIZABLE"; do
  race "$level" booking 1
  race "$level" lane 2
done
rm -rf "$work"
if [[ $fail -ne 0 ]]; then echo "FAILED: a race did not end with exactly the allowed rows"; exit 1; fi
echo "ok: every race wrote exactly one row (two with capacity 2)"
