#!/usr/bin/env bash
# The project's own C++ is clang-format clean (.clang-format at the root).
set -euo pipefail
cd "${SG_REPO:-$(dirname "$0")/../..}"
mapfile -t files < <(git ls-files -- 'common/*.[ch]pp' 'extension/*.[ch]pp' 'daemon/*.[ch]pp' \
  'tests/unit/*.[ch]pp' 'tests/fuzz/*.[ch]pp' 'tests/integration/*.[ch]pp' \
  'tests/integration/**/*.[ch]pp' 'tests/random/*.[ch]pp' 2>/dev/null || true)
((${#files[@]})) || { echo "no C++ files found"; exit 1; }
clang-format --dry-run -Werror "${files[@]}"
echo "ok: ${#files[@]} files clang-format clean"
