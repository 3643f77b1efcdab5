#!/usr/bin/env bash
# slotguard_router (docs/router.md): a router database with 4 shard databases on the test cluster
# (conninfo through its Unix socket), checked by looking into the shard databases themselves:
#   - the API has slotguard's names and signatures;
#   - create_slot spreads slots round robin, and each router id names the shard that holds it;
#   - every call (create_slot, reserve, reserve_seats, confirm, cancel, booking, availability,
#     expire_holds, next_expiry) runs on the shard that owns its key;
#   - a shard's errors reach the caller with slotguard's SQLSTATE, message (router ids), DETAIL,
#     HINT and constraint name;
#   - the actor (slotguard.actor / actor_role) reaches the shard;
#   - a second write in one router transaction, on the same or another shard, is refused before
#     it runs (25001), and nothing of it reaches a shard;
#   - slotguardd pointed at the router serves it and its sweep expires holds on the shards;
#   - a shard dumped and restored elsewhere keeps its ids (move_shard points its number there) and
#     hands out new ones that do not collide;
#   - add_shard: a fresh fifth shard gets its share, the shards view hides a password, and
#     add_shard refuses non-superusers, databases without slotguard, duplicates and URIs;
#   - a shard that cannot be reached is 08006 for its calls only.
source "$(dirname "$0")/../daemon/lib.bash"

NSHARDS=4
SHARDS=()
for i in $(seq 0 $NSHARDS); do SHARDS+=("${DB}_s$i"); done # the last one: the fresh add_shard
RESTORED=${DB}_r3                                             # shard 3, dumped and restored
PLAIN=${DB}_plain                                             # a database without slotguard
drop_shards() {
  local d
  for d in "${SHARDS[@]}" "$RESTORED" "$PLAIN"; do
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
  done
  psql -X -q -d postgres -c "DROP ROLE IF EXISTS ${DB}_app" >/dev/null 2>&1 || true
}
CLEANUP_HOOK=drop_shards

# on I ARGS...: psql in shard I (unaligned, tuples only).
on() {
  local i=$1
  shift
  psql -X -q -At -v ON_ERROR_STOP=1 -d "${SHARDS[$i]}" "$@"
}
# error_of SQL: the router's error for SQL, verbose (SQLSTATE in the first line, fields after).
error_of() {
  psql -X -q -At -d "$DB" -v VERBOSITY=verbose -c "$1" 2>&1 >/dev/null | grep -v '^CONTEXT:\|^SQL statement\|^SQL function\|^PL/pgSQL\|^LOCATION:' || true
}
# expect_error SQL EXPECTED_LINES: error_of SQL must contain each line of EXPECTED_LINES.
expect_error() {
  local got line
  got=$(error_of "$1")
  while IFS= read -r line; do
    [[ -z $line ]] && continue
    grep -qxF -- "$line" <<<"$got" || fail "for: $1
expected the line: $line
got:
$got"
  done <<<"$2"
}
conninfo() { echo "host=$PGHOST port=$PGPORT dbname=$1"; }

log "setup: $NSHARDS shard databases with slotguard, a router with slotguard_router"
drop_shards
for d in "${SHARDS[@]}"; do
  psql -X -q -d postgres -c "CREATE DATABASE $d"
  psql -X -q -d "$d" -c "CREATE EXTENSION slotguard"
done
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
sql -c "CREATE EXTENSION slotguard_router CASCADE"
[[ $(sql -c "SELECT slotguard.expire_holds(), slotguard.next_expiry() IS NULL") == "0|t" ]] ||
  fail "a router without shards does not sweep nothing"
expect_error "SELECT slotguard.create_slot(1)" "ERROR:  55000: slotguard router: no shards"
for i in $(seq 0 $((NSHARDS - 1))); do
  got=$(sql -c "SELECT slotguard_router.add_shard('$(conninfo "${SHARDS[$i]}")')")
  [[ $got == "$i" ]] || fail "add_shard of shard $i returned $got"
done

log "the API has slotguard's names and signatures"
signatures="SELECT string_agg(p.proname || '(' || pg_get_function_arguments(p.oid) || ') ' ||
                              pg_get_function_result(p.oid), E'\n' ORDER BY 1)
              FROM pg_proc p WHERE p.pronamespace = 'slotguard'::regnamespace
               AND p.proname IN ('create_slot', 'reserve', 'reserve_seats', 'confirm', 'cancel',
                                 'booking', 'availability', 'expire_holds', 'next_expiry')"
