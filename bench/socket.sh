#!/usr/bin/env bash
# socket.sh: what slotguardd's socket costs. One reserve (one confirmed seat of a slot that never
# sells out) per request, on the same cluster, side by side:
#   direct  the clients call slotguard.reserve() themselves with libpq (one prepared statement), at
#           1, 8, 16, 32 and 64 clients; the best of these is "direct at its best client count"
#   socket  the clients send the same call to slotguardd over its socket, at 1, 32 and 1,000
#           clients; the daemon's pool is as many connections as direct's best count
# Prints one row per client count: throughput of both, the ratio socket / direct (for 1,000
# socket clients: against direct at its best count) and the p50 / p99 latency the socket adds;
# for the 1,000 clients the fewest and most requests one client completed (fairness). Then the
# daemon's CPU time per 1,000 requests and its memory (RSS), and a perf profile of the daemon
# under the 32-client load: its top symbols are printed, the whole report and the folded stacks
# (one line per stack, for a flame graph) are written to $SG_BUILD/bench/ (socket-perf.txt,
# socket-perf.folded). Without a working perf (not installed, or not allowed to sample: see
# /proc/sys/kernel/perf_event_paranoid) the profile is skipped and said so.
# Load generator: build/bench/sgload (bench/sgload.cpp).
#
# Goals: socket >= 0.9 of direct at 32 clients, added p99 <= 0.5 ms, added p50 <= 0.1 ms; 1,000
# socket clients >= 0.9 of direct at its best count, every client served.
# Environment: BENCH_SECONDS (8: each run), BENCH_MANY (1000: the many-clients row), BENCH_DB,
# SG_BUILD. The 1,000 clients need 1,000 file descriptors in the daemon and in sgload: the soft
# limit (ulimit -n) is raised as far as the hard limit allows (docs/daemon.md, Limits).
set -euo pipefail
# shellcheck source=bench/lib.bash
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

SECS=${BENCH_SECONDS:-8}
MANY=${BENCH_MANY:-1000}
BUILD=${SG_BUILD:-$SG_ROOT/build}
SGD=$BUILD/daemon/slotguardd
CTL=$BUILD/daemon/slotguardctl
LOAD=$BUILD/bench/sgload
OUT=$BUILD/bench
if [[ ! -x $SGD || ! -x $LOAD ]]; then
  echo "socket.sh: building the daemon and the load generator"
  cmake -S "$SG_ROOT" -B "$BUILD" >/dev/null && cmake --build "$BUILD" -j"$(nproc)" >/dev/null
fi
want_fds=$((2 * MANY + 256))
ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < MANY + 64)); then
  MANY=$(($(ulimit -n) - 64))
  echo "socket.sh: ulimit -n is $(ulimit -n): the many-clients row has $MANY clients"
fi

DPID=
stop_daemon() {
  if [[ -n $DPID ]]; then
    kill -TERM "$DPID" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
  fi
  DPID=
}
trap 'stop_daemon; rm -rf "$work"' EXIT

bench_db "${BENCH_DB:-bench_socket}"
psql_db -c "CREATE EXTENSION slotguard"
SLOT=$(psql_db -At -c "SELECT slotguard.create_slot(100000000, resource => 'hot')")
conninfo="host=$PGHOST port=$PGPORT user=$PGUSER dbname=$DB"

get() { sed -E -n "s/.*(^| )$2=([0-9.]+).*/\2/p" <<<"$1"; }
# measure MODE CLIENTS: one run after a checkpoint; the result line of sgload.
measure() {
  psql -X -q -d "$DB" -c "CHECKPOINT"
  if [[ $1 == direct ]]; then
    "$LOAD" bench direct "$conninfo" "$2" "$SECS" "$SLOT"
  else
    "$LOAD" bench socket "$work/sgd.sock" "$2" "$SECS" "$SLOT"
  fi
}
# cpu_ticks: user + system CPU time of the daemon so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$DPID/stat"; }

start_daemon() {
  cat >"$work/sgd.yaml" <<YAML
database:
  conninfo: "$conninfo"
  pool_size: $1
socket:
  path: $work/sgd.sock
  mode: "0600"
  group: ""
limits:
  max_clients: $((MANY + 100))
log:
  level: warning
YAML
  "$SGD" --config "$work/sgd.yaml" 2>"$work/sgd.log" &
  DPID=$!
  for _ in $(seq 1 100); do
    "$CTL" --socket "$work/sgd.sock" health 2>/dev/null | grep -q '"database": "ok"' && return 0
    sleep 0.1
  done
  echo "socket.sh: slotguardd did not start" >&2
  cat "$work/sgd.log" >&2
  return 1
}

# 1. Direct at several client counts (after a short warm-up); the best one sizes the pool.
"$LOAD" bench direct "$conninfo" 32 1 "$SLOT" >/dev/null
declare -A R
best=0 best_n=1
for n in 1 8 16 32 64; do
  R[direct_$n]=$(measure direct "$n") || true
  rps=$(get "${R[direct_$n]}" rps)
  if awk -v a="$rps" -v b="$best" 'BEGIN {exit !(a > b)}'; then best=$rps best_n=$n; fi
done

# 2. The socket at 1, 32 and MANY clients, one daemon with a pool of best_n connections.
start_daemon "$best_n"
"$LOAD" bench socket "$work/sgd.sock" 32 1 "$SLOT" >/dev/null
hz=$(getconf CLK_TCK)
cpu_ms_total=0 socket_requests=0
perf_ok=0
for n in 1 32 "$MANY"; do
  t0=$(cpu_ticks)
  if ((n == 32)) && command -v perf >/dev/null; then
    perf record -q -F 499 -g -p "$DPID" -o "$work/perf.data" -- sleep "$((SECS > 3 ? SECS - 2 : 1))" \
      >"$work/perf.log" 2>&1 &
    ppid=$!
  fi
  R[socket_$n]=$(measure socket "$n") || true
  if ((n == 32)) && [[ -n ${ppid:-} ]]; then wait "$ppid" && perf_ok=1 || perf_ok=0; fi
  t1=$(cpu_ticks)
  cpu_ms_total=$((cpu_ms_total + (t1 - t0) * 1000 / hz))
  socket_requests=$((socket_requests + $(get "${R[socket_$n]}" requests)))
