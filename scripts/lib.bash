# lib.bash: where PostgreSQL 15 is, found once for every shell script of scripts/, tests/ and
# bench/ (sourced, not run; safe under `set -euo pipefail`).
#
#   PG_CONFIG   the pg_config to use (exported): the caller's, else PostgreSQL 15 of the Debian
#               packages (/usr/lib/postgresql/15/bin/pg_config), else pg_config on PATH. The
#               top-level Makefile chooses the same way.
#   PG_BINDIR   its bindir (initdb, pg_ctl, psql, pg_dump, ...), put first on PATH
#   SG_ROOT     the repository's root
#
# sg_require_built FILE...   exits with a message unless each FILE is executable (make all).

# shellcheck disable=SC2034 # SG_ROOT and PG_BINDIR are for the scripts that source this file
SG_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)

if [[ -z ${PG_CONFIG:-} ]]; then
  if [[ -x /usr/lib/postgresql/15/bin/pg_config ]]; then
    PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
  else
    PG_CONFIG=pg_config
  fi
fi
export PG_CONFIG
PG_BINDIR=$("$PG_CONFIG" --bindir)
PATH="$PG_BINDIR:$PATH"

sg_require_built() {
  local f
  for f in "$@"; do
    [[ -x $f ]] || {
      echo "$(basename -- "$0"): missing $f (make all)" >&2
      exit 1
    }
  done
}
