#!/usr/bin/env bash
# failover.sh: how long a failover takes through slotguardd. A Patroni + etcd pair of its own
# (tests/failover/lib.bash: synchronous_mode, ttl 10 s, loop_wait 2 s, primary_start_timeout 0;
# ports from BENCH_PORT+10, clear of bench/run.sh's cluster), slotguardd in front of it with the
# multi-host conninfo, and a steady reserve load through the daemon: BENCH_FAILOVER_CLIENTS
# clients, each on one socket session, reserving one confirmed seat with an idempotency key about
# every 20 ms, and retrying an `unavailable` (or unanswered) reserve with the same key every 20 ms.
#
# Each round kills the primary, then waits for the old node to rejoin as the synchronous standby:
#   postmaster  kill -9 of the primary's postmaster (Patroni notices and promotes the standby)
#   node        Patroni and the postmaster killed together, the whole node lost (promotion waits
#               for the leader key's ttl); Patroni is started again on it afterwards
# and prints, from the kill: the promotion (the new primary's "ready to accept connections" in its
# server log), the first reserve acknowledged after it (the daemon serving on the new primary),
# and how long the daemon answered `unavailable`. Then the median of each kind, and a check on the
# final primary that no acknowledged reserve was lost (each acknowledged booking is there,
# confirmed, with its key; one booking per key).
#
# Needs root and Patroni, etcd (make deps), like tests/failover/patroni.sh.
# Environment: BENCH_FAILOVER_ROUNDS (3), BENCH_FAILOVER_KINDS ("postmaster node"),
# BENCH_FAILOVER_CLIENTS (4), BENCH_PORT, SG_BUILD.
set -euo pipefail
# shellcheck source=bench/lib.bash
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash" # median; PGPORT of the bench cluster
rmdir "$work"                                        # unused: the pair has its own directory

ROUNDS=${BENCH_FAILOVER_ROUNDS:-3}
KINDS=${BENCH_FAILOVER_KINDS:-postmaster node}
CLIENTS=${BENCH_FAILOVER_CLIENTS:-4}
FO_BASE=$((${BENCH_PORT:-$PGPORT} + 10)) FO_NAME=bench/failover
# shellcheck source=tests/failover/lib.bash
source "$SG_ROOT/tests/failover/lib.bash"

fo_start_cluster
SLOT=$(psql_node 1 -c "SELECT slotguard.create_slot(100000000)")
fo_start_daemon
log "pair up, slotguardd serving on node 1"

