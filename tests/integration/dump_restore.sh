#!/usr/bin/env bash
# Backup and restore: pg_dump of a database using slotguard (slots with and without numbered
# seats, bookings in every status, an overlap rule, a versioned table with audit and a transition
# rule), restored in plain format (psql) and in custom format (pg_restore; and in parallel as
# docs/sql-api.md "Backup and restore" says), gives a working
# database: the same slots, bookings, rules and audit rows; create_slot, reserve and
# add_overlap_rule hand out fresh ids (no 23505); idempotency keys still find their bookings; the
# overlap rule, the versioning trigger, the audit and the transition rule still fire; and the
# restored database dumps again. Uses the test cluster (PGHOST, PGPORT of tests/run-all.sh).
set -euo pipefail

# shellcheck source=scripts/lib.bash
source "$(dirname "$0")/../../scripts/lib.bash"
export PGUSER=${PGUSER:-postgres}
export PGOPTIONS="-c client_min_messages=warning"
: "${PGHOST:?needs PGHOST/PGPORT of a cluster with slotguard (run it through tests/run-all.sh)}"
src=sg_dump_src_$$
work=$(mktemp -d)
dbs=("$src")
cleanup() {
  for d in "${dbs[@]}"; do
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

psql -X -q -d postgres -c "CREATE DATABASE $src"
q -d "$src" >/dev/null <<'SQL'
CREATE EXTENSION slotguard;
-- slots: plain (sharded), numbered seats, one per holder; bookings in every status
SELECT slotguard.create_slot(100, resource => 'hall');
SELECT slotguard.create_slot(4, seat_labels => '{A1,A2,B1,B2}');
SELECT slotguard.create_slot(3, one_per_holder => true);
SELECT slotguard.reserve(1, 'ann', 2, idempotency_key => 'ann-1', confirm => true);
SELECT slotguard.reserve(1, 'bob', 1, idempotency_key => 'bob-1');
SELECT slotguard.cancel((slotguard.reserve(1, 'cy', 3)).id);
SELECT slotguard.reserve(1, 'dee', 1, hold_ttl => '1 millisecond');
SELECT slotguard.reserve_seats(2, 'eve', '{A1,B2}', confirm => true);
SELECT slotguard.reserve_seats(2, 'fay', '{A2}', idempotency_key => 'fay-1');
SELECT slotguard.reserve(3, 'gus', idempotency_key => 'gus-1', confirm => true);
SELECT pg_sleep(0.01);
SELECT slotguard.expire_holds();

-- an application table with an overlap rule, versioning with audit, and a transition rule
CREATE SCHEMA app;
CREATE TABLE app.appt (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  room int NOT NULL,
  starts_at timestamptz NOT NULL,
  ends_at timestamptz NOT NULL,
  status text NOT NULL DEFAULT 'pending'
);
SELECT slotguard.add_overlap_rule('app.appt', 'room_busy', '{room}', '{starts_at,ends_at}',
                                  only_when => $$status <> 'cancelled'$$);
SELECT slotguard.enable_versioning('app.appt', audit => true);
SELECT slotguard.add_transition_rule('app.appt', 'status',
  '{"": ["pending"], "pending": ["confirmed", "cancelled"], "confirmed": ["cancelled"]}');
INSERT INTO app.appt (room, starts_at, ends_at)
VALUES (1, '2030-01-01 10:00+00', '2030-01-01 11:00+00'),
       (1, '2030-01-01 11:00+00', '2030-01-01 12:00+00'),
       (2, '2030-01-01 10:00+00', '2030-01-01 11:00+00');
UPDATE app.appt SET status = 'confirmed', version = 0 WHERE id = 1;
UPDATE app.appt SET status = 'cancelled' WHERE id = 2;
SQL

# the state a restore must reproduce
state() {
  q -d "$1" <<'SQL'
SELECT 'slots ' || string_agg(format('%s:%s:%s:%s', id, capacity, shards, seat_labels), ' ' ORDER BY id)
  FROM slotguard.slots;
SELECT 'shards ' || sum(used) || '/' || sum(capacity) FROM slotguard.slot_shards;
SELECT 'seats ' || string_agg(format('%s:%s:%s', slot_id, label, booking_id), ' ' ORDER BY slot_id, ord)
  FROM slotguard.seats;
SELECT 'bookings ' || string_agg(format('%s:%s:%s:%s:%s:%s', id, slot_id, holder, seats, status,
                                        idempotency_key), ' ' ORDER BY id)
  FROM slotguard.bookings;
SELECT 'appt ' || string_agg(format('%s:%s:%s:%s', id, room, status, version), ' ' ORDER BY id)
  FROM app.appt;
SELECT 'audit ' || string_agg(format('%s:%s:%s:%s:%s', id, tbl, op, old_version, new_version), ' '
                              ORDER BY id)
  FROM slotguard.audit;
SELECT 'rules ' || string_agg(format('%s:%s', tbl, rule_name), ' ') FROM slotguard.overlap_rules;
SELECT 'versioned ' || count(*) FROM slotguard.versioned_tables;
SELECT 'transitions ' || count(*) FROM slotguard.transition_rules;
SQL
}
state "$src" >"$work/src.state"
max_slot=$(q -d "$src" -c "SELECT max(id) FROM slotguard.slots")
max_booking=$(q -d "$src" -c "SELECT max(id) FROM slotguard.bookings")
max_audit=$(q -d "$src" -c "SELECT max(id) FROM slotguard.audit")

# check DB: the restored database is the source's and works.
check() {
  local db=$1 out
  state "$db" >"$work/$db.state"
  diff -u "$work/src.state" "$work/$db.state" || fail "$db: the restored state differs"
  out=$(q -d "$db" 2>&1 <<SQL
-- fresh ids
SELECT slotguard.create_slot(5) > $max_slot AS fresh_slot_id;
SELECT (slotguard.reserve(1, 'new', confirm => true)).id > $max_booking AS fresh_booking_id;
SELECT (slotguard.reserve_seats(2, 'new', '{B1}')).id > $max_booking AS fresh_seat_booking_id;
-- idempotency keys and one_per_holder still find the old bookings
SELECT (slotguard.reserve(1, 'ann', 2, idempotency_key => 'ann-1')).id
       = (SELECT id FROM slotguard.bookings WHERE idempotency_key = 'ann-1') AS same_booking;
SELECT (slotguard.confirm((SELECT id FROM slotguard.bookings WHERE idempotency_key = 'bob-1'))).status;
CREATE TABLE app.desk (id int PRIMARY KEY, desk int, during tstzrange);
SELECT slotguard.add_overlap_rule('app.desk', 'desk_busy', '{desk}', '{during}');
SELECT count(*) AS rule_defs FROM slotguard.overlap_rules;
INSERT INTO app.desk VALUES (1, 1, '[2030-01-01 10:00+00, 2030-01-01 11:00+00)');
SQL
  ) || fail "$db: $out"
  [[ $out == $'t\nt\nt\nt\nconfirmed\n\n2' ]] || fail "$db: unexpected answers: $out"
  # the rules fire
  expect_error "$db" 23P01 "INSERT INTO app.desk VALUES (2, 1, '[2030-01-01 10:30+00, 2030-01-01 12:00+00)')"
  expect_error "$db" 23P01 "INSERT INTO app.appt (room, starts_at, ends_at)
                            VALUES (1, '2030-01-01 10:30+00', '2030-01-01 10:45+00')"
  expect_error "$db" SG001 "UPDATE app.appt SET room = 3, version = 0 WHERE id = 1"
  expect_error "$db" SG005 "UPDATE app.appt SET status = 'pending' WHERE id = 1"
  expect_error "$db" SG003 "SELECT slotguard.reserve(3, 'gus')"
  expect_error "$db" SG003 "SELECT slotguard.reserve_seats(2, 'zed', '{A1}')"
  out=$(q -d "$db" -c "INSERT INTO app.appt (room, starts_at, ends_at)
                         VALUES (1, '2030-01-01 11:00+00', '2030-01-01 11:30+00') RETURNING id > 3" \
    -c "UPDATE app.appt SET status = 'cancelled', version = 1 WHERE id = 1 RETURNING version" \
    -c "SELECT count(*) FILTER (WHERE id > $max_audit) FROM slotguard.audit")
  [[ $out == $'t\n2\n2' ]] ||
    fail "$db: fresh appointment id, version after the update, new audit rows: expected t 2 2, got $out"
  pg_dump -d "$db" -Fc -f "$work/$db.again" || fail "$db: the restored database does not dump"
  echo "ok: $db"
}

# expect_error DB SQLSTATE SQL
expect_error() {
  local out
  if out=$(psql -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$1" -c "$3" 2>&1); then
    fail "$1: expected $2 from: $3"
  fi
  grep -q "ERROR:  $2" <<<"$out" || fail "$1: expected $2 from: $3; got: $out"
}

# plain format, through psql
dbs+=("${src}_plain" "${src}_custom" "${src}_parallel")
pg_dump -d "$src" -f "$work/dump.sql"
psql -X -q -d postgres -c "CREATE DATABASE ${src}_plain"
q -d "${src}_plain" -f "$work/dump.sql" >/dev/null 2>"$work/plain.err" ||
  fail "plain restore: $(cat "$work/plain.err")"
check "${src}_plain"

# custom format, through pg_restore
pg_dump -d "$src" -Fc -f "$work/dump.custom"
psql -X -q -d postgres -c "CREATE DATABASE ${src}_custom"
pg_restore --exit-on-error -d "${src}_custom" "$work/dump.custom" 2>"$work/custom.err" ||
  fail "custom restore: $(cat "$work/custom.err")"
check "${src}_custom"

# custom format, restored by parallel jobs as docs/sql-api.md "Backup and restore" says: slotguard's own
# tables in one job (their foreign keys exist from CREATE EXTENSION on, so a parallel pg_restore
# may load bookings' shards before their slots), everything else in parallel.
psql -X -q -d postgres -c "CREATE DATABASE ${src}_parallel"
for step in "--section=pre-data" "--section=data -n slotguard" "--section=data -N slotguard -j 2" \
  "--section=post-data -j 2"; do
  # shellcheck disable=SC2086 # options
  pg_restore --exit-on-error $step -d "${src}_parallel" "$work/dump.custom" \
    2>"$work/parallel.err" || fail "parallel restore, step $step: $(cat "$work/parallel.err")"
done
check "${src}_parallel"
echo "ok: plain and custom dumps restore into working databases"
