#!/usr/bin/env bash
# 16 writers race to update one row, all holding the same version: exactly one succeeds and the
# other 15 are refused — with SG001 under READ COMMITTED (plain UPDATE and update_versioned), and
# with SG001 or PostgreSQL's own 40001 under REPEATABLE READ / SERIALIZABLE.
# Needs PGHOST, PGPORT, PGUSER (superuser) and PGDATABASE of a cluster with slotguard installed.
set -uo pipefail

db=sg_race16
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_q -d "${PGDATABASE:-postgres}" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" || exit 1
trap 'psql -X -q -d "${PGDATABASE:-postgres}" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1' EXIT
psql_q -d $db -o /dev/null <<'SQL' || exit 1
CREATE EXTENSION slotguard;
CREATE TABLE account (id int PRIMARY KEY, balance int NOT NULL);
SELECT slotguard.enable_versioning('account');
SQL

work=$(mktemp -d)
fail=0

# race LEVEL KIND: reset the row, start 16 writers at once, count the outcomes.
race() {
  local level=$1 kind=$2 sql
  psql_q -d $db -c "TRUNCATE account; INSERT INTO account VALUES (1, 1000);" || return 1
  if [[ $kind == update ]]; then
    sql="UPDATE account SET balance = balance - 1, version = 0 WHERE id = 1"
  else
    sql="SELECT slotguard.update_versioned('account', '1', 0, '{\"balance\": 999}')"
  fi
  rm -f "$work"/out.*
  for i in $(seq 1 16); do
    # Each writer waits for the same wall-clock instant so that they really overlap.
    psql -X -q -d $db -v VERBOSITY=verbose \
      -c "SELECT pg_sleep(0.5 - extract(epoch from clock_timestamp())::numeric % 0.5)" \
      -c "BEGIN ISOLATION LEVEL $level" -c "$sql" -c "COMMIT" >"$work/out.$i" 2>&1 &
  done
  wait
  local ok=0 sg001=0 s40001=0 other=0
  for i in $(seq 1 16); do
    if grep -q "SG001" "$work/out.$i"; then sg001=$((sg001 + 1))
    elif grep -q "40001" "$work/out.$i"; then s40001=$((s40001 + 1))
    elif grep -q "ERROR" "$work/out.$i"; then other=$((other + 1)); cat "$work/out.$i"
    else ok=$((ok + 1)); fi
  done
  local version
  version=$(psql -X -At -d $db -c "SELECT version FROM account WHERE id = 1")
  echo "$level $kind: $ok succeeded, $sg001 SG001, $s40001 40001, $other other; version $version"
  if [[ $ok -ne 1 || $other -ne 0 || $version -ne 1 ]]; then fail=1; fi
  if [[ $level == "READ COMMITTED" && $sg001 -ne 15 ]]; then fail=1; fi
  if [[ $((sg001 + s40001)) -ne 15 ]]; then fail=1; fi
}

for level in "READ COMMITTED" "REPEATABLE READ" "SERIALIZABLE"; do
  race "$level" update
  race "$level" function
done
rm -rf "$work"
if [[ $fail -ne 0 ]]; then echo "FAILED: a race did not end with exactly one winner"; exit 1; fi
echo "ok: every race had exactly one winner"