# --- the load ---------------------------------------------------------------------------------
# client C: one socket session (sgload session through two FIFOs); writes a line per answer to
# $W/load.C: "SENT RECEIVED OUTCOME KEY BOOKING_ID" (epoch seconds; OUTCOME ok, unavailable,
# noanswer or the error's reason).
STOP=$W/stop
client() {
  local c=$1 i=0 key a t0 t1 outcome id
  local in=$W/c$c.in out=$W/c$c.out idle=$W/c$c.idle
  mkfifo "$in" "$out" "$idle"
  exec 5<>"$idle" # read -t on it is a sleep without a fork
  local session=''
  open_session() {
    "$LOAD" session "$SOCK" <"$in" >"$out" 2>/dev/null &
    session=$!
    exec 3>"$in" 4<"$out"
  }
  open_session
  while [[ ! -e $STOP ]]; do
    i=$((i + 1))
    key="c$c-$i"
    while :; do
      t0=$EPOCHREALTIME
      printf '%s\n' "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"reserve\",\"params\":{\"slot_id\":$SLOT,\"holder\":\"$key\",\"idempotency_key\":\"$key\",\"confirm\":true}}" >&3
      a=
      IFS= read -r -t 5 a <&4 || true
      t1=$EPOCHREALTIME
      id=0
      if [[ $a =~ \"result\":\{.*[{,]\"id\":([0-9]+) ]]; then
        outcome=ok id=${BASH_REMATCH[1]}
      elif [[ -z $a ]]; then
        outcome=noanswer
      elif [[ $a =~ \"reason\":\"([a-z_]+)\" ]]; then
        outcome=${BASH_REMATCH[1]}
      else
        outcome=other
      fi
      echo "$t0 $t1 $outcome $key $id" >>"$W/load.$c"
      [[ $outcome == ok ]] && break
      if [[ $outcome == noanswer ]]; then # start over on a new session
        exec 3>&- 4<&-
        kill "$session" 2>/dev/null || true
        open_session
      fi
      read -r -t 0.02 -u 5 _ || true
      [[ -e $STOP ]] && break
    done
    read -r -t 0.02 -u 5 _ || true
  done
  exec 3>&- 4<&-
  wait "$session" 2>/dev/null || true
}

# pg_ready_after N T: epoch seconds of node N's first "database system is ready to accept
# connections" (a primary's, not a standby's "read-only connections") logged after T.
pg_ready_after() {
  local d t
  while read -r d t; do
    t=$(date -d "$d $t UTC" +%s.%N)
    if awk -v a="$t" -v b="$2" 'BEGIN{exit !(a > b)}'; then
      echo "$t"
      return 0
    fi
  done < <(awk '/LOG:  database system is ready to accept connections$/ {print $1, $2}' "$W/patroni$1.log")
  return 1
}

# first_ack_after T: the earliest RECEIVED of an acknowledged reserve after T (empty if none).
first_ack_after() {
  cat "$W"/load.* | awk -v t="$1" '$3 == "ok" && $2 > t {if (m == "" || $2 < m) m = $2} END {print m}'
}

# round R KIND: one failover; appends "KIND PROMOTION SERVING TOTAL UNAVAILABLE" to $W/rounds.
round() {
  local r=$1 kind=$2 old=$PRIMARY new=$STANDBY t_prom t_ack='' un
  sleep 1.5 # steady load before the kill
  kill_primary "$kind"
  wait_promoted "$new" 40 || fail "round $r ($kind): node $new not promoted within 40 s"
  t_prom=$(pg_ready_after "$new" "$T_KILL") || t_prom=$T_PROM_SEEN
  for _ in $(seq 1 300); do
    t_ack=$(first_ack_after "$t_prom")
    [[ -n $t_ack ]] && break
    sleep 0.05
  done
  [[ -n $t_ack ]] || fail "round $r ($kind): no reserve acknowledged within 15 s of the promotion"
  # how long the daemon answered unavailable: from the first such answer after the kill to the
  # last one before the first acknowledged reserve
  un=$(cat "$W"/load.* | awk -v k="$T_KILL" -v a="$t_ack" \
    '$3 != "ok" && $2 > k && $2 < a {n++; if (f == "" || $2 < f) f = $2; if ($2 > l) l = $2}
     END {printf "%.2f %d", (n ? l - f : 0), n}')
  read -r un unn <<<"$un"
  local p s t
  p=$(secs "$T_KILL" "$t_prom") s=$(secs "$t_prom" "$t_ack") t=$(secs "$T_KILL" "$t_ack")
  echo "$kind $p $s $t $un" >>"$W/rounds"
  printf 'failover: round %d, %-10s kill -> promotion %6.2f s, promotion -> first acknowledged reserve %5.2f s, total %6.2f s; unavailable for %5.2f s (%d answers)\n' \
    "$r" "$kind" "$p" "$s" "$t" "$un" "$unn"
  PRIMARY=$new STANDBY=$old
  if [[ $kind == node ]]; then start_patroni "$old"; fi
}

for c in $(seq 1 "$CLIENTS"); do client "$c" & LOADERS+=($!); done
total=0
for kind in $KINDS; do total=$((total + ROUNDS)); done
n=0
for kind in $KINDS; do
  for r in $(seq 1 "$ROUNDS"); do
    round "$r" "$kind"
    n=$((n + 1))
    # the old primary rejoins (pg_rewind) as the synchronous standby before the next kill
    if ((n < total)); then wait_roles "$PRIMARY" "$STANDBY" 90; fi
  done
done
sleep 1
touch "$STOP"
for p in "${LOADERS[@]}"; do wait "$p" || true; done
LOADERS=()

# kind_median KIND FIELD: the median of field FIELD (2: promotion, 3: serving, 4: total,
# 5: unavailable) over the rounds of KIND.
kind_median() {
  local v
  mapfile -t v < <(awk -v k="$1" -v f="$2" '$1 == k {print $f}' "$W/rounds")
  median "${v[@]}"
}
for kind in $KINDS; do
  label=$([[ $kind == node ]] && echo "whole-node loss" || echo "postmaster kill")
  printf 'failover: %s, median of %d: kill -> promotion %.2f s, promotion -> serving %.2f s, kill -> first acknowledged reserve %.2f s, unavailable %.2f s\n' \
    "$label" "$(awk -v k="$kind" '$1 == k' "$W/rounds" | wc -l)" \
    "$(kind_median "$kind" 2)" "$(kind_median "$kind" 3)" "$(kind_median "$kind" 4)" "$(kind_median "$kind" 5)"
done

# no acknowledged reserve lost: each is on the final primary, confirmed, with its key
cat "$W"/load.* | awk '$3 == "ok" {print $4, $5}' >"$W/acked"
acked=$(wc -l <"$W/acked")
others=$(cat "$W"/load.* | awk '$3 != "ok" && $3 != "unavailable"' | wc -l)
bad=$(psql_node "$PRIMARY" -c "CREATE TEMP TABLE acked(k text, id bigint)" \
  -c "\\copy acked FROM '$W/acked' WITH (DELIMITER ' ')" \
  -c "SELECT count(*) FROM acked a LEFT JOIN slotguard.bookings b
        ON b.id = a.id AND b.idempotency_key = a.k AND b.status = 'confirmed' WHERE b.id IS NULL" \
  -c "SELECT count(*) FROM (SELECT idempotency_key FROM slotguard.bookings WHERE slot_id = $SLOT
        GROUP BY idempotency_key HAVING count(*) > 1) d" | paste -sd ' ')
read -r lost dup <<<"$bad"
echo "failover: $acked reserves acknowledged, $lost of them missing on the final primary, $dup keys with more than one booking; $others answers other than ok or unavailable"
((lost == 0 && dup == 0)) || fail "acknowledged reserves lost or duplicated"
