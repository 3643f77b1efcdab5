#!/usr/bin/env bash
# pgcluster.sh: a throwaway PostgreSQL 15 cluster for tests, `make run` and benchmarks.
#
#   pgcluster.sh start   DIR PORT [key=value ...]   create if needed, (re)start, wait until ready
#   pgcluster.sh stop    DIR                        fast shutdown; harmless if not running
#   pgcluster.sh destroy DIR                        stop, then remove the cluster and DIR
#   pgcluster.sh status  DIR                        exit 0 if running
#   pgcluster.sh env     DIR PORT                   print PGHOST=... lines for `eval`
#
# Layout: DIR/data (PGDATA), DIR/sock (the Unix socket directory; no TCP: listen_addresses=''),
# DIR/log (the server log). The server preloads slotguard (shared_preload_libraries='slotguard');
# key=value arguments are added after the defaults and so override them, e.g.
# shared_preload_libraries= (empty) to start without the extension library. Values are quoted
# for postgresql.conf unless they already start with a quote.
#
# Where the files really are: DIR is a symlink to /tmp/slotguard-pg.<hash of DIR's path>. This
# keeps the socket path short (Unix socket paths are limited to 107 bytes, and a deep checkout
# would exceed it) and lets the postgres OS user reach the files whatever the permissions of the
# checkout. If DIR already is a real directory it is used in place.
#
# PostgreSQL refuses to run as root. When this script runs as root it runs initdb and pg_ctl as
# the postgres OS user (runuser) and gives it the cluster directory.
set -euo pipefail

# shellcheck source=scripts/lib.bash
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"
BINDIR=$PG_BINDIR

die() {
  echo "pgcluster: $*" >&2
  exit 1
}

