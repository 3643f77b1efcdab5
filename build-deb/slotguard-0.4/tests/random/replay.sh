#!/usr/bin/env bash
# replay.sh LOG [N]: turns sg_random_api's statement log into a psql script that runs the
# statements 1..N (all by default) in one session, each as the role that ran it (SET SESSION
# AUTHORIZATION), and prints it. Run it in the database sg_random_api made (after its setup), e.g.
#   tests/random/replay.sh build/integration/random_api.statements.sql 14060 | psql -X -d sg_random
# The setup statements (roles, database, fixture) are those at the top of random_api.cpp's main().
set -euo pipefail
log=$1
upto=${2:-0}
echo "\\set ON_ERROR_STOP 0"
echo "SET statement_timeout = '5s'; SET lock_timeout = '2s';"
awk -v upto="$upto" '
  /^-- #[0-9]+ as / {
    n = substr($2, 2) + 0
    if (upto > 0 && n > upto) exit
    printf "\\echo #%d\n", n
    if ($4 == "postgres") print "RESET SESSION AUTHORIZATION;"
    else printf "SET SESSION AUTHORIZATION %s;\n", $4
    next
  }
  /^-- / { next }
  { print }
' "$log"
