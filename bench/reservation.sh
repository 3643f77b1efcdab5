#!/usr/bin/env bash
# reservation.sh: the hot slot. Every client books one seat of the same slot, one transaction each.
#
# In one run, on one server, pgbench tps of (the peers written as applications usually write
# them; slotguard is one call):
#   limit      the commit limit: a contention-free transaction with the same writes as a booking
#              (each client bumps its own counter row and inserts a booking into a copy of
#              slotguard.bookings with the same indexes)
#   slotguard  SELECT slotguard.reserve(slot, holder, confirm => true)
#   counter    one counter row: UPDATE slot SET available = available - 1 WHERE available >= 1,
#              then the booking INSERT
#   forupdate  SELECT ... FOR UPDATE on the slot row, then UPDATE + INSERT
#   seatrows   one row per seat: take the first free one with FOR UPDATE SKIP LOCKED
# at 32 clients, interleaved over BENCH_ROUNDS rounds (each starting one variant later; the goal
# ratios are medians of the per-round ratios), then slotguard and counter at 1, 8,
# 32 and 128 clients. Then the sweep: 1,000,000 dead holds expired with expire_holds while 32
# buyers keep buying; reports the sweep's rate and the buyers' tps during it vs just before.
#
# Goal: slotguard >= 0.9 of limit and >= 5x counter at 32 clients.
# Environment: BENCH_SECONDS (10), BENCH_ROUNDS (2), BENCH_HOLDS (1000000), BENCH_DB.
set -euo pipefail
# shellcheck source=bench/lib.bash
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-2}
HOLDS=${BENCH_HOLDS:-1000000}
bench_db "${BENCH_DB:-bench_reservation}"

psql_db <<'SQL'
CREATE EXTENSION slotguard;
-- The hot slot: capacity enough never to sell out during the run.
SELECT slotguard.create_slot(100000000, resource => 'hot');
-- Peers.
CREATE TABLE peer_slot (id int PRIMARY KEY, available int NOT NULL);
INSERT INTO peer_slot VALUES (1, 100000000);
CREATE TABLE peer_bookings (LIKE slotguard.bookings INCLUDING ALL);
CREATE TABLE limit_bookings (LIKE slotguard.bookings INCLUDING ALL);
CREATE TABLE limit_counter (id int PRIMARY KEY, used int NOT NULL) WITH (fillfactor = 30);
INSERT INTO limit_counter SELECT g, 0 FROM generate_series(1, 200) g;
CREATE TABLE peer_seat (id bigint PRIMARY KEY, slot_id int NOT NULL, status text NOT NULL,
                        holder text);
CREATE INDEX ON peer_seat (slot_id, status, id);
INSERT INTO peer_seat SELECT g, 1, 'free', NULL FROM generate_series(1, 400000) g;
VACUUM ANALYZE;
SQL
SLOT=$(psql_db -At -c "SELECT id FROM slotguard.slots WHERE resource = 'hot'")

