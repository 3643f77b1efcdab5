#!/usr/bin/env bash
# slotguardd --check-config: exit 0 on a valid file (the packaged default included), 1 on a
# broken one with an error naming the key and its line; the daemon refuses to start on one.
# systemd-analyze verify accepts the packaged units (ExecStart pointed at the built binary), with
# no warning at all.
source "$(dirname "$0")/lib.bash"

log "--check-config on the packaged default configuration"
"$SGD" --config "$ROOT/packaging/slotguardd.yaml" --check-config >/dev/null ||
  fail "the packaged default configuration does not pass --check-config"

log "--check-config on valid and broken files"
printf 'database:\n  pool_size: 8\nsweep:\n  interval: 500ms\n' >"$WORK/ok.yaml"
"$SGD" --config "$WORK/ok.yaml" --check-config >/dev/null || fail "a valid file was refused"
printf '' >"$WORK/empty.yaml"
"$SGD" --config "$WORK/empty.yaml" --check-config >/dev/null || fail "an empty file (all defaults) was refused"

# check_bad NAME LINE KEY: the file must be refused (exit 1), naming KEY and LINE.
check_bad() {
  local rc=0 err
  err=$("$SGD" --config "$WORK/$1" --check-config 2>&1 >/dev/null) || rc=$?
  log "  $1: exit $rc: $err"
  ((rc == 1)) || fail "$1: exit status $rc, expected 1"
  [[ $err == *"$3"* ]] || fail "$1: the error does not name the key $3: $err"
  [[ $err =~ (:$2:|line $2) ]] || fail "$1: the error does not name line $2: $err"
}
printf 'database:\n  pool_size: 4\nsweep:\n  enabled: true\n  intervall: 30s\n' >"$WORK/unknown.yaml"
check_bad unknown.yaml 5 intervall
printf 'database:\n  pool_size: many\n' >"$WORK/badint.yaml"
check_bad badint.yaml 2 pool_size
printf 'log:\n  level: loud\n' >"$WORK/badlevel.yaml"
check_bad badlevel.yaml 2 level
printf 'sweep:\n  interval: soon\n' >"$WORK/badduration.yaml"
check_bad badduration.yaml 2 interval
printf 'socket:\n  mode: "0999"\n' >"$WORK/badmode.yaml"
check_bad badmode.yaml 2 mode
printf 'sockets:\n  path: /x\n' >"$WORK/badsection.yaml"
check_bad badsection.yaml 1 sockets
rc=0
"$SGD" --config "$WORK/missing.yaml" --check-config >/dev/null 2>&1 || rc=$?
((rc == 1)) || fail "a missing file: exit $rc"
printf 'database: [unclosed\n' >"$WORK/syntax.yaml"
rc=0
"$SGD" --config "$WORK/syntax.yaml" --check-config >/dev/null 2>&1 || rc=$?
((rc == 1)) || fail "a YAML syntax error: exit $rc"
rc=0
"$SGD" --no-such-option >/dev/null 2>&1 || rc=$?
((rc == 2)) || fail "an unknown option: exit $rc, expected 2"

log "the daemon refuses to start on a broken configuration"
rc=0
timeout 10 "$SGD" --config "$WORK/unknown.yaml" 2>"$WORK/start.err" || rc=$?
((rc == 1)) || fail "slotguardd started on a broken file (exit $rc)"
grep -q intervall "$WORK/start.err" || fail "no error naming the key at start: $(cat "$WORK/start.err")"
grep -q '^<3>' "$WORK/start.err" || fail "the error has no journald priority prefix"

log "systemd-analyze verify of packaging/systemd/slotguardd.service and .socket"
if ! command -v systemd-analyze >/dev/null; then
  log "SKIP: systemd-analyze is not installed (package systemd)"
  exit 0
fi
mkdir -p "$WORK/units"
sed "s#/usr/bin/slotguardd#$SGD#g" "$ROOT/packaging/systemd/slotguardd.service" \
  >"$WORK/units/slotguardd.service"
cp "$ROOT/packaging/systemd/slotguardd.socket" "$WORK/units/"
rc=0
out=$(cd "$WORK/units" && systemd-analyze verify slotguardd.socket slotguardd.service 2>&1) || rc=$?
[[ -n $out ]] && echo "$out"
((rc == 0)) || fail "systemd-analyze verify failed (exit $rc)"
# Warnings (unknown keys, bad values) do not change the exit status: there must be none.
[[ -z $(grep -v -E 'Failed to (connect to|open) (bus|/dev/kmsg)|/proc/|System has not been booted' <<<"$out") ]] ||
  fail "systemd-analyze verify warned about the units"
# The checker itself catches a broken unit (so a pass above means something).
sed 's/^Type=notify/Type=notify\nNoSuchKey=1/' "$WORK/units/slotguardd.service" >"$WORK/broken.service"
mkdir -p "$WORK/broken" && mv "$WORK/broken.service" "$WORK/broken/slotguardd.service"
out=$(cd "$WORK/broken" && systemd-analyze verify slotguardd.service 2>&1) || true
[[ $out == *NoSuchKey* ]] || fail "systemd-analyze verify did not notice an unknown key: $out"
log "units verified"
