#!/usr/bin/env bash
# docs_links.sh: the documentation stands on its own. Every relative link in README.md, docs/*.md,
# bench/README.md and tests/apps/**/README.md points at a file or directory of the repository, and
# a link with a #fragment names a heading of its target (GitHub's anchor rules); no page refers to
# files outside the repository. Needs no cluster (bash, awk, grep, sed only).
set -euo pipefail
cd "${SG_REPO:-$(dirname "$0")/../..}"

mapfile -t pages < <(ls README.md docs/*.md bench/README.md tests/apps/README.md \
  tests/apps/*/README.md 2>/dev/null)
((${#pages[@]})) || { echo "no documentation found"; exit 1; }

# outside_code FILE: the file's lines outside ``` fences (links in code are not links).
outside_code() { awk '/^[[:space:]]*```/ { fence = !fence; next } !fence' "$1"; }

# anchors FILE: the GitHub anchors of the file's headings, one a line (duplicates get -1, -2, ...).
anchors() {
  outside_code "$1" | sed -n 's/^#\{1,6\}[[:space:]]\{1,\}//p' |
    tr '[:upper:]' '[:lower:]' | sed -e 's/[^a-z0-9 _-]//g' -e 's/ /-/g' |
    awk '{ n = seen[$0]++; print (n ? $0 "-" n : $0) }'
}

failures=0
links=0
for page in "${pages[@]}"; do
  dir=$(dirname "$page")
  while IFS= read -r target; do
    links=$((links + 1))
    case "$target" in
    http://* | https://* | mailto:*) continue ;;
    esac
    path=${target%%#*}
    fragment=
    [[ "$target" == *"#"* ]] && fragment=${target#*#}
    if [[ -z "$path" ]]; then
      file=$page
    else
      file=$dir/$path
    fi
    if [[ ! -e "$file" ]]; then
      echo "$page: link to $target: no such file ($file)"
      failures=$((failures + 1))
      continue
    fi
    if [[ -n "$fragment" ]]; then
      if [[ -d "$file" || "$file" != *.md ]] || ! anchors "$file" | grep -qxF -- "$fragment"; then
        echo "$page: link to $target: no heading with anchor #$fragment in $file"
        failures=$((failures + 1))
      fi
    fi
  done < <(outside_code "$page" | grep -o '\]([^)[:space:]]*)' | sed -e 's/^](//' -e 's/)$//')
done

# Every file of the repository a page names in `code` (extension/reserve.cpp, daemon/config.*,
# common/error_contract.{hpp,cpp}; from the root or from the page's directory) exists: the map of
# the code follows the code.
while IFS=: read -r page path; do
  links=$((links + 1))
  [[ "$path" == *"<"* ]] && continue # a pattern (tests/fuzz/<target>/), not a file
  prefix=${path%%[\{\*]*}
  prefix=${prefix%/}
  if ! compgen -G "$prefix*" >/dev/null && ! compgen -G "$(dirname "$page")/$prefix*" >/dev/null; then
    echo "$page: names $path, which is not in the repository"
    failures=$((failures + 1))
  fi
done < <(for page in "${pages[@]}"; do
  # shellcheck disable=SC2016 # the backquotes are Markdown's, not the shell's
  { grep -oE '`(extension|daemon|common|tests|bench|scripts|packaging|sql)/[^` ]*`' "$page" || true; } |
    tr -d '`' | sed "s|^|$page:|"
done | sort -u)

# Nothing outside the repository is cited.
if grep -nE '/work/|SPEC\.md|baselines\.md|seeds/' "${pages[@]}"; then
  echo "the pages above cite files outside the repository"
  failures=$((failures + 1))
fi

if ((failures)); then
  echo "FAIL: $failures broken link(s) in ${#pages[@]} pages"
  exit 1
fi
echo "ok: $links links in ${#pages[@]} pages resolve"
