#!/usr/bin/env bash
# Failover under load on a Patroni pair (docs/operations.md, "Failover"). Run as root (CI does).
# The pair, slotguardd in front of it and the helpers are tests/failover/lib.bash's (ports from
# SG_CHECK_PORT+30); bench/failover.sh measures the same failovers.
#
# Load: clients reserving and confirming with idempotency keys, through slotguardd (sgload session)
# and through psql with the same multi-host conninfo; each records what was acknowledged and
# retries an unanswered request with the same key until it gets an answer.
#
# Phase 1: kill -9 of the primary's postmaster. Phase 2 (unless SG_FAILOVER_PHASES=1): loss of the
# whole node, Patroni and PostgreSQL killed together (promotion then waits for the leader key's
# ttl). After each: every acknowledged confirmation is there and confirmed, every key has at most
# one booking (exactly one when acknowledged), no slot is over capacity, the daemon serves writes
# again (health role primary) within a few seconds of the promotion, and on the standby the
# read-only calls work while a write gets 25006.
set -euo pipefail

FO_BASE=$((${SG_CHECK_PORT:-55432} + 30)) FO_NAME=failover/patroni
# shellcheck source=tests/failover/lib.bash
source "$(dirname "$0")/lib.bash"
PHASES=${SG_FAILOVER_PHASES:-2}
CLIENTS_SOCK=${SG_FAILOVER_SOCK_CLIENTS:-3}
CLIENTS_SQL=${SG_FAILOVER_SQL_CLIENTS:-2}
MAX_RECOVERY_S=${SG_FAILOVER_MAX_RECOVERY_S:-3}

