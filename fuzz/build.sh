#!/usr/bin/env bash
# Builds the seven fuzz targets and the properties' fuzz targets (props/) outside Bazel, the way OSS-Fuzz and ClusterFuzzLite build a
# project: with the compiler, flags and fuzzing engine the environment gives.
#
#   CC                  compiler (OSS-Fuzz: clang; AFL++: afl-clang-fast)
#   CFLAGS              sanitizer and coverage flags (OSS-Fuzz sets both per $SANITIZER)
#   LIB_FUZZING_ENGINE  what provides main(): -fsanitize=fuzzer, or libAFLDriver.a
#   OUT                 where the binaries go
#   SRC                 the folder holding this checkout as hzfuzz/ (OSS-Fuzz's layout);
#                       default: this script's checkout
#   SANITIZER, FUZZING_ENGINE
#                       only printed (CFLAGS already carry what they select)
#
# Flags: --binaries-only (no seed corpus, dictionary or options: the Bazel AFL++ rules),
# --suffix S (names the binaries <t>_fuzzer<S>), --targets "a b" (a subset),
# --properties "p q" (a subset of props/defs.bzl's PROPERTIES, built as <p>_fuzz; "none":
# none).
#
# Besides each binary, $OUT gets <t>_fuzzer.dict, <t>_fuzzer.options (the libFuzzer flags
# `bazel run //fuzz:<t>_fuzzer` uses) and <t>_fuzzer_seed_corpus.zip (corpus/<t>_fuzzer/).
# The core and the harness are compiled once and linked into every target; only the
# entry (fuzz/hzf_target.c, which names the target's op profile) differs.
set -euo pipefail

die() { echo "fuzz/build.sh: $*" >&2; exit 2; }

TARGETS="tls_sll alloc realloc reuse ptag mt shim"
PROPS=all
suffix="" binaries_only=0
while [ $# -gt 0 ]; do
  case $1 in
    --binaries-only) binaries_only=1; shift ;;
    --suffix) [ $# -ge 2 ] || die "--suffix needs a value"; suffix=$2; shift 2 ;;
    --targets) [ $# -ge 2 ] || die "--targets needs a value"; TARGETS=$2; shift 2 ;;
    --properties) [ $# -ge 2 ] || die "--properties needs a value"; PROPS=$2; shift 2 ;;
    *) die "unknown argument $1 (flags: --binaries-only, --suffix S, --targets \"t ...\", --properties \"p ...\")" ;;
  esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -n "${SRC:-}" ] && [ -d "$SRC/hzfuzz/core" ]; then root=$SRC/hzfuzz; else root=$here; fi
[ -f "$root/core/hz.h" ] || die "no hzfuzz checkout at $root"
: "${CC:?fuzz/build.sh: CC is not set (clang, or afl-clang-fast)}"
: "${OUT:?fuzz/build.sh: OUT is not set (where the binaries go)}"
: "${LIB_FUZZING_ENGINE:?fuzz/build.sh: LIB_FUZZING_ENGINE is not set (-fsanitize=fuzzer, or libAFLDriver.a)}"
command -v "$CC" >/dev/null 2>&1 || [ -x "$CC" ] || die "compiler $CC not found"
for t in $TARGETS; do
  case " tls_sll alloc realloc reuse ptag mt shim " in *" ${t%_fuzzer} "*) ;; *) die "unknown target $t" ;; esac
done
if [ "$PROPS" = none ]; then
  PROPS="" all_props=""
else
  [ -f "$root/props/defs.bzl" ] || die "no props/defs.bzl in $root (--properties none builds without it)"
  all_props=$(sed -n 's/^    "\([a-z_]*\)": ([0-9]*, [0-9]*),$/\1/p' "$root/props/defs.bzl")
  [ "$PROPS" = all ] && PROPS=$all_props
fi
for p in $PROPS; do
  case " $(echo $all_props) " in *" $p "*) ;; *) die "unknown property $p (props/defs.bzl lists them)" ;; esac
done
mkdir -p "$OUT" || die "cannot create $OUT"

CORE="alloc check fault free large os pagemap pool remote sizeclass slab tcache thread"
HARNESS="hzf_api hzf_audit hzf_death hzf_decode hzf_exec hzf_extent hzf_input hzf_model hzf_oom hzf_oracle hzf_proc hzf_race hzf_report hzf_run_edge hzf_run_ops hzf_trim"
# The fuzz core's configuration (fuzz/BUILD.bazel hz_fuzz_core): internal assertions on,
# race points on (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, as OSS-Fuzz also defines), the
# knobs at the fuzzers' scale (HZF_CORE_DEFINES in fuzz/defs.bzl).
flags=(-std=c11 -D_GNU_SOURCE -DHZ_DEBUG=2 -DHZ_LARGE_CACHE_BYTES=4194304u -DHZ_EXTENT_BINS=4u
       -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
       -I"$root" -g -O2 -fno-omit-frame-pointer -Wall -Wno-unused-command-line-argument)