cat >"$work/limit.sql" <<'EOF2'
WITH c AS (UPDATE limit_counter SET used = used + 1 WHERE id = :client_id + 1 RETURNING id)
INSERT INTO limit_bookings (slot_id, holder, seats, status, shard, confirmed_at)
SELECT 1, 'c' || :client_id, 1, 'confirmed', c.id, now() FROM c;
EOF2
cat >"$work/slotguard.sql" <<EOF2
SELECT id FROM slotguard.reserve($SLOT, 'c' || :client_id, 1, confirm => true);
EOF2
cat >"$work/counter.sql" <<'EOF2'
BEGIN;
UPDATE peer_slot SET available = available - 1 WHERE id = 1 AND available >= 1;
INSERT INTO peer_bookings (slot_id, holder, seats, status, confirmed_at)
VALUES (1, 'c' || :client_id, 1, 'confirmed', now());
COMMIT;
EOF2
cat >"$work/forupdate.sql" <<'EOF2'
BEGIN;
SELECT available FROM peer_slot WHERE id = 1 FOR UPDATE;
UPDATE peer_slot SET available = available - 1 WHERE id = 1;
INSERT INTO peer_bookings (slot_id, holder, seats, status, confirmed_at)
VALUES (1, 'c' || :client_id, 1, 'confirmed', now());
COMMIT;
EOF2
cat >"$work/seatrows.sql" <<'EOF2'
WITH s AS (UPDATE peer_seat SET status = 'taken', holder = 'c' || :client_id
           WHERE id = (SELECT id FROM peer_seat WHERE slot_id = 1 AND status = 'free'
                       ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
           RETURNING slot_id)
INSERT INTO peer_bookings (slot_id, holder, seats, status, confirmed_at)
SELECT s.slot_id, 'c' || :client_id, 1, 'confirmed', now() FROM s;
EOF2

# tps NAME [CLIENTS (32)]: one measurement of $work/NAME.sql, after a checkpoint; prints tps.
tps() {
  psql_db -c "CHECKPOINT" >/dev/null
  pgbench_tps "$work/$1.sql" "${2:-32}" 2 "$SECS"
}

echo "hot slot, 32 clients, ${SECS}s per measurement, $ROUNDS rounds (tps; each round starts one"
echo "variant later, so that none always runs first; ratios are the round's own)"
declare -A results
names=(limit slotguard counter forupdate seatrows)
per_limit=()
per_counter=()
printf '  %-6s' round; printf ' %10s' "${names[@]}"; printf ' %8s\n' sg/limit
for ((r = 1; r <= ROUNDS; r++)); do
  declare -A this=()
  measure_round "$r" "${names[@]}"
  printf '  %-6s' "$r"
  for n in "${names[@]}"; do printf ' %10.0f' "${this[$n]}"; done
  # Neighbouring measurements share the machine's load of the moment: the round's own ratios.
  per_limit+=("$(ratio "${this[slotguard]}" "${this[limit]}" 3)")
  per_counter+=("$(ratio "${this[slotguard]}" "${this[counter]}" 3)")
  printf ' %8.2f\n' "${per_limit[-1]}"
done
declare -A med
printf '  %-6s' median
for n in "${names[@]}"; do
  # shellcheck disable=SC2086
  med[$n]=$(median ${results[$n]})
  printf ' %10.0f' "${med[$n]}"
done
r_limit=$(ratio "$(median "${per_limit[@]}")" 1)
r_counter=$(ratio "$(median "${per_counter[@]}")" 1)
printf ' %8.2f\n' "$r_limit"
echo
echo "  (headline: the median of the per-round ratios)"
echo "  slotguard / limit      = $r_limit   (goal >= 0.90: $(awk -v r="$r_limit" 'BEGIN {print (r >= 0.9 ? "PASS" : "BELOW")}'))"
echo "  slotguard / counter    = ${r_counter}x  (goal >= 5x:   $(awk -v r="$r_counter" 'BEGIN {print (r >= 5 ? "PASS" : "BELOW")}'))"
echo "  slotguard / forupdate  = $(ratio "${med[slotguard]}" "${med[forupdate]}")x"
echo "  slotguard / seatrows   = $(ratio "${med[slotguard]}" "${med[seatrows]}")x"
echo
echo "scaling (tps)"
printf '  %-8s %10s %10s %8s\n' clients slotguard counter ratio
for c in 1 8 32 128; do
  s=$(tps slotguard "$c")
  k=$(tps counter "$c")
  printf '  %-8s %10.0f %10.0f %7sx\n' "$c" "$s" "$k" "$(ratio "$s" "$k")"
done

# Consistency: the hot slot never went over capacity and its shards add up.
psql_db -At -c "SELECT count(*) FILTER (WHERE used > capacity) = 0
                   AND sum(capacity) = 100000000
                   AND sum(used) = (SELECT sum(seats) FROM slotguard.bookings
                                     WHERE slot_id = $SLOT AND status IN ('pending', 'confirmed'))
                  FROM slotguard.slot_shards WHERE slot_id = $SLOT" | grep -q t || {
  echo "reservation.sh: the hot slot's shards do not add up" >&2
  exit 1
}

echo
echo "sweep: $HOLDS dead holds over 1000 slots, expired with expire_holds(10000) in a loop"
psql_db <<SQL
SELECT slotguard.create_slot(2000) FROM generate_series(1, 1000);
-- Holds that expired a minute ago, spread over the shards, with each shard's counters to match.
INSERT INTO slotguard.bookings (slot_id, holder, seats, status, shard, expires_at)
SELECT s.id, 'h' || g, 1, 'pending', g % s.shards, now() - interval '1 minute'
  FROM slotguard.slots s, generate_series(1, $HOLDS / 1000) g
 WHERE s.capacity = 2000;
UPDATE slotguard.slot_shards sh SET used = b.n, next_expiry = b.e
  FROM (SELECT slot_id, shard, count(*) AS n, min(expires_at) AS e
          FROM slotguard.bookings WHERE status = 'pending' GROUP BY 1, 2) b
 WHERE sh.slot_id = b.slot_id AND sh.shard = b.shard;
VACUUM ANALYZE;
SQL
before=$(tps slotguard 32)
# The sweep runs in the background; buyers buy in 2-second pgbench runs until it is done.
(
  start=$(date +%s.%N)
  swept=0
  while :; do
    n=$(psql_db -At -c "SELECT slotguard.expire_holds(10000)")
    swept=$((swept + n))
    [[ $n -eq 0 ]] && break
  done
  end=$(date +%s.%N)
  echo "$swept $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}')" >"$work/sweep"
) &
sweeper=$!
chunks=()
while kill -0 "$sweeper" 2>/dev/null; do
  t=$(pgbench_tps "$work/slotguard.sql" 32 2 2 2>/dev/null) || t=
  [[ -n $t ]] && chunks+=("$t")
done
wait "$sweeper"
read -r swept secs <"$work/sweep"
during=$(printf '%s\n' "${chunks[@]:-0}" | awk '{s += $1} END {printf "%.0f", (NR ? s / NR : 0)}')
echo "  expired $swept holds in ${secs}s: $(awk -v n="$swept" -v s="$secs" 'BEGIN {printf "%.0f", (s > 0 ? n / s : 0)}') holds/s"
echo "  buyers (32 clients): ${before} tps before, ${during} tps during the sweep ($(ratio "$during" "$before"))"
left=$(psql_db -At -c "SELECT count(*) FROM slotguard.bookings WHERE status = 'pending' AND expires_at <= now() - interval '30 seconds'")
echo "  dead holds left: $left"
