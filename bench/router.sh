#!/usr/bin/env bash
# router.sh: reserve throughput through slotguard_router (docs/router.md) against the same call
# made directly on a shard, and over 1, 2 and 4 shards.
#
# Shard databases bench_rshard0..3 (slotguard) and router databases bench_router1, 2, 4
# (slotguard_router with the first 1, 2 or 4 shards), all on the one benchmark cluster. Each
# configuration gets 64 slots with room enough never to sell out (through the router: spread
# round robin over its shards); every pgbench transaction is one
#   SELECT id FROM slotguard.reserve(<one of the 64 slots at random>, holder, 1, confirm => true)
# in autocommit. Measured, in one run, at CLIENTS clients, interleaved over BENCH_ROUNDS rounds
# (each round starts one variant later; medians reported; each measurement leaves out its first
# 2 seconds, see tps below):
#   limit    the per-shard commit limit: a contention-free transaction with a booking's writes
#            (each client bumps its own counter row and inserts a row into a copy of
#            slotguard.bookings) in bench_rshard0
#   direct   reserve in bench_rshard0, no router
#   router1  through bench_router1 (its one shard is bench_rshard0)
#   router2  through bench_router2
#   router4  through bench_router4
# Here every shard is a database of the same server: they share its WAL, its fsyncs and its
# cores, so more shards add no commit capacity and router1/direct is the router's own cost per
# call. On separate servers each shard brings its own commit limit.
# Environment: BENCH_SECONDS (7), BENCH_ROUNDS (2), BENCH_CLIENTS (16). A default run takes about 2
# minutes.
set -euo pipefail
# shellcheck source=bench/lib.bash
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

SECS=${BENCH_SECONDS:-7}
ROUNDS=${BENCH_ROUNDS:-2}
CLIENTS=${BENCH_CLIENTS:-16}
SLOTS=64

for i in 0 1 2 3; do
  bench_db "bench_rshard$i"
  psql_db -c "CREATE EXTENSION slotguard"
done
DB=bench_rshard0
psql_db <<'SQL'
CREATE TABLE limit_bookings (LIKE slotguard.bookings INCLUDING ALL);
CREATE TABLE limit_counter (id int PRIMARY KEY, used int NOT NULL) WITH (fillfactor = 30);
INSERT INTO limit_counter SELECT g, 0 FROM generate_series(1, 200) g;
SQL
# slot_array: the ids of $SLOTS new slots in $DB, as an SQL array literal (one create_slot per
# statement: the router takes one write per transaction).
slot_array() {
  for ((k = 0; k < SLOTS; k++)); do echo "SELECT slotguard.create_slot(100000000);"; done |
    psql_db -At | paste -sd, | sed 's/.*/ARRAY[&]::bigint[]/'
}
slot_array >"$work/direct.slots"
for n in 1 2 4; do
  bench_db "bench_router$n"
  psql_db -c "CREATE EXTENSION slotguard_router CASCADE"
  for ((i = 0; i < n; i++)); do
    psql_db -At -c "SELECT slotguard_router.add_shard('host=$PGHOST port=$PGPORT dbname=bench_rshard$i')" >/dev/null
  done
  slot_array >"$work/router$n.slots"
done
for i in 0 1 2 3; do DB=bench_rshard$i psql_db -c "VACUUM ANALYZE"; done

cat >"$work/limit.sql" <<'EOF'
WITH c AS (UPDATE limit_counter SET used = used + 1 WHERE id = :client_id + 1 RETURNING id)
INSERT INTO limit_bookings (slot_id, holder, seats, status, shard, confirmed_at)
SELECT 1, 'c' || :client_id, 1, 'confirmed', c.id, now() FROM c;
EOF
for v in direct router1 router2 router4; do
  {
    echo "\\set k random(1, $SLOTS)"
    echo "SELECT id FROM slotguard.reserve(($(cat "$work/$v.slots"))[:k], 'c' || :client_id, 1, confirm => true);"
  } >"$work/$v.sql"
