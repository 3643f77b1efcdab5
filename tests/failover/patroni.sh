#!/usr/bin/env bash
# Failover under load on a Patroni pair (docs/operations.md, "Failover"). Run as root (CI does);
# PostgreSQL runs as the postgres OS user. Everything is private: a temporary directory, ports from
# SG_CHECK_PORT+30, and an EXIT trap that stops every process started here.
#
# Topology: one etcd (v3 API), two PostgreSQL 15 nodes under Patroni with slotguard preloaded,
# synchronous_mode on, synchronous_commit on, ttl 10 s, loop_wait 2 s, primary_start_timeout 0 (a
# killed postmaster fails over instead of restarting in place). slotguardd connects with the
# multi-host conninfo (host=SOCK1,SOCK2 port=P1,P2 target_session_attrs=read-write).
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

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SG_BUILD:-$ROOT/build}
SGD=$BUILD/daemon/slotguardd
CTL=$BUILD/daemon/slotguardctl
LOAD=$BUILD/bench/sgload
: "${PG_CONFIG:=pg_config}"
BINDIR=$($PG_CONFIG --bindir)
PHASES=${SG_FAILOVER_PHASES:-2}
CLIENTS_SOCK=${SG_FAILOVER_SOCK_CLIENTS:-3}
CLIENTS_SQL=${SG_FAILOVER_SQL_CLIENTS:-2}
MAX_RECOVERY_S=${SG_FAILOVER_MAX_RECOVERY_S:-3}

log() { printf '[%s] %s\n' "$(date +%T.%3N)" "$*"; }
T0=$(date +%s.%N)
fail() {
  log "FAIL: $*"
  for f in "$W"/patroni1.log "$W"/patroni2.log "$W"/daemon.log; do
    [[ -s $f ]] && { echo "--- $f (last 25 lines)"; tail -n 25 "$f"; }
  done
  exit 1
}

for b in "$SGD" "$CTL" "$LOAD"; do [[ -x $b ]] || { echo "not built: $b (make all)"; exit 1; }; done
for p in patroni etcd setpriv psql; do
  command -v "$p" >/dev/null || { echo "missing $p (make deps)"; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "run as root: PostgreSQL is started as the postgres OS user"; exit 1; }
id postgres >/dev/null

BASE=$((${SG_CHECK_PORT:-55432} + 30))
ETCD_PORT=$BASE ETCD_PEER=$((BASE + 1))
declare -A PGP=([1]=$((BASE + 2)) [2]=$((BASE + 3))) REST=([1]=$((BASE + 4)) [2]=$((BASE + 5)))

W=$(mktemp -d /tmp/sgpat.XXXXXX) # short: Unix socket paths are limited to 107 bytes
chmod 755 "$W"
ETCD_PID='' DPID=''
declare -A PAT=()
LOADERS=()

# postmaster_pid N: the postmaster of node N, if running.
postmaster_pid() { if [[ -s $W/d$1/postmaster.pid ]]; then head -n 1 "$W/d$1/postmaster.pid"; fi; }

cleanup() {
  local rc=$?
  set +e
  exec 2>/dev/null # no "Killed" job notices
  for p in "${LOADERS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  [[ -n $DPID ]] && kill -KILL "$DPID" 2>/dev/null
  for n in 1 2; do [[ -n ${PAT[$n]:-} ]] && kill -KILL "${PAT[$n]}" 2>/dev/null; done
  for n in 1 2; do
    pm=$(postmaster_pid "$n")
    [[ -n $pm ]] && kill -QUIT "$pm" 2>/dev/null # immediate shutdown: children go too
  done
  [[ -n $ETCD_PID ]] && kill -KILL "$ETCD_PID" 2>/dev/null
  for _ in $(seq 1 50); do
    alive=
    for n in 1 2; do
      pm=$(postmaster_pid "$n")
      [[ -n $pm ]] && kill -0 "$pm" 2>/dev/null && alive=1
    done
    [[ -z $alive ]] && break
    sleep 0.1
  done
  for n in 1 2; do pm=$(postmaster_pid "$n"); [[ -n $pm ]] && kill -KILL "$pm" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$W"
  ((rc == 0)) && log "PASS: failover/patroni ($(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s)"
  exit "$rc"
}
trap cleanup EXIT

# --- etcd -------------------------------------------------------------------------------------
etcd --name sg --data-dir "$W/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-cluster "sg=http://127.0.0.1:$ETCD_PEER" --initial-cluster-state new \
  >"$W/etcd.log" 2>&1 &
ETCD_PID=$!

# --- Patroni ----------------------------------------------------------------------------------
write_patroni_config() {
  local n=$1
  cat >"$W/n$n.yml" <<EOF
scope: sgfo
name: n$n
restapi:
  listen: 127.0.0.1:${REST[$n]}
  connect_address: 127.0.0.1:${REST[$n]}
etcd3:
  hosts: 127.0.0.1:$ETCD_PORT
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 2
    retry_timeout: 4
    primary_start_timeout: 0
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      parameters:
        shared_preload_libraries: slotguard
        synchronous_commit: "on"
        wal_log_hints: "on"
        max_connections: 40
  initdb:
    - encoding: UTF8
    - locale: C
    - auth: trust
  pg_hba:
    - local all all trust
    - local replication all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:${PGP[$n]}
  connect_address: 127.0.0.1:${PGP[$n]}
  data_dir: $W/d$n
  bin_dir: $BINDIR
  pgpass: $W/pgpass$n
  use_unix_socket: true
  authentication:
    superuser: {username: postgres, password: unused}
    replication: {username: replicator, password: unused}
    rewind: {username: postgres, password: unused}
  parameters:
    unix_socket_directories: $W/s$n
    shared_buffers: 16MB
    logging_collector: "off"
EOF
}