done
rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$DPID/status")
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$DPID/status")
stop_daemon

# 3. The report.
echo "reserve (confirm => true), ${SECS}s per run; slotguardd pool_size = $best_n (direct's best count)"
printf '  %-7s %6s %9s %9s %9s %9s %9s\n' "" clients "req/s" "p50 ms" "p99 ms" "max ms" errors
for n in 1 8 16 32 64; do
  r=${R[direct_$n]}
  printf '  %-7s %6s %9.0f %9.3f %9.3f %9.3f %9s%s\n' direct "$n" "$(get "$r" rps)" \
    "$(get "$r" p50_ms)" "$(get "$r" p99_ms)" "$(get "$r" max_ms)" "$(get "$r" errors)" \
    "$([[ $n == "$best_n" ]] && echo '  <- best')"
done
for n in 1 32 "$MANY"; do
  r=${R[socket_$n]}
  printf '  %-7s %6s %9.0f %9.3f %9.3f %9.3f %9s\n' socket "$n" "$(get "$r" rps)" \
    "$(get "$r" p50_ms)" "$(get "$r" p99_ms)" "$(get "$r" max_ms)" "$(get "$r" errors)"
done
echo
echo "  socket vs direct          ratio   added p50   added p99"
for row in "1 1" "32 32" "$MANY $best_n"; do
  read -r s d <<<"$row"
  a=${R[socket_$s]} b=${R[direct_$d]}
  printf '  %5s vs direct %-4s %10.2f %9.3f ms %9.3f ms\n' "$s" "$d" \
    "$(ratio "$(get "$a" rps)" "$(get "$b" rps)")" \
    "$(awk -v x="$(get "$a" p50_ms)" -v y="$(get "$b" p50_ms)" 'BEGIN {print x - y}')" \
    "$(awk -v x="$(get "$a" p99_ms)" -v y="$(get "$b" p99_ms)" 'BEGIN {print x - y}')"
done
goal() { awk -v v="$1" -v g="$2" -v op="$3" 'BEGIN {print ((op == "ge" ? v >= g : v <= g) ? "PASS" : "MISSED")}'; }
r32=$(ratio "$(get "${R[socket_32]}" rps)" "$(get "${R[direct_32]}" rps)")
p50=$(awk -v x="$(get "${R[socket_32]}" p50_ms)" -v y="$(get "${R[direct_32]}" p50_ms)" 'BEGIN {print x - y}')
p99=$(awk -v x="$(get "${R[socket_32]}" p99_ms)" -v y="$(get "${R[direct_32]}" p99_ms)" 'BEGIN {print x - y}')
rmany=$(ratio "$(get "${R[socket_$MANY]}" rps)" "$best")
echo
echo "  goal: 32 clients socket / direct >= 0.90: $r32 $(goal "$r32" 0.9 ge)"
echo "  goal: 32 clients added p50 <= 0.1 ms: $p50 $(goal "$p50" 0.1 le); added p99 <= 0.5 ms: $p99 $(goal "$p99" 0.5 le)"
echo "  goal: $MANY clients / direct at its best ($best_n) >= 0.90: $rmany $(goal "$rmany" 0.9 ge)"
echo "  $MANY clients: each completed $(get "${R[socket_$MANY]}" client_min) to $(get "${R[socket_$MANY]}" client_max) requests (none starved: $([[ $(get "${R[socket_$MANY]}" client_min) -gt 0 ]] && echo yes || echo NO))"
echo "  slotguardd: $(awk -v c="$cpu_ms_total" -v n="$socket_requests" 'BEGIN {printf "%.1f", (n > 0 ? c * 1000 / n : 0)}') ms CPU per 1,000 requests (user + system, all socket runs); RSS $rss kB at the end, $hwm kB at most"

# 4. The profile.
echo
if ((perf_ok)) && [[ -s $work/perf.data ]] &&
  perf report -i "$work/perf.data" --no-children --sort symbol --stdio -g none \
    >"$OUT/socket-perf.txt" 2>/dev/null; then
  perf script -i "$work/perf.data" 2>/dev/null | awk '
    /^[^ \t]/ { if (stack != "") n[stack]++; stack = ""; next }
    /^[ \t]+[0-9a-f]+ / { sym = $2; sub(/\+0x[0-9a-f]+$/, "", sym); stack = (stack == "" ? sym : sym ";" stack); next }
    END { if (stack != "") n[stack]++; for (s in n) print s, n[s] }' >"$OUT/socket-perf.folded"
  echo "perf profile of slotguardd under the 32-client load (self time, top symbols; full report"
  echo "in $OUT/socket-perf.txt, folded stacks in $OUT/socket-perf.folded):"
  awk '/^ +[0-9.]+%/ && n++ < 15' "$OUT/socket-perf.txt" | cut -c1-110
else
  echo "perf profile skipped: perf is not installed or cannot sample here ($(head -c 200 "$work/perf.log" 2>/dev/null || true))"
fi

errors=0
for k in "${!R[@]}"; do errors=$((errors + $(get "${R[$k]}" errors))); done
if ((errors > 0)); then
  echo "socket.sh: $errors requests failed" >&2
  tail -n 20 "$work/sgd.log" >&2
  exit 1
fi
