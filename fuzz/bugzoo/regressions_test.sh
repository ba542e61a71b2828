#!/usr/bin/env bash
# Replays every saved seeded-bug reproducer (fuzz/bugzoo/regressions/<bug>-<target>.ops):
# the bug's variant must report a finding (exit 86, or 87 for a hang), and the clean core
# under the same flags must pass it. Deterministic, unlike the fuzzing in bugzoo_test.
set -uo pipefail
root=${TEST_SRCDIR:?run me with bazel test}/${TEST_WORKSPACE:?}
bin=$root/fuzz/bugzoo
export HZF_HANG_MS=3000 # a cycle in a list is reported after 3 s instead of 10
fail=0 n=0
for f in "$root"/fuzz/bugzoo/regressions/*.ops; do
  [ -e "$f" ] || { echo "no reproducers in fuzz/bugzoo/regressions/" >&2; exit 1; }
  name=$(basename "$f" .ops) bug=${name%%-*} target=${name#*-}
  n=$((n + 1))
  if [ ! -x "$bin/${bug}_${target}_replay" ] || [ ! -x "$bin/none_${target}_replay" ]; then
    echo "FAIL $name: no replay binary ${bug}_${target}_replay (is $target in BUGZOO_BUGS[$bug]?)"
    fail=1
    continue
  fi
  "$bin/${bug}_${target}_replay" "$f" >"$TEST_TMPDIR/$name.seeded" 2>&1
  seeded=$?
  "$bin/none_${target}_replay" "$f" >"$TEST_TMPDIR/$name.clean" 2>&1
  clean=$?
  finding=$(grep -m1 -o 'HZFUZZ-FINDING: [a-z-]*\|ERROR: AddressSanitizer: [a-z-]*' "$TEST_TMPDIR/$name.seeded")
  if [ "$seeded" -eq 0 ]; then
    echo "FAIL $name: the seeded build passes it (the reproducer no longer finds the bug)"
    fail=1
  elif [ "$clean" -ne 0 ]; then
    echo "FAIL $name: the clean core fails it (exit $clean):"
    tail -20 "$TEST_TMPDIR/$name.clean"
    fail=1
  else
    echo "ok   $name: ${finding:-exit $seeded} on the seeded build, clean core passes"
  fi
done
echo "$n reproducers replayed"
exit $fail