direct=$(on 0 -c "$signatures")
routed=$(sql -c "$signatures")
[[ $(wc -l <<<"$direct") == 9 ]] || fail "expected 9 functions in slotguard: $direct"
[[ $routed == "$direct" ]] || fail "signatures differ:
$(diff <(echo "$direct") <(echo "$routed"))"
bookings_type="SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
                 FROM pg_attribute WHERE attrelid = 'slotguard.bookings'::regclass AND attnum > 0
                  AND NOT attisdropped"
[[ $(sql -c "$bookings_type") == "$(on 0 -c "$bookings_type")" ]] ||
  fail "slotguard.bookings differs: $(sql -c "$bookings_type")"

log "create_slot: round robin; each id names the shard that holds the slot"
slots=()
for k in $(seq 0 7); do
  slots+=("$(sql -c "SELECT slotguard.create_slot($((10 + k)), resource => 'r$k')")")
done
for k in $(seq 0 7); do
  s=${slots[$k]}
  ((s % 1000 == k % NSHARDS)) || fail "slot $k got id $s: expected shard $((k % NSHARDS))"
  got=$(on $((s % 1000)) -c "SELECT capacity || ' ' || resource FROM slotguard.slots WHERE id = $((s / 1000))")
  [[ $got == "$((10 + k)) r$k" ]] || fail "slot $s is not slot $((s / 1000)) of shard $((s % 1000)): '$got'"
done
for i in $(seq 0 $((NSHARDS - 1))); do
  [[ $(on "$i" -c "SELECT count(*) FROM slotguard.slots") == 2 ]] || fail "shard $i does not hold 2 slots"
done

log "every call runs on the shard of its key"
for k in $(seq 0 7); do
  s=${slots[$k]}
  i=$((s % 1000))
  b=$(sql -c "SELECT id FROM slotguard.reserve($s, 'h$k', 2)")
  ((b % 1000 == i)) || fail "booking $b of slot $s does not name shard $i"
  [[ $(on "$i" -c "SELECT slot_id || ' ' || holder || ' ' || seats || ' ' || status
                     FROM slotguard.bookings WHERE id = $((b / 1000))") == "$((s / 1000)) h$k 2 pending" ]] ||
    fail "booking $b is not on shard $i as reserved"
  case $((k % 3)) in
    0) want=confirmed fn=confirm ;;
    1) want=cancelled fn=cancel ;;
    2) want=pending fn=booking ;;
  esac
  [[ $(sql -c "SELECT id || ' ' || slot_id || ' ' || status FROM slotguard.$fn($b)") == "$b $s $want" ]] ||
    fail "$fn($b) through the router"
  [[ $(on "$i" -c "SELECT status FROM slotguard.bookings WHERE id = $((b / 1000))") == "$want" ]] ||
    fail "$fn($b) did not reach shard $i"
  [[ $(sql -c "SELECT capacity, confirmed, held, free FROM slotguard.availability($s)") == \
    "$(on "$i" -c "SELECT capacity, confirmed, held, free FROM slotguard.availability($((s / 1000)))")" ]] ||
    fail "availability($s) differs from shard $i's"
done
numbered=$(sql -c "SELECT slotguard.create_slot(3, seat_labels => '{A1,A2,B1}')")
i=$((numbered % 1000))
b=$(sql -c "SELECT id FROM slotguard.reserve_seats($numbered, 'fan', '{B1}', idempotency_key => 'k-1')")
[[ $(on "$i" -c "SELECT seat_labels FROM slotguard.bookings WHERE id = $((b / 1000)) AND slot_id = $((numbered / 1000))") == "{B1}" ]] ||
  fail "reserve_seats did not reach shard $i"
[[ $(sql -c "SELECT id FROM slotguard.reserve_seats($numbered, 'fan', '{B1}', idempotency_key => 'k-1')") == "$b" ]] ||
  fail "an idempotent retry through the router did not return the first booking"

log "expire_holds and next_expiry: on every shard"
short=()
for k in 0 1 2; do
  short+=("$(sql -c "SELECT id FROM slotguard.reserve(${slots[$k]}, 'short$k', hold_ttl => '1 second')")")
done
want=$(for i in $(seq 0 $((NSHARDS - 1))); do on "$i" -c "SELECT slotguard.next_expiry()"; done |
  grep . | sort | head -n 1)
[[ $(sql -c "SELECT slotguard.next_expiry() = '$want'") == t ]] ||
  fail "next_expiry is not the earliest of the shards' ($want)"
sleep 1.2
[[ $(sql -c "SELECT slotguard.expire_holds()") == 3 ]] || fail "expire_holds did not expire the 3 dead holds"
for b in "${short[@]}"; do
  [[ $(on $((b % 1000)) -c "SELECT status FROM slotguard.bookings WHERE id = $((b / 1000))") == expired ]] ||
    fail "hold $b is not expired on its shard"
