#!/usr/bin/env bash
# tools/fuzz_ab in miniature: two sides (the same binaries) replay three inputs, one
# round, and the table has a row per target with a ratio; bad usage is named, exit 2.
set -uo pipefail
ab=$1 bins=$2
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
tmp=${TEST_TMPDIR:-$(mktemp -d)}

"$ab" --base-bin "$bins" --new-bin "$bins" --targets tls_sll,mt --inputs 3 --rounds 1 \
  >"$tmp/out" 2>"$tmp/err" || fail "the run exited $?: $(cat "$tmp/err")"
for t in tls_sll mt; do
  grep -Eq "^\| $t \| [0-9.]+ \| [0-9.]+ \| \*\*[0-9.]+x\*\* \| [0-9.]+ \| [0-9.]+x \|$" "$tmp/out" ||
    fail "no table row for $t: $(cat "$tmp/out")"
done
grep -q "round 1 mt       new" "$tmp/err" || fail "no per-run line on stderr"

# expect_error PATTERN ARGS...: the tool exits 2 and says PATTERN.
expect_error() {
  local pattern=$1
  shift
  "$ab" "$@" >/dev/null 2>"$tmp/e"
  local rc=$?
  [ $rc = 2 ] || fail "fuzz_ab $* exited $rc, not 2"
  grep -q -- "$pattern" "$tmp/e" || fail "fuzz_ab $*: stderr lacks '$pattern': $(cat "$tmp/e")"
}
expect_error "unknown target 'nope'" --base-bin "$bins" --new-bin "$bins" --targets nope
expect_error "has no executable tls_sll_fuzzer_bin" --base-bin "$tmp/none" --new-bin "$bins"
expect_error "exactly one of --base REV and --base-bin" --new-bin "$bins"

[ $fails = 0 ] && echo "fuzz_ab_test: passed"
exit $((fails > 0))
