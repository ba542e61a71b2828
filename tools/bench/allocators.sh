#!/usr/bin/env bash
# `bazel run //tools/bench:allocators [-- --quick]`: the comparison table of
# allocators.py, with the bench driver and both hz preload libraries from this build.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script="$here/allocators.py"
[ -f "$script" ] || script="${RUNFILES_DIR:-$0.runfiles}/hzfuzz/tools/bench/allocators.py"
# The system interpreter: a version manager's shim would add processes to every run.
py=/usr/bin/python3
[ -x "$py" ] || py="$(command -v python3)" || { echo "allocators: python3 not found (apt-get install python3)" >&2; exit 1; }
exec "$py" "$script" "$@"