done
declare -A dbs=([limit]=bench_rshard0 [direct]=bench_rshard0 [router1]=bench_router1
  [router2]=bench_router2 [router4]=bench_router4)

# tps NAME: one measurement of $work/NAME.sql in its database, after a checkpoint: the mean of
# pgbench's per-second progress after the first WARMUP seconds. A router backend connects to its
# shards at its first call to each (PL/Proxy keeps the connections for the backend's life), and
# every pgbench run starts new backends: without the warm-up, 4 shards would measure 64 connection
# set-ups more than 1 shard.
WARMUP=2
tps() {
  local out failed
  DB=bench_rshard0 psql_db -c "CHECKPOINT" >/dev/null
  if ! out=$(pgbench -n -d "${dbs[$1]}" -f "$work/$1.sql" -c "$CLIENTS" -j 2 -T "$SECS" -P 1 2>&1); then
    echo "router.sh: pgbench failed for $1:" >&2
    tail -n 20 <<<"$out" >&2
    return 1
  fi
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
  if [[ -n $failed && $failed != 0 ]]; then
    echo "router.sh: $failed failed transactions in $1" >&2
    return 1
  fi
  sed -n 's/^progress: \([0-9.]*\) s, \([0-9.]*\) tps.*/\1 \2/p' <<<"$out" |
    awk -v w="$WARMUP" '$1 > w {s += $2; n++} END {if (n == 0) exit 1; printf "%.1f", s / n}'
}

names=(limit direct router1 router2 router4)
declare -A results
echo "reserve (confirm => true) at $CLIENTS clients over $SLOTS slots, ${SECS}s per measurement (tps after"
echo "the first ${WARMUP}s), $ROUNDS round(s)"
printf '  %-6s' round
printf ' %9s' "${names[@]}"
printf '\n'
for ((r = 1; r <= ROUNDS; r++)); do
  declare -A this=()
  measure_round "$r" "${names[@]}"
  printf '  %-6s' "$r"
  for n in "${names[@]}"; do printf ' %9.0f' "${this[$n]}"; done
  printf '\n'
done
declare -A med
for n in "${names[@]}"; do
  # shellcheck disable=SC2086
  med[$n]=$(median ${results[$n]})
done

echo
printf '  %-34s %9s %10s %11s\n' "median tps" tps "vs direct" "vs router1"
printf '  %-34s %9.0f %10s %11s\n' "per-shard commit limit (no router)" "${med[limit]}" \
  "$(ratio "${med[limit]}" "${med[direct]}")" -
printf '  %-34s %9.0f %10s %11s\n' "direct on one shard" "${med[direct]}" 1.00 -
for n in 1 2 4; do
  v=router$n
  printf '  %-34s %9.0f %10s %11s\n' "router, $n shard(s)" "${med[$v]}" \
    "$(ratio "${med[$v]}" "${med[direct]}")" "$(ratio "${med[$v]}" "${med[router1]}")"
done
echo
echo "  routing overhead: a call through the router runs at $(ratio "${med[router1]}" "${med[direct]}") of the same call made"
echo "  directly on its shard (router1 / direct)."
echo "  per-shard commit limit: ${med[limit]%.*} commits/s for one database of this server; every shard here"
echo "  is a database of the same server ($(nproc) cores, one WAL), so 2 and 4 shards show the router's"
echo "  cost, not scaling. Shards on separate servers add one such limit each."

# Every booking is on the shard its id names, and every reservation was counted on its slot.
for i in 0 1 2 3; do
  DB=bench_rshard$i psql_db -At -c "SELECT bool_and(s.used = b.n)
      FROM (SELECT slot_id, sum(used) AS used FROM slotguard.slot_shards GROUP BY 1) s
      JOIN (SELECT slot_id, sum(seats) AS n FROM slotguard.bookings GROUP BY 1) b USING (slot_id)" |
    grep -qx t || {
    echo "router.sh: the slots of bench_rshard$i do not add up" >&2
    exit 1
  }
done
