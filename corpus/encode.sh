#!/usr/bin/env bash
# Seeds are written as text: corpus/src/<target>/<name>.ops, one op a line (the text
# form of docs/FUZZING.md). The fuzzers read bytes, so each source is encoded to
# corpus/<target>/<name>, and both are checked in.
#
#   bazel run //corpus:encode           re-encode every source into the workspace
#   //corpus:seeds_test (--check)       every binary seed is its source, encoded, and
#                                       every source has its binary
set -euo pipefail

decode=$1
shift
check=0
if [ "${1:-}" = "--check" ]; then check=1; fi
decode=$(cd "$(dirname "$decode")" && pwd)/$(basename "$decode")
if [ $check = 0 ]; then cd "${BUILD_WORKSPACE_DIRECTORY:?run me with bazel run //corpus:encode}"; fi

if [ ! -d corpus/src ]; then
  echo "encode: corpus/src/ is missing (run from the workspace root)" >&2
  exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0 n=0
for dir in corpus/src/*_fuzzer; do
  target=$(basename "$dir")
  for src in "$dir"/*.ops; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .ops)
    out=corpus/$target/$name
    "$decode" --target "$target" --encode "$src" "$tmp/$name"
    n=$((n + 1))
    if [ $check = 1 ]; then
      if ! cmp -s "$tmp/$name" "$out"; then
        echo "encode: $out is not the encoding of $src (run bazel run //corpus:encode)" >&2
        bad=1
      fi
    else
      mkdir -p "corpus/$target"
      cp "$tmp/$name" "$out"
    fi
  done
  if [ $check = 1 ]; then
    for bin in corpus/$target/*; do
      [ -e "$bin" ] || continue
      if [ ! -e "$dir/$(basename "$bin").ops" ]; then
        echo "encode: $bin has no source $dir/$(basename "$bin").ops" \
             "(bazel run //tools:decode -- --target $target $bin > that file)" >&2
        bad=1
      fi
    done
  fi
done
if [ $n = 0 ]; then
  echo "encode: no seed sources under corpus/src/" >&2
  exit 2
fi
if [ $check = 1 ]; then
  [ $bad = 0 ] && echo "seeds: $n sources, every binary seed matches its source"
  exit $bad
fi
echo "encode: $n seeds written under corpus/<target>/"
