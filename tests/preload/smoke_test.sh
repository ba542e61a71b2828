#!/usr/bin/env bash
# Runs real programs with and without libhz_preload.so and requires, for each, exit
# status 0 both times and byte-identical stdout and stderr. Each program runs in the
# same fresh directory both times, so paths in its output match.
#
# Usage: smoke_test.sh libhz_preload.so probe libhz_preload_small_arena.so
set -uo pipefail

usage="usage: smoke_test.sh libhz_preload.so probe libhz_preload_small_arena.so"
abspath() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
for f in "${1:?$usage}" "${2:?$usage}" "${3:?$usage}"; do
  [ -f "$f" ] || { echo "FAIL: $f does not exist" >&2; exit 1; }
done
so="$(abspath "$1")"
probe="$(abspath "$2")"
small_arena_so="$(abspath "$3")"
here="$(cd "$(dirname "$0")" && pwd)"

# A sanitizer build of the core cannot be preloaded into uninstrumented programs.
if nm -D "$so" 2>/dev/null | grep -qE '__(asan|msan|tsan)_init'; then
  echo "FAIL: $so is sanitizer-instrumented; run sanitizer configs with" \
       "--test_tag_filters=-preload" >&2
  exit 1
fi

tmp="${TEST_TMPDIR:-$(mktemp -d)}"
work="$tmp/work"     # where each program runs (recreated for every run)
out="$tmp/out"
inputs="$tmp/inputs" # shared read-only inputs
mkdir -p "$out" "$inputs"

export LC_ALL=C TZ=UTC HOME="$tmp/home"
mkdir -p "$HOME"
# git: no system or user configuration, fixed identity and dates, so the commit
# hashes (and so every line of output) are the same in both runs.
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=hz GIT_AUTHOR_EMAIL=hz@example.invalid
export GIT_COMMITTER_NAME=hz GIT_COMMITTER_EMAIL=hz@example.invalid
export GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"

failures=0
passed=0

# run_case NAME SCRIPT: runs SCRIPT with bash in a fresh $work, once plain and once
# with LD_PRELOAD=$case_so (inherited by every process the script starts), and compares.
case_so="$so"
run_case() {
  local name="$1" script="$2" mode rc
  for mode in plain hz; do
    rm -rf "$work" && mkdir -p "$work"
    local pre="" expect=libc.so
    [ "$mode" = hz ] && pre="$case_so" expect=libhz_preload
    (cd "$work" && PROBE_EXPECT="$expect" LD_PRELOAD="$pre" bash -c "$script") \
      >"$out/$name.$mode.stdout" 2>"$out/$name.$mode.stderr"
    rc=$?
    echo "$rc" >"$out/$name.$mode.rc"
  done
  local ok=1
  for mode in plain hz; do
    if [ "$(cat "$out/$name.$mode.rc")" != 0 ]; then
      echo "FAIL: $name ($mode) exited $(cat "$out/$name.$mode.rc"); stdout, stderr:" >&2
      tail -c 1000 "$out/$name.$mode.stdout" >&2
      head -c 2000 "$out/$name.$mode.stderr" >&2
      ok=0
    fi
  done
  for stream in stdout stderr; do
    if ! cmp -s "$out/$name.plain.$stream" "$out/$name.hz.$stream"; then
      echo "FAIL: $name: $stream differs with the preload (< plain, > hz):" >&2
      diff "$out/$name.plain.$stream" "$out/$name.hz.$stream" | head -20 >&2
      ok=0
    fi
  done
  if [ "$ok" = 1 ]; then
    passed=$((passed + 1))
    echo "ok   $name ($(wc -c <"$out/$name.plain.stdout") bytes of output)"
  else
    failures=$((failures + 1))
  fi
}

# The preload must really be in effect, or every comparison below is vacuous.
if ! LD_PRELOAD="$so" cat /proc/self/maps | grep -q "$(basename "$so")"; then
  echo "FAIL: $so was not loaded by LD_PRELOAD" >&2
  exit 1
fi

# Inputs shared by both runs, made without the preload.
awk 'BEGIN { s = 12345; for (i = 0; i < 1000000; i++) {
  s = (s * 1103515245 + 12345) % 2147483648; printf "%d line %x\n", s % 100000, s } }' \
  >"$inputs/lines.txt"
mkdir -p "$inputs/tree"
for d in $(seq 1 30); do
  mkdir -p "$inputs/tree/dir$d"
  for f in $(seq 1 10); do
    seq "$d" "$f" 5000 >"$inputs/tree/dir$d/file$f.txt"
  done
