#!/usr/bin/env bash
# overlap.sh: what does an overlap rule cost on insert, next to PostgreSQL's own EXCLUDE?
#
# Three tables with the same columns (id, room, starts_at, ends_at) and BENCH_ROWS (1,000,000)
# existing rows over 2000 rooms:
#   exclude  EXCLUDE USING gist (room WITH =, tstzrange(starts_at, ends_at) WITH &&)  (btree_gist)
#   rule1    slotguard.add_overlap_rule(..., '{room}', '{starts_at,ends_at}')          (k = 1)
#   rule3    the same rule with capacity => 3
# 8 clients insert one-hour bookings of random rooms (one statement each). The new periods never
# overlap existing ones (they come from a sequence), so every insert is checked and none fails:
# the cost measured is the check. Interleaved over BENCH_ROUNDS rounds (each starting one
# variant later); the headline ratios are the medians of the per-round ratios.
# Goals: rule1 >= 0.9 of exclude, and rule3 >= 0.9 of exclude (a capacity-3 rule, which EXCLUDE
# cannot express, costs no more than the capacity-1 constraint people use today).
set -euo pipefail
# shellcheck source=bench/lib.bash
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-2}
ROWS=${BENCH_ROWS:-1000000}
bench_db "${BENCH_DB:-bench_overlap}"

echo "loading $ROWS rows into each of 3 tables"
psql_db <<SQL
CREATE EXTENSION btree_gist;
CREATE EXTENSION slotguard;
CREATE SEQUENCE hour_seq;
CREATE TABLE exclude_t (id bigserial PRIMARY KEY, room int NOT NULL, starts_at timestamptz NOT NULL,
                        ends_at timestamptz NOT NULL,
                        EXCLUDE USING gist (room WITH =, tstzrange(starts_at, ends_at) WITH &&));
CREATE TABLE rule1_t (LIKE exclude_t INCLUDING DEFAULTS);
ALTER TABLE rule1_t ADD PRIMARY KEY (id);
CREATE TABLE rule3_t (LIKE exclude_t INCLUDING DEFAULTS);
ALTER TABLE rule3_t ADD PRIMARY KEY (id);
-- room i % 2000, one hour each, back to back: no overlaps.
INSERT INTO exclude_t (room, starts_at, ends_at)
SELECT 1 + g % 2000, '2020-01-01'::timestamptz + (g / 2000) * interval '1 hour',
       '2020-01-01'::timestamptz + (g / 2000 + 1) * interval '1 hour'
  FROM generate_series(0, $ROWS - 1) g;
INSERT INTO rule1_t SELECT * FROM exclude_t;
INSERT INTO rule3_t SELECT * FROM exclude_t;
SELECT setval(pg_get_serial_sequence('rule1_t', 'id'), $ROWS + 1);
SELECT setval(pg_get_serial_sequence('rule3_t', 'id'), $ROWS + 1);
SELECT slotguard.add_overlap_rule('rule1_t', 'room_busy', '{room}', '{starts_at,ends_at}');
SELECT slotguard.add_overlap_rule('rule3_t', 'room_cap3', '{room}', '{starts_at,ends_at}', capacity => 3);
VACUUM ANALYZE;
SQL

for t in exclude rule1 rule3; do
  cat >"$work/$t.sql" <<EOF2
\set room random(1, 2000)
INSERT INTO ${t}_t (room, starts_at, ends_at)
SELECT :room, '2030-01-01'::timestamptz + h * interval '1 hour', '2030-01-01'::timestamptz + (h + 1) * interval '1 hour'
  FROM nextval('hour_seq') h;
EOF2
done

# tps NAME: one measurement of $work/NAME.sql at 8 clients, after a checkpoint; prints tps.
tps() {
  psql_db -c "CHECKPOINT" >/dev/null
  pgbench_tps "$work/$1.sql" 8 2 "$SECS"
}

echo "inserts, 8 clients, ${SECS}s per measurement, $ROUNDS rounds (tps; each round starts one"
echo "variant later, so that none always runs first; ratios are the round's own)"
declare -A results
names=(exclude rule1 rule3)
k1=()
k3=()
printf '  %-6s' round; printf ' %10s' "${names[@]}"; printf ' %8s %8s\n' k1/excl k3/excl
for ((r = 1; r <= ROUNDS; r++)); do
  declare -A this=()
  measure_round "$r" "${names[@]}"
  printf '  %-6s' "$r"
  for n in "${names[@]}"; do printf ' %10.0f' "${this[$n]}"; done
  # Neighbouring measurements share the machine's load of the moment: the round's own ratios.
  k1+=("$(ratio "${this[rule1]}" "${this[exclude]}" 3)")
  k3+=("$(ratio "${this[rule3]}" "${this[exclude]}" 3)")
  printf ' %8.2f %8.2f\n' "${k1[-1]}" "${k3[-1]}"
done
printf '  %-6s' median
for n in "${names[@]}"; do
  # shellcheck disable=SC2086
  printf ' %10.0f' "$(median ${results[$n]})"
done
r1=$(median "${k1[@]}")
r3=$(median "${k3[@]}")
printf ' %8.2f %8.2f\n' "$r1" "$r3"
echo
echo "  (headline: the median of the per-round ratios)"
echo "  rule (k=1) / EXCLUDE = $(ratio "$r1" 1)   (goal >= 0.90: $(awk -v r="$r1" 'BEGIN {print (r >= 0.9 ? "PASS" : "BELOW")}'))"
echo "  rule (k=3) / EXCLUDE = $(ratio "$r3" 1)   (goal >= 0.90: $(awk -v r="$r3" 'BEGIN {print (r >= 0.9 ? "PASS" : "BELOW")}'))"