done

log "a shard's errors keep slotguard's SQLSTATE, message, DETAIL, HINT and constraint name"
# (a 10-minute hold on tiny: its checks must not race a loaded machine; the expired hold is another
# slot's 1-second hold)
tiny=$(sql -c "SELECT slotguard.create_slot(1, one_per_holder => true, hold_ttl => '10 minutes')")
brief=$(sql -c "SELECT slotguard.create_slot(1, hold_ttl => '1 second')")
short_hold=$(sql -c "SELECT id FROM slotguard.reserve($brief, 'ann')")
sql -c "SELECT slotguard.reserve($tiny, 'ann')" >/dev/null
expect_error "SELECT slotguard.reserve($tiny, 'bob')" "ERROR:  SG003: slot $tiny is sold out
DETAIL:  1 seat requested, 0 free."
expect_error "SELECT slotguard.reserve($tiny, 'ann')" "ERROR:  SG003: holder \"ann\" already has a booking for slot $tiny
DETAIL:  The slot allows one live booking per holder; 0 seats are free.
CONSTRAINT NAME:  one_per_holder"
expect_error "SELECT slotguard.reserve_seats($numbered, 'x', '{Z9}')" "ERROR:  22023: slot $numbered has no seat Z9"
expect_error "SELECT slotguard.reserve_seats($numbered, 'other', '{A1}', idempotency_key => 'k-1')" \
  "ERROR:  22023: idempotency key \"k-1\" is already used by another holder of slot $numbered
HINT:  Use a key of your own for each request."
while [[ $(sql -c "SELECT now() > expires_at FROM slotguard.booking($short_hold)") != t ]]; do sleep 0.2; done
expect_error "SELECT slotguard.confirm($short_hold)" "ERROR:  SG004: hold $short_hold has expired
DETAIL:  Its seats have been released; reserve again."
c=$(sql -c "SELECT id FROM slotguard.reserve(${slots[3]}, 'to-cancel')")
sql -c "SELECT slotguard.cancel($c)" >/dev/null
expect_error "SELECT slotguard.confirm($c)" "ERROR:  SG005: booking $c is cancelled and cannot be confirmed
HINT:  Allowed next states from \"cancelled\": none."
missing=$((999999 * 1000 + 2))
expect_error "SELECT slotguard.booking($missing)" "ERROR:  SG002: booking $missing does not exist"
expect_error "SELECT slotguard.confirm(7)" "ERROR:  SG002: booking 7 does not exist"
expect_error "SELECT slotguard.availability(999)" "ERROR:  SG002: slot 999 does not exist"
expect_error "SELECT slotguard.reserve(${slots[0]}, 'x', 0)" "$(on 0 -v VERBOSITY=verbose -c "SELECT slotguard.reserve($((slots[0] / 1000)), 'x', 0)" 2>&1 >/dev/null | grep '^ERROR:' || true)"
# the error is the same as the shard's own, but for the ids
direct=$(on $((tiny % 1000)) -v VERBOSITY=verbose -c "SELECT slotguard.reserve($((tiny / 1000)), 'bob', 5)" 2>&1 >/dev/null |
  grep -v '^LOCATION:' | sed "s/slot $((tiny / 1000)) /slot $tiny /" || true)
routed=$(error_of "SELECT slotguard.reserve($tiny, 'bob', 5)")
[[ $routed == "$direct" ]] || fail "the router's error differs from the shard's:
$direct
---
$routed"

log "the actor reaches the shard"
for i in $(seq 0 $((NSHARDS - 1))); do
  on "$i" <<'EOF'
CREATE TABLE public.actor_log (booking_id bigint, actor text, actor_role text);
CREATE FUNCTION public.log_actor() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.actor_log VALUES (NEW.id, current_setting('slotguard.actor', true),
                                       current_setting('slotguard.actor_role', true));
  RETURN NEW;
END $$;
CREATE TRIGGER log_actor AFTER INSERT OR UPDATE ON slotguard.bookings
  FOR EACH ROW EXECUTE FUNCTION public.log_actor();
EOF
done
b=$(sql -c "WITH a AS (SELECT set_config('slotguard.actor', 'nurse:7', true) AS x,
                              set_config('slotguard.actor_role', 'nurse', true) AS y)
            SELECT r.id FROM a CROSS JOIN LATERAL slotguard.reserve(${slots[1]}, 'acted') AS r")
[[ $(on 1 -c "SELECT actor || ' ' || actor_role FROM public.actor_log WHERE booking_id = $((b / 1000))") == "nurse:7 nurse" ]] ||
  fail "the actor did not reach shard 1: $(on 1 -c "TABLE public.actor_log")"
