#!/usr/bin/env bash
# Smoke test of tools/mutation: libclang finds mutation points in the real core, a
# seeded sample of 3 mutants of core/sizeclass.c runs through a real kill check (the
# sizeclass unit test, compiled directly with clang against the mutated core), results
# are written and resumed, the report has its table, a check that the unmutated core
# fails is refused, and bad flags are refused.
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

# Bad input: one clear line, exit 2.
"$tool" --root "$root" --files core/nope.c --list >"$tmp/err" 2>&1
[ $? = 2 ] && grep -q "core/nope.c is not a core source" "$tmp/err" || fail "unknown file: $(cat "$tmp/err")"
"$tool" --root "$root" --sample 0 --list >"$tmp/err" 2>&1
[ $? = 2 ] && grep -q "at least 1" "$tmp/err" || fail "--sample 0: $(cat "$tmp/err")"
"$tool" --root "$tmp" --list >"$tmp/err" 2>&1
[ $? = 2 ] && grep -q "not the hzfuzz workspace" "$tmp/err" || fail "wrong root: $(cat "$tmp/err")"

if [ $fails = 0 ]; then echo "mutation_test: all passed ($total mutation points)"; fi
[ $fails = 0 ]
