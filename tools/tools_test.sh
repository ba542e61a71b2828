#!/usr/bin/env bash
# The fuzzing tools on the checked-in corpus: decode round trips, repro replays the same
# trace every time (across threads too), bad input gets a clear message and exit code 2,
# run_fuzzer.sh fuzzes a few runs and refuses flags libFuzzer would ignore, the tools
# find relative paths as `bazel run` users give them, repro's trace survives a crash, and
# minimize turns a sanitizer crash into a named op list.
set -uo pipefail

decode=$1 repro=$2 fuzzer=$3 runner=$4 options=$5 seeded_repro=$6 seeded_input=$7
seeded_fuzzer=$8 minimize=$9
shift 9
regression="" # an alloc_fuzzer regression (fuzz/regressions/, the rest of the arguments)
for r in "$@"; do case $r in */alloc_fuzzer-*.ops) regression=$r; break ;; esac; done
unset BUILD_WORKING_DIRECTORY # set only where a test emulates `bazel run`
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
tmp=${TEST_TMPDIR:-$(mktemp -d)}

# expect_error CODE PATTERN CMD...: CMD exits CODE and its stderr matches PATTERN.
expect_error() {
  local code=$1 pattern=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ $rc != "$code" ]; then fail "$* exited $rc, not $code"; return; fi
  grep -q -- "$pattern" "$tmp/err" || fail "$*: stderr lacks '$pattern': $(cat "$tmp/err")"
}

