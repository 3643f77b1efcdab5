#!/usr/bin/env bash
# socket.sh: what slotguardd's socket costs. One reserve (one confirmed seat of a slot that never
# sells out) per request, 32 clients, one run each way, on the same cluster:
#   direct  the clients call slotguard.reserve() themselves with libpq (one prepared statement)
#   socket  the clients send the same call to slotguardd (pool_size = clients) over its socket
# Prints throughput (requests/s) and p50 / p99 latency of both, the ratio socket / direct and the
# p99 latency the daemon adds. Load generator: build/bench/sgload (bench/sgload.cpp).
#
# Goal: socket >= 0.9 of direct throughput; p99 added <= 0.5 ms.
# Environment: BENCH_SECONDS (10), BENCH_CLIENTS (32), BENCH_DB, SG_BUILD.
set -euo pipefail
# shellcheck source=bench/lib.bash
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

SECS=${BENCH_SECONDS:-10}
CLIENTS=${BENCH_CLIENTS:-32}
BUILD=${SG_BUILD:-$SG_ROOT/build}
SGD=$BUILD/daemon/slotguardd
CTL=$BUILD/daemon/slotguardctl
LOAD=$BUILD/bench/sgload
if [[ ! -x $SGD || ! -x $LOAD ]]; then
  echo "socket.sh: building the daemon and the load generator"
  cmake -S "$SG_ROOT" -B "$BUILD" >/dev/null && cmake --build "$BUILD" -j"$(nproc)" >/dev/null
fi

DPID=
finish() {
  if [[ -n $DPID ]]; then
    kill -TERM "$DPID" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap finish EXIT

bench_db "${BENCH_DB:-bench_socket}"
psql_db -c "CREATE EXTENSION slotguard"
SLOT=$(psql_db -At -c "SELECT slotguard.create_slot(100000000, resource => 'hot')")

cat >"$work/sgd.yaml" <<YAML
database:
  conninfo: "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$DB"
  pool_size: $CLIENTS
socket:
  path: $work/sgd.sock
  mode: "0600"
  group: ""
log:
  level: warning
YAML
"$SGD" --config "$work/sgd.yaml" 2>"$work/sgd.log" &
DPID=$!
for _ in $(seq 1 100); do
  "$CTL" --socket "$work/sgd.sock" health 2>/dev/null | grep -q '"database": "ok"' && break
  sleep 0.1
done

conninfo="host=$PGHOST port=$PGPORT user=$PGUSER dbname=$DB"
# A short warm-up of both (connections, prepared statements, caches), then the measured runs.
"$LOAD" bench direct "$conninfo" "$CLIENTS" 1 "$SLOT" >/dev/null
"$LOAD" bench socket "$work/sgd.sock" "$CLIENTS" 1 "$SLOT" >/dev/null
psql -X -q -d "$DB" -c "CHECKPOINT"
direct=$("$LOAD" bench direct "$conninfo" "$CLIENTS" "$SECS" "$SLOT")
psql -X -q -d "$DB" -c "CHECKPOINT"
socket=$("$LOAD" bench socket "$work/sgd.sock" "$CLIENTS" "$SECS" "$SLOT")

get() { sed -E -n "s/.*$2=([0-9.]+).*/\1/p" <<<"$1"; }
echo "reserve (confirm => true), $CLIENTS clients, ${SECS}s each"
printf '  %-8s %10s %10s %10s %8s\n' "" "req/s" "p50 ms" "p99 ms" errors
for n in direct socket; do
  r=${!n}
  printf '  %-8s %10.0f %10.3f %10.3f %8s\n' "$n" "$(get "$r" rps)" "$(get "$r" p50_ms)" \
    "$(get "$r" p99_ms)" "$(get "$r" errors)"
done
ratio=$(awk -v a="$(get "$socket" rps)" -v b="$(get "$direct" rps)" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
added=$(awk -v a="$(get "$socket" p99_ms)" -v b="$(get "$direct" p99_ms)" 'BEGIN {printf "%.3f", a - b}')
added50=$(awk -v a="$(get "$socket" p50_ms)" -v b="$(get "$direct" p50_ms)" 'BEGIN {printf "%.3f", a - b}')
echo
echo "  socket / direct throughput = $ratio   (goal >= 0.90: $(awk -v r="$ratio" 'BEGIN {print (r >= 0.9 ? "PASS" : "BELOW")}'))"
echo "  added p99 latency = $added ms   (goal <= 0.5 ms: $(awk -v d="$added" 'BEGIN {print (d <= 0.5 ? "PASS" : "ABOVE")}'))"
echo "  added p50 latency = $added50 ms"
if [[ $(get "$direct" errors) != 0 || $(get "$socket" errors) != 0 ]]; then
  echo "socket.sh: some requests failed" >&2
  tail -n 20 "$work/sgd.log" >&2
  exit 1
fi
