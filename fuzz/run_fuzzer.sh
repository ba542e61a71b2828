#!/usr/bin/env bash
# `bazel run //fuzz:<target> [-- libFuzzer flags]`: fuzzes one target from its seed corpus.
#
# Copies corpus/<target>/ into out/fuzz/<target>/corpus/ in the workspace (new inputs
# accumulate there across runs), writes findings to out/fuzz/<target>/crashes/, and runs
# for -max_total_time=600 unless a budget (-max_total_time or -runs) is given.
# Arguments from the BUILD file: target name, fuzzer binary, seed corpus folder, the
# flags file (fuzz/libfuzzer.options), dictionary (or "-"); then the user's libFuzzer flags.
set -euo pipefail

target=$1 bin=$2 seeds=$3 options=$4 dict=$5
shift 5

bin=$(cd "$(dirname "$bin")" 2>/dev/null && pwd)/$(basename "$bin")
if [ ! -x "$bin" ]; then
  echo "hzfuzz: fuzzer binary $bin is missing; build it with bazel build //fuzz:${target}_bin" >&2
  exit 2
fi
if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds" 2>/dev/null)" ]; then
  echo "hzfuzz: the seed corpus folder corpus/$target/ is missing or empty;" \
       "add at least one input (see docs/FUZZING.md)" >&2
  exit 2
fi

# Every key = value line of the [libfuzzer] section, as -key=value.
if [ ! -r "$options" ]; then
  echo "hzfuzz: the libFuzzer flags file $options is missing" >&2
  exit 2
fi
mapfile -t flags < <(awk -f "$(dirname "$options")/libfuzzer_flags.awk" "$options")
if [ ${#flags[@]} -eq 0 ]; then
  echo "hzfuzz: $options has no [libfuzzer] flags" >&2
  exit 2
fi

ws=${BUILD_WORKSPACE_DIRECTORY:-$PWD}
out=$ws/out/fuzz/$target
mkdir -p "$out/corpus" "$out/crashes"
# Seeds the fuzzer has not seen yet; -n keeps what earlier runs found.
for f in "$seeds"/*; do
  case $f in *.txt) continue ;; esac
  cp -n "$f" "$out/corpus/" 2>/dev/null || true
done

# libFuzzer ignores "--flag" and only warns about a misspelt "-flag", then fuzzes with
# the default budget; both are mistakes here, so stop before fuzzing.
known=$("$bin" -help=1 2>&1 | awk '/^ [a-z_0-9]+ +\t/ {print $1}')
budget=(-max_total_time=600)
for a in "$@"; do
  case $a in
    --*)
      echo "hzfuzz: $a: libFuzzer flags take one dash, e.g. -max_total_time=60" >&2
      exit 2 ;;
    -*=*)
      name=${a%%=*}
      name=${name#-}
      if [ -n "$known" ] && ! grep -qx "$name" <<<"$known"; then
        echo "hzfuzz: $a: not a libFuzzer flag (the list: $bin -help=1)" >&2
        exit 2
      fi ;;
    -*)
      echo "hzfuzz: $a: libFuzzer flags are -name=value, e.g. -max_total_time=60" >&2
      exit 2 ;;
    *)
      if [ ! -d "$a" ]; then
        echo "hzfuzz: $a: not a flag and not a corpus folder" >&2
        exit 2
      fi ;;
  esac
  case $a in -max_total_time=* | -runs=*) budget=() ;; esac
done
dict_flag=()
if [ "$dict" != "-" ] && [ -s "$dict" ]; then
  dict_flag=(-dict="$(cd "$(dirname "$dict")" && pwd)/$(basename "$dict")")
fi

echo "hzfuzz: fuzzing $target (seeds: corpus/$target/, $(ls "$out/corpus" | wc -l) inputs in the working corpus)"
echo "hzfuzz: budget     ${budget[*]:-as given} (libFuzzer flags after --, e.g. -max_total_time=60 -jobs=2)"
echo "hzfuzz: new inputs -> $out/corpus/"
echo "hzfuzz: findings   -> $out/crashes/ (each prints 'HZFUZZ-FINDING: ...', its op trace"
echo "                      and the command that replays it)"
echo "hzfuzz: minimize   -> bazel run //tools:minimize -- --target $target $out/crashes/<file> <name>"
export HZF_FINDINGS_DIR=$out/crashes
cd "$out" # libFuzzer's -jobs logs (fuzz-N.log) land here, not in the runfiles tree
# fuzz/libfuzzer.options says why each of its flags is there. Flags given after -- come
# later on the command line and win.
exec "$bin" -artifact_prefix="$out/crashes/" "${flags[@]}" -print_final_stats=1 \
  "${dict_flag[@]}" "${budget[@]}" "$@" "$out/corpus"