done
cat >"$inputs/prog.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
  unsigned long sum = 0;
  for (int i = 1; i <= 1000; i++) {
    char *p = malloc((size_t)i * 16);
    memset(p, i & 0xff, (size_t)i * 16);
    sum += (unsigned char)p[i];
    free(p);
  }
  printf("sum %lu\n", sum);
  return 0;
}
C

# The whole malloc family, foreign (glibc) pointers, remote frees and fork; the probe
# also fails unless malloc is defined by the library each run expects.
run_case probe "$probe \"\$PROBE_EXPECT\""
run_case true '/bin/true'
run_case echo 'echo hello from hz; echo -e "a\tb\\n"'
run_case ls 'ls -la /usr/lib'
run_case env-i 'env -i'
run_case find-sort "find /usr/include -name '*.h' | sort"
run_case sort "sort $inputs/lines.txt && sort -n -k1,1 -s $inputs/lines.txt | md5sum"
run_case git "
  set -e
  git init -q repo && cd repo
  for i in \$(seq 1 300); do mkdir -p d\$((i % 17)); seq \$i >d\$((i % 17))/f\$i.txt; done
  git add -A && git commit -q -m 'first 300 files'
  for i in \$(seq 1 300 | awk 'NR % 3 == 0'); do echo more >>d\$((i % 17))/f\$i.txt; done
  git commit -q -a -m 'edit a third'
  git rm -q -r d3 && git commit -q -m 'remove d3'
  git log --stat --format='%H %an %s' | head -400
  echo new >untracked.txt; echo changed >>d1/f1.txt
  git status --short | sort
  git gc -q --aggressive
  git count-objects -v | grep -v size
  git fsck --no-progress && git log --oneline | wc -l
"
run_case python3 "python3 $here/threads.py"
run_case cmake 'cmake --version'
run_case gcc "gcc -O2 -Wall -o prog $inputs/prog.c && ./prog && gcc -O2 -c -o prog.o $inputs/prog.c && md5sum prog.o"
run_case tar "
  set -e
  tar -C $inputs -cJf tree.tar.xz tree
  md5sum tree.tar.xz
  mkdir x && tar -C x -xJf tree.tar.xz
  diff -r $inputs/tree x/tree && echo identical
  tar -tJf tree.tar.xz | sort | md5sum
"

# When hz outgrows its arena, allocations it cannot serve fall back to the next allocator,
# and hz and glibc blocks live side by side: every free, realloc and usable size must find
# the right owner. The probe also outgrows the arena, with its large blocks and alignments.
case_so="$small_arena_so"
run_case arena-full-probe "$probe \"\$PROBE_EXPECT\""
run_case arena-full-sort "sort $inputs/lines.txt | md5sum"
run_case arena-full-python3 "python3 $here/threads.py"
case_so="$so"

# When hz cannot reserve its arena (here: an address-space limit), every allocation
# falls back to the next allocator and the program still works; resolving the next
# allocator then allocates from the shim's bootstrap buffer. hz says why, once.
limited='ulimit -v 4000000; ls -la /usr/lib && sort "$0" | md5sum && "$1" "$PROBE_EXPECT"'
plain_out=$(PROBE_EXPECT=libc.so bash -c "$limited" "$inputs/lines.txt" "$probe" 2>&1); plain_rc=$?
hz_out=$(PROBE_EXPECT=libhz_preload LD_PRELOAD="$so" bash -c "$limited" "$inputs/lines.txt" "$probe" \
  2>"$out/limited.stderr"); hz_rc=$?
if [ "$plain_rc" = 0 ] && [ "$hz_rc" = 0 ] && [ "$plain_out" = "$hz_out" ] &&
   ! grep -qv '^hz: cannot reserve the arena' "$out/limited.stderr"; then
  passed=$((passed + 1)); echo "ok   address-space limit (fallback to the next allocator)"
else
  failures=$((failures + 1))
  echo "FAIL: under ulimit -v: rc plain $plain_rc, hz $hz_rc; hz stderr:" >&2
  head -c 2000 "$out/limited.stderr" >&2
  echo "stdout (< plain, > hz):" >&2
  diff <(echo "$plain_out") <(echo "$hz_out") | head -20 >&2
fi

echo "$passed passed, $failures failed"
[ "$failures" = 0 ]
