#!/usr/bin/env bash
# The bounded bugzoo (tools/bugzoo --ci) as a test: every catalogued bug must be caught
# within the CI budget by the binaries this test depends on, and the clean core must
# report nothing. Exclusive, so that the time-to-bug is measured on an idle machine.
set -euo pipefail
root=${TEST_SRCDIR:?run me with bazel test}/${TEST_WORKSPACE:?}
export TMPDIR=${TEST_TMPDIR:-/tmp}
exec python3 "$root/tools/bugzoo" --ci --bin-dir "$root" "$@"
