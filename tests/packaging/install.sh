#!/usr/bin/env bash
# The Debian packages, installed for real (make check runs this last, as root):
#   1. `make package` builds postgresql-15-slotguard and slotguardd; lintian reports no error and
#      no warning (overrides are justified in packaging/debian/*.lintian-overrides);
#   2. dpkg -i installs both: files verified against the packages' checksums, the user and group
#      slotguard, the configuration 0640 root:slotguard, /run/slotguard, the man pages;
#   3. systemd-analyze verify accepts the installed units;
#   4. a cluster preloads the packaged library (shared_preload_libraries = 'slotguard'), CREATE
#      EXTENSION works at the packaged default version, and a reservation, a versioned update and
#      an overlap rule behave; the packaged slotguard_router (on PL/Proxy) routes a reservation
#      to that database;
#   5. the packaged daemon runs as the unit runs it (user slotguard, /usr/bin/slotguardd with the
#      packaged /etc/slotguard/slotguardd.yaml; only PGHOST/PGPORT point libpq at the test
#      cluster), answers slotguardctl on /run/slotguard/slotguardd.sock, and stops cleanly on
#      SIGTERM;
#   6. dpkg -r keeps only the conffile; dpkg -P leaves nothing behind: no file, directory, unit
#      state, user or group.
# The package targets the system's PostgreSQL 15 (/usr/lib/postgresql/15), whatever PG_CONFIG
# the suite runs with; the slotguard files found there before the test (make install from the
# tree) are put back at the end, so the machine is left as it was. One run at a time per machine
# (a lock): it installs packages and uses /run/slotguard.
# Knobs: SG_PACKAGE_DEBS (a directory with prebuilt .deb files, as make check builds them; else
# this test runs make package itself).
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib.bash"
ROOT=$SG_ROOT
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
export PATH="/usr/lib/postgresql/15/bin:$PATH"
[[ -x $PG_CONFIG ]] || { echo "packages: needs the Debian PostgreSQL 15 (make deps)"; exit 1; }
exec 9>/tmp/slotguard-packaging.lock
flock -w 600 9 || { echo "packages: another run holds /tmp/slotguard-packaging.lock"; exit 1; }
PORT=$((${PGPORT:-54329} + 17))
WORK=$(mktemp -d /tmp/sg-packages.XXXXXX)
chmod 755 "$WORK"
CLUSTER=$WORK/cluster
DAEMON_PID=

log() { printf '%s packages: %s\n' "$(date +%T)" "$*"; }
fail() {
  log "FAIL: $*"
  exit 1
}

