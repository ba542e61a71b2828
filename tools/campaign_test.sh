#!/usr/bin/env bash
# tools/campaign end to end, in about a minute:
#   1. 10 s on the clean core (alloc, 2 instances): exit 0, no findings, the queues merged
#      by afl-cmin into a working corpus, a report in Markdown and HTML;
#   2. the same output folder again: the campaign resumes (-i -);
#   3. 8 s on the CALLOC_DIRTY build (realloc) seeded with a corpus holding that bug's
#      reproducer: exit 1, one finding group "model: calloc-zero", written as an op list
#      that fails the same way through the seeded replay driver and passes on the clean one;
#   4. a second run of 3: the same finding is not new, exit 0;
#   5. bad input: unknown target, missing corpus folder, read-only output folder.
set -uo pipefail

campaign=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
rf=$(pwd) # the runfiles root: fuzz/, tools/, corpus/ as Bazel lays them out
tmp=${TEST_TMPDIR:-$(mktemp -d)}
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# 1. clean
"$campaign" --targets alloc --time 10 --cores 2 --tmin-time 0 --bin-dir "$rf" \
  --out "$tmp/clean" >"$tmp/clean.log" 2>&1
rc=$?
cat "$tmp/clean.log"
[ $rc = 0 ] && ok "clean campaign exits 0" || fail "clean campaign exit $rc"
grep -q '^| alloc | [1-9][0-9]* |' "$tmp/clean/report.md" && ok "report has execs" ||
  fail "no execs row in report.md"
grep -q 'No findings.' "$tmp/clean/report.md" && ok "clean core: no findings" || fail "clean core reported findings"
n=$(ls "$tmp/clean/alloc/corpus" 2>/dev/null | wc -l)
[ "$n" -gt 0 ] && ok "cmin merged corpus: $n inputs" || fail "no merged corpus"
grep -q 'after afl-cmin: [1-9]' "$tmp/clean/report.md" || fail "report lacks the cmin count"
grep -q '<table>' "$tmp/clean/report.html" && ok "HTML report" || fail "no HTML report"
# A glob, not `ls | grep -q`: under pipefail grep's early exit can kill ls with SIGPIPE
# once a queue outgrows one pipe write, and the check would fail on a full queue.
compgen -G "$tmp/clean/alloc/sync/main/queue/id:*" >/dev/null || fail "main instance has no queue"
compgen -G "$tmp/clean/alloc/sync/cmplog/queue/id:*" >/dev/null || fail "cmplog instance has no queue"

# 2. resume
"$campaign" --targets alloc --time 3 --cores 2 --tmin-time 0 --bin-dir "$rf" \
  --out "$tmp/clean" >"$tmp/resume.log" 2>&1
rc=$?
[ $rc = 0 ] && grep -q 'alloc: resuming' "$tmp/resume.log" && ok "resume" ||
  { cat "$tmp/resume.log"; fail "resume (exit $rc)"; }

# 3. seeded: a layout in which the seeded binaries stand where the campaign looks
seeded=$tmp/seeded-bin
mkdir -p "$seeded/fuzz" "$seeded/tools"
for k in "" _cmplog _fast; do
  ln -sf "$rf/fuzz/bugzoo/realloc_fuzzer_afl$k" "$seeded/fuzz/realloc_fuzzer_afl$k"
done
ln -sf "$rf/fuzz/bugzoo/calloc_dirty_realloc_replay" "$seeded/fuzz/realloc_fuzzer_replay"
ln -sf "$rf/tools/decode" "$seeded/tools/decode"
mkdir -p "$tmp/seeds"
cp corpus/realloc_fuzzer/* "$tmp/seeds/"
"$rf/tools/decode" --target realloc_fuzzer --encode fuzz/bugzoo/regressions/calloc_dirty-realloc.ops \
  "$tmp/seeds/calloc_dirty" || fail "cannot encode the reproducer"
"$campaign" --targets realloc --time 8 --cores 2 --tmin-time 5 --bin-dir "$seeded" \
  --corpus "$tmp/seeds" --out "$tmp/seeded" >"$tmp/seeded.log" 2>&1
rc=$?
cat "$tmp/seeded.log"
[ $rc = 1 ] && ok "seeded campaign exits 1" || fail "seeded campaign exit $rc (want 1)"
ops=$(ls "$tmp/seeded/realloc/findings/"*calloc_zero*.ops 2>/dev/null | head -1)
if [ -n "$ops" ]; then
  ok "finding written: $(basename "$ops")"
  grep -q "^# Replay: $seeded/fuzz/realloc_fuzzer_replay $ops" "$ops" || fail "no replay line"
  out=$("$rf/fuzz/bugzoo/calloc_dirty_realloc_replay" "$ops" 2>&1)
  grep -q 'HZFUZZ-FINDING: calloc-zero' <<<"$out" && ok "the op list fails as calloc-zero on the seeded build" ||
    fail "the op list does not reproduce: $(tail -3 <<<"$out")"
  "$rf/fuzz/realloc_fuzzer_replay" "$ops" >/dev/null 2>&1 && ok "and passes on the clean build" ||
    fail "the op list fails on the clean build"
else
  fail "no calloc-zero finding in $tmp/seeded/realloc/findings"
fi
grep -q 'model: calloc-zero' "$tmp/seeded/report.md" || fail "report lacks the finding"

# 4. the same finding again is not new
"$campaign" --targets realloc --time 3 --cores 1 --tmin-time 0 --bin-dir "$seeded" \
  --corpus "$tmp/seeds" --out "$tmp/seeded" >"$tmp/again.log" 2>&1
rc=$?
# (The seeded build may show more than the one group in 8 s; none of them is new.)
[ $rc = 0 ] && grep -qE ' [1-9][0-9]* finding group\(s\), 0 new' "$tmp/again.log" && ok "a known finding is not new" ||
  { cat "$tmp/again.log"; fail "second seeded run exit $rc"; }

# 5. bad input: one line naming the problem, exit 2
expect_error() { # expected-text, args...
  local want=$1
  shift
  out=$("$campaign" --bin-dir "$rf" "$@" 2>&1)
  rc=$?
  if [ $rc = 2 ] && grep -q "$want" <<<"$out"; then ok "error: $out"; else fail "$* -> exit $rc: $out"; fi
}
expect_error "unknown target 'nosuch'" --targets nosuch --time 1
expect_error "does not exist" --targets alloc --time 1 --corpus "$tmp/no-such-folder"
mkdir -p "$tmp/ro"
chmod 555 "$tmp/ro"
if [ "$(id -u)" = 0 ]; then
  # root writes anywhere: a path under a regular file is what cannot be written
  touch "$tmp/file"
  expect_error "not writable" --targets alloc --time 1 --out "$tmp/file/out"
else
  expect_error "not writable" --targets alloc --time 1 --out "$tmp/ro/out"
fi
expect_error "time must be" --targets alloc --time 0

[ $fails = 0 ] && echo "campaign_test: all passed" || echo "campaign_test: $fails failed"
[ $fails = 0 ]
