#!/usr/bin/env bash
# tools/coverage on one target's seeds: the coverage build, the replay, the merge, the
# reports (HTML, the per-file summary, the unreached list) and the bad-input messages.
set -uo pipefail
cov=$1
out=${TEST_TMPDIR:-$(mktemp -d)}/cov
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

"$cov" --inputs seeds --targets alloc --out "$out" || fail "tools/coverage exit $?"
[ -s "$out/html/index.html" ] || fail "no HTML report"
total=$(grep '^| \*\*core/ total\*\*' "$out/summary.md")
echo "$total"
# The seeds of one target reach most of the core: a report of nothing is a broken run.
lines=$(sed -E 's/^\| \*\*core\/ total\*\* \| ([0-9]+)\..*/\1/' <<<"$total")
[[ $lines =~ ^[0-9]+$ ]] && [ "$lines" -ge 50 ] || fail "core/ line coverage '$lines' (want >= 50%)"
grep -q '^| core/tcache.c | ' "$out/summary.md" || fail "summary lacks core/tcache.c"
grep -q '^## Functions' "$out/unreached.md" || fail "no unreached list"
# hz_pagemap_reset_lock_after_fork runs only in a forked child: no seed of alloc forks.
grep -q 'hz_pagemap_reset_lock_after_fork' "$out/unreached.md" || fail "unreached list misses a fork-only function"

expect_error() { # text, args...
  local want=$1
  shift
  msg=$("$cov" "$@" 2>&1)
  rc=$?
  if [ $rc = 2 ] && grep -q "$want" <<<"$msg"; then echo "ok: $msg"; else fail "$* -> exit $rc: $msg"; fi
}
expect_error "unknown input kind 'bogus'" --inputs bogus --out "$out"
expect_error "does not exist" --inputs queue:/no/such/folder --out "$out"
expect_error "unknown target 'nope'" --targets nope --out "$out"

[ $fails = 0 ] && echo "coverage_test: all passed"
[ $fails = 0 ]