cleanup() {
  local rc=$?
  [[ -n $DAEMON_PID ]] && kill -KILL "$DAEMON_PID" 2>/dev/null
  "$ROOT/scripts/pgcluster.sh" stop "$CLUSTER" >/dev/null 2>&1 || true
  if dpkg -s slotguardd >/dev/null 2>&1 || dpkg -s postgresql-15-slotguard >/dev/null 2>&1; then
    dpkg -P slotguardd postgresql-15-slotguard >/dev/null 2>&1 || true
  fi
  # Put back what the system PostgreSQL had before (the suite's make install, or nothing).
  # Each file through a new inode (copy, then rename): a running server maps slotguard.so, and
  # overwriting a mapped library in place crashes it.
  if [[ -d $WORK/saved ]]; then
    (cd "$WORK/saved" && find . -type f -print0) | while IFS= read -r -d '' f; do
      f=${f#.}
      cp -a "$WORK/saved$f" "$f.sg-restore" && mv -f "$f.sg-restore" "$f"
    done
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

((EUID == 0)) || fail "installing packages needs root (CI runs as root)"

# What the system PostgreSQL has of slotguard now, to put back at the end.
mkdir -p "$WORK/saved"
for f in "$("$PG_CONFIG" --pkglibdir)"/slotguard.so "$("$PG_CONFIG" --sharedir)"/extension/slotguard*; do
  if [[ -e $f ]]; then mkdir -p "$WORK/saved$(dirname "$f")" && cp -a "$f" "$WORK/saved$f"; fi
done

# 1. Build and lint.
DEBS=${SG_PACKAGE_DEBS:-}
if [[ -z $DEBS ]]; then
  log "make package"
  SG_DIST=$WORK/dist make -s -C "$ROOT" package >"$WORK/package.log" 2>&1 ||
    { tail -40 "$WORK/package.log"; fail "make package failed"; }
  DEBS=$WORK/dist
fi
ext_deb=$(ls "$DEBS"/postgresql-15-slotguard_*.deb)
daemon_deb=$(ls "$DEBS"/slotguardd_*.deb)
log "lintian $(basename "$ext_deb") $(basename "$daemon_deb")"
lintian --fail-on error,warning "$ext_deb" "$daemon_deb" || fail "lintian reported errors or warnings"

# 2. Install.
log "dpkg -i"
dpkg -i "$ext_deb" "$daemon_deb" >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -i failed"; }
for p in postgresql-15-slotguard slotguardd; do
  [[ $(dpkg-query -W -f '${Status}' $p) == "install ok installed" ]] || fail "$p is not installed"
  out=$(dpkg --verify $p) || true
  [[ -z $out ]] || fail "dpkg --verify $p: $out"
done
getent passwd slotguard >/dev/null || fail "no user slotguard"
getent group slotguard >/dev/null || fail "no group slotguard"
[[ $(stat -c '%a %U:%G' /etc/slotguard/slotguardd.yaml) == "640 root:slotguard" ]] ||
  fail "configuration: $(stat -c '%a %U:%G' /etc/slotguard/slotguardd.yaml), expected 640 root:slotguard"
[[ $(stat -c '%a %U:%G' /etc/slotguard) == "750 root:slotguard" ]] ||
  fail "/etc/slotguard: $(stat -c '%a %U:%G' /etc/slotguard), expected 750 root:slotguard"
[[ -d /run/slotguard && $(stat -c '%U' /run/slotguard) == slotguard ]] || fail "/run/slotguard missing"
man -w slotguardd >/dev/null 2>&1 && man -w slotguardctl >/dev/null 2>&1 || fail "man pages missing"
dpkg-query -W -f '${Conffiles}' slotguardd | grep -q /etc/slotguard/slotguardd.yaml ||
  fail "the configuration is not a conffile"
/usr/bin/slotguardd --config /etc/slotguard/slotguardd.yaml --check-config >/dev/null ||
  fail "the packaged configuration does not pass --check-config"

# 3. Units.
log "systemd-analyze verify"
out=$(systemd-analyze verify /lib/systemd/system/slotguardd.service \
  /lib/systemd/system/slotguardd.socket 2>&1) || fail "systemd-analyze verify: $out"
[[ -z $out ]] || fail "systemd-analyze verify warns: $out"

# 4. The packaged library in a cluster.
so=$("$PG_CONFIG" --pkglibdir)/slotguard.so
dpkg -S "$so" | grep -q '^postgresql-15-slotguard:' || fail "$so does not belong to the package"
log "cluster on port $PORT preloading $so"
"$ROOT/scripts/pgcluster.sh" start "$CLUSTER" "$PORT" >/dev/null
eval "$("$ROOT/scripts/pgcluster.sh" env "$CLUSTER" "$PORT")"
export PGUSER=postgres PGDATABASE=postgres
psql -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE app" >/dev/null
default_version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" \
  "$("$PG_CONFIG" --sharedir)/extension/slotguard.control")
got=$(psql -qAtX -v ON_ERROR_STOP=1 -d app <<'SQL'
CREATE EXTENSION slotguard;
CREATE ROLE slotguard LOGIN;
GRANT USAGE ON SCHEMA slotguard TO slotguard;
CREATE TABLE rooms_booked (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, room int,
  during tstzrange, version bigint NOT NULL DEFAULT 1);
SELECT slotguard.enable_versioning('rooms_booked');
SELECT slotguard.add_overlap_rule('rooms_booked', 'room_busy', ARRAY['room'], ARRAY['during']);
INSERT INTO rooms_booked (room, during) VALUES (1, '[2026-01-01 10:00, 2026-01-01 11:00)');
UPDATE rooms_booked SET room = 2, version = 1 WHERE id = 1;
SELECT slotguard.create_slot(3, now(), now() + interval '1 hour', 'packaged') \gset
SELECT (slotguard.reserve(:create_slot, 'ann', 1)).status;
SELECT extversion FROM pg_extension WHERE extname = 'slotguard';
SELECT version FROM rooms_booked;
SQL
) || fail "SQL on the packaged extension failed: $got"
[[ $(tail -3 <<<"$got" | tr '\n' ' ') == "pending $default_version 2 " ]] ||
  fail "unexpected SQL results (want a pending booking, version $default_version, row version 2): $got"
err=$(psql -qAtX -d app -c "INSERT INTO rooms_booked (room, during)
  VALUES (2, '[2026-01-01 10:30, 2026-01-01 12:00)')" 2>&1) && fail "the overlap rule did not fire"
[[ $err == *room_busy* ]] || fail "overlap error: $err"

# The packaged slotguard_router, routing to the packaged slotguard of database app.
dpkg -S "$("$PG_CONFIG" --sharedir)/extension/slotguard_router.control" |
  grep -q '^postgresql-15-slotguard:' || fail "slotguard_router.control does not belong to the package"
psql -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE router" >/dev/null
got=$(psql -qAtX -v ON_ERROR_STOP=1 -d router <<SQL 2>&1
CREATE EXTENSION slotguard_router CASCADE;
SELECT slotguard_router.add_shard('host=$PGHOST port=$PGPORT dbname=app user=postgres');
SELECT slotguard.create_slot(1) AS routed_slot \\gset
SELECT (slotguard.reserve(:routed_slot, 'routed')).status;
SQL
) || fail "the packaged slotguard_router failed: $got"
[[ $(tail -1 <<<"$got") == pending ]] || fail "a reserve through the packaged router: $got"

# 5. The packaged daemon, run as its unit runs it.
log "slotguardd as user slotguard with /etc/slotguard/slotguardd.yaml"
# setpriv execs (runuser would fork and stand between us and the daemon's exit status).
setpriv --reuid=slotguard --regid=slotguard --init-groups env PGHOST="$PGHOST" PGPORT="$PGPORT" \
  /usr/bin/slotguardd --config /etc/slotguard/slotguardd.yaml >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 1 100); do
  [[ -S /run/slotguard/slotguardd.sock ]] && slotguardctl health >/dev/null 2>&1 && break
  kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/daemon.log"; fail "slotguardd exited"; }
  sleep 0.1
done
health=$(slotguardctl health) || { cat "$WORK/daemon.log"; fail "slotguardctl health failed"; }
[[ $health == *'"database"'*ok* || $health == *'"ok"'* ]] || fail "health: $health"
[[ $(stat -c '%a %G' /run/slotguard/slotguardd.sock) == "660 slotguard" ]] ||
  fail "socket: $(stat -c '%a %G' /run/slotguard/slotguardd.sock), expected 660 slotguard"
slot=$(psql -qAtX -d app -c "SELECT slotguard.create_slot(2, now(), now() + interval '1 hour', 'd')")
psql -qAtX -d app -c "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA slotguard TO slotguard" >/dev/null
res=$(slotguardctl reserve slot_id="$slot" holder=bob seats=2) || fail "reserve through the daemon: $res"
[[ $res == *'"status": "pending"'* ]] || fail "reserve answered: $res"
res=$(slotguardctl reserve slot_id="$slot" holder=cy seats=1 2>&1) && fail "an oversell was accepted: $res"
[[ $res == *sold_out* ]] || fail "expected sold_out: $res"
kill -TERM "$DAEMON_PID"
rc=0
wait "$DAEMON_PID" || rc=$?
DAEMON_PID=
((rc == 0)) || { cat "$WORK/daemon.log"; fail "slotguardd exited $rc on SIGTERM"; }
"$ROOT/scripts/pgcluster.sh" stop "$CLUSTER" >/dev/null

# 6. Remove, then purge.
log "dpkg -r"
dpkg -r slotguardd postgresql-15-slotguard >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -r"; }
[[ -f /etc/slotguard/slotguardd.yaml ]] || fail "dpkg -r removed the conffile"
[[ ! -e /usr/bin/slotguardd && ! -e $so ]] || fail "dpkg -r left binaries"
log "dpkg -P"
dpkg -P slotguardd postgresql-15-slotguard >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -P"; }
left=()
for p in /usr/bin/slotguardd /usr/bin/slotguardctl /etc/slotguard /run/slotguard \
  /lib/systemd/system/slotguardd.service /lib/systemd/system/slotguardd.socket \
  /usr/lib/sysusers.d/slotguardd.conf /usr/lib/tmpfiles.d/slotguardd.conf \
  /usr/share/doc/slotguardd /usr/share/doc/postgresql-15-slotguard \
  /usr/share/man/man8/slotguardd.8.gz /usr/share/man/man1/slotguardctl.1.gz "$so" \
  "$("$PG_CONFIG" --sharedir)"/extension/slotguard*; do
  [[ -e $p ]] && left+=("$p")
done
left+=($(find /etc/systemd /var/lib/systemd -name '*slotguard*' 2>/dev/null))
getent passwd slotguard >/dev/null && left+=("user slotguard")
getent group slotguard >/dev/null && left+=("group slotguard")
dpkg -l | grep -q slotguard && left+=("dpkg status entries")
((${#left[@]} == 0)) || fail "left behind after purge: ${left[*]}"
log "ok"
