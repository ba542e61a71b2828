#!/usr/bin/env bash
# tools/soak in miniature: a real arm runs 3 s and its execs are counted from libFuzzer's
# stats; an arm that finds something makes the run fail and names the finding and its
# replay; SIGTERM stops every arm; bad usage is named, exit 2.
set -uo pipefail
soak=$1 bins=$PWD/$2
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
tmp=${TEST_TMPDIR:-$(mktemp -d)}
# The seed corpora are this test's data, in the runfiles tree.
export BUILD_WORKSPACE_DIRECTORY=$PWD

"$soak" --bin-dir "$bins" --arms tls_sll --time 3 --jobs 1 --out "$tmp/real" \
  >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 0 ] || fail "a clean 3 s arm exited $rc: $(cat "$tmp/err")"
grep -Eq '^\| tls_sll \| [0-9]+ \| [1-9][0-9]* \| [0-9]+ \| clean \|$' "$tmp/out" ||
  fail "no clean tls_sll row with a nonzero exec count: $(cat "$tmp/out")"
grep -q "the binaries were prebuilt" "$tmp/out" ||
  fail "prebuilt binaries were counted towards a core"
[ -s "$tmp/real/ledger.jsonl" ] || fail "no ledger line"
[ -n "$(ls -A "$tmp/real/tls_sll/corpus")" ] || fail "the arm's corpus was not seeded"

# A fake fuzzer that reports a finding the way the targets do.
mkdir -p "$tmp/fake"
cat >"$tmp/fake/alloc_fuzzer_bin" <<'FAKE'
#!/usr/bin/env bash
for a in "$@"; do case $a in -artifact_prefix=*) prefix=${a#-artifact_prefix=} ;; esac; done
echo "HZFUZZ-FINDING: model check double-free-missed after op 3" >&2
echo "replay:    bazel run //tools:repro -- --target alloc_fuzzer ${prefix}crash-1" >&2
echo "stat::number_of_executed_units: 17" >&2
echo x >"${prefix}crash-1"
exit 1
FAKE
chmod +x "$tmp/fake/alloc_fuzzer_bin"
"$soak" --bin-dir "$tmp/fake" --arms alloc --time 5 --out "$tmp/found" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 1 ] || fail "a finding exited $rc, not 1"
grep -q '^| alloc | [0-9]* | 17 | [0-9]* | \*\*finding\*\*' "$tmp/out" ||
  fail "no finding row: $(cat "$tmp/out")"
grep -q "HZFUZZ-FINDING: model check double-free-missed" "$tmp/err" ||
  fail "the finding line was not shown"
grep -q "replay:    bazel run //tools:repro" "$tmp/err" || fail "the replay command was not shown"

# An input libFuzzer only calls slow is listed, not counted as a finding.
mkdir -p "$tmp/slow"
cat >"$tmp/slow/alloc_fuzzer_bin" <<'FAKE'
#!/usr/bin/env bash
for a in "$@"; do case $a in -artifact_prefix=*) prefix=${a#-artifact_prefix=} ;; esac; done
echo "Slowest unit: 11 s:" >&2
echo x >"${prefix}slow-unit-1"
echo "stat::number_of_executed_units: 23" >&2
exit 0
FAKE
chmod +x "$tmp/slow/alloc_fuzzer_bin"
cp "$tmp/slow/alloc_fuzzer_bin" "$tmp/slow/mt_fuzzer_bin"
"$soak" --bin-dir "$tmp/slow" --tsan-bin-dir "$tmp/slow" --arms alloc,mt_tsan --time 5 --jobs 2 \
  --out "$tmp/slowrun" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 0 ] || fail "a slow input exited $rc, not 0: $(cat "$tmp/err")"
grep -q '^| alloc | [0-9]* | 23 | [0-9]* | clean |$' "$tmp/out" ||
  fail "a slow input's arm is not clean: $(cat "$tmp/out")"
grep -q "^- alloc: .*repro -- --target alloc_fuzzer .*slow-unit-1" "$tmp/out" ||
  fail "the slow input is not listed: $(cat "$tmp/out")"
# The TSan arm's replays through the TSan binary it ran: repro is an ASan build.
grep -q "^- mt_tsan: \`HZF_MODE=free $tmp/slowrun/bin-tsan/mt_fuzzer_bin -runs=1 .*mt_tsan/crashes/slow-unit-1\`" \
  "$tmp/out" || fail "the TSan arm's slow input is not listed with its binary: $(cat "$tmp/out")"
[ "$(grep -c '"slow": 1' "$tmp/slowrun/ledger.jsonl")" = 2 ] ||
  fail "the ledger does not count the slow inputs: $(cat "$tmp/slowrun/ledger.jsonl")"

# SIGTERM stops the arms and reports; nothing is left running.
"$soak" --bin-dir "$bins" --arms tls_sll --time 120 --out "$tmp/stop" >"$tmp/out" 2>"$tmp/err" &
pid=$!
sleep 4
kill -TERM $pid
t0=$SECONDS
wait $pid
rc=$?
[ $rc = 130 ] || fail "an interrupted soak exited $rc, not 130: $(cat "$tmp/err")"
[ $((SECONDS - t0)) -lt 20 ] || fail "the soak took $((SECONDS - t0)) s to stop"
grep -q "interrupted" "$tmp/err" || fail "the interruption was not said"
if pgrep -f "$tmp/stop/tls_sll/corpus" >/dev/null; then
  fail "a fuzzer outlived the soak"
fi

# expect_error PATTERN ARGS...: the tool exits 2 and says PATTERN.
expect_error() {
  local pattern=$1
  shift
  "$soak" "$@" >/dev/null 2>"$tmp/e"
  local rc=$?
  [ $rc = 2 ] || fail "soak $* exited $rc, not 2"
  grep -q -- "$pattern" "$tmp/e" || fail "soak $*: stderr lacks '$pattern': $(cat "$tmp/e")"
}
expect_error "unknown arm 'nope'" --bin-dir "$bins" --arms nope
expect_error "has no executable tls_sll_fuzzer_bin" --bin-dir "$tmp/slow" --arms tls_sll
expect_error "--time and --jobs must be at least 1" --bin-dir "$bins" --arms tls_sll --time 0
expect_error "names an arm twice" --bin-dir "$bins" --arms tls_sll,tls_sll
# A missing seed folder (reuse's is not among this test's data) is found before any arm
# starts, not when its turn comes with the other arms running.
cp "$tmp/slow/alloc_fuzzer_bin" "$tmp/slow/reuse_fuzzer_bin"
expect_error "the seed corpus .*corpus/reuse_fuzzer is missing or empty" --bin-dir "$tmp/slow" \
  --arms alloc,reuse --jobs 1 --time 5 --out "$tmp/noseeds"
[ ! -e "$tmp/noseeds/alloc" ] || fail "an arm started before the missing seed folder was found"

[ $fails = 0 ] && echo "soak_test: passed"
exit $((fails > 0))
