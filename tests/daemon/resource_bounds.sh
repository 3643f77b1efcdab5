#!/usr/bin/env bash
# Resource bounds of slotguardd: for 15 s, at once,
#   - 10x limits.max_clients connection attempts, again and again,
#   - clients that send requests and never read the answers,
#   - clients that send a request one byte at a time and never finish it,
#   - clients that send batches of limits.max_batch reservations, and batches over the limit,
# while one well-behaved client, connected first, asks for a slot's availability every 50 ms.
# Passes when: that client gets every answer, with bounded latency; the daemon never has more
# than max_clients clients; the refused attempts are told so (unavailable); every misbehaving
# client is disconnected (or, if it ends first, was being served); the daemon's RSS stays bounded during the attack and after it; the
# daemon still serves and exits cleanly; no slot is over capacity.
source "$(dirname "$0")/lib.bash"

MAX_CLIENTS=32
ATTACK=${RB_SECONDS:-15}
make_db
slot=$(sql -c "SELECT slotguard.create_slot(capacity => 10000000)")
POOL_SIZE=4 write_config "limits:
  max_clients: $MAX_CLIENTS
  max_batch: 1000
  max_output_bytes: 65536
  write_timeout: 2s
  request_timeout: 2s"
start_daemon
rss0=$(rss_kb "$DPID")
log "daemon RSS at start: $rss0 kB"

PROBE="{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"availability\",\"params\":{\"slot_id\":$slot}}"
"$LOAD" probe "$SOCK" "$((ATTACK + 2))" 50 "$PROBE" >"$WORK/probe" 2>"$WORK/probe.err" &
probe_pid=$!
sleep 0.5

# batch N: one line, a batch of N confirmed one-seat reservations.
batch() {
  perl -e 'my ($n, $slot) = @ARGV; print "[", join(",", map {
      qq({"jsonrpc":"2.0","id":$_,"method":"reserve","params":{"slot_id":$slot,"holder":"b$_","confirm":true}})
    } 1 .. $n), "]\n"' "$1" "$slot"
}
batch 1000 >"$WORK/batch_ok"
batch 5000 >"$WORK/batch_long"

end=$((SECONDS + ATTACK))
pids=()
for i in 1 2 3 4 5 6; do
  (while ((SECONDS < end)); do "$LOAD" flood "$SOCK" 8 "$PROBE"; done) >"$WORK/flood.$i" 2>&1 &
  pids+=($!)
done
for i in 1 2 3 4 5 6; do
  (while ((SECONDS < end)); do "$LOAD" trickle "$SOCK" 5 200; done) >"$WORK/trickle.$i" 2>&1 &
  pids+=($!)
done
# Batch clients keep one connection (taken before the connection storm) and send a batch over
# the limit, then one of max_batch reservations, again and again, each after the answer to the
# one before.
cat "$WORK/batch_long" "$WORK/batch_ok" >"$WORK/batches"
for i in 1 2; do
  "$LOAD" probe "$SOCK" "$ATTACK" 0 "@$WORK/batches" >"$WORK/batch.$i" 2>"$WORK/batch_err.$i" &
  pids+=($!)
done
sleep 0.5
(while ((SECONDS < end)); do "$LOAD" connect "$SOCK" $((10 * MAX_CLIENTS)) 1; done) >"$WORK/connect" 2>&1 &
pids+=($!)

peak=$rss0
while ((SECONDS < end)); do
  r=$(rss_kb "$DPID")
  ((r > peak)) && peak=$r
  sleep 0.5
done
for p in "${pids[@]}"; do wait "$p" || true; done
wait "$probe_pid" || true
sleep 0.5
rss1=$(rss_kb "$DPID")

