#!/usr/bin/env bash
# The counters of slotguard.stats live in a fixed-size table in shared memory
# (slotguard.stats_max_entries, set at server start): once it is full, counts of further objects
# are dropped and counted in the row ('global', '', 'counts_dropped', n), and the table takes no
# more shared memory than it asked for at start (PostgreSQL's spare shared memory is the lock
# tables' headroom). stats_reset() frees this database's entries and those of dropped databases.
# Runs its own small cluster (slotguard.stats_max_entries=16) of the PostgreSQL that
# scripts/lib.bash finds.
set -euo pipefail

repo=${SG_REPO:-$(cd "$(dirname "$0")/../.." && pwd -P)}
# shellcheck source=scripts/lib.bash
source "$(dirname "$0")/../../scripts/lib.bash"
dir=$(mktemp -d /tmp/sgstats.XXXXXX)
port=$((20000 + $$ % 10000)) # Unix socket only, in a directory of our own: any port will do
cleanup() {
  "$repo/scripts/pgcluster.sh" destroy "$dir/pg" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
chmod 755 "$dir"
mkdir "$dir/pg"
"$repo/scripts/pgcluster.sh" start "$dir/pg" "$port" slotguard.stats_max_entries=16 >/dev/null
eval "$("$repo/scripts/pgcluster.sh" env "$dir/pg" "$port")"
export PGOPTIONS="-c client_min_messages=warning"
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
fail() {
  echo "FAIL: $*"
  exit 1
}

q -c "CREATE EXTENSION slotguard"
anon_before=$(q -c "SELECT sum(allocated_size) FROM pg_shmem_allocations WHERE name IS NULL")
table_size=$(q -c "SELECT allocated_size FROM pg_shmem_allocations
                    WHERE name = 'slotguard stats objects'")

# 40 slots, one reservation each: 16 get counters, the other 24 reservations are dropped.
q -c "SELECT slotguard.reserve(slotguard.create_slot(5), 'h' || g) FROM generate_series(1, 40) g" \
  >/dev/null
read -r tracked max dropped < <(q -F ' ' -c "SELECT * FROM slotguard.stats_capacity()")
echo "after 40 slots: objects_tracked=$tracked objects_max=$max counts_dropped=$dropped"
[[ $tracked == 16 && $max == 16 ]] || fail "expected 16 of 16 objects tracked"
[[ $dropped == 24 ]] || fail "expected 24 dropped counts, got $dropped"
[[ $(q -c "SELECT value FROM slotguard.stats WHERE metric = 'counts_dropped'") == 24 ]] ||
  fail "the view does not show counts_dropped = 24"
[[ $(q -c "SELECT count(DISTINCT object) FROM slotguard.stats WHERE scope = 'slot'") == 16 ]] ||
  fail "the view does not show 16 slots"

# More counts in a full table: of tracked objects they count, of others they are dropped; and
# nothing more is taken from shared memory.
q -c "SELECT slotguard.reserve(g, 'again' || g) FROM generate_series(1, 40) g" >/dev/null
[[ $(q -c "SELECT sum(value) FROM slotguard.stats WHERE metric = 'reservations'") == 32 ]] ||
  fail "tracked slots did not go on counting"
[[ $(q -c "SELECT counts_dropped FROM slotguard.stats_capacity()") == 48 ]] ||
  fail "expected 48 dropped counts"
anon_after=$(q -c "SELECT sum(allocated_size) FROM pg_shmem_allocations WHERE name IS NULL")
[[ $anon_before == "$anon_after" ]] ||
  fail "anonymous shared memory grew from $anon_before to $anon_after bytes"
[[ $table_size == $(q -c "SELECT allocated_size FROM pg_shmem_allocations
                           WHERE name = 'slotguard stats objects'") ]] ||
  fail "the counters' table changed size"

# stats_reset() frees this database's entries; a second database takes 10 of them, this one the
# other 6; once the second database is dropped, a reset frees its entries along with ours.
q -c "SELECT slotguard.stats_reset()" >/dev/null
[[ $(q -c "SELECT objects_tracked FROM slotguard.stats_capacity()") == 0 ]] ||
  fail "stats_reset did not free this database's entries"
q -c "CREATE DATABASE other"
q -d other -c "CREATE EXTENSION slotguard" \
  -c "SELECT slotguard.reserve(slotguard.create_slot(5), 'h' || g) FROM generate_series(1, 10) g" \
  >/dev/null
[[ $(q -d other -c "SELECT count(DISTINCT object) FROM slotguard.stats WHERE scope = 'slot'") == 10 ]] ||
  fail "database other does not see its 10 slots"
q -c "SELECT slotguard.reserve(g, 'third' || g) FROM generate_series(1, 40) g" >/dev/null
[[ $(q -c "SELECT count(DISTINCT object) FROM slotguard.stats WHERE scope = 'slot'") == 6 ]] ||
  fail "expected 6 of this database's slots in the 6 free entries"
q -c "DROP DATABASE other"
q -c "SELECT slotguard.stats_reset()" >/dev/null
[[ $(q -c "SELECT objects_tracked FROM slotguard.stats_capacity()") == 0 ]] ||
  fail "stats_reset did not free the entries of this database and of the dropped one"
q -c "SELECT slotguard.reserve(40, 'after reset')" >/dev/null
[[ $(q -c "SELECT value FROM slotguard.stats WHERE scope = 'slot' AND object = '40'
             AND metric = 'reservations'") == 1 ]] || fail "slot 40 is not counted after the reset"
if grep -E 'terminated by signal|PANIC|out of shared memory' "$dir/pg/log"; then
  fail "the server log shows a crash"
fi
echo "ok: the counters' table stays within its 16 entries and counts what it drops"
