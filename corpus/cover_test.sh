#!/usr/bin/env bash
# //corpus:cover_test: cover.sh on a scratch workspace whose only seed is the empty
# program. A run's input that reaches new edges must become a seed whose source encodes
# to the bytes the replay tests read; an input no new edge needs, and a second run over
# the same folder, must add nothing; bad usage must be refused with a message.
set -uo pipefail

cover=$1 decode=$2 bin=$3
tmp=${TEST_TMPDIR:-$(mktemp -d)}
ws=$tmp/ws q=$tmp/runs
rm -rf "$ws" "$q"
mkdir -p "$ws/corpus/tls_sll_fuzzer" "$ws/corpus/src/tls_sll_fuzzer" "$q/tls_sll/corpus"
cp corpus/tls_sll_fuzzer/empty_program "$ws/corpus/tls_sll_fuzzer/"
cp corpus/src/tls_sll_fuzzer/empty_program.ops "$ws/corpus/src/tls_sll_fuzzer/"
# One input that drains and adopts (new edges), and the empty program again.
cp corpus/tls_sll_fuzzer/sll_exit_adopt "$q/tls_sll/corpus/rich"
cp corpus/tls_sll_fuzzer/empty_program "$q/tls_sll/corpus/same"
# A crash folder beside the corpus: not an input set, so never merged.
mkdir -p "$q/tls_sll/crashes" && printf 'x' >"$q/tls_sll/crashes/crash-1"

fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
run() {
  BUILD_WORKSPACE_DIRECTORY=$ws BUILD_WORKING_DIRECTORY=$tmp \
    bash "$cover" "$decode" "$bin" -- "$@"
}

out=$(run --dry-run runs 2>&1) || bad "dry run failed: $out"
grep -q "tls_sll_fuzzer: 1 new seed(s) from 1 corpus folder(s) (dry run)" <<<"$out" ||
  bad "dry run should report one new seed: $out"
[ "$(ls "$ws/corpus/tls_sll_fuzzer" | wc -l)" = 1 ] || bad "the dry run wrote a seed"

out=$(run runs 2>&1) || bad "cover failed: $out"
grep -q "cover: 1 new seed(s)" <<<"$out" || bad "want one new seed: $out"
srcs=("$ws"/corpus/src/tls_sll_fuzzer/cover_*.ops)
if [ ${#srcs[@]} -ne 1 ] || [ ! -e "${srcs[0]}" ]; then
  bad "want one cover_*.ops source, have: $(ls "$ws/corpus/src/tls_sll_fuzzer")"
else
  src=${srcs[0]}
  name=$(basename "$src" .ops)
  head -1 "$src" | grep -q "^# Edge set cover of .*runs/tls_sll/corpus" ||
    bad "the source's first line should name the folder it came from: $(head -1 "$src")"
  grep -q "^t0 " "$src" || bad "the source has no ops: $(cat "$src")"
  "$decode" --target tls_sll_fuzzer --encode "$src" "$tmp/enc" || bad "its source does not encode"
  cmp -s "$tmp/enc" "$ws/corpus/tls_sll_fuzzer/$name" ||
    bad "corpus/tls_sll_fuzzer/$name is not the encoding of its source"
  # The encoded seed drives the same program as the run's input did.
  diff <("$decode" --target tls_sll_fuzzer "$q/tls_sll/corpus/rich" | grep -v '^#') \
       <("$decode" --target tls_sll_fuzzer "$ws/corpus/tls_sll_fuzzer/$name" | grep -v '^#') >/dev/null ||
    bad "the seed decodes to other ops than the run's input"
fi

out=$(run runs 2>&1) || bad "second run failed: $out"
grep -q "cover: 0 new seed(s)" <<<"$out" || bad "a second run over the same folder added seeds: $out"

expect_refusal() {
  local want=$1
  shift
  local o
  o=$(run "$@" 2>&1)
  local rc=$?
  [ $rc = 2 ] || bad "cover $* exited $rc, want 2: $o"
  grep -q "$want" <<<"$o" || bad "cover $*: want a message with '$want', got: $o"
}
expect_refusal "nowhere: no such folder" nowhere
expect_refusal "name at least one folder"
expect_refusal "unknown flag" --bogus runs
expect_refusal "is not a fuzz target" --targets heap runs
mkdir -p "$tmp/emptyrun"
expect_refusal "no <arm>/corpus/ or <target>_fuzzer/ folder" emptyrun

[ $fail = 0 ] && echo "cover_test: PASS"
exit $fail