p=$(cat "$WORK/probe")
log "well-behaved client: $p"
log "daemon RSS: start $rss0 kB, peak $peak kB, after $rss1 kB"
flood_n=$(cat "$WORK"/flood.* | grep -c 'closed=1' || true)
flood_open=$(cat "$WORK"/flood.* | grep -c 'closed=0' || true)
trickle_n=$(cat "$WORK"/trickle.* | grep -c 'closed=1' || true)
trickle_open=$(cat "$WORK"/trickle.* | grep -c 'closed=0' || true)
log "non-reading clients disconnected: $flood_n (never: $flood_open); trickling clients cut off: $trickle_n (never: $trickle_open)"
awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); s[kv[1]] += kv[2]}} END {
  printf "connection attempts: %d, held: %d, refused: %d, failed: %d\n", s["attempts"], s["held"], s["refused"], s["failed"]}' \
  "$WORK/connect" | while read -r line; do log "$line"; done
batches_ok=$(cat "$WORK"/batch.? | awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); s[kv[1]] += kv[2]}} END {print s["requests"] - s["errors"]}')
batches_refused=$(cat "$WORK"/batch_err.* | grep -c 'limits.max_batch = 1000' || true)
log "batches of 1000 run: $batches_ok; batches of 5000 refused: $batches_refused"
stats=$(call stats)
peak_clients=$(sed -E 's/.*"peak":([0-9]+).*/\1/' <<<"$stats")
log "most clients at once: $peak_clients"

[[ $p == *' errors=0 '* ]] || fail "the well-behaved client had errors: $p $(head -c 500 "$WORK/probe.err")"
n=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$p")
max_ms=$(sed -E 's/.*max_ms=([0-9]+).*/\1/' <<<"$p")
p99=$(sed -E 's/.*p99_ms=([0-9]+).*/\1/' <<<"$p")
# Bounds for a loaded 2-core machine shared with other work (typical: p99 250-900 ms, max < 1 s
# while up to 4 workers run batches of 1000 reservations).
((n >= ATTACK * 2)) || fail "the well-behaved client got only $n answers in $((ATTACK + 2)) s"
((max_ms < 5000)) || fail "the well-behaved client waited $max_ms ms for an answer"
((p99 < 3000)) || fail "the well-behaved client's p99 latency was $p99 ms"
((peak_clients <= MAX_CLIENTS)) || fail "the daemon had $peak_clients clients at once (max_clients $MAX_CLIENTS)"
grep -q 'refused: [1-9]' <(awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); s[kv[1]] += kv[2]}} END {print "refused: " s["refused"]}' "$WORK/connect") ||
  fail "no connection attempt was refused"
# A flood that began late may still have been served (slowly) when it gave up: not every one
# needs to have been cut off, but they were.
((flood_n > 0)) || fail "a non-reading client was never disconnected"
# A trickler that spent its 5 s in the listen backlog (the daemon at max_clients, or a loaded
# machine slow to accept) was never the daemon's client, so it cannot be cut off; the exact
# request_timeout cut-off of an accepted trickler is tests/daemon/limits.sh's. Here: the tricklers
# are cut off, a few stragglers from the backlog aside.
((trickle_n > 0 && trickle_open * 10 <= trickle_n)) ||
  fail "trickling clients were not cut off ($trickle_n cut off, $trickle_open never)"
((batches_ok > 0)) || fail "no batch of max_batch requests ran"
((batches_refused > 0)) || fail "no over-long batch was refused"
((peak - rss0 < 131072)) || fail "the daemon's RSS grew by $((peak - rss0)) kB during the attack"
((rss1 - rss0 < 65536)) || fail "the daemon's RSS stayed $((rss1 - rss0)) kB above its start"
expect_ok "$(call availability "{\"slot_id\": $slot}")"
[[ $(sql -c "SELECT count(*) FROM slotguard.slots s WHERE (SELECT COALESCE(sum(seats), 0)
      FROM slotguard.bookings b WHERE b.slot_id = s.id AND b.status IN ('pending', 'confirmed')) > s.capacity") == 0 ]] ||
  fail "a slot is over capacity"
stop_daemon || fail "the daemon did not exit 0 after the attack"
