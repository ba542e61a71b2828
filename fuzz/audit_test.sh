#!/bin/bash
# The checker audit keeps its reach: every probe of fuzz/hzf_audit.c breaks its rule, and
# the heap check names it, at a check op of some seed. A probe that finds nothing to
# break on any seed's heap (its target chosen out of existence by a core change, say)
# audits nothing without a sign, and this test names it.
#
#   audit_test.sh REPRO CORPUS_DIR...
set -u
repro=$1
shift
fail() { echo "audit_test: $*" >&2; exit 1; }
[ -x "$repro" ] || fail "repro '$repro' is not an executable"
[ $# -gt 0 ] || fail "no corpus folders given"
set_all=0 count=0 checks=0
for dir in "$@"; do
  [ -d "$dir" ] || fail "corpus folder '$dir' does not exist"
  target=$(basename "$dir")
  for f in "$dir"/*; do
    [ -f "$f" ] || continue
    out=$("$repro" --target "$target" "$f" 2>&1)
    rc=$?
    [ $rc -eq 0 ] || { echo "$out" | tail -20; fail "$f: repro exited $rc"; }
    count=$((count + 1))
    while read -r ran total mask; do
      checks=$((checks + 1))
      set_all=$((set_all | mask))
      all=$(((1 << total) - 1))
    done < <(echo "$out" | sed -n 's/.*audit: \([0-9]*\) of \([0-9]*\) probes.*(set \(0x[0-9a-f]*\)).*/\1 \2 \3/p')
  done
done
[ "$checks" -gt 0 ] || fail "no check op audited anything in $count inputs"
missing=""
for ((i = 0; (1 << i) <= all; i++)); do
  (( set_all >> i & 1 )) || missing="$missing $i"
done
[ -z "$missing" ] || fail "probes never applied in $count seeds ($checks audits): index$missing (fuzz/hzf_audit.c, hzf__probes[])"
printf 'audit_test: %d seeds, %d audits, every probe applied (set 0x%x)\n' "$count" "$checks" "$set_all"
