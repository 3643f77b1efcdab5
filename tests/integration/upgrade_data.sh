#!/usr/bin/env bash
# Upgrades with data: a database is created at the previous extension version (the highest one
# below the default version) and used the way an application uses it — slots with and
# without numbered seats, bookings confirmed, cancelled, held and expired, an idempotency key, an
# overlap rule of capacity 1 and one of capacity 2, a versioned table with audit and a transition
# rule, a session actor — then `ALTER EXTENSION slotguard UPDATE` runs. After it, for each:
#   - the data is intact: the same slots, bookings (status, seats, labels), rules, audit rows;
#   - behaviour is intact: the overlap rules refuse a double booking (23P01) and allow what they
#     allow; the versioning trigger bumps and refuses a stale version (SG001); the transition rule
#     refuses a forbidden change (SG005); the audit records the actor; reserve refuses an oversell
#     (SG003); the idempotency key finds its booking; confirm / cancel / expire_holds work; new
#     slots, bookings and audit rows get fresh ids;
#   - the updated extension's objects equal a fresh install's (the regress test `upgrade` checks
#     the catalog in detail; here the function list is compared).
# The database is used at the previous version with today's library, which is what a DBA's
# database sees between installing the new package and running ALTER EXTENSION UPDATE (see
# docs/operations.md "Upgrades"). Versions older than the previous one need the update before
# use: their schema predates columns today's library writes.
# Uses the test cluster (PGHOST, PGPORT of tests/run-all.sh).
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib.bash"
export PGUSER=${PGUSER:-postgres}
export PGOPTIONS="-c client_min_messages=warning"
: "${PGHOST:?needs PGHOST/PGPORT of a cluster with slotguard (run it through tests/run-all.sh)}"
dbs=()
cleanup() {
  for d in "${dbs[@]}"; do
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}
log() { echo "$(date +%T) upgrade_data: $*"; }
q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$db" "$@"; }
# err SQLSTATE SQL: SQL must fail with SQLSTATE.
err() {
  local out
  out=$(psql -X -qAt -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$db" -c "$2" 2>&1) &&
    fail "$db: expected $1, it succeeded: $2"
  [[ $out == *"ERROR:  $1:"* ]] || fail "$db: expected $1 from: $2; got: $out"
}

control=$("$PG_CONFIG" --sharedir)/extension/slotguard.control
latest=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$control")
# Earlier versions: those with an install script or an upgrade script starting from them.
mapfile -t versions < <(ls "$("$PG_CONFIG" --sharedir)"/extension/slotguard--*.sql |
  sed -n 's/.*slotguard--\([0-9.]*\)\(--[0-9.]*\)\?\.sql$/\1/p' | sort -uV | grep -vxF "$latest")
((${#versions[@]} > 0)) || fail "no earlier version to upgrade from"
versions=("${versions[-1]}")
log "upgrading to $latest from: ${versions[*]}"

fresh=sg_upg_fresh_$$
dbs+=("$fresh")
psql -X -q -d postgres -c "CREATE DATABASE $fresh" >/dev/null
psql -X -qAt -d "$fresh" -c "CREATE EXTENSION slotguard" >/dev/null
fresh_functions=$(psql -X -qAt -d "$fresh" -c "SELECT p.oid::regprocedure::text || ' ' ||
  p.prosecdef || ' ' || coalesce(p.proconfig::text, '') FROM pg_proc p
  JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'slotguard' ORDER BY 1")

for v in "${versions[@]}"; do
  db=sg_upg_${v//./_}_$$
  dbs+=("$db")
  log "$v: create and use"
  psql -X -q -d postgres -c "CREATE DATABASE $db" >/dev/null
  q >/dev/null <<SQL
CREATE EXTENSION slotguard VERSION '$v';
CREATE TABLE rooms (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, room int NOT NULL,
  starts_at timestamptz NOT NULL, ends_at timestamptz NOT NULL);
SELECT slotguard.add_overlap_rule('rooms', 'room_busy', '{room}', '{starts_at,ends_at}');
CREATE TABLE lanes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, pool int NOT NULL,
  during tstzrange NOT NULL);
SELECT slotguard.add_overlap_rule('lanes', 'pool_full', '{pool}', '{during}', 2);
INSERT INTO rooms (room, starts_at, ends_at) VALUES
  (1, '2026-03-01 09:00+00', '2026-03-01 10:00+00'),
  (1, '2026-03-01 10:00+00', '2026-03-01 11:00+00'),
  (2, '2026-03-01 09:00+00', '2026-03-01 10:00+00');
INSERT INTO lanes (pool, during) VALUES (1, '[2026-03-01 09:00+00,2026-03-01 10:00+00)'),
  (1, '[2026-03-01 09:30+00,2026-03-01 10:30+00)');
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, status text NOT NULL,
  note text, version bigint NOT NULL DEFAULT 1);
SELECT slotguard.enable_versioning('orders', audit => true);
SELECT slotguard.add_transition_rule('orders', 'status',
  '{"new": ["paid", "cancelled"], "paid": ["shipped"]}');
INSERT INTO orders (status, note) VALUES ('new', 'a'), ('new', 'b');
BEGIN;
SET LOCAL slotguard.actor = 'clerk-1';
UPDATE orders SET status = 'paid', version = 1 WHERE id = 1;
COMMIT;
CREATE TEMP TABLE ids AS SELECT
  slotguard.create_slot(5, now(), now() + interval '1 day', 'concert', '1 hour') AS plain,
  slotguard.create_slot(3, now(), now() + interval '1 day', 'hall', '1 hour', '{A1,A2,A3}') AS seated,
  slotguard.create_slot(2, now(), now() + interval '1 day', 'short', '1 second') AS short;
SELECT slotguard.reserve(plain, 'ann', 2, idempotency_key => 'k-ann') FROM ids;
SELECT slotguard.confirm(b.id) FROM slotguard.bookings b WHERE b.holder = 'ann';
SELECT slotguard.reserve(plain, 'bob', 1) FROM ids;
SELECT slotguard.cancel(b.id) FROM slotguard.bookings b WHERE b.holder = 'bob';
SELECT slotguard.reserve(plain, 'cy', 1) FROM ids;
SELECT slotguard.reserve_seats(seated, 'dee', '{A2,A3}') FROM ids;
SELECT slotguard.reserve(short, 'eve', 1) FROM ids;
SQL
  sleep 1.2 # eve's hold (1 second) expires
  before=$(q -c "SELECT id, slot_id, holder, seats, status FROM slotguard.bookings ORDER BY id" \
    -c "SELECT count(*), max(id) FROM slotguard.audit" \
    -c "SELECT count(*) FROM slotguard.overlap_rules" \
    -c "SELECT slot_id, label, booking_id IS NOT NULL FROM slotguard.seats ORDER BY 1, 2")

  log "$v: ALTER EXTENSION slotguard UPDATE"
  q -c "ALTER EXTENSION slotguard UPDATE" >/dev/null
  [[ $(q -c "SELECT extversion FROM pg_extension WHERE extname = 'slotguard'") == "$latest" ]] ||
    fail "$v: not at $latest after the update"
  after=$(q -c "SELECT id, slot_id, holder, seats, status FROM slotguard.bookings ORDER BY id" \
    -c "SELECT count(*), max(id) FROM slotguard.audit" \
    -c "SELECT count(*) FROM slotguard.overlap_rules" \
    -c "SELECT slot_id, label, booking_id IS NOT NULL FROM slotguard.seats ORDER BY 1, 2")
  [[ $before == "$after" ]] || fail "$v: data changed by the update:
$(diff <(echo "$before") <(echo "$after"))"
  functions=$(q -c "SELECT p.oid::regprocedure::text || ' ' || p.prosecdef || ' ' ||
    coalesce(p.proconfig::text, '') FROM pg_proc p
    JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'slotguard' ORDER BY 1")
  [[ $functions == "$fresh_functions" ]] || fail "$v: functions differ from a fresh install:
$(diff <(echo "$fresh_functions") <(echo "$functions"))"

  log "$v: behaviour after the update"
  # Overlap rules, both capacities.
  err 23P01 "INSERT INTO rooms (room, starts_at, ends_at) VALUES (1, '2026-03-01 09:30+00', '2026-03-01 09:45+00')"
  q -c "INSERT INTO rooms (room, starts_at, ends_at) VALUES (1, '2026-03-01 11:00+00', '2026-03-01 12:00+00')" >/dev/null
  err 23P01 "INSERT INTO lanes (pool, during) VALUES (1, '[2026-03-01 09:45+00,2026-03-01 10:00+00)')"
  q -c "INSERT INTO lanes (pool, during) VALUES (1, '[2026-03-01 10:15+00,2026-03-01 11:00+00)')" >/dev/null
  err 23P01 "UPDATE rooms SET starts_at = '2026-03-01 08:30+00' WHERE id = 2"
  # Versioning, transitions, audit with actor.
  err SG001 "UPDATE orders SET note = 'x', version = 1 WHERE id = 1"
  [[ $(q -c "UPDATE orders SET note = 'x', version = 2 WHERE id = 1 RETURNING version") == 3 ]] ||
    fail "$v: the version was not bumped"
  err SG005 "UPDATE orders SET status = 'shipped', version = 1 WHERE id = 2"
  q >/dev/null <<'SQL'
BEGIN;
SET LOCAL slotguard.actor = 'clerk-2';
UPDATE orders SET status = 'shipped', version = 3 WHERE id = 1;
COMMIT;
SQL
  [[ $(q -c "SELECT actor || ' ' || op || ' ' || (changes->'status'->>1)
      FROM slotguard.audit ORDER BY id DESC LIMIT 1") == "clerk-2 UPDATE shipped" ]] ||
    fail "$v: audit after the update: $(q -c "SELECT * FROM slotguard.audit ORDER BY id DESC LIMIT 1")"
  [[ $(q -c "SELECT count(*) FROM slotguard.audit WHERE actor = 'clerk-1'") == 1 ]] ||
    fail "$v: the audit row written before the update is gone"
  # Reservation.
  read -r plain seated short < <(q -F ' ' -c "SELECT min(id), min(id) + 1, min(id) + 2 FROM slotguard.slots")
  [[ $(q -c "SELECT (slotguard.reserve($plain, 'ann', 2, idempotency_key => 'k-ann')).holder") == ann ]] ||
    fail "$v: the idempotency key does not find its booking"
  [[ $(q -c "SELECT count(*) FROM slotguard.bookings WHERE holder = 'ann'") == 1 ]] ||
    fail "$v: the idempotent retry made a second booking"
  q -c "SELECT slotguard.reserve($plain, 'fay', 1)" >/dev/null
  err SG003 "SELECT slotguard.reserve($plain, 'gus', 2)"
  err SG003 "SELECT slotguard.reserve_seats($seated, 'hal', '{A2}')"
  q -c "SELECT slotguard.reserve_seats($seated, 'hal', '{A1}')" >/dev/null
  [[ $(q -c "SELECT slotguard.expire_holds()") -ge 1 ]] || fail "$v: eve's expired hold was not released"
  [[ $(q -c "SELECT status FROM slotguard.bookings WHERE holder = 'eve'") == expired ]] ||
    fail "$v: eve's hold is not expired"
  cy=$(q -c "SELECT id FROM slotguard.bookings WHERE holder = 'cy'")
  [[ $(q -c "SELECT (slotguard.confirm($cy)).status") == confirmed ]] || fail "$v: confirm"
  new_slot=$(q -c "SELECT slotguard.create_slot(1)")
  ((new_slot > short)) || fail "$v: a new slot reused an id ($new_slot)"
  q -c "SELECT slotguard.reserve($new_slot, 'ivy', 1, confirm => true)" >/dev/null
  # capacity 5: ann 2 and cy 1 confirmed, fay 1 held, bob cancelled, gus refused.
  [[ $(q -c "SELECT * FROM slotguard.availability($plain)") == "5|3|1|1" ]] ||
    fail "$v: availability of the plain slot: $(q -c "SELECT * FROM slotguard.availability($plain)")"
done
log "ok"
