#!/usr/bin/env bash
# SIGHUP reloads the configuration without dropping clients (log level, access); a broken
# configuration is refused and the old one kept. SIGTERM stops accepting, lets the request in
# flight finish and answer, and exits 0.
source "$(dirname "$0")/lib.bash"

make_db
sql <<'SQL'
CREATE TABLE slowt (id int PRIMARY KEY, n int);
INSERT INTO slowt VALUES (1, 0);
SELECT slotguard.enable_versioning('slowt');
SQL
write_config "log:
  level: info"
start_daemon

# A client that stays connected across the reloads.
coproc S { "$LOAD" session "$SOCK"; }
spid=$S_PID
ask() {
  local line
  printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"health"}' >&"${S[1]}"
  read -t 5 -r line <&"${S[0]}" || fail "the long-lived client got no answer"
  expect_ok "$line"
}
ask

log "SIGHUP: log level info -> debug"
grep -q 'connected (uid' "$DLOG" && fail "debug lines at level info"
write_config "log:
  level: debug
sweep:
  interval: 5s"
kill -HUP "$DPID"
for _ in $(seq 1 50); do grep -q 'reloaded' "$DLOG" && break; sleep 0.1; done
grep -q 'reloaded .*log level debug' "$DLOG" || fail "no reload in the log"
expect_ok "$(call health)"
grep -q 'connected (uid' "$DLOG" || fail "the new log level is not applied"
ask

log "SIGHUP with a broken configuration: refused, the old one kept"
printf 'log:\n  level: debug\nsweep:\n  intervall: 5s\n' >>"$CONF"
kill -HUP "$DPID"
for _ in $(seq 1 50); do grep -q 'reload failed' "$DLOG" && break; sleep 0.1; done
grep 'reload failed' "$DLOG" | grep -q 'intervall' || fail "the failed reload does not name the key"
grep 'reload failed' "$DLOG" | grep -Eq '(line [0-9]+|:[0-9]+:)' || fail "the failed reload does not name the line"
n=$(grep -c 'connected (uid' "$DLOG")
expect_ok "$(call health)"
(($(grep -c 'connected (uid' "$DLOG") > n)) || fail "the old configuration (debug) was not kept"
ask
kill -0 "$DPID" || fail "the daemon died on a broken configuration"

log "SIGHUP: access.allowed_uids applies to new clients"
write_config "access:
  allowed_uids: [$(($(id -u) + 4242))]"
kill -HUP "$DPID"
sleep 0.3
expect_reason "$(call health)" unauthorized
write_config ""
kill -HUP "$DPID"
sleep 0.3
expect_ok "$(call health)"
ask
exec {S[1]}>&-
wait "$spid" 2>/dev/null || true

log "SIGTERM drains the request in flight"
# A session holds the row for 2 s; the daemon's update waits for it.
psql -X -q -d "$DB" -c "BEGIN" -c "SELECT n FROM slowt WHERE id = 1 FOR UPDATE" \
  -c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null &
locker=$!
for _ in $(seq 1 50); do
  [[ $(sql -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB' AND pid <> pg_backend_pid() AND query = 'SELECT pg_sleep(2)' AND state = 'active'") == 1 ]] && break
  sleep 0.05
done
call update_versioned '{"tbl": "slowt", "key": 1, "expected_version": 0, "changes": {"n": 1}}' >"$WORK/inflight" &
client=$!
for _ in $(seq 1 50); do
  [[ $(sql -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB' AND application_name = 'slotguardd' AND wait_event_type = 'Lock'") == 1 ]] && break
  sleep 0.05
done
[[ $(sql -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB' AND application_name = 'slotguardd' AND wait_event_type = 'Lock'") == 1 ]] ||
  fail "the request did not get in flight"
t0=$(date +%s%N)
kill -TERM "$DPID"
sleep 0.3
kill -0 "$DPID" 2>/dev/null || fail "the daemon exited before its request in flight finished"
[[ ! -e $SOCK ]] || fail "the socket is still there while draining"
rc=0
wait "$DPID" || rc=$?
DPID=
ms=$((($(date +%s%N) - t0) / 1000000))
wait "$client" || true
wait "$locker" || true
a=$(cat "$WORK/inflight")
log "exit status $rc after ${ms} ms; the request in flight got: $a"
((rc == 0)) || fail "slotguardd exited $rc on SIGTERM"
expect_ok "$a"
[[ $a == *'"version":1'* ]] || fail "the drained request did not run: $a"
[[ $(sql -c "SELECT n FROM slowt WHERE id = 1") == 1 ]] || fail "the update was lost"
grep -q 'SIGTERM' "$DLOG" || fail "no SIGTERM in the log"

log "SIGTERM with nothing in flight: exits 0 at once, clients connected or not"
write_config ""
start_daemon
exec 9> >("$LOAD" session "$SOCK" >/dev/null)
sleep 0.2
t0=$(date +%s%N)
stop_daemon || fail "the daemon did not exit 0"
ms=$((($(date +%s%N) - t0) / 1000000))
((ms < 2000)) || fail "an idle daemon took ${ms} ms to stop"
exec 9>&-
