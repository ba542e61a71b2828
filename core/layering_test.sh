#!/usr/bin/env bash
# Checks that core's #includes point one way: a file may include only headers of its own
# layer or of a lower one, as listed in the layer table of core/README.md. Also fails when
# a core source or header is missing from the table, so the table stays true.
set -euo pipefail
dir="$(dirname "$0")"
readme="$dir/README.md"
[ -f "$readme" ] || { echo "layering_test: $readme not found" >&2; exit 2; }

declare -A layer
# Table rows: | N | name | `a.h`, `b.h` | `a.c` | ... ; take N and every `file` on the row.
while IFS= read -r row; do
  n=$(sed -E 's/^\| *([0-9]+) *\|.*/\1/' <<<"$row")
  for f in $(grep -oE '`[a-z_]+\.[ch]`' <<<"$row" | tr -d '`'); do layer[$f]=$n; done
done < <(grep -E '^\| *[0-9]+ *\|' "$readme")
[ ${#layer[@]} -gt 10 ] || { echo "layering_test: no layer table parsed from $readme" >&2; exit 2; }

fail=0 checked=0
for path in "$dir"/*.c "$dir"/*.h; do
  f=$(basename "$path")
  case "$f" in *_test.c) continue ;; esac
  if [ -z "${layer[$f]:-}" ]; then
    echo "FAIL $f: not in the layer table of core/README.md"; fail=$((fail + 1)); continue
  fi
  while IFS= read -r inc; do
    [ -n "$inc" ] || continue
    checked=$((checked + 1))
    if [ -z "${layer[$inc]:-}" ]; then
      echo "FAIL $f includes core/$inc, which is not in the layer table"; fail=$((fail + 1))
    elif [ "${layer[$inc]}" -gt "${layer[$f]}" ]; then
      echo "FAIL $f (layer ${layer[$f]}) includes core/$inc (layer ${layer[$inc]}): dependencies point down only"
      fail=$((fail + 1))
    fi
  done < <(sed -nE 's/^#include "core\/([a-z_]+\.h)".*/\1/p' "$path")
done
echo "layering: $checked includes checked"
echo "$((checked - fail)) passed, $fail failed"
[ "$fail" -eq 0 ]
