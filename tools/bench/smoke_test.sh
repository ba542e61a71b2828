#!/usr/bin/env bash
# The benchmark's smoke test (not a timed test): every workload of allocators.py runs
# once, briefly, under every installed allocator, and allocators.py stops with an error
# unless malloc really came from the library it preloaded. Each of the four tables
# (throughput, peak RSS, detection cost, hz against the best peer) must have a row for
# every workload, there must be a column for hz, and the summary must give its two
# geometric means and say whether the targets were met.
set -uo pipefail
runner=$1
shift
out=$("$runner" "$@" --reps 1 --iters 40000 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "smoke_test: allocators exited $rc"; exit 1; }
missing=0
for w in $(sed -n '/^WORKLOADS = \[/,/^\]/p' tools/bench/allocators.py | grep -o '"[a-z0-9-]*"' | tr -d '"'); do
  rows=$(grep -c "^| $w |" <<<"$out")
  [ "$rows" -eq 4 ] || { echo "smoke_test: $rows rows for workload $w, not 4"; missing=$((missing + 1)); }
done
grep -q "| hz |\|| hz " <<<"$out" || { echo "smoke_test: no hz column"; missing=$((missing + 1)); }
for line in "^Time, hz over the fastest peer: geometric mean [0-9.]*x over [0-9]* workloads; worst " \
            "^Peak RSS, hz over the smallest peer: geometric mean [0-9.]*x over [0-9]* workloads; worst " \
            "^Target .*met"; do
  grep -q "$line" <<<"$out" || { echo "smoke_test: no line matching '$line'"; missing=$((missing + 1)); }
done
[ $missing -eq 0 ] || exit 1
echo "smoke_test: every workload ran under every installed allocator, each from its own library; the summary is there"
