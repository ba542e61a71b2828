#!/usr/bin/env bash
# The property engine's own test, on planted properties (engine_test.c) whose smallest
# counterexamples are known: the shrinker must reach them, through failing checks and
# through crashes; a printed seed must rerun its case; a saved counterexample must replay;
# bad input must get one clear line.
set -uo pipefail
bin=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# 1. A failing check shrinks to the one-element list [700].
out=$("$bin" --property planted_max --run-seed 1 --cases 1000 --save "$work" 2>&1)
code=$?
echo "$out" | tail -20
[ $code -ne 0 ] || bad "planted_max passed"
grep -q "HZPROP-FAILURE: planted_max kind=too-big steps=1 " <<<"$out" && grep -q "1. x = 700$" <<<"$out" \
  && ok "planted_max shrinks to [700]" || bad "planted_max did not shrink to [700]"
file=$(ls "$work"/planted_max-*.ops 2>/dev/null | head -1)
[ -n "$file" ] && ok "counterexample saved as $(basename "$file")" || bad "no counterexample saved"

# 2. The seed printed for the failing case reruns exactly that case.
seed=$(sed -n 's/.*case [0-9]* (seed \(0x[0-9a-f]*\)) failed.*/\1/p' <<<"$out" | head -1)
[ -n "$seed" ] || bad "no case seed printed"
again=$("$bin" --property planted_max --seed "$seed" --no-shrink --save "$work" 2>&1)
first=$(sed -n 's/.*failed \[too-big\]: //p' <<<"$out" | head -1)
grep -qF "failure: [too-big] $first" <<<"$again" && ok "--seed $seed reruns the case ($first)" \
  || bad "--seed $seed did not give '$first': $again"

# 3. The saved counterexample replays: it still fails, the same way, as one step.
if [ -n "$file" ]; then
  rep=$("$bin" --property planted_max --replay "$file" --no-shrink --save "$work" 2>&1)
  [ $? -eq 1 ] && grep -q "kind=too-big steps=1 " <<<"$rep" && ok "the saved file replays" \
    || bad "replay of $file: $rep"
  # A directory replays the files of its property only.
  rep=$("$bin" --property planted_ok --replay "$work" 2>&1)
  [ $? -eq 0 ] && grep -q "0 saved counterexample(s)" <<<"$rep" && ok "a directory replays only its property's files" \
    || bad "directory replay: $rep"
  # A file of another property is refused with one line.
  rep=$("$bin" --property planted_ok --replay "$file" 2>&1)
  [ $? -eq 2 ] && grep -q "is a counterexample of property 'planted_max', not of 'planted_ok'" <<<"$rep" \
    && ok "a file of another property: one clear line" || bad "other property's file: $rep"
fi

# 4. A crash shrinks too (each candidate in a forked child): the minimum is [0, 700].
out=$("$bin" --property planted_crash --run-seed 7 --cases 1000 --save "$work" 2>&1)
echo "$out" | grep -E "HZPROP|^ +[0-9]+\. " | head
grep -q "HZPROP-FAILURE: planted_crash kind=crash:ABRT steps=2 " <<<"$out" && grep -q "1. x = 0$" <<<"$out" \
  && grep -q "2. x = 700$" <<<"$out" && ok "a crash shrinks to [0, 700]" || bad "planted_crash: $out"

# 5. A property that holds passes, and says how many cases it ran.
out=$("$bin" --property planted_ok --cases 500 2>&1)
[ $? -eq 0 ] && grep -q "OK, 500 cases passed" <<<"$out" && ok "planted_ok passes 500 cases" || bad "planted_ok: $out"

# 6. Bad input: one clear line each, exit 2, nothing written.
check_bad() {
  local want=$1; shift
  local o
  o=$("$bin" "$@" 2>&1)
  local c=$?
  [ $c -eq 2 ] && grep -qF -- "$want" <<<"$o" && [ "$(wc -l <<<"$o")" -eq 1 ] && ok "bad input '$*': $o" \
    || bad "bad input '$*' (exit $c): $o"
}
check_bad "--seed 'banana' is not a 64-bit seed" --property planted_ok --seed banana
check_bad "--replay $work/missing-dir: No such file or directory" --property planted_ok --replay "$work/missing-dir"
check_bad "no property 'nope'" --property nope
check_bad "unknown flag '--frobnicate'" --property planted_ok --frobnicate
check_bad "--cases '-3' is not a number of cases" --property planted_ok --cases -3

if [ $fails -ne 0 ]; then echo "engine_test: $fails check(s) failed"; exit 1; fi
echo "engine_test: all checks passed"