sql -c "SELECT set_config('slotguard.actor', 'clerk:2', false)" -c "SELECT slotguard.confirm($b)" >/dev/null
[[ $(on 1 -c "SELECT actor || '|' || coalesce(actor_role, '') FROM public.actor_log WHERE booking_id = $((b / 1000)) ORDER BY ctid DESC LIMIT 1") == "clerk:2|" ]] ||
  fail "a session actor did not reach shard 1 (or a role leaked)"

log "a second write in one router transaction is refused before it runs"
got=$(psql -X -q -At -d "$DB" -v VERBOSITY=verbose 2>&1 <<EOF
BEGIN;
SELECT 'first ' || id FROM slotguard.reserve(${slots[0]}, 'tx-first');
SELECT 'read ' || free FROM slotguard.availability(${slots[1]});
SELECT 'second ' || id FROM slotguard.reserve(${slots[1]}, 'tx-second');
ROLLBACK;
BEGIN;
SELECT 'first ' || id FROM slotguard.reserve(${slots[2]}, 'tx-third');
SELECT 'same shard ' || id FROM slotguard.reserve(${slots[2]}, 'tx-fourth');
ROLLBACK;
EOF
)
[[ $got == *"first "*"read "*"ERROR:  25001: slotguard router: reserve cannot run in a transaction that already wrote through the router"*"first "*"ERROR:  25001"* ]] ||
  fail "the second write was not refused: $got"
[[ $got != *"second "* && $got != *"same shard "* ]] || fail "a second write ran: $got"
for h in tx-second tx-fourth; do
  for i in $(seq 0 $((NSHARDS - 1))); do
    [[ $(on "$i" -c "SELECT count(*) FROM slotguard.bookings WHERE holder = '$h'") == 0 ]] ||
      fail "the refused write $h reached shard $i"
  done
done
# the first write had committed on its shard (documented: the router's ROLLBACK cannot undo it)
[[ $(on 0 -c "SELECT count(*) FROM slotguard.bookings WHERE holder = 'tx-first'") == 1 ]] ||
  fail "the first write of the transaction is not on shard 0"

log "slotguardd pointed at the router: serves it, and its sweep expires holds on the shards"
write_config "sweep:
  enabled: true
  interval: 30s"
start_daemon
a=$(call reserve "{\"slot_id\": ${slots[2]}, \"holder\": \"sock\", \"hold_ttl\": \"1 second\", \"actor\": \"web-1\"}")
expect_ok "$a"
hold=$(field "$a" id)
((hold % 1000 == 2)) || fail "the daemon's booking $hold does not name shard 2"
[[ $(on 2 -c "SELECT actor FROM public.actor_log WHERE booking_id = $((hold / 1000))") == web-1 ]] ||
  fail "the daemon's actor did not reach shard 2"
a=$(call reserve "{\"slot_id\": ${slots[3]}, \"holder\": \"sock2\"}")
expect_ok "$a"
expect_ok "$(call confirm "{\"booking_id\": $(field "$a" id)}")"
[[ $(on 3 -c "SELECT status FROM slotguard.bookings WHERE id = $(($(field "$a" id) / 1000))") == confirmed ]] ||
  fail "confirm through the daemon did not reach shard 3"
expect_reason "$(call reserve "{\"slot_id\": $tiny, \"holder\": \"x\", \"seats\": 5}")" sold_out
expect_reason "$(call booking '{"booking_id": 5}')" not_found
t0=$(date +%s%N)
while [[ $(on 2 -c "SELECT status FROM slotguard.bookings WHERE id = $((hold / 1000))") != expired ]]; do
  (($(date +%s%N) - t0 < 10000000000)) || fail "the sweep did not expire hold $hold on shard 2 within 10 s"
  sleep 0.05
done
log "  hold $hold expired on shard 2 after $((($(date +%s%N) - t0) / 1000000)) ms"
stop_daemon || fail "slotguardd did not stop cleanly"

log "a shard dumped and restored elsewhere keeps its ids: move_shard, and new ids do not collide"
pg_dump -d "${SHARDS[3]}" -Fc -f "$WORK/shard3.dump"
psql -X -q -d postgres -c "CREATE DATABASE $RESTORED"
pg_restore --exit-on-error -d "$RESTORED" "$WORK/shard3.dump"
sql -c "SELECT slotguard_router.move_shard(3, '$(conninfo "$RESTORED")')" >/dev/null
last=$(on 3 -c "SELECT max(id) FROM slotguard.bookings")
row="SELECT id, slot_id, holder, status FROM slotguard.booking"
[[ $(sql -c "$row($((last * 1000 + 3)))") == "$((last * 1000 + 3))|$(on 3 -c "SELECT slot_id * 1000 + 3, holder, status FROM slotguard.bookings WHERE id = $last")" ]] ||
  fail "booking $((last * 1000 + 3)) reads differently from the restored shard"