read -r -a user_flags <<<"${CFLAGS:-}"
read -r -a engine <<<"$LIB_FUZZING_ENGINE"

obj=$(mktemp -d "${TMPDIR:-/tmp}/hzf-build.XXXXXX")
trap 'rm -rf "$obj"' EXIT
echo "fuzz/build.sh: $CC ${CFLAGS:-} (engine ${FUZZING_ENGINE:-?}, sanitizer ${SANITIZER:-?}) -> $OUT"
objs=()
for f in $CORE; do
  "$CC" "${flags[@]}" "${user_flags[@]}" -c "$root/core/$f.c" -o "$obj/core_$f.o"
  objs+=("$obj/core_$f.o")
done
for f in $HARNESS; do
  "$CC" "${flags[@]}" "${user_flags[@]}" -c "$root/fuzz/$f.c" -o "$obj/$f.o"
  objs+=("$obj/$f.o")
done

# shim_fuzzer's entry points (fuzz/hzf_api.h): the preload shim with the names it exports
# (its HZ_EXPORT functions) prefixed, so it does not interpose on malloc.
shim_objs=()
if [[ " $TARGETS " == *" shim "* || " $TARGETS " == *" shim_fuzzer "* ]]; then
  renames=()
  for s in $(sed -n 's/^HZ_EXPORT [^(]*[ *]\([a-z_]*\)(.*/\1/p' "$root/core/preload.c"); do
    renames+=("-D$s=hzshim_$s")
  done
  [ ${#renames[@]} -gt 0 ] || die "no HZ_EXPORT function in $root/core/preload.c"
  "$CC" "${flags[@]}" "${user_flags[@]}" "${renames[@]}" -c "$root/core/preload.c" \
    -o "$obj/shim_preload.o"
  "$CC" "${flags[@]}" "${user_flags[@]}" -c "$root/fuzz/hzf_api_shim.c" -o "$obj/shim_api.o"
  shim_objs=("$obj/shim_preload.o" "$obj/shim_api.o")
fi

for t in $TARGETS; do
  t=${t%_fuzzer}
  name=${t}_fuzzer
  "$CC" "${flags[@]}" "${user_flags[@]}" -DHZF_TARGET="\"$t\"" -c "$root/fuzz/hzf_target.c" \
    -o "$obj/entry_$t.o"
  extra=()
  [ "$t" = shim ] && extra=("${shim_objs[@]}")
  # The link goes through the compiler driver; a C++ engine (libFuzzer, the AFL++ driver)
  # needs the C++ runtime, which clang++ would add: add it by hand for a C project.
  "$CC" "${user_flags[@]}" "$obj/entry_$t.o" "${extra[@]}" "${objs[@]}" "${engine[@]}" \
    -lpthread -ldl -lstdc++ -o "$OUT/$name$suffix"
  [ $binaries_only = 1 ] && continue
  cp "$root/fuzz/dicts/$name.dict" "$OUT/$name.dict"
  # The flags `bazel run //fuzz:<t>` gives libFuzzer (the file says why), and the dict.
  { cat "$root/fuzz/libfuzzer.options"; echo "dict = $name.dict"; } >"$OUT/$name.options"
  rm -f "$OUT/${name}_seed_corpus.zip"
  (cd "$root/corpus/$name" && python3 -m zipfile -c "$OUT/${name}_seed_corpus.zip" *)
done
# The properties as fuzz targets: the input is a property's choice sequence.
if [ -n "$PROPS" ]; then
  pobjs=()
  for f in prop prop_shrink prop_cli env api_laws heap_laws registry; do
    "$CC" "${flags[@]}" "${user_flags[@]}" -c "$root/props/$f.c" -o "$obj/props_$f.o"
    pobjs+=("$obj/props_$f.o")
  done
  for p in $PROPS; do
    "$CC" "${flags[@]}" "${user_flags[@]}" -DPROP_NAME="\"$p\"" -c "$root/props/prop_fuzz.c" \
      -o "$obj/propentry_$p.o"
    "$CC" "${user_flags[@]}" "$obj/propentry_$p.o" "${pobjs[@]}" "${objs[@]}" "${engine[@]}" \
      -lpthread -ldl -lstdc++ -o "$OUT/${p}_fuzz$suffix"
    [ $binaries_only = 1 ] && continue
    printf '[libfuzzer]\ntimeout = 60\n' >"$OUT/${p}_fuzz.options"
  done
fi
echo "fuzz/build.sh: built $(echo $TARGETS | wc -w) targets and $(echo $PROPS | wc -w) properties into $OUT"