# 1. decode: the text form of every seed encodes back to the same bytes.
n=0
for f in corpus/*_fuzzer/*; do
  "$decode" "$f" >"$tmp/t.ops" || { fail "decode $f"; continue; }
  target=$(basename "$(dirname "$f")")
  "$decode" --target "$target" --encode "$tmp/t.ops" "$tmp/t.bin" || { fail "encode $f"; continue; }
  cmp -s "$f" "$tmp/t.bin" || fail "decode/encode of $f does not round trip"
  n=$((n + 1))
done
[ $n -ge 6 ] || fail "only $n corpus files found"

# 2. Determinism: an input where thread 1 frees thread 0's blocks replays to the same
# trace, addresses included, every time; so does a four-thread input with exits.
cross=corpus/mt_fuzzer/cross_thread_free_small
"$repro" "$cross" >"$tmp/r1" || fail "repro $cross found something"
grep -q "t1 free other-thread's" "$tmp/r1" || fail "$cross no longer frees across threads"
grep -q "^#1 .*-> #[0-9]" "$tmp/r1" || fail "$cross: op #1 freed nothing"
for i in 2 3 4; do
  "$repro" "$cross" >"$tmp/r$i"
  cmp -s "$tmp/r1" "$tmp/r$i" || { fail "replay $i of $cross differs:"; diff "$tmp/r1" "$tmp/r$i" | head >&2; }
done
churn=corpus/mt_fuzzer/four_threads_churn
"$repro" "$churn" >"$tmp/c1" && "$repro" "$churn" >"$tmp/c2" || fail "repro $churn"
cmp -s "$tmp/c1" "$tmp/c2" || fail "two replays of $churn differ"
grep -q "thread 2 exited" "$tmp/c1" || fail "$churn: no thread exit in the trace"

# 3. Bad input: a clear message and exit code 2.
expect_error 2 "cannot open" "$repro" "$tmp/no-such-file"
expect_error 2 "unknown target" "$repro" --target no_such_fuzzer "$cross"
expect_error 2 "unknown flag" "$repro" --frobnicate "$cross"
expect_error 2 "cannot read" "$repro" "$tmp"
expect_error 2 "no input file" "$repro"
expect_error 2 "unknown target" "$decode" --target nope "$cross"
printf 'threads 2\nt0 malloc sel=99 pick=0 arg=0\n' >"$tmp/bad.ops"
expect_error 2 "line 2" "$decode" --target mt_fuzzer --encode "$tmp/bad.ops" "$tmp/bad.bin"
printf 't0 sll_splice sel=0 pick=0 arg=0\n' >"$tmp/bad.ops"
expect_error 2 "does not draw op sll_splice" "$decode" --target mt_fuzzer --encode "$tmp/bad.ops" "$tmp/b"

# 4. run_fuzzer.sh: refuses what libFuzzer would silently ignore, and fuzzes.
ws=$tmp/ws
mkdir -p "$ws"
export BUILD_WORKSPACE_DIRECTORY=$ws
expect_error 2 "one dash" "$runner" mt_fuzzer "$fuzzer" corpus/mt_fuzzer "$options" - --max_total_time=5
expect_error 2 "not a libFuzzer flag" "$runner" mt_fuzzer "$fuzzer" corpus/mt_fuzzer "$options" - -max_totl_time=5
expect_error 2 "not a flag and not a corpus folder" "$runner" mt_fuzzer "$fuzzer" corpus/mt_fuzzer "$options" - nowhere
expect_error 2 "missing or empty" "$runner" mt_fuzzer "$fuzzer" "$tmp/no-corpus" "$options" -
expect_error 2 "flags file $tmp/no.options is missing" "$runner" mt_fuzzer "$fuzzer" corpus/mt_fuzzer "$tmp/no.options" -
"$runner" mt_fuzzer "$fuzzer" corpus/mt_fuzzer "$options" - -runs=300 >"$tmp/fuzz.log" 2>&1 ||
  fail "run_fuzzer.sh -runs=300 failed: $(tail -5 "$tmp/fuzz.log")"
grep -q "Done 300 runs" "$tmp/fuzz.log" || fail "run_fuzzer.sh did not report its runs"
# The flags file's -max_len reached libFuzzer (without it, libFuzzer says it picked one).
grep -q "max_len is not provided" "$tmp/fuzz.log" && fail "run_fuzzer.sh did not pass fuzz/libfuzzer.options"
[ "$(ls "$ws/out/fuzz/mt_fuzzer/corpus" | wc -l)" -ge 6 ] || fail "the working corpus lacks the seeds"

unset BUILD_WORKSPACE_DIRECTORY

# 5. `bazel run //tools:repro -- fuzz/regressions/X.ops` runs repro in its runfiles tree
# with $BUILD_WORKING_DIRECTORY naming where the user was: relative paths (inputs and
# decode's OUT) are found there, absolute ones are used as they are.
[ -n "$regression" ] || fail "no fuzz/regressions/alloc_fuzzer-*.ops among: $*"
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
arepro=$(abs "$repro") adecode=$(abs "$decode") areg=$(abs "$regression")
user=$tmp/user elsewhere=$tmp/elsewhere
rel=fuzz/regressions/$(basename "$regression")
mkdir -p "$user/fuzz/regressions" "$elsewhere"
cp "$regression" "$user/$rel"
nops=$(grep -c '^t[0-9]' "$regression")
(cd "$elsewhere" && BUILD_WORKING_DIRECTORY=$user "$arepro" "$rel") >"$tmp/bwd.out" 2>"$tmp/bwd.err" ||
  fail "repro $rel under BUILD_WORKING_DIRECTORY=$user: $(cat "$tmp/bwd.err")"
[ "$(grep -c '^#[0-9]' "$tmp/bwd.out")" = "$nops" ] || fail "repro $rel from elsewhere did not trace its $nops ops"
grep -q "^# $rel: .* target alloc_fuzzer" "$tmp/bwd.out" || fail "repro $rel: the header lacks the path or target"
(cd "$elsewhere" && BUILD_WORKING_DIRECTORY=$user "$adecode" "$rel") >"$tmp/bwd.ops" ||
  fail "decode $rel under BUILD_WORKING_DIRECTORY"
[ "$(grep -c '^t[0-9]' "$tmp/bwd.ops")" = "$nops" ] || fail "decode $rel from elsewhere did not print its $nops ops"
(cd "$elsewhere" && BUILD_WORKING_DIRECTORY=$user "$adecode" --encode "$rel" out.bin) ||
  fail "decode --encode $rel out.bin under BUILD_WORKING_DIRECTORY"
[ -s "$user/out.bin" ] && [ ! -e "$elsewhere/out.bin" ] || fail "decode --encode wrote OUT outside \$BUILD_WORKING_DIRECTORY"
(cd "$elsewhere" && BUILD_WORKING_DIRECTORY=/nonexistent "$arepro" --quiet "$areg") >/dev/null ||
  fail "repro of an absolute path under BUILD_WORKING_DIRECTORY=/nonexistent"
cd "$elsewhere"
export BUILD_WORKING_DIRECTORY=$user
expect_error 2 "$user/fuzz/regressions/nope.ops: cannot open" "$arepro" fuzz/regressions/nope.ops
expect_error 2 "$user/nope.ops: cannot open" "$adecode" nope.ops
expect_error 2 "$user/no-dir/o.bin: cannot write" "$adecode" --encode "$rel" no-dir/o.bin
export BUILD_WORKING_DIRECTORY=/$(printf 'd%.0s' {1..5000})
expect_error 2 "x.ops: the path is too long" "$arepro" x.ops
expect_error 2 "x.ops: the path is too long" "$adecode" x.ops
unset BUILD_WORKING_DIRECTORY
cd - >/dev/null

# 6. repro's trace survives a crash with stdout in a pipe: on a core with a seeded bug
# (REALLOC_COPY), op #1 ends in an ASan report; op #0's trace line must be out by then
# (it used to sit in the stdio buffer and die with the process).
"$seeded_repro" --target realloc_fuzzer "$seeded_input" 2>"$tmp/crash.err" | cat >"$tmp/crash.out"
rc=${PIPESTATUS[0]}
[ "$rc" != 0 ] || fail "repro of $seeded_input on the REALLOC_COPY core exited 0"
grep -q "ERROR: AddressSanitizer" "$tmp/crash.err" || fail "no ASan report from $seeded_input"
grep -q "^#0 .*malloc" "$tmp/crash.out" ||
  fail "repro's trace through a pipe lost op #0 at the crash: $(cat "$tmp/crash.out")"
# ... and the crash gets the report a failed check gets, after the trace: the finding line
# naming the sanitizer's report, and the replay command.
grep -q "^HZFUZZ-FINDING: sanitizer op #1: AddressSanitizer: use-after-poison" "$tmp/crash.out" ||
  fail "repro printed no finding line for the ASan report: $(cat "$tmp/crash.out")"
grep -q "bazel run //tools:repro -- --target realloc_fuzzer $seeded_input" "$tmp/crash.out" ||
  fail "repro printed no replay command for the ASan report: $(cat "$tmp/crash.out")"

# 7. minimize: the same seeded crash, which fails as an ASan report and not as a model
# check, shrinks to an op list that names that report and still fails with it; an input
# that replays clean is refused, and nothing is written for it.
mz=$tmp/mz
mkdir -p "$mz/ws" "$mz/bin"
ln -sf "$(abs "$seeded_fuzzer")" "$mz/bin/realloc_fuzzer_bin"
"$decode" --target realloc_fuzzer --encode "$seeded_input" "$mz/crash.bin" || fail "encode $seeded_input"
minimize_with() { # REPRO ARGS...: tools/minimize.sh as //tools:minimize runs it, on the seeded fuzzer
  local args=("$(abs "$options")" "$(abs "$decode")" "$(abs "$1")" "$mz/bin/realloc_fuzzer_bin")
  local script
  script=$(abs "$minimize")
  shift
  (cd "$mz" && BUILD_WORKSPACE_DIRECTORY=$mz/ws bash "$script" "${args[@]}" "$@")
}
minimize_with "$seeded_repro" --target realloc crash.bin copy -runs=100 >"$tmp/mz.log" 2>&1 ||
  fail "minimize of the REALLOC_COPY crash: $(cat "$tmp/mz.log")"
kept=$mz/ws/fuzz/regressions/realloc_fuzzer-copy.ops
grep -q '^# Failed as: HZFUZZ-FINDING: sanitizer op #[0-9]*: AddressSanitizer: use-after-poison' "$kept" 2>/dev/null ||
  fail "minimize: $kept does not name ASan's report: $(cat "$kept" "$tmp/mz.log" 2>&1)"
grep -q '^t0 realloc ' "$kept" 2>/dev/null || fail "minimize: $kept lacks the realloc op"
"$seeded_repro" --quiet --target realloc_fuzzer "$kept" >/dev/null 2>"$tmp/mz.err" &&
  fail "minimize: $kept replays clean on the REALLOC_COPY core"
grep -q "AddressSanitizer: use-after-poison" "$tmp/mz.err" || fail "minimize: $kept fails differently"
minimize_with "$repro" --target realloc crash.bin clean >/dev/null 2>"$tmp/mz.err"
[ $? = 1 ] && grep -q "replays without a finding" "$tmp/mz.err" ||
  fail "minimize of an input the clean core passes: $(cat "$tmp/mz.err")"
[ ! -e "$mz/ws/fuzz/regressions/realloc_fuzzer-clean.ops" ] || fail "minimize wrote an op list for a clean input"

if [ $fails = 0 ]; then echo "tools_test: all passed ($n corpus files)"; fi
[ $fails = 0 ]