fo_start_cluster
SLOTS=$(psql_node 1 -c "SELECT string_agg(slotguard.create_slot(c)::text, ' ')
                         FROM unnest(ARRAY[100000, 100000, 100000, 40]) AS c")
read -r -a SLOT <<<"$SLOTS"
fo_start_daemon

# --- the load ---------------------------------------------------------------------------------
# Each client writes lines "KEY SLOT OUTCOME BOOKING_ID TRIES" to its file: OUTCOME "confirmed"
# (acknowledged), "full" (answered: no room) or "gave_up" (never answered before the deadline).
STOP=$W/stop

# sock_client C PHASE: reserve (a hold) with a key, then confirm, through slotguardd.
sock_client() {
  local c=$1 ph=$2 i=0
  local out=$W/acked.s$c.$ph
  while [[ ! -e $STOP ]]; do
    i=$((i + 1))
    local key="p$ph-s$c-$i" slot=${SLOT[$((i % 4))]} tries=0 t0=$SECONDS a id='' outcome=gave_up
    while ((SECONDS - t0 < 40)); do
      tries=$((tries + 1))
      if [[ -z $id ]]; then
        a=$(rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"reserve\",\"params\":{\"slot_id\":$slot,\"holder\":\"$key\",\"idempotency_key\":\"$key\"}}")
        if [[ $a == *'"result"'* ]]; then id=$(field "$a" id); continue; fi
        if [[ $a == *'"reason":"sold_out"'* ]]; then outcome=full; break; fi
      else
        a=$(rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"confirm\",\"params\":{\"booking_id\":$id}}")
        if [[ $a == *'"status":"confirmed"'* ]]; then outcome=confirmed; break; fi
        if [[ $a == *'"error"'* && $a != *'"reason":"unavailable"'* ]]; then
          # a retried confirm of a booking the first try confirmed: ask what it is now
          a=$(rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"booking\",\"params\":{\"booking_id\":$id}}")
          if [[ $a == *'"status":"confirmed"'* ]]; then outcome=confirmed; break; fi
        fi
      fi
      if [[ $a == *'"error"'* && $a != *'"reason":"unavailable"'* && -z $id ]]; then
        outcome="error:$(field "$a" reason)"
        break
      fi
      sleep 0.05
    done
    echo "$key $slot $outcome ${id:-0} $tries" >>"$out"
  done
}

# sql_client C PHASE: reserve(confirm => true) with a key, through psql and the multi-host conninfo.
sql_client() {
  local c=$1 ph=$2 i=0
  local out=$W/acked.q$c.$ph
  while [[ ! -e $STOP ]]; do
    i=$((i + 1))
    local key="p$ph-q$c-$i" slot=${SLOT[$((i % 4))]} tries=0 t0=$SECONDS a outcome=gave_up id=0
    while ((SECONDS - t0 < 40)); do
      tries=$((tries + 1))
      a=$(timeout 5 psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose "$MULTI" -c \
        "SELECT id || ' ' || status FROM slotguard.reserve($slot, '$key', idempotency_key => '$key', confirm => true)" 2>&1) || true
      if [[ $a =~ ^([0-9]+)\ confirmed$ ]]; then outcome=confirmed id=${BASH_REMATCH[1]}; break; fi
      if [[ $a == *"ERROR:  SG003"* ]]; then
        outcome=full
        break
      fi
      sleep 0.05
    done
    echo "$key $slot $outcome $id $tries" >>"$out"
  done
}

start_load() {
  rm -f "$STOP"
  LOADERS=()
  local c
  for c in $(seq 1 "$CLIENTS_SOCK"); do sock_client "$c" "$1" & LOADERS+=($!); done
  for c in $(seq 1 "$CLIENTS_SQL"); do sql_client "$c" "$1" & LOADERS+=($!); done
}
stop_load() {
  touch "$STOP"
  local p
  for p in "${LOADERS[@]}"; do wait "$p" || true; done
  LOADERS=()
}

# failover PHASE HOW: load, kill the primary (HOW=postmaster|node), wait for the promotion of the
# standby (meanwhile the daemon must answer unavailable at once) and for the daemon to serve
# again, more load, then check.
failover() {
  local ph=$1 how=$2 old=$PRIMARY new=$STANDBY
  start_load "$ph"
  sleep 3
  local t_kill t_prom t_serve='' i
  kill_primary "$how"
  t_kill=$T_KILL
  log "phase $ph: killed node $old's $how (postmaster $KILLED)"
  # no primary yet: slotguardd answers unavailable at once (no hang, no other error)
  sleep 0.5
  local t_a a
  t_a=$(now)
  a=$(rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"reserve\",\"params\":{\"slot_id\":${SLOT[0]},\"holder\":\"nop$ph\"}}")
  [[ $a == *'"reason":"unavailable"'* ]] || fail "phase $ph: without a primary slotguardd answered: $a"
  awk -v d="$(secs "$t_a" "$(now)")" 'BEGIN{exit !(d < 1)}' || fail "phase $ph: unavailable took $(secs "$t_a" "$(now)") s"
  wait_promoted "$new" 30 || fail "phase $ph: node $new not promoted within 30 s"
  t_prom=$T_PROM_SEEN
  for i in $(seq 1 200); do
    if "$CTL" --socket "$SOCK" --timeout 1 health 2>/dev/null | grep -q '"role": "primary"' &&
      [[ $(rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"availability\",\"params\":{\"slot_id\":${SLOT[0]}}}") == *'"result"'* ]]; then
      t_serve=$(now)
      break
    fi
    sleep 0.05
  done
  [[ -n $t_serve ]] || fail "phase $ph: slotguardd did not serve as primary within 10 s of the promotion"
  log "phase $ph: promoted $(secs "$t_kill" "$t_prom") s after the kill; daemon serving $(secs "$t_prom" "$t_serve") s after the promotion"
  awk -v d="$(secs "$t_prom" "$t_serve")" -v m="$MAX_RECOVERY_S" 'BEGIN{exit !(d <= m)}' ||
    fail "phase $ph: the daemon took more than $MAX_RECOVERY_S s after the promotion"
  # first acknowledged write through the daemon on the new primary
  for i in $(seq 1 100); do
    a=$(rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"reserve\",\"params\":{\"slot_id\":${SLOT[0]},\"holder\":\"probe$ph\",\"confirm\":true}}")
    [[ $a == *'"result"'* ]] && break
    sleep 0.05
  done
  [[ $a == *'"result"'* ]] || fail "phase $ph: no write through the daemon after the promotion: $a"
  log "phase $ph: first acknowledged reserve $(secs "$t_kill" "$(now)") s after the kill"
  sleep 2
  stop_load
  PRIMARY=$new STANDBY=$old
  check "$ph"
}

# check PHASE: the invariants on the current primary.
check() {
  local ph=$1 acked total retried gave f
  cat "$W"/acked.*."$ph" >"$W/all.$ph"
  total=$(wc -l <"$W/all.$ph")
  acked=$(awk '$3 == "confirmed"' "$W/all.$ph" | wc -l)
  retried=$(awk '$5 > 1' "$W/all.$ph" | wc -l)
  gave=$(awk '$3 != "confirmed" && $3 != "full"' "$W/all.$ph" | wc -l)
  log "phase $ph: $total requests, $acked acknowledged confirmations, $retried retried" \
    "($(awk '$5 > 1 && $1 ~ /-s/' "$W/all.$ph" | wc -l) through slotguardd, $(awk '$5 > 1 && $1 ~ /-q/' "$W/all.$ph" | wc -l) through psql)," \
    "$(awk '$3 == "full"' "$W/all.$ph" | wc -l) sold out, $gave unanswered"
  ((acked > 20)) || fail "phase $ph: too little load ($acked acknowledged)"
  ((retried > 0)) || fail "phase $ph: no client had to retry: the failover was not under load"
  ((gave == 0)) || fail "phase $ph: requests never answered: $(awk '$3 != "confirmed" && $3 != "full"' "$W/all.$ph" | head -5)"
  psql_node "$PRIMARY" -c "CREATE TEMP TABLE acked(k text, slot bigint, outcome text, id bigint, tries int)" \
    -c "\\copy acked FROM '$W/all.$ph' WITH (DELIMITER ' ')" \
    -c "SELECT 'missing ' || a.k || ' ' || a.id FROM acked a
          LEFT JOIN slotguard.bookings b ON b.id = a.id AND b.idempotency_key = a.k AND b.status = 'confirmed'
         WHERE a.outcome = 'confirmed' AND b.id IS NULL
        UNION ALL
        SELECT 'key ' || a.k || ' has ' || count(b.id) || ' bookings (' || a.outcome || ')' FROM acked a
          LEFT JOIN slotguard.bookings b ON b.slot_id = a.slot AND b.idempotency_key = a.k
         GROUP BY a.k, a.outcome
        HAVING count(b.id) > 1 OR (a.outcome = 'confirmed' AND count(b.id) <> 1)
        UNION ALL
        SELECT 'slot ' || s.id || ' over capacity: ' || sum(b.seats) || ' > ' || s.capacity
          FROM slotguard.slots s JOIN slotguard.bookings b ON b.slot_id = s.id AND b.status IN ('confirmed', 'pending')
         GROUP BY s.id, s.capacity HAVING sum(b.seats) > s.capacity" >"$W/bad.$ph"
  [[ ! -s $W/bad.$ph ]] || fail "phase $ph: $(head -n 10 "$W/bad.$ph")"
  log "phase $ph: no acknowledged confirmation missing, one booking per key, no slot over capacity"
}

# standby_checks N: on node N (a standby) read-only calls work, a write gets 25006.
standby_checks() {
  local n=$1 id a
  id=$(psql_node "$PRIMARY" -c "SELECT max(id) FROM slotguard.bookings WHERE status = 'confirmed'")
  for _ in $(seq 1 50); do
    a=$(psql_node "$n" -c "SELECT status FROM slotguard.booking($id)" 2>&1) && [[ $a == confirmed ]] && break
    sleep 0.2
  done
  [[ $a == confirmed ]] || fail "booking() on the standby node $n: $a"
  [[ $(psql_node "$n" -c "SELECT pg_is_in_recovery()") == t ]] || fail "node $n is not a standby"
  psql_node "$n" -c "SELECT free FROM slotguard.availability(${SLOT[3]})" >/dev/null ||
    fail "availability() on the standby node $n"
  a=$(psql_node "$n" -v VERBOSITY=verbose -c "SELECT slotguard.reserve(${SLOT[0]}, 'ro')" 2>&1) &&
    fail "a reserve on the standby node $n succeeded: $a"
  [[ $a == *"25006"* ]] || fail "a reserve on the standby node $n: $a"
  # a reserve replayed with a key the primary acknowledged locks its booking: refused here too
  local key slot
  read -r key slot _ < <(awk '$3 == "confirmed"' "$W/all.1")
  a=$(psql_node "$n" -v VERBOSITY=verbose -c "SELECT slotguard.reserve($slot, '$key', idempotency_key => '$key')" 2>&1) &&
    fail "a replayed reserve on the standby node $n succeeded: $a"
  [[ $a == *"25006"* ]] || fail "a replayed reserve on the standby node $n: $a"
  pm=$(postmaster_pid "$n")
  kill -0 "$pm" || fail "node $n's postmaster died"
  log "standby node $n: booking and availability answer, writes get 25006"
}

failover 1 postmaster
wait_roles "$PRIMARY" "$STANDBY" 40 # the old primary rejoins (pg_rewind) as the synchronous standby
log "node $STANDBY rejoined as the synchronous standby"
standby_checks "$STANDBY"

if ((PHASES >= 2)); then
  failover 2 node
  # node STANDBY is gone (Patroni and PostgreSQL killed); the survivor serves alone
  [[ $(rest "${REST[$PRIMARY]}" /primary) == 200 ]] || fail "node $PRIMARY is not the primary"
fi
if grep -q "terminated by signal" "$W"/patroni*.log; then fail "a PostgreSQL process crashed"; fi
kill -0 "$DPID" || fail "slotguardd died"
