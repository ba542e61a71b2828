#!/usr/bin/env bash
# bazel run //tools:minimize -- --target T CRASH NAME [-runs=N]
#
# Turns a finding into a named regression in one command:
#   1. libFuzzer's minimizer (-minimize_crash=1) shrinks CRASH while the target still fails;
#   2. repro replays the result and keeps it only if it fails with the same check as
#      CRASH, and for a crash the same kind (the sanitizer report's kind, the signal, the
#      hz line before an abort): a minimizer happily trades one failure for another;
#      else it keeps CRASH;
#   3. the input is written as a readable op list, fuzz/regressions/T-NAME.ops, with the
#      finding line on top. The target's replay test runs it from then on, so add it with
#      the fix: until then `bazel test //fuzz/...` fails on it, as it should.
# Arguments from the BUILD file: the libFuzzer flags file, decode, repro, then every
# fuzzer binary.
set -euo pipefail

options=$1 decode=$2 repro=$3
shift 3
# The targets' flags (max_len, timeout, ...), so the minimizer runs the input as the
# fuzzer that found it did; -minimize_crash's own flags come after and win.
mapfile -t lf_flags < <(awk -f "$(dirname "$options")/libfuzzer_flags.awk" "$options")
[ ${#lf_flags[@]} -gt 0 ] || { echo "minimize: $options has no [libfuzzer] flags" >&2; exit 2; }
bins=()
while [ $# -gt 0 ] && [[ $1 == */*_fuzzer_bin ]]; do bins+=("$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"); shift; done
decode=$(cd "$(dirname "$decode")" && pwd)/$(basename "$decode")
repro=$(cd "$(dirname "$repro")" && pwd)/$(basename "$repro")

usage() {
  [ -n "${1:-}" ] && echo "minimize: $1" >&2
  echo "usage: bazel run //tools:minimize -- --target T CRASH NAME [-runs=N]" >&2
  echo "targets: $(for b in "${bins[@]}"; do basename "$b" _bin; done | tr '\n' ' ')" >&2
  exit 2
}

target="" runs=-runs=2000 args=()
while [ $# -gt 0 ]; do
  case $1 in
    --target) [ $# -ge 2 ] || usage "--target needs a value"; target=${2%_fuzzer}_fuzzer; shift 2 ;;
    -runs=*) runs=$1; shift ;;
    -*) usage "unknown flag $1" ;;
    *) args+=("$1"); shift ;;
  esac
done
[ ${#args[@]} = 2 ] || usage "give one CRASH file and one NAME"
crash=${args[0]} name=${args[1]}
[[ $name =~ ^[a-z0-9_]+$ ]] || usage "NAME is lower case letters, digits and _ (it names the file)"
cd "${BUILD_WORKING_DIRECTORY:-.}"
[ -f "$crash" ] && [ -r "$crash" ] || usage "$crash: no such readable file"
crash=$(cd "$(dirname "$crash")" && pwd)/$(basename "$crash")
if [ -z "$target" ]; then
  for b in "${bins[@]}"; do
    t=$(basename "$b" _bin)
    case $crash in */$t/* | */$t-*) target=$t ;; esac
  done
  [ -n "$target" ] || usage "the path names no target: give --target"
fi
bin=""
for b in "${bins[@]}"; do [ "$(basename "$b" _bin)" = "$target" ] && bin=$b; done
[ -n "$bin" ] || usage "unknown target $target"
ws=${BUILD_WORKSPACE_DIRECTORY:-$(pwd)}
out=$ws/fuzz/regressions/$target-$name.ops
[ -e "$out" ] && usage "$out exists: choose another NAME"

replay_log() { # everything a replay of $1 prints (a finding ends the log with its report)
  "$repro" --quiet --target "$target" "$1" 2>&1 || true
}
finding_of() { # LOG: its HZFUZZ-FINDING line (every kind of finding prints one), or nothing
  grep -m1 '^HZFUZZ-FINDING:' <<<"$1" || true
}
check_of() { # LOG: what the minimizer must keep failing: the check, and for a crash its
  # kind (the sanitizer and its report's kind, the signal, or the hz line before an abort)
  local line
  line=$(finding_of "$1")
  case $line in
    "HZFUZZ-FINDING: sanitizer "* | "HZFUZZ-FINDING: signal "*)
      sed -E 's/^HZFUZZ-FINDING: ([a-z]+) op #[0-9]+: ([^(]*[^ (]).*/\1: \2/' <<<"$line" ;;
    "HZFUZZ-FINDING: abort "*)
      echo "abort: $(grep -m1 '^hz: ' <<<"$1" | sed -E 's/\(0x[0-9a-f]+\)//g')" ;;
    ?*) sed -E 's/^HZFUZZ-FINDING: ([^ ]+) .*/\1/' <<<"$line" ;;
  esac
}
want=$(check_of "$(replay_log "$crash")")
if [ -z "$want" ]; then
  echo "minimize: $crash replays without a finding in the deterministic mode; nothing to keep" >&2
  echo "          (a free-running finding: bazel run //tools:repro -- --mode free --target $target $crash)" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "minimize: $target fails '$want' on $crash ($(wc -c <"$crash") bytes); minimizing ($runs)"
(cd "$tmp" && "$bin" "${lf_flags[@]}" -minimize_crash=1 "$runs" \
   -exact_artifact_path="$tmp/min" "$crash" >"$tmp/log" 2>&1) || true
kept=$crash
if [ -s "$tmp/min" ] && [ "$(check_of "$(replay_log "$tmp/min")")" = "$want" ]; then
  kept=$tmp/min
else
  echo "minimize: the minimizer's result does not fail '$want'; keeping the original"
fi
line=$(finding_of "$(replay_log "$kept")")
mkdir -p "$(dirname "$out")"
{
  echo "# Regression $target-$name, minimized from $(basename "$crash") on $(date -u +%Y-%m-%d)."
  echo "# Failed as: $line"
  echo "# Replay: bazel run //tools:repro -- fuzz/regressions/$target-$name.ops"
  "$decode" --target "$target" "$kept" | grep -v '^# hzfuzz ops v1'
} >"$out"
echo "minimize: $(wc -c <"$kept") bytes -> $out"
echo "minimize: $line"
