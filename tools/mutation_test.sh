#!/usr/bin/env bash
# Smoke test of tools/mutation: libclang finds mutation points in the real core, a
# seeded sample of 3 mutants of core/sizeclass.c runs through a real kill check (the
# sizeclass unit test, compiled directly with clang against the mutated core), results
# are written and resumed, the report has its table, a check that the unmutated core
# fails is refused, a hand-written bug given as a patch runs the same way, and bad flags
# and bad patches are refused.
set -uo pipefail
tool=$1
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
tmp=${TEST_TMPDIR:-$(mktemp -d)}
root=$tmp/root
mkdir -p "$root"
cp -rL core "$root/"
out=$tmp/out

# The kill check: the size-class unit test against the whole (mutated) checked core.
check='srcs=$(ls core/*.c | grep -v -e _test.c -e preload.c); clang -std=c11 -D_GNU_SOURCE -DHZ_DEBUG=2 -I. $srcs core/testing/hz_test.c core/sizeclass_test.c -lpthread -o t && ./t'

"$tool" --root "$root" --list --sample 3 --seed 4 --files core/sizeclass.c >"$tmp/list" 2>&1 ||
  fail "--list failed: $(cat "$tmp/list")"
total=$(awk 'NR == 1 {print $1}' "$tmp/list")
[ "${total:-0}" -ge 1000 ] || fail "only ${total:-0} mutation points found in core/"
[ "$(grep -c ' core/sizeclass.c:' "$tmp/list")" = 3 ] || fail "the sample is not 3 mutants of sizeclass.c"

"$tool" --root "$root" --sample 3 --seed 4 --files core/sizeclass.c --out "$out" --check "$check" \
  >"$tmp/run" 2>&1 || fail "the run failed: $(tail -5 "$tmp/run")"
[ "$(wc -l <"$out/results.jsonl")" = 3 ] || fail "results.jsonl does not have 3 mutants"
grep -q '"status": "killed", "by": "check"' "$out/results.jsonl" ||
  fail "no mutant of the size-class tables was killed by their unit test: $(cat "$out/results.jsonl")"
grep -q '^| \*\*all\*\* | 3 |' "$tmp/run" || fail "no score table: $(tail -5 "$tmp/run")"
cmp -s core/sizeclass.c "$root/core/sizeclass.c" || fail "the mutated file was not restored in the source tree"
cmp -s core/sizeclass.c "$out/ws/core/sizeclass.c" || fail "the mutated file was not restored in the workspace"

# Resume: nothing left to run.
"$tool" --root "$root" --sample 3 --seed 4 --files core/sizeclass.c --out "$out" --check false \
  >"$tmp/again" 2>&1
grep -q "3 done, 0 to run" "$tmp/again" || fail "a second run re-ran mutants: $(head -3 "$tmp/again")"

# A check the unmutated core fails would "kill" every mutant: the run refuses to start.
"$tool" --root "$root" --sample 1 --seed 4 --files core/sizeclass.c --out "$tmp/out2" \
  --check false >"$tmp/clean" 2>&1
[ $? = 1 ] && grep -q "fails on the unmutated core" "$tmp/clean" ||
  fail "a check failing on the unmutated core was not refused: $(tail -3 "$tmp/clean")"
[ ! -s "$tmp/out2/results.jsonl" ] || fail "a refused run recorded results"

# A hand-written bug as a patch: a class boundary one granule off, which the same check
# kills; the patched file is put back; a patch outside core/ or one that no longer
# applies is refused before anything runs.
mkdir -p "$tmp/patches/x"
sed '0,/    0, 0, 1, 2, 3,/s//    0, 0, 1, 1, 3,/' core/sizeclass.c >"$tmp/patches/x/sizeclass.c"
(cd "$tmp/patches" && diff -u --label a/core/sizeclass.c --label b/core/sizeclass.c \
  "$root/core/sizeclass.c" x/sizeclass.c >granule.diff)
