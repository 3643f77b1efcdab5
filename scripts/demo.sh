#!/usr/bin/env bash
# demo.sh (make demo): starts a private cluster under .run/, loads slotguard and shows it at work:
# two clerks read the same appointment and both try to change it; the database refuses the stale
# one, from plain SQL, with SG001 — then a transition rule refuses a forbidden status change.
# Exits when done and stops the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=.run
PORT=${SG_RUN_PORT:-54320}

scripts/pgcluster.sh start "$RUN_DIR" "$PORT" >/dev/null
trap 'scripts/pgcluster.sh stop "$RUN_DIR" >/dev/null 2>&1 || true' EXIT
export PGHOST=$PWD/$RUN_DIR/sock PGPORT=$PORT PGUSER=postgres
psql -X -q -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'demo'" -At | grep -q 1 ||
  psql -X -q -d postgres -c "CREATE DATABASE demo"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
sql() { psql -X -d demo -v VERBOSITY=default "$@"; }

say "A table of appointments, versioned by the database"
sql -q -o /dev/null <<'SQL'
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS slotguard CASCADE;
CREATE EXTENSION slotguard;
DROP TABLE IF EXISTS appointment;
CREATE TABLE appointment (id int PRIMARY KEY, patient text, status text NOT NULL);
INSERT INTO appointment VALUES (7, 'Ada', 'pending');
SELECT slotguard.enable_versioning('appointment', audit => true);
SQL
sql -c "SELECT id, patient, status, version FROM appointment"

say "Clerk A and clerk B both read version 0. A approves first:"
sql -c "BEGIN" -c "SET LOCAL slotguard.actor = 'clerk-a'" \
    -c "UPDATE appointment SET status = 'confirmed', version = 0 WHERE id = 7" -c "COMMIT"

say "B still holds version 0 and tries to reject it — the database refuses:"
if sql -c "UPDATE appointment SET status = 'rejected', version = 0 WHERE id = 7" 2>&1; then
  echo "demo: the stale update was NOT refused" >&2
  exit 1
fi

say "The same through update_versioned, from any language (B re-reads version 1 and retries):"
sql -c "SELECT slotguard.update_versioned('appointment', '7', 1, '{\"patient\": \"Ada L.\"}') ->> 'version' AS new_version"

say "A status rule: cancelled appointments stay cancelled"
sql -q -c "SELECT slotguard.add_transition_rule('appointment', 'status', '{\"pending\": [\"confirmed\", \"rejected\", \"cancelled\"], \"confirmed\": [\"completed\", \"cancelled\"]}')" -o /dev/null
sql -c "UPDATE appointment SET status = 'cancelled' WHERE id = 7"
sql -c "UPDATE appointment SET status = 'confirmed' WHERE id = 7" 2>&1 || true

say "Every change is in the audit log, with who did it"
sql -c "SELECT id, actor, op, old_version, new_version, changes - 'updated_at' AS changes FROM slotguard.audit ORDER BY id"

say "64 buyers race for the 10 seats of one slot, all at the same instant"
slot=$(psql -X -At -d demo -c "SELECT slotguard.create_slot(10, resource => 'concert')")
work=$(mktemp -d)
for i in $(seq 1 64); do
  psql -X -At -d demo -v VERBOSITY=verbose \
    -c "SELECT pg_sleep(1 - extract(epoch from clock_timestamp())::numeric % 1)" \
    -c "SELECT status FROM slotguard.reserve($slot, 'buyer-$i', confirm => true)" \
    >"$work/$i" 2>&1 &
done
wait
confirmed=$(cat "$work"/* | grep -c '^confirmed$' || true)
soldout=$(cat "$work"/* | grep -c 'SG003' || true)
rm -rf "$work"
echo "confirmed: $confirmed   sold out (SG003): $soldout"
sql -c "SELECT * FROM slotguard.availability($slot)"
if [[ $confirmed -ne 10 || $soldout -ne 54 ]]; then
  echo "demo: expected 10 confirmed and 54 sold out" >&2
  exit 1
fi

say "And counted"
sql -c "SELECT * FROM slotguard.stats"
echo
echo "demo: done (make run keeps a cluster up to try it yourself)"
