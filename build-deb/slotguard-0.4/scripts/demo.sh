#!/usr/bin/env bash
# demo.sh (make demo): starts a private cluster under .run/, loads slotguard and shows it at work:
# two clerks read the same appointment and both try to change it; the database refuses the stale
# one, from plain SQL, with SG001 — then a transition rule refuses a forbidden status change.
# Then slotguardd on .run/slotguardd.sock: 64 buyers race over the socket (slotguardctl) for 10
# seats, and a 1-second hold is marked expired on time by the daemon's sweep.
# Exits when done and stops the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=.run
BUILD=${SG_BUILD:-$PWD/build}
SGD=$BUILD/daemon/slotguardd
CTL=$BUILD/daemon/slotguardctl
[[ -x $SGD && -x $CTL ]] || {
  echo "demo: $SGD is not built (make all)" >&2
  exit 1
}
PORT=${SG_RUN_PORT:-54320}

scripts/pgcluster.sh start "$RUN_DIR" "$PORT" >/dev/null
DPID=
cleanup() {
  if [[ -n $DPID ]]; then
    kill -TERM "$DPID" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
  fi
  rm -f "$RUN_DIR/slotguardd.yaml" "$RUN_DIR/slotguardd.sock" "$RUN_DIR/slotguardd.log"
  scripts/pgcluster.sh stop "$RUN_DIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT
export PGHOST=$PWD/$RUN_DIR/sock PGPORT=$PORT PGUSER=postgres
# A fresh database every time, whatever an earlier run left behind.
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS demo WITH (FORCE)" -c "CREATE DATABASE demo"

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

say "slotguardd: the same operations over a local socket ($RUN_DIR/slotguardd.sock)"
SOCK=$PWD/$RUN_DIR/slotguardd.sock
((${#SOCK} <= 100)) || SOCK=$(readlink -f "$RUN_DIR")/slotguardd.sock
rm -f "$RUN_DIR/slotguardd.sock"
cat >"$RUN_DIR/slotguardd.yaml" <<YAML
# written by scripts/demo.sh (make demo); removed when it stops
database:
  conninfo: "host=$(readlink -f "$RUN_DIR")/sock port=$PORT user=postgres dbname=demo"
  pool_size: 8
socket:
  path: $SOCK
  group: ""
sweep:
  interval: 30s
YAML
"$SGD" --config "$RUN_DIR/slotguardd.yaml" 2>"$RUN_DIR/slotguardd.log" &
DPID=$!
for _ in $(seq 1 100); do
  "$CTL" --socket "$SOCK" health 2>/dev/null | grep -q '"database": "ok"' && break
  kill -0 "$DPID" 2>/dev/null || { cat "$RUN_DIR/slotguardd.log" >&2; exit 1; }
  sleep 0.1
done
echo "\$ slotguardctl health"
"$CTL" --socket "$SOCK" health

say "64 buyers race for the 10 seats of one slot over the socket, all at the same instant"
slot=$("$CTL" --socket "$SOCK" create_slot capacity=10 resource=concert)
echo "\$ slotguardctl create_slot capacity=10 resource=concert   -> slot $slot"
echo "\$ slotguardctl reserve slot_id=$slot holder=buyer-N confirm=true   (x 64, in parallel)"
work=$(mktemp -d)
# Everyone waits for the same instant (the next whole second), then calls at once.
at=$(($(date +%s) + 1))
for i in $(seq 1 64); do
  (
    while (($(date +%s) < at)); do sleep 0.01; done
    "$CTL" --socket "$SOCK" reserve slot_id="$slot" holder="buyer-$i" confirm=true \
      >"$work/$i.out" 2>"$work/$i.err" || true
  ) &
done
wait $(jobs -p | grep -v "^$DPID\$")
confirmed=$(cat "$work"/*.out | grep -c '"status": "confirmed"' || true)
soldout=$(cat "$work"/*.err | grep -c '^slotguardctl: sold_out' || true)
echo "confirmed: $confirmed   sold out: $soldout"
echo "a loser's answer (stderr of slotguardctl, exit status 1):"
loser=$(grep -l '^slotguardctl: sold_out' "$work"/*.err | sed -n 1p)
[[ -n $loser ]] && sed 's/^/  /' "$loser"
rm -rf "$work"
"$CTL" --socket "$SOCK" availability slot_id="$slot"
if [[ $confirmed -ne 10 || $soldout -ne 54 ]]; then
  echo "demo: expected 10 confirmed and 54 sold out" >&2
  exit 1
fi

say "A hold expires on time: the daemon's sweep marks it, nobody calls expire_holds"
slot=$("$CTL" --socket "$SOCK" create_slot capacity=2 hold_ttl="1 second")
booking=$("$CTL" --socket "$SOCK" reserve slot_id="$slot" holder=dawdler | sed -n 's/^  "id": \([0-9]*\).*/\1/p')
echo "\$ slotguardctl reserve slot_id=$slot holder=dawdler   (hold_ttl 1 second) -> booking $booking"
sql -c "SELECT id, holder, status, round(extract(epoch FROM expires_at - created_at)) || ' s' AS hold_ttl FROM slotguard.bookings WHERE id = $booking"
t0=$(date +%s%N)
while [[ $(psql -X -At -d demo -c "SELECT status FROM slotguard.bookings WHERE id = $booking") != expired ]]; do
  if (($(date +%s%N) - t0 > 5000000000)); then
    echo "demo: the hold was not swept within 5 s" >&2
    exit 1
  fi
  sleep 0.05
done
echo "after $((($(date +%s%N) - t0) / 1000000)) ms:"
sql -c "SELECT id, holder, status FROM slotguard.bookings WHERE id = $booking"
"$CTL" --socket "$SOCK" confirm booking_id="$booking" || true

say "And counted"
sql -c "SELECT * FROM slotguard.stats"
echo
echo "demo: done (make run keeps a cluster up to try it yourself)"
