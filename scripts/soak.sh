#!/usr/bin/env bash
# soak.sh: `make soak`. Minutes of mixed load on a throwaway cluster and slotguardd, then the
# invariant check. Not part of `make check`.
#
# A private cluster in .soak/ (port $SOAK_PORT, else $BENCH_PORT, else 54341; Unix socket only),
# a database with the extension, 20 slots of 200 seats and 10 slots with seats A1..A50, and
# slotguardd (pool 8, the expiry sweep on). sgload soak (bench/sgload_soak.cpp) runs SOAK_SOCKET
# clients over the daemon's socket and SOAK_DIRECT clients with libpq, each a random mix of 2 s
# holds, confirmed reservations, seat reservations, confirmations, cancellations, availability
# and expire_holds, for SOAK_SECONDS. Meanwhile the daemon's RSS is sampled every 5 s.
#
# Reports throughput and p50 / p99 latency (all, socket, direct), the outcomes, the daemon's RSS
# at start, peak and end, and checks, after the load:
#   - no slot over capacity (confirmed + live holds <= capacity; availability agrees),
#   - no seat label held twice by live bookings,
#   - no booking acknowledged as confirmed (and not cancelled since) is anything but confirmed,
#   - the daemon answers and exits 0 on SIGTERM; no backend died ("terminated by signal").
# Exit status 0 when all of that holds.
#
# Environment: SOAK_SECONDS (180), SOAK_SOCKET (16), SOAK_DIRECT (8), SOAK_PORT, SOAK_DIR (.soak),
# SG_BUILD (build/).
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SECS=${SOAK_SECONDS:-180}
NSOCK=${SOAK_SOCKET:-16}
NDIRECT=${SOAK_DIRECT:-8}
PORT=${SOAK_PORT:-${BENCH_PORT:-54341}}
DIR=${SOAK_DIR:-.soak}
BUILD=${SG_BUILD:-$ROOT/build}
SGD=$BUILD/daemon/slotguardd
LOAD=$BUILD/bench/sgload
# shellcheck source=scripts/lib.bash
source scripts/lib.bash
sg_require_built "$SGD" "$LOAD"

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
work=$(mktemp -d /tmp/sgsoak.XXXXXX)
chmod 755 "$work"
DPID=
finish() {
  if [[ -n $DPID ]] && kill -0 "$DPID" 2>/dev/null; then
    kill -TERM "$DPID" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
  fi
  scripts/pgcluster.sh stop "$DIR" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap finish EXIT

log "cluster $DIR on port $PORT"
scripts/pgcluster.sh start "$DIR" "$PORT" max_connections=100 >/dev/null
eval "$(scripts/pgcluster.sh env "$DIR" "$PORT")"
export PGUSER=postgres
export PGOPTIONS="-c client_min_messages=warning"
serverlog=$DIR/log
logsize=$(stat -c %s "$serverlog" 2>/dev/null || echo 0)
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS soak WITH (FORCE)" -c "CREATE DATABASE soak"
sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d soak "$@"; }
sql -c "CREATE EXTENSION slotguard"
slots=$(sql -c "SELECT string_agg(slotguard.create_slot(capacity => 200, hold_ttl => '2 seconds')::text, ',')
                FROM generate_series(1, 20)")
seat_slots=$(sql -c "SELECT string_agg(slotguard.create_slot(capacity => 50, hold_ttl => '2 seconds',
                       seat_labels => ARRAY(SELECT 'A' || i FROM generate_series(1, 50) i))::text, ',')
                     FROM generate_series(1, 10)")

cat >"$work/sgd.yaml" <<YAML
database:
  conninfo: "host=$PGHOST port=$PGPORT user=postgres dbname=soak"
  pool_size: 8
socket:
  path: $work/sgd.sock
  mode: "0600"
  group: ""
sweep:
  interval: 1s
log:
  level: notice
