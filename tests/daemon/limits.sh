#!/usr/bin/env bash
# slotguardd's limits: batch length (limits.max_batch); a client that sends
# but never reads is not read any further once its unsent answers pass limits.max_output_bytes,
# and is disconnected after limits.write_timeout; a request that trickles in is cut off after
# limits.request_timeout; database.statement_timeout ends a blocked statement; at the drain
# deadline of SIGTERM statements still running are cancelled and the daemon exits; input that is
# not UTF-8 or holds a NUL byte is a parse error.
source "$(dirname "$0")/lib.bash"

make_db
sql >/dev/null <<'SQL'
CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO t VALUES (1);
SELECT slotguard.enable_versioning('t');
SQL
HEALTH='{"jsonrpc":"2.0","id":1,"method":"health"}'
POOL_SIZE=2 DB_EXTRA="  statement_timeout: 1s" write_config "limits:
  max_batch: 10
  max_output_bytes: 65536
  write_timeout: 2s
  request_timeout: 2s"
start_daemon

log "a batch of limits.max_batch requests runs; one more is refused as a whole"
batch() {
  local n=$1 out="[" i
  for ((i = 1; i <= n; i++)); do out+="${i:+$([[ $i -gt 1 ]] && echo ,)}{\"jsonrpc\":\"2.0\",\"id\":$i,\"method\":\"health\"}"; done
  echo "$out]"
}
a=$(rpc "$(batch 10)")
[[ $(grep -o '"result"' <<<"$a" | wc -l) == 10 ]] || fail "a batch of 10: $a"
a=$(rpc "$(batch 11)")
expect_reason "$a" invalid_params
[[ $a == '{'*'"code":-32600'*'limits.max_batch = 10'* ]] || fail "a batch of 11: $a"

log "input that is not UTF-8, or holds a NUL byte, is a parse error"
a=$(printf '{"jsonrpc":"2.0","id":"\xff\xfe","method":"health"}\n' | "$LOAD" session "$SOCK" | sed -n 1p)
[[ $a == *'"code":-32700'* ]] || fail "invalid UTF-8: $a"
a=$(printf '{"jsonrpc":"2.0","id":1,"method":"health"}\0 and more\n' | "$LOAD" session "$SOCK" | sed -n 1p)
[[ $a == *'"code":-32700'* ]] || fail "a NUL byte after the request: $a"

log "a client that never reads its answers: backpressure, then disconnected"
rss0=$(rss_kb "$DPID")
"$LOAD" flood "$SOCK" 8 "$HEALTH" >"$WORK/flood" &
fpid=$!
sleep 1
# Meanwhile another client is served.
a=$("$LOAD" probe "$SOCK" 3 100 "$HEALTH")
log "probe during the flood: $a"
[[ $a == *' errors=0 '* ]] || fail "a well-behaved client was not served during the flood: $a"
wait "$fpid"
f=$(cat "$WORK/flood")
log "flood: $f"
[[ $f == *'closed=1'* ]] || fail "a client that never reads was not disconnected: $f"
grep -q 'did not read its answers' "$DLOG" || fail "the disconnection was not logged"
rss1=$(rss_kb "$DPID")
log "daemon RSS: ${rss0} kB before, ${rss1} kB after"
((rss1 - rss0 < 32768)) || fail "the daemon grew by $((rss1 - rss0)) kB for one client that does not read"

log "a request that trickles in a byte at a time is cut off after limits.request_timeout"
t=$("$LOAD" trickle "$SOCK" 8 100)
log "trickle: $t"
[[ $t == *'closed=1'* ]] || fail "a trickling client was not disconnected: $t"
secs=$(sed -E 's/.*seconds=([0-9]+).*/\1/' <<<"$t")
((secs <= 5)) || fail "the trickling client was disconnected only after $secs s"
grep -q 'did not complete a request' "$DLOG" || fail "the cut-off was not logged"
expect_ok "$(call health)"

# lock_t: a session that holds an exclusive lock on t until killed; its psql's pid in LOCKER.
LOCKER=
lock_t() {
  psql -X -q -d "$DB" -c "BEGIN" -c "LOCK TABLE t IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(60)" \
    >/dev/null 2>&1 &
  LOCKER=$!
  for _ in $(seq 1 50); do
    [[ $(sql -c "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                  WHERE c.relname = 't' AND l.mode = 'AccessExclusiveLock' AND l.granted") == 1 ]] &&
      return 0
    sleep 0.1
  done
  fail "could not lock t"
}
unlock_t() {
  if [[ -n $LOCKER ]]; then
    kill "$LOCKER" 2>/dev/null || true
    wait "$LOCKER" 2>/dev/null || true
    LOCKER=
  fi
  psql -X -q -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                              WHERE datname = '$DB' AND query LIKE '%pg_sleep(60)%'" >/dev/null 2>&1 || true
}
CLEANUP_HOOK=unlock_t
UPDATE='{"tbl":"t","key":1,"expected_version":1,"changes":{"n":1}}'

log "database.statement_timeout ends a statement that waits on a lock"
lock_t
start=$(date +%s%N)
a=$(call update_versioned "$UPDATE")
ms=$((($(date +%s%N) - start) / 1000000))
log "answered after $ms ms: ${a:0:200}"
[[ $a == *'"sqlstate":"57014"'* ]] || fail "a blocked statement did not time out: $a"
((ms < 5000)) || fail "statement_timeout 1s took $ms ms"
unlock_t
stop_daemon || fail "the daemon did not exit 0"

log "SIGTERM: at limits.drain_timeout a statement still running is cancelled and the daemon exits"
DB_EXTRA="  statement_timeout: 0" write_config "limits:
  drain_timeout: 1s"
start_daemon
lock_t
rpc "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"update_versioned\",\"params\":$UPDATE}" >"$WORK/blocked" &
bpid=$!
for _ in $(seq 1 50); do
  [[ $(sql -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB' AND application_name = 'slotguardd'
                AND wait_event_type = 'Lock'") == 1 ]] && break
  sleep 0.1
done
start=$(date +%s%N)
kill -TERM "$DPID"
rc=0
wait "$DPID" || rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
DPID=
log "the daemon exited $rc after $ms ms"
((ms < 6000)) || fail "shutdown took $ms ms with a drain_timeout of 1 s"
wait "$bpid" || true
b=$(cat "$WORK/blocked")
log "the blocked request was answered: ${b:0:200}"
[[ $b == *'"id":7'* && $b == *'"sqlstate":"57014"'* ]] || fail "the cancelled request got no error answer: $b"
grep -q 'drain deadline passed: cancelling 1 requests in flight' "$DLOG" || fail "the cancel was not logged"
unlock_t