[ $? = 1 ] || fail "could not make the test patch"
"$tool" --root "$root" --list --patch "$tmp/patches/granule.diff" --out "$tmp/out3" >"$tmp/plist" 2>&1 ||
  fail "--list --patch failed: $(cat "$tmp/plist")"
grep -q '^1 patches$' "$tmp/plist" && grep -q ' core/sizeclass.c:[0-9]* patch  *granule.diff$' "$tmp/plist" ||
  fail "--list --patch does not list the patch: $(cat "$tmp/plist")"
[ ! -e "$tmp/out3/results.jsonl" ] || fail "--list --patch ran the patch"
"$tool" --root "$root" --patch "$tmp/patches/granule.diff" --out "$tmp/out3" --check "$check" \
  >"$tmp/patch" 2>&1 || fail "the patch run failed: $(tail -5 "$tmp/patch")"
grep -q '"kind": "patch", "desc": "granule.diff", "status": "killed", "by": "check"' \
  "$tmp/out3/results.jsonl" || fail "the patched bug was not killed: $(cat "$tmp/out3/results.jsonl")"
grep -q '^| core/sizeclass.c | 1 |' "$tmp/patch" || fail "no table row for the patch: $(tail -5 "$tmp/patch")"
cmp -s core/sizeclass.c "$tmp/out3/ws/core/sizeclass.c" || fail "the patched file was not restored"
sed 's|core/sizeclass.c|fuzz/hzf_model.c|' "$tmp/patches/granule.diff" >"$tmp/patches/suite.diff"
"$tool" --root "$root" --patch "$tmp/patches/suite.diff" --out "$tmp/out3" --check true >"$tmp/err" 2>&1
[ $? = 2 ] && grep -q "changes fuzz/hzf_model.c: a patch may change only core/" "$tmp/err" ||
  fail "a patch of the suite was not refused: $(cat "$tmp/err")"
sed 's|^-    0, 0, 1, 2, 3,|-    0, 0, 9, 9, 9,|' "$tmp/patches/granule.diff" >"$tmp/patches/stale.diff"
"$tool" --root "$root" --patch "$tmp/patches/stale.diff" --out "$tmp/out3" --check true >"$tmp/err" 2>&1
[ $? = 2 ] && grep -q "stale.diff does not apply to the current tree" "$tmp/err" ||
  fail "a stale patch was not refused: $(cat "$tmp/err")"
"$tool" --root "$root" --patch "$tmp/patches/none.diff" --out "$tmp/out3" >"$tmp/err" 2>&1
[ $? = 2 ] && grep -q "no patch file .*none.diff" "$tmp/err" || fail "missing patch: $(cat "$tmp/err")"
"$tool" --root "$root" --patch core/hz.h --out "$tmp/out3" >"$tmp/err" 2>&1
[ $? = 2 ] && grep -q "is not a unified diff" "$tmp/err" || fail "not a diff: $(cat "$tmp/err")"

# Bad input: one clear line, exit 2.
"$tool" --root "$root" --files core/nope.c --list >"$tmp/err" 2>&1
[ $? = 2 ] && grep -q "core/nope.c is not a core source" "$tmp/err" || fail "unknown file: $(cat "$tmp/err")"
"$tool" --root "$root" --sample 0 --list >"$tmp/err" 2>&1
[ $? = 2 ] && grep -q "at least 1" "$tmp/err" || fail "--sample 0: $(cat "$tmp/err")"
"$tool" --root "$root" --stages replay,afl --list >"$tmp/err" 2>&1
[ $? = 2 ] && grep -q "comma list of replay, fuzz, unit" "$tmp/err" || fail "--stages afl: $(cat "$tmp/err")"
"$tool" --root "$tmp" --list >"$tmp/err" 2>&1
[ $? = 2 ] && grep -q "not the hzfuzz workspace" "$tmp/err" || fail "wrong root: $(cat "$tmp/err")"

if [ $fails = 0 ]; then echo "mutation_test: all passed ($total mutation points)"; fi
[ $fails = 0 ]
