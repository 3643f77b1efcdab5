#!/usr/bin/env bash
# 1,000 socket clients at once on a pool of 4 database connections, each sending one reserve after
# another for a few seconds. Passes when every client connects and none is refused (max_clients
# is raised to 1,100, the file descriptor limit to what 1,000 clients need), no request fails,
# every client is served again and again (none starves: the fewest requests one client completed
# is at least a quarter of the mean), every answer is a booking the database has, the daemon's
# memory stays bounded (its RSS grows by less than 32 MB) and it exits cleanly.
source "$(dirname "$0")/lib.bash"

CLIENTS=1000
SECS=${C1000_SECONDS:-6}
ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(($(ulimit -n) >= 2 * CLIENTS + 100)) ||
  fail "ulimit -n is $(ulimit -n); $CLIENTS clients need $((2 * CLIENTS + 100)) (hard limit $(ulimit -Hn))"

make_db
slot=$(sql -c "SELECT slotguard.create_slot(100000000, resource => 'many')")
POOL_SIZE=4 write_config "limits:
  max_clients: 1100"
start_daemon
rss0=$(rss_kb "$DPID")

out=$("$LOAD" bench socket "$SOCK" "$CLIENTS" "$SECS" "$slot") || fail "sgload failed: $out"
log "$CLIENTS clients, pool 4: $out"
get() { sed -E -n "s/.*(^| )$1=([0-9.]+).*/\2/p" <<<"$out"; }
requests=$(get requests) least=$(get client_min) most=$(get client_max)
[[ $(get errors) == 0 ]] || fail "requests failed: $out"
((requests > 0)) || fail "nothing was served"
((least * 4 * CLIENTS >= requests)) ||
  fail "a client starved: the fewest requests one client completed ($least) is under a quarter of the mean ($((requests / CLIENTS)))"
log "per client: $least to $most requests (mean $((requests / CLIENTS))); p99 $(get p99_ms) ms, max $(get max_ms) ms"

booked=$(sql -c "SELECT count(*) FROM slotguard.bookings WHERE slot_id = $slot AND status = 'confirmed'")
((booked >= requests)) || fail "$requests reservations answered, $booked bookings in the database"
a=$(call stats)
[[ $a != *'"max_clients"'* ]] || fail "clients were refused: $a"
peak=$(field "$a" peak)
((peak >= CLIENTS)) || fail "at most $peak clients were connected at once: $a"

rss1=$(rss_kb "$DPID")
log "daemon RSS: $rss0 kB at start, $rss1 kB after $CLIENTS clients"
((rss1 - rss0 < 32768)) || fail "the daemon's RSS grew by $((rss1 - rss0)) kB"
stop_daemon || fail "the daemon did not exit 0"