usage() {
  sed -n '2,10s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

# as_pg runs a command as the postgres OS user when we are root, as ourselves otherwise. It runs
# from / so that the postgres user never needs access to the caller's working directory.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# abspath prints DIR as an absolute path without resolving a final symlink; with "mkparent" it
# creates DIR's parent directory first.
abspath() {
  local d=$1
  [[ $d == /* ]] || d="$PWD/$d"
  d=${d%/}
  local parent base
  parent=$(dirname -- "$d")
  base=$(basename -- "$d")
  [[ ${2:-} == mkparent ]] && mkdir -p -- "$parent"
  if [[ -d $parent ]]; then
    echo "$(cd -- "$parent" && pwd -P)/$base"
  else
    echo "$d"
  fi
}

# shadow prints where the cluster behind DIR lives when DIR is not a real directory.
shadow() {
  echo "${TMPDIR_PG:-/tmp}/slotguard-pg.$(printf '%s' "$1" | md5sum | cut -c1-12)"
}

# resolve prints the real cluster directory behind DIR, creating it (and the symlink) if asked.
resolve() {
  local dir=$1 create=${2:-no} target
  if [[ -L $dir ]]; then
    target=$(readlink -m -- "$dir")
  elif [[ -d $dir ]]; then
    echo "$dir"
    return
  else
    target=$(shadow "$dir")
    # Without "create" this still finds a cluster whose symlink was removed (rm -rf .check).
    [[ $create == yes ]] && ln -sfn -- "$target" "$dir"
  fi
  [[ $create == yes ]] && mkdir -p -- "$target"
  echo "$target"
}

# quote_value renders a setting's value for postgresql.conf.
quote_value() {
  local v=$1
  if [[ $v == \'* ]]; then
    echo "$v"
  else
    echo "'${v//\'/\'\'}'"
  fi
}

is_running() {
  local real=$1
  [[ -f $real/data/postmaster.pid ]] || return 1
  as_pg "$BINDIR/pg_ctl" status -D "$real/data" >/dev/null 2>&1
}

cmd_start() {
  (($# >= 2)) || usage
  local dir port real
  dir=$(abspath "$1" mkparent)
  port=$2
  shift 2
  [[ $port =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
  real=$(resolve "$dir" yes)

  local sockpath="$real/sock/.s.PGSQL.$port"
  ((${#sockpath} <= 107)) || die "socket path too long (${#sockpath} > 107 bytes): $sockpath"

  if [[ $(id -u) -eq 0 ]]; then
    id -u postgres >/dev/null 2>&1 || die "running as root needs the postgres OS user (make deps)"
    chown postgres:postgres "$real"
    # The postgres user must be able to reach the cluster directory.
    runuser -u postgres -- test -x "$real" -a -w "$real" ||
      die "the postgres OS user cannot write $real; use a directory it can reach"
  fi

  if is_running "$real"; then
    echo "pgcluster: restarting the server in $dir"
    as_pg "$BINDIR/pg_ctl" stop -D "$real/data" -m fast -w >/dev/null
  fi

  if [[ ! -f $real/data/PG_VERSION ]]; then
    rm -rf -- "${real:?}/data"
    as_pg mkdir -p "$real/data" "$real/sock"
    as_pg "$BINDIR/initdb" -D "$real/data" -A trust -U postgres --no-sync \
      --encoding=UTF8 --no-locale >"$real/initdb.log" 2>&1 || {
      cat "$real/initdb.log" >&2
      die "initdb failed"
    }
    # Our settings live in their own file, rewritten on every start.
    echo "include_if_exists = 'pgcluster.conf'" | as_pg tee -a "$real/data/postgresql.conf" >/dev/null
  fi
  as_pg mkdir -p "$real/sock"

  {
    echo "# written by scripts/pgcluster.sh on every start; edits are lost"
    echo "port = $port"
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$real/sock'"
    echo "shared_preload_libraries = 'slotguard'"
    echo "fsync = off"
    echo "log_line_prefix = '%m [%p] %q%u@%d '"
    echo "log_min_messages = warning"
    local kv
    for kv in "$@"; do
      [[ $kv == *=* ]] || die "setting must be key=value, got '$kv'"
      echo "${kv%%=*} = $(quote_value "${kv#*=}")"
    done
  } | as_pg tee "$real/data/pgcluster.conf" >/dev/null

  local logstart
  logstart=$(($(stat -c %s "$real/log" 2>/dev/null || echo 0) + 1))
  if ! as_pg "$BINDIR/pg_ctl" start -D "$real/data" -l "$real/log" -w -t 60 >/dev/null; then
    echo "pgcluster: the server did not start; from $real/log:" >&2
    tail -c "+$logstart" "$real/log" | tail -n 30 >&2 || true
    exit 1
  fi
  local i
  for ((i = 0; i < 120; i++)); do
    if "$BINDIR/pg_isready" -q -h "$real/sock" -p "$port" -U postgres; then
      echo "pgcluster: running in $dir; connect with:"
      echo "  psql -h $real/sock -p $port -U postgres"
      return 0
    fi
    sleep 0.5
  done
  tail -c "+$logstart" "$real/log" | tail -n 30 >&2 || true
  die "the server in $dir did not become ready"
}

cmd_stop() {
  (($# == 1)) || usage
  local dir real
  dir=$(abspath "$1")
  real=$(resolve "$dir")
  [[ -f $real/data/postmaster.pid ]] || return 0
  as_pg "$BINDIR/pg_ctl" stop -D "$real/data" -m fast -w -t 60 >/dev/null 2>&1 || true
  if is_running "$real"; then
    as_pg "$BINDIR/pg_ctl" stop -D "$real/data" -m immediate -w -t 30 >/dev/null 2>&1 || true
  fi
}

cmd_destroy() {
  (($# == 1)) || usage
  local dir real f
  dir=$(abspath "$1")
  real=$(resolve "$dir")
  cmd_stop "$1"
  if [[ -d $real ]]; then
    # Remove only what this script made: never a directory holding anything else.
    for f in "$real"/* "$real"/.[!.]*; do
      [[ -e $f ]] || continue
      case ${f##*/} in
        data | sock | log | initdb.log) ;;
        *) die "not removing $real: it holds ${f##*/}, which pgcluster.sh did not create" ;;
      esac
    done
    rm -rf -- "$real"
  fi
  if [[ -L $dir ]]; then rm -f -- "$dir"; fi
  return 0
}

cmd_status() {
  (($# == 1)) || usage
  local real
  real=$(resolve "$(abspath "$1")")
  is_running "$real"
}

cmd_env() {
  (($# == 2)) || usage
  local real
  real=$(resolve "$(abspath "$1")")
  echo "export PGHOST=$real/sock PGPORT=$2 PGUSER=postgres PGDATABASE=postgres"
}

(($# >= 1)) || usage
command=$1
shift
case $command in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  destroy) cmd_destroy "$@" ;;
  status) cmd_status "$@" ;;
  env) cmd_env "$@" ;;
  *) usage ;;
esac
