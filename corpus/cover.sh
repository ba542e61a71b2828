#!/usr/bin/env bash
# Grows the checked-in seeds by what long runs reached: `bazel run //corpus:cover -- DIR...`
#
# Each DIR holds a run's working corpora the way the project's tools leave them:
# <arm>/corpus/ (tools/soak's out/soak, tools/campaign's out/campaign, bazel run's
# out/fuzz) or <target>_fuzzer/. For every target, libFuzzer's edge set cover
# (-set_cover_merge=1 -use_counters=0) of those inputs is taken on top of corpus/<target>/,
# so only an input that reaches an edge no seed reaches is added; mt_fuzzer also takes the
# corpora of the soak's free-running arms (mt_free, mt_tsan), which are its inputs. Each
# addition is written as a readable op list corpus/src/<target>/cover_<sha1:8>.ops and
# encoded into corpus/<target>/, which is what the replay tests of `bazel test` run: a
# long run's reach becomes part of every replay, in every build variant. Review the new
# seeds with `git status corpus`, run `bazel test //fuzz:all //corpus:all`, commit.
#
#   --targets a,b     only these targets (names as in fuzz/: alloc or alloc_fuzzer)
#   --dry-run         report what would be added, write nothing
#
# Arguments from the BUILD file: the decode tool, then each target's fuzzer binary.
set -euo pipefail

decode=$1
shift
declare -A bins
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  b=$1
  name=$(basename "$b")
  bins[${name%_bin}]=$(cd "$(dirname "$b")" && pwd)/$name
  shift
done
[ "${1:-}" = "--" ] && shift
decode=$(cd "$(dirname "$decode")" && pwd)/$(basename "$decode")

die() { echo "cover: $*" >&2; exit 2; }
usage="usage: bazel run //corpus:cover -- [--targets a,b] [--dry-run] DIR..."

ws=${BUILD_WORKSPACE_DIRECTORY:-}
[ -n "$ws" ] || die "run me with bazel run //corpus:cover -- DIR... (it writes the workspace's corpus/)"
wd=${BUILD_WORKING_DIRECTORY:-$ws}
only="" dry=0 dirs=()
while [ $# -gt 0 ]; do
  case $1 in
    --targets) [ $# -ge 2 ] || die "--targets needs a list; $usage"; only=$2; shift 2 ;;
    --targets=*) only=${1#--targets=}; shift ;;
    --dry-run) dry=1; shift ;;
    -h|--help) echo "$usage"; exit 0 ;;
    -*) die "$1: unknown flag; $usage" ;;
    *)
      d=$1
      case $d in /*) ;; *) d=$wd/$d ;; esac
      [ -d "$d" ] || die "$1: no such folder"
      dirs+=("$(cd "$d" && pwd)"); shift ;;
  esac
done
[ ${#dirs[@]} -gt 0 ] || die "name at least one folder of run corpora; $usage"

targets=()
if [ -z "$only" ]; then
  targets=($(printf '%s\n' "${!bins[@]}" | sort))
else
  for w in ${only//,/ }; do
    t=${w%_fuzzer}_fuzzer
    [ -n "${bins[$t]:-}" ] || die "--targets: $w is not a fuzz target (${!bins[*]})"
    targets+=("$t")
  done
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
date=$(date +%F)
total=0 found=0
for t in "${targets[@]}"; do
  arm=${t%_fuzzer}
  arms=("$arm")
  [ "$arm" = mt ] && arms+=(mt_free mt_tsan)
  inputs=()
  for d in "${dirs[@]}"; do
    for a in "${arms[@]}"; do
      [ -d "$d/$a/corpus" ] && inputs+=("$d/$a/corpus")
    done
    [ -d "$d/$t" ] && inputs+=("$d/$t")
  done
  [ ${#inputs[@]} -gt 0 ] || continue
  found=1
  seeds=$ws/corpus/$t
  [ -d "$seeds" ] || die "corpus/$t/ is missing (run from a checkout of hzfuzz)"
  mkdir -p "$tmp/$t"
  cp "$seeds"/* "$tmp/$t/"
  log=$tmp/$t.log
  # Baton mode, as the replay tests run the seeds.
  if ! HZF_MODE=baton "${bins[$t]}" -set_cover_merge=1 -use_counters=0 -timeout=30 \
       -rss_limit_mb=4096 "$tmp/$t" "${inputs[@]}" >"$log" 2>&1; then
    tail -5 "$log" >&2
    die "$t: the merge failed (its log above)"
  fi
  # The merge names its outputs by their SHA-1; a seed's name is its own. An input with
  # a seed's bytes is that seed (a one-time edge, such as the first input's start-up,
  # can make the merge keep it).
  have=$(sha1sum "$seeds"/* | cut -c1-40)
  n=0
  for f in "$tmp/$t"/*; do
    b=$(basename "$f")
    [ -e "$seeds/$b" ] && continue
    grep -qx "$b" <<<"$have" && continue
    name=cover_${b:0:8}
    src=$ws/corpus/src/$t/$name.ops
    [ -e "$src" ] && continue
    n=$((n + 1))
    [ $dry = 1 ] && continue
    {
      echo "# Edge set cover of ${inputs[*]#$ws/} ($date), beyond the seeds before it: replayed by bazel test."
      "$decode" --target "$t" "$f" | grep -v '^# hzfuzz ops v1, target '
    } >"$src"
    "$decode" --target "$t" --encode "$src" "$seeds/$name"
  done
  echo "cover: $t: $n new seed(s) from ${#inputs[@]} corpus folder(s)$([ $dry = 1 ] && echo ' (dry run)')"
  total=$((total + n))
done
[ $found = 1 ] || die "no <arm>/corpus/ or <target>_fuzzer/ folder under ${dirs[*]}"
echo "cover: $total new seed(s)$([ $dry = 1 ] && echo ', none written')"