b=$(sql -c "SELECT id FROM slotguard.reserve(${slots[3]}, 'after-restore')")
((b % 1000 == 3 && b / 1000 > last)) || fail "the restored shard handed out booking $b (its last was $last)"
[[ $(psql -X -q -At -d "$RESTORED" -c "SELECT holder FROM slotguard.bookings WHERE id = $((b / 1000))") == after-restore ]] ||
  fail "booking $b is not in the restored shard"
[[ $(on 3 -c "SELECT count(*) FROM slotguard.bookings WHERE holder = 'after-restore'") == 0 ]] ||
  fail "booking $b went to the old place of shard 3"
[[ $(sql -c "SELECT conninfo FROM slotguard_router.shards WHERE shard = 3") == "$(conninfo "$RESTORED")" ]] ||
  fail "the shards view does not show the moved conninfo"

log "add_shard: a fresh shard gets its share; its password is hidden"
fresh=${SHARDS[$NSHARDS]}
sql -c "CREATE ROLE ${DB}_app" -c "GRANT USAGE ON SCHEMA slotguard TO ${DB}_app"
expect_error "SET ROLE ${DB}_app; SELECT slotguard_router.add_shard('$(conninfo "$fresh")')" \
  "ERROR:  42501: permission denied for function add_shard"
psql -X -q -d postgres -c "CREATE DATABASE $PLAIN"
expect_error "SELECT slotguard_router.add_shard('$(conninfo "$PLAIN")')" \
  "ERROR:  55000: the shard database has no slotguard extension"
expect_error "SELECT slotguard_router.add_shard('$(conninfo "${SHARDS[0]}")')" \
  "ERROR:  23505: this conninfo is already a shard"
expect_error "SELECT slotguard_router.add_shard('postgresql:///$fresh')" \
  "ERROR:  22023: a shard's conninfo must be in key=value form, not a URI"
got=$(sql -c "SELECT slotguard_router.add_shard('$(conninfo "$fresh") password=s3cret')")
[[ $got == "$NSHARDS" ]] || fail "the fresh add_shard returned $got"
listed=$(psql -X -q -At -d "$DB" -c "SET ROLE ${DB}_app" -c "SELECT conninfo FROM slotguard_router.shards WHERE shard = $NSHARDS")
[[ $listed == "$(conninfo "$fresh") password=********" ]] || fail "the shards view shows: $listed"
expect_error "SET ROLE ${DB}_app; SELECT conninfo FROM slotguard_router.shard_config" \
  "ERROR:  42501: permission denied for table shard_config"
n=$(sql -c "SELECT count(*) FROM slotguard_router.shards")
((n == NSHARDS + 1)) || fail "the shards view lists $n shards"
placed=()
for k in $(seq 0 $NSHARDS); do
  placed+=("$(psql -X -q -At -d "$DB" -c "SET ROLE ${DB}_app" -c "SELECT slotguard.create_slot(1)")")
done
on_fresh=0
for s in "${placed[@]}"; do
  if ((s % 1000 == NSHARDS)); then
    on_fresh=$((on_fresh + 1))
    [[ $(on "$NSHARDS" -c "SELECT count(*) FROM slotguard.slots WHERE id = $((s / 1000))") == 1 ]] ||
      fail "slot $s is not on the fresh shard"
    b=$(sql -c "SELECT id FROM slotguard.reserve($s, 'fresh', confirm => true)")
    [[ $(on "$NSHARDS" -c "SELECT status FROM slotguard.bookings WHERE id = $((b / 1000))") == confirmed ]] ||
      fail "booking $b is not on the fresh shard"
  fi
done
((on_fresh == 1)) || fail "$on_fresh of $((NSHARDS + 1)) new slots landed on the fresh shard: ${placed[*]}"

log "a shard that cannot be reached: 08006, and the others still answer"
psql -X -q -d postgres -c "DROP DATABASE $fresh WITH (FORCE)"
for s in "${placed[@]}"; do
  if ((s % 1000 == NSHARDS)); then
    expect_error "SELECT slotguard.availability($s)" "ERROR:  08006: slotguard router: shard $NSHARDS is unreachable"
  else
    sql -c "SELECT free FROM slotguard.availability($s)" >/dev/null
  fi
done
