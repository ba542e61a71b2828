#!/usr/bin/env bash
# The preload shim's start-up paths, which only a real preloaded process reaches: no
# next allocator at all, and allocations made while dlsym resolves it with hz unusable
# (the bootstrap buffer). dlsym_hook.c makes each happen; startup.c checks the after.
#
# Usage: startup_test.sh libhz_preload.so libdlsym_hook.so startup
set -uo pipefail

usage="usage: startup_test.sh libhz_preload.so libdlsym_hook.so startup"
abspath() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
for f in "${1:?$usage}" "${2:?$usage}" "${3:?$usage}"; do
  [ -f "$f" ] || { echo "FAIL: $f does not exist" >&2; exit 1; }
done
so="$(abspath "$1")"
hook="$(abspath "$2")"
prog="$(abspath "$3")"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0

# check NAME LIMIT MODE MESSAGE: runs `startup MODE` with the hook in MODE, under
# `ulimit -v LIMIT` (KiB; "-" for the inherited limit), and requires exit 0, its ok
# line, and MESSAGE from the shim on stderr.
check() {
  local name="$1" limit="$2" mode="$3" message="$4"
  ({ [ "$limit" = - ] || ulimit -v "$limit"; } &&
    HZT_DLSYM="$mode" LD_PRELOAD="$so $hook" "$prog" "$mode") \
    >"$tmp/$name.out" 2>"$tmp/$name.err"
  local rc=$? ok=1
  if [ "$rc" != 0 ]; then
    echo "FAIL: $name: exit status $rc" >&2
    ok=0
  elif ! grep -qx "startup $mode: ok" "$tmp/$name.out"; then
    echo "FAIL: $name: no \"startup $mode: ok\" line" >&2
    ok=0
  elif ! grep -qF "$message" "$tmp/$name.err"; then
    echo "FAIL: $name: the shim did not say \"$message\"" >&2
    ok=0
  fi
  if [ "$ok" = 1 ]; then
    echo "ok   $name"
  else
    echo "--- stdout:" >&2; head -c 2000 "$tmp/$name.out" >&2
    echo "--- stderr:" >&2; head -c 2000 "$tmp/$name.err" >&2
    failures=$((failures + 1))
  fi
}

check no-next-allocator - none "hz: libhz_preload: no next allocator"
# 4 GB of address space: glibc works, hz's 256 GiB arena is never reserved.
check bootstrap-buffer 4000000 boot "hz: libhz_preload: bootstrap buffer exhausted"

# The hook's boot checks must be able to fail: with hz usable, the block the hook gets
# while resolving is hz's, not the buffer's, and its size check says so.
(HZT_DLSYM=boot LD_PRELOAD="$so $hook" "$prog" boot) >"$tmp/control.out" 2>"$tmp/control.err"
if [ $? = 0 ] || ! grep -q "dlsym_hook: FAIL" "$tmp/control.err"; then
  echo "FAIL: control: the boot checks passed with hz usable, so they test nothing" >&2
  failures=$((failures + 1))
else
  echo "ok   control (boot checks fail with hz usable: $(head -1 "$tmp/control.err"))"
fi

[ "$failures" = 0 ] || { echo "$failures case(s) failed" >&2; exit 1; }
echo "all start-up cases passed"
