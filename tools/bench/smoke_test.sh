#!/usr/bin/env bash
# The benchmark's smoke test (not a timed test): every workload of allocators.py runs
# once, briefly, under every installed allocator, and allocators.py stops with an error
# unless malloc really came from the library it preloaded. The table must have a row for
# every workload and a column for hz and for glibc.
set -uo pipefail
runner=$1
shift
out=$("$runner" "$@" --reps 1 --iters 40000 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "smoke_test: allocators exited $rc"; exit 1; }
missing=0
for w in $(sed -n '/^WORKLOADS = \[/,/^\]/p' tools/bench/allocators.py | grep -o '"[a-z0-9-]*"' | tr -d '"'); do
  grep -q "^| $w |" <<<"$out" || { echo "smoke_test: no row for workload $w"; missing=$((missing + 1)); }
done
grep -q "| hz |\|| hz " <<<"$out" || { echo "smoke_test: no hz column"; missing=$((missing + 1)); }
[ $missing -eq 0 ] || exit 1
echo "smoke_test: every workload ran under every installed allocator, each from its own library"
