# lib.bash: a Patroni + etcd pair of PostgreSQL 15 nodes with slotguard and slotguardd in front,
# shared by tests/failover/patroni.sh and bench/failover.sh (sourced, not run). Run as root (CI
# does); PostgreSQL runs as the postgres OS user. Everything is private: a temporary directory $W,
# six ports from FO_BASE, and an EXIT trap that stops every process started here.
#
# Topology: one etcd (v3 API), two PostgreSQL 15 nodes under Patroni with slotguard preloaded,
# synchronous_mode on, synchronous_commit on, ttl 10 s, loop_wait 2 s, primary_start_timeout 0 (a
# killed postmaster fails over instead of restarting in place). slotguardd connects with the
# multi-host conninfo $MULTI (host=SOCK1,SOCK2 port=P1,P2 target_session_attrs=read-write).
#
# Before sourcing: FO_BASE (the first of six free ports), FO_NAME (for the PASS line and messages).
# Then: fo_start_cluster (etcd, node 1 primary, node 2 its synchronous standby, database sg with
# the extension), fo_start_daemon (slotguardd on $SOCK, serving as primary), and the helpers below.
# The caller may fill LOADERS with pids to kill at exit.
# shellcheck disable=SC2034 # STANDBY, T_KILL, T_PROM_SEEN, ... are for the scripts that source this
set -euo pipefail

FO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${SG_BUILD:-$FO_ROOT/build}
SGD=$BUILD/daemon/slotguardd
CTL=$BUILD/daemon/slotguardctl
LOAD=$BUILD/bench/sgload
: "${PG_CONFIG:=pg_config}"
BINDIR=$($PG_CONFIG --bindir)
: "${FO_BASE:?set FO_BASE, the first of six free ports}"
: "${FO_NAME:=failover}"

log() { printf '[%s] %s\n' "$(date +%T.%3N)" "$*"; }
FO_T0=$(date +%s.%N)
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

ETCD_PORT=$FO_BASE ETCD_PEER=$((FO_BASE + 1))
declare -A PGP=([1]=$((FO_BASE + 2)) [2]=$((FO_BASE + 3))) REST=([1]=$((FO_BASE + 4)) [2]=$((FO_BASE + 5)))

W=$(mktemp -d /tmp/sgpat.XXXXXX) # short: Unix socket paths are limited to 107 bytes
chmod 755 "$W"
ETCD_PID='' DPID=''
declare -A PAT=()
LOADERS=()

# postmaster_pid N: the postmaster of node N, if running.
postmaster_pid() { if [[ -s $W/d$1/postmaster.pid ]]; then head -n 1 "$W/d$1/postmaster.pid"; fi; }

fo_cleanup() {
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
  ((rc == 0)) && log "PASS: $FO_NAME ($(secs "$FO_T0" "$(now)") s)"
  exit "$rc"
}
trap fo_cleanup EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }

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

# start_patroni N: Patroni of node N, as the postgres user (setpriv execs: $! is Patroni's pid).
start_patroni() {
  local n=$1
  (cd "$W" && exec setpriv --reuid=postgres --regid=postgres --init-groups patroni "$W/n$n.yml") \
    >>"$W/patroni$n.log" 2>&1 &
  PAT[$n]=$!
}

# rest N PATH: HTTP status of Patroni's REST endpoint PATH on the REST port N (000: no answer).
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

conn_node() { echo "host=$W/s$1 port=${PGP[$1]} user=postgres dbname=sg"; }
MULTI="host=$W/s1,$W/s2 port=${PGP[1]},${PGP[2]} user=postgres dbname=sg target_session_attrs=read-write connect_timeout=2"
psql_node() { local n=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 "$(conn_node "$n")" "$@"; }

# fo_start_cluster: etcd, Patroni on both nodes (node 1 bootstraps and is the primary, node 2 its
# synchronous standby), database sg with CREATE EXTENSION slotguard. Sets PRIMARY=1 STANDBY=2.
fo_start_cluster() {
  etcd --name sg --data-dir "$W/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "sg=http://127.0.0.1:$ETCD_PEER" --initial-cluster-state new \
    >"$W/etcd.log" 2>&1 &
  ETCD_PID=$!
  local n
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
  PRIMARY=1 STANDBY=2
  wait_roles 1 2 40
  log "cluster up: node 1 primary, node 2 synchronous standby"
  psql -X -q -v ON_ERROR_STOP=1 "host=$W/s1 port=${PGP[1]} user=postgres dbname=postgres" -c "CREATE DATABASE sg"
  psql_node 1 -c "CREATE EXTENSION slotguard"
}

# fo_start_daemon: slotguardd on $SOCK with the multi-host conninfo, log in $W/daemon.log; waits
# until health says it is on the primary.
SOCK=$W/sgd.sock
fo_start_daemon() {
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
}

# rpc LINE: one request on a fresh connection; the answer line (empty when none came).
rpc() { printf '%s\n' "$1" | timeout 5 "$LOAD" session "$SOCK" 2>/dev/null | sed -n 1p || true; }
field() { sed -E -n "s/.*\"$2\":(\"([^\"]*)\"|(-?[0-9]+)).*/\2\3/p" <<<"$1" | head -n 1; }

# kill_primary HOW: kills node $PRIMARY's postmaster (HOW=postmaster) or its Patroni and
# postmaster together (HOW=node: the whole node is lost). Sets T_KILL (epoch seconds) and KILLED
# (the postmaster's pid).
kill_primary() {
  local how=$1 old=$PRIMARY
  KILLED=$(postmaster_pid "$old")
  [[ -n $KILLED ]] || fail "no postmaster pid on node $old"
  if [[ $how == node ]]; then
    kill -KILL "${PAT[$old]}" "$KILLED"
    T_KILL=$(now)
    wait "${PAT[$old]}" 2>/dev/null || true
    PAT[$old]=
  else
    kill -KILL "$KILLED"
    T_KILL=$(now)
  fi
}

# wait_promoted N SECONDS: until node N answers REST /primary; sets T_PROM_SEEN (epoch seconds).
wait_promoted() {
  T_PROM_SEEN=
  for _ in $(seq 1 $(($2 * 20))); do
    if [[ $(rest "${REST[$1]}" /primary) == 200 ]]; then T_PROM_SEEN=$(now); return 0; fi
    sleep 0.05
  done
  return 1
}
