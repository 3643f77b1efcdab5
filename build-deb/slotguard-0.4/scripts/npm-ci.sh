#!/usr/bin/env bash
# npm-ci.sh APP_DIR: installs a Node application's npm packages exactly as its package-lock.json
# pins them (`npm ci`), unless they already are: the stamp node_modules/.slotguard-lock holds the
# checksum of the lockfile they were installed from. Used by `make deps` (for every app under
# tests/apps/) and by the app tests themselves (tests/apps/lib.bash).
set -euo pipefail
app=${1:?usage: npm-ci.sh APP_DIR}
lock=$app/package-lock.json
[[ -f $lock ]] || { echo "npm-ci: no $lock" >&2; exit 1; }
sum=$(sha256sum "$lock" | cut -d' ' -f1)
stamp=$app/node_modules/.slotguard-lock
if [[ -f $stamp && $(cat "$stamp") == "$sum" ]]; then exit 0; fi
echo "npm ci in $app"
(cd "$app" && npm ci --no-audit --no-fund --loglevel=error)
echo "$sum" >"$stamp"
