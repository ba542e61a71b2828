#!/usr/bin/env bash
# Installs every Debian package hzfuzz uses anywhere, on a fresh Debian bookworm machine.
# Idempotent: packages already present are left alone. Run as root (or through sudo).
set -uo pipefail

# Each entry: package — why the project needs it.
PACKAGES=(
  bazel-bootstrap        # the build (Bazel 4.2.3, offline)
  clang                  # compiler for every config
  clang-14
  libclang-rt-14-dev     # libFuzzer and the sanitizer runtimes
  llvm                   # llvm-symbolizer, llvm-cov, llvm-profdata
  afl++                  # afl-clang-fast, afl-fuzz, afl-cmin, afl-tmin, libAFLDriver.a
  gnuplot-nox            # afl-plot, for the campaign report's graphs (tools/campaign)
  libmimalloc2.0         # benchmark peers, preloaded by tools/bench
  libjemalloc2
  libtcmalloc-minimal4
  python3                # tools and the benchmark driver
  python3-clang-14       # libclang's Python bindings: tools/mutation parses core/ with them
  git                    # the preload smoke test runs git under hz
  patch                  # tools/mutation --patch applies hand-written bugs
  cmake                  # the preload smoke test runs cmake under hz
  gcc                    # the preload smoke test compiles under hz
  xz-utils               # the preload smoke test's tar round trip
)

die() { echo "setup.sh: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "must run as root (no sudo found)"
  exec sudo -E bash "$0" "$@"
fi

export DEBIAN_FRONTEND=noninteractive

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all ${#PACKAGES[@]} packages already installed"
else
  echo "setup.sh: installing ${missing[*]}"
  apt-get update -q || die "apt-get update failed: check the network access to the Debian mirror"
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    # Retry one at a time to name exactly which package could not be installed.
    failed=()
    for p in "${missing[@]}"; do
      apt-get install -y -q --no-install-recommends "$p" >/dev/null 2>&1 || failed+=("$p")
    done
    [ ${#failed[@]} -eq 0 ] || die "could not install: ${failed[*]} (try: apt-get install ${failed[*]})"
  fi
fi

# Facts the build relies on; fail here with a clear message rather than deep inside Bazel.
command -v bazel >/dev/null || die "bazel not on PATH after installing bazel-bootstrap"
command -v clang >/dev/null || die "clang not on PATH after installing clang"
rt=$(clang -print-resource-dir)/lib/linux/libclang_rt.fuzzer-x86_64.a
[ -f "$rt" ] || die "libFuzzer runtime missing at $rt (libclang-rt-14-dev)"
[ -f /usr/lib/afl/libAFLDriver.a ] || die "/usr/lib/afl/libAFLDriver.a missing (afl++)"
/usr/bin/python3 -c 'import clang.cindex' 2>/dev/null ||
  die "libclang's Python bindings do not import in /usr/bin/python3 (python3-clang-14)"
echo "setup.sh: ok ($(bazel --version 2>/dev/null | head -1), $(clang --version | head -1))"