start_patroni() {
  local n=$1
  (cd "$W" && exec setpriv --reuid=postgres --regid=postgres --init-groups patroni "$W/n$n.yml") \
    >>"$W/patroni$n.log" 2>&1 &
  PAT[$n]=$!
}

for n in 1 2; do
  mkdir -p "$W/s$n"
  write_patroni_config "$n"
done
chown -R postgres:postgres "$W"
chown -R root:root "$W/etcd" 2>/dev/null || true

for _ in $(seq 1 50); do
  if python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$ETCD_PORT/health', timeout=1)" 2>/dev/null; then break; fi
  sleep 0.1
done
start_patroni 1
sleep 1 # node 1 bootstraps the cluster, node 2 joins as a replica
start_patroni 2

# rest N PATH: HTTP status of Patroni's REST endpoint on node N (000: no answer).
rest() {
  python3 - "$1" "$2" <<'EOF' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen("http://127.0.0.1:%s%s" % (sys.argv[1], sys.argv[2]), timeout=1)
    print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
EOF
}

# wait_roles PRIMARY SYNC SECONDS: until node PRIMARY is the leader and node SYNC its synchronous
# standby (streaming).
wait_roles() {
  local i
  for i in $(seq 1 $((${3} * 5))); do
    if [[ $(rest "${REST[$1]}" /primary) == 200 && $(rest "${REST[$2]}" /sync) == 200 ]]; then return 0; fi
    sleep 0.2
  done
  fail "node $1 primary with node $2 as synchronous standby: not within $3 s"
}

PRIMARY=1 STANDBY=2
wait_roles 1 2 40
log "cluster up: node 1 primary, node 2 synchronous standby"

conn_node() { echo "host=$W/s$1 port=${PGP[$1]} user=postgres dbname=sg"; }
MULTI="host=$W/s1,$W/s2 port=${PGP[1]},${PGP[2]} user=postgres dbname=sg target_session_attrs=read-write connect_timeout=2"
psql_node() { local n=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 "$(conn_node "$n")" "$@"; }

psql -X -q -v ON_ERROR_STOP=1 "host=$W/s1 port=${PGP[1]} user=postgres dbname=postgres" -c "CREATE DATABASE sg"
psql_node 1 -c "CREATE EXTENSION slotguard"
SLOTS=$(psql_node 1 -c "SELECT string_agg(slotguard.create_slot(c)::text, ' ')
                         FROM unnest(ARRAY[100000, 100000, 100000, 40]) AS c")
read -r -a SLOT <<<"$SLOTS"

# --- slotguardd -------------------------------------------------------------------------------
SOCK=$W/sgd.sock
cat >"$W/sgd.yaml" <<EOF
database:
  conninfo: "$MULTI"
  pool_size: 4
socket:
  path: $SOCK
  mode: "0600"
  group: ""
sweep:
  interval: 30s
log:
  level: info
EOF
"$SGD" --config "$W/sgd.yaml" 2>>"$W/daemon.log" &
DPID=$!
for _ in $(seq 1 100); do
  [[ -S $SOCK ]] && "$CTL" --socket "$SOCK" --timeout 2 health 2>/dev/null | grep -q '"role": "primary"' && break
  kill -0 "$DPID" 2>/dev/null || fail "slotguardd exited at start"
  sleep 0.1
done
"$CTL" --socket "$SOCK" --timeout 2 health | grep -q '"role": "primary"' || fail "slotguardd not ready"

# rpc LINE: one request on a fresh connection; the answer line (empty when none came).
rpc() { printf '%s\n' "$1" | timeout 5 "$LOAD" session "$SOCK" 2>/dev/null | sed -n 1p || true; }
field() { sed -E -n "s/.*\"$2\":(\"([^\"]*)\"|(-?[0-9]+)).*/\2\3/p" <<<"$1" | head -n 1; }

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

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }

# failover PHASE HOW: load, kill the primary (HOW=postmaster|node), wait for the promotion of the
# standby (meanwhile the daemon must answer unavailable at once) and for the daemon to serve
# again, more load, then check.
failover() {
  local ph=$1 how=$2 old=$PRIMARY new=$STANDBY
  start_load "$ph"
  sleep 3
  local pm t_kill t_prom='' t_serve='' i
  pm=$(postmaster_pid "$old")
  [[ -n $pm ]] || fail "no postmaster pid on node $old"
  if [[ $how == node ]]; then
    kill -KILL "${PAT[$old]}" "$pm"
    wait "${PAT[$old]}" 2>/dev/null || true
    PAT[$old]=
  else
    kill -KILL "$pm"
  fi
  t_kill=$(now)
  log "phase $ph: killed node $old's $how (postmaster $pm)"
  # no primary yet: slotguardd answers unavailable at once (no hang, no other error)
  sleep 0.5
  local t_a a
  t_a=$(now)
  a=$(rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"reserve\",\"params\":{\"slot_id\":${SLOT[0]},\"holder\":\"nop$ph\"}}")
  [[ $a == *'"reason":"unavailable"'* ]] || fail "phase $ph: without a primary slotguardd answered: $a"
  awk -v d="$(secs "$t_a" "$(now)")" 'BEGIN{exit !(d < 1)}' || fail "phase $ph: unavailable took $(secs "$t_a" "$(now)") s"
  for i in $(seq 1 300); do
    if [[ $(rest "${REST[$new]}" /primary) == 200 ]]; then t_prom=$(now); break; fi
    sleep 0.1
  done
  [[ -n $t_prom ]] || fail "phase $ph: node $new not promoted within 30 s"
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
