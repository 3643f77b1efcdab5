# ready.bash: launch_daemon, shared by tests/daemon/lib.bash and tests/integration/crash/lib.bash
# (sourced, not run). Needs SGD, CTL, CONF, SOCK, DLOG and a fail function; sets DPID.

# launch_daemon: starts slotguardd on $CONF (its log appended to $DLOG) and waits until it serves
# (health: database ok), at most 10 s.
launch_daemon() {
  "$SGD" --config "$CONF" 2>>"$DLOG" &
  DPID=$!
  local i
  for i in $(seq 1 100); do
    if [[ -S $SOCK ]] && "$CTL" --socket "$SOCK" --timeout 2 health 2>/dev/null |
      grep -q '"database": "ok"'; then
      return 0
    fi
    kill -0 "$DPID" 2>/dev/null || fail "slotguardd exited at start"
    sleep 0.1
  done
  fail "slotguardd did not become ready within 10 s"
}