YAML
"$SGD" --config "$work/sgd.yaml" 2>"$work/daemon.log" &
DPID=$!
for _ in $(seq 1 100); do [[ -S $work/sgd.sock ]] && break; sleep 0.1; done
sleep 0.5
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$DPID/status"; }
rss_start=$(rss)
log "slotguardd pid $DPID, RSS $rss_start kB; load: $NSOCK socket + $NDIRECT direct clients for $SECS s"

"$LOAD" soak "$work/sgd.sock" "host=$PGHOST port=$PGPORT user=postgres dbname=soak" \
  "$NSOCK" "$NDIRECT" "$SECS" "$slots" "$seat_slots" "$work/confirmed" >"$work/load" 2>&1 &
lpid=$!
rss_peak=$rss_start
samples=()
while kill -0 "$lpid" 2>/dev/null; do
  r=$(rss)
  samples+=("$r")
  ((r > rss_peak)) && rss_peak=$r
  sleep 5
done
load_rc=0
wait "$lpid" || load_rc=$?
rss_end=$(rss)
cat "$work/load"

ok=1
check() {
  local what=$1 got=$2
  if [[ $got == 0 ]]; then
    log "ok: $what"
  else
    log "FAILED: $what ($got)"
    ok=0
  fi
}
log "invariants"
# Holds past their expiry count for nobody, whether or not the sweep has marked them yet.
check "no slot over capacity" "$(sql -c "
  SELECT count(*) FROM slotguard.slots s
  WHERE (SELECT COALESCE(sum(b.seats), 0) FROM slotguard.bookings b
         WHERE b.slot_id = s.id AND (b.status = 'confirmed'
               OR (b.status = 'pending' AND b.expires_at > pg_catalog.now()))) > s.capacity")"
check "availability never says more than capacity is taken" "$(sql -c "
  SELECT count(*) FROM slotguard.slots s, slotguard.availability(s.id) a
  WHERE a.confirmed + a.held > s.capacity OR a.free < 0")"
check "no seat label held twice" "$(sql -c "
  SELECT count(*) FROM (
    SELECT b.slot_id, l FROM slotguard.bookings b, unnest(b.seat_labels) l
    WHERE b.status = 'confirmed' OR (b.status = 'pending' AND b.expires_at > pg_catalog.now())
    GROUP BY 1, 2 HAVING count(*) > 1) d")"
acked=$(wc -l <"$work/confirmed")
cat >"$work/acked.sql" <<SQL
CREATE TEMP TABLE acked (id bigint);
\\copy acked FROM '$work/confirmed'
SELECT count(*) FROM acked a LEFT JOIN slotguard.bookings b USING (id)
WHERE b.status IS DISTINCT FROM 'confirmed';
SQL
check "every acknowledged confirmation ($acked) still confirmed" "$(sql -f "$work/acked.sql" | tail -n 1)"
check "no load client lost its connection" "$load_rc"
answer=$(printf '{"jsonrpc":"2.0","id":1,"method":"health"}\n' | "$LOAD" session "$work/sgd.sock" | sed -n 1p) || true
check "the daemon answers after the load" "$([[ $answer == *'"database":"ok"'* ]] && echo 0 || echo "$answer")"
kill -TERM "$DPID"
drc=0
wait "$DPID" || drc=$?
DPID=
check "the daemon exits 0 on SIGTERM" "$drc"
check "no backend terminated by signal" "$(tail -c +"$((logsize + 1))" "$serverlog" | grep -c 'terminated by signal' || true)"

echo
log "soak: ${SECS} s, $NSOCK socket + $NDIRECT direct clients"
grep -E '^(all|socket|direct):' "$work/load" | while read -r line; do log "  $line"; done
log "  slotguardd RSS: start ${rss_start} kB, peak ${rss_peak} kB, end ${rss_end} kB (samples every 5 s: ${samples[*]})"
log "  bookings: $(sql -c "SELECT string_agg(status || ' ' || n, ', ' ORDER BY status) FROM (SELECT status, count(*) n FROM slotguard.bookings GROUP BY 1) s")"
if ((ok)); then
  log "soak: PASS"
else
  log "soak: FAIL"
  tail -n 20 "$work/daemon.log"
  exit 1
fi
