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

# A finding that ends the process prints the hzfuzz report, named for what it was, in
# the replay driver, in repro (after its trace, on stdout) and in the libFuzzer binary
# (which still writes its crash file):
# an hz internal assertion (USED_SKIPS_SLL with HZ_DEBUG=1) is "abort", an ASan report
# (REALLOC_COPY) and ASan's SEGV (FOREIGN_CLAIMED) are "sanitizer".
decode=$root/tools/decode
death() { # death NAME BUILD TARGET CHECK PATTERN REPRO: BUILD's binaries and REPRO on NAME.ops
  local name=$1 build=$2 target=$3 check=$4 pattern=$5 repro=$bin/$6 f=$root/fuzz/bugzoo/regressions/$1.ops
  local out=$TEST_TMPDIR/death-$build
  ("$bin/${build}_replay" "$f"; exit $?) >"$out.replay" 2>&1 # the shell's "Aborted" goes there too
  local rc=$?
  if [ $rc = 0 ] || ! grep -q "^HZFUZZ-FINDING: $check op #[0-9]*: $pattern" "$out.replay" ||
     ! grep -q "^replay: " "$out.replay"; then
    echo "FAIL $name on ${build}_replay (exit $rc): no '$check' report matching '$pattern':"
    tail -15 "$out.replay"
    fail=1
    return
  fi
  ("$repro" --quiet --target "${target}_fuzzer" "$f"; exit $?) >"$out.repro" 2>"$out.repro-err"
  rc=$?
  if [ $rc = 0 ] || ! grep -q "^HZFUZZ-FINDING: $check op #[0-9]*: $pattern" "$out.repro" ||
     ! grep -q "^replay: *bazel run //tools:repro -- --target ${target}_fuzzer $f" "$out.repro"; then
    echo "FAIL $name on $(basename "$repro") (exit $rc): no '$check' report matching '$pattern' on stdout:"
    tail -15 "$out.repro" "$out.repro-err"
    fail=1
    return
  fi
  mkdir -p "$out.corpus" "$out.crashes"
  "$decode" --target "${target}_fuzzer" --encode "$f" "$out.corpus/input" || { fail=1; return; }
  HZF_FINDINGS_DIR=$out.crashes "$bin/${build}_fuzzer" -runs=2 -artifact_prefix="$out.crashes/" \
    "$out.corpus" >"$out.fuzzer" 2>&1
  rc=$?
  if [ $rc = 0 ] || ! grep -q "^HZFUZZ-FINDING: $check op #[0-9]*: $pattern" "$out.fuzzer" ||
     ! grep -q "^replay: .*$out.crashes/finding-" "$out.fuzzer" ||
     ! ls "$out.crashes"/crash-* >/dev/null 2>&1 || ! ls "$out.crashes"/finding-* >/dev/null 2>&1; then
    echo "FAIL $name on ${build}_fuzzer (exit $rc): no '$check' report, replay line, finding- and crash- file:"
    tail -25 "$out.fuzzer"
    ls "$out.crashes"
    fail=1
    return
  fi
  echo "ok   $name: '$check' report in ${build}_replay, $(basename "$repro") and ${build}_fuzzer"
}
death used_skips_sll-reuse used_skips_sll_assert_reuse reuse abort "abort() during op" used_skips_sll_assert_repro
grep -q "hz: internal assertion failed" "$TEST_TMPDIR/death-used_skips_sll_assert_reuse.replay" ||
  { echo "FAIL used_skips_sll_assert_reuse_replay: no hz internal assertion"; fail=1; }
death realloc_copy-realloc realloc_copy_realloc realloc sanitizer "AddressSanitizer: use-after-poison" realloc_copy_repro
death foreign_claimed-ptag foreign_claimed_ptag ptag sanitizer "AddressSanitizer: SEGV" foreign_claimed_repro
exit $fail
