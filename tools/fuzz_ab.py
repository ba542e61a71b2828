#!/usr/bin/python3
"""Fuzzer throughput, one build against another, on the same bytes, interleaved.

    bazel run //tools:fuzz_ab -- --base 3acb52a                # base revision vs the tree
    bazel run //tools:fuzz_ab -- --base 3acb52a --new HEAD~1 --rounds 3 --targets mt,alloc
    tools/fuzz_ab --base-bin DIR --new-bin DIR                 # prebuilt *_fuzzer_bin

Each side's libFuzzer binaries replay the same pseudo-random inputs (`-runs=0 DIR`,
--inputs files of 512-1024 bytes from --seed), one side then the other, target by target,
round after round, so that a noisy machine slows both alike. A revision is built once in
its own git worktree under out/fuzz_ab/<commit>/ (kept for the next run; `git worktree
remove out/fuzz_ab/<commit>/src` drops it); the working tree itself is --new's default
("tree"), built by `bazel build //fuzz:all`.

Prints, per target, each side's wall seconds per round, the exec/s ratio (base wall over
new wall, summed over rounds), the ratio of each round, and the CPU-time ratio (the fork
children included). A finding on either side is an error: the two replays must do the
same work. Exit status: 0, 1 for a finding, 2 for bad usage or a build that failed.
"""
import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workspace  # noqa: E402
from workspace import user_path  # noqa: E402

# The default: the targets every revision since 3acb52a has; shim_fuzzer came later.
TARGETS = ["tls_sll", "realloc", "ptag", "alloc", "reuse", "mt"]
KNOWN = TARGETS + ["shim"]


def die(msg):
    workspace.die("fuzz_ab", msg)


def copy_bins(src, dst, targets):
    os.makedirs(dst, exist_ok=True)
    for t in targets:
        b = os.path.join(src, "fuzz", t + "_fuzzer_bin")
        if not os.path.isfile(b):
            die("the build made no %s (is %s a tree with that target?)" % (b, src))
        shutil.copy2(b, os.path.join(dst, t + "_fuzzer_bin"))
    return dst


def build(rev, root, targets):
    """The binaries of `rev` ("tree": the working tree as it is), built once and kept."""
    out = os.path.join(root, "out", "fuzz_ab")
    os.makedirs(out, exist_ok=True)
    if rev == "tree":
        print("fuzz_ab: building the working tree", file=sys.stderr)
        bin_dir = workspace.bazel_bin("fuzz_ab", root, ["//fuzz:all"],
                                      os.path.join(out, "tree.log"))
        return copy_bins(bin_dir, os.path.join(out, "tree", "bin"), targets)
    sha = subprocess.run(["git", "rev-parse", "--verify", "--quiet", rev + "^{commit}"], cwd=root,
                         capture_output=True, text=True).stdout.strip()
    if not sha:
        die("%s is not a commit of this repository" % rev)
    keep = os.path.join(out, sha[:12])
    bins = os.path.join(keep, "bin")
    if all(os.path.isfile(os.path.join(bins, t + "_fuzzer_bin")) for t in targets):
        return bins
    work = os.path.join(keep, "src")
    if not os.path.isdir(work):
        rc = subprocess.run(["git", "worktree", "add", "--detach", work, sha], cwd=root,
                            stdout=subprocess.DEVNULL).returncode
        if rc != 0:
            die("git worktree add %s %s failed" % (work, sha))
    print("fuzz_ab: building %s in %s" % (sha[:12], work), file=sys.stderr)
    return copy_bins(workspace.bazel_bin("fuzz_ab", work, ["//fuzz:all"],
                                        os.path.join(keep, "build.log")), bins, targets)


def make_inputs(d, n, seed):
    os.makedirs(d, exist_ok=True)
    rng = random.Random(seed)
    for i in range(n):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(512, 1025)))
        with open(os.path.join(d, "in%04d" % i), "wb") as f:
            f.write(data)


def replay(binary, inputs):
    """(wall s, CPU s, found) of one replay of every input."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run([binary, "-runs=0", inputs], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    found = p.returncode != 0 or b"HZFUZZ-FINDING" in p.stderr
    return wall, cpu, found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", help="the base revision (built in a worktree)")
    ap.add_argument("--base-bin", help="a folder of prebuilt <target>_fuzzer_bin instead")
    ap.add_argument("--new", default="tree", help='the new revision, or "tree" (default)')
    ap.add_argument("--new-bin", help="a folder of prebuilt <target>_fuzzer_bin instead")
    ap.add_argument("--targets", default=",".join(TARGETS),
                    help="comma-separated (default: the six older than shim)")
    ap.add_argument("--inputs", type=int, default=200, help="inputs to replay (200)")
    ap.add_argument("--seed", type=int, default=7, help="seed of the inputs (7)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    a = ap.parse_args()
    targets = [t for t in a.targets.split(",") if t]
    for t in targets:
        if t not in KNOWN:
            die("unknown target %r (targets: %s)" % (t, ", ".join(KNOWN)))
    if not targets or a.inputs < 1 or a.rounds < 1:
        die("--targets, --inputs and --rounds must name at least one")
    if bool(a.base) == bool(a.base_bin):
        die("give exactly one of --base REV and --base-bin DIR")
    sides = {}
    for name, rev, given in (("base", a.base, a.base_bin), ("new", a.new, a.new_bin)):
        if given:
            d = user_path(given)
            missing = [t for t in targets if not os.access(os.path.join(d, t + "_fuzzer_bin"),
                                                           os.X_OK)]
            if missing:
                die("%s has no executable %s_fuzzer_bin" % (d, missing[0]))
            sides[name] = d
        else:
            root = workspace.require_root("fuzz_ab", "; give --base-bin/--new-bin")
            sides[name] = build(rev, root, targets)
    inputs = os.path.join(os.environ.get("TEST_TMPDIR") or "/tmp",
                          "fuzz_ab-inputs-%d-%d" % (a.seed, a.inputs))
    if not os.path.isdir(inputs) or len(os.listdir(inputs)) != a.inputs:
        shutil.rmtree(inputs, ignore_errors=True)
        make_inputs(inputs, a.inputs, a.seed)
    res = {(t, s): [] for t in targets for s in sides}
    for r in range(a.rounds):
        for t in targets:
            for s in ("base", "new"):
                wall, cpu, found = replay(os.path.join(sides[s], t + "_fuzzer_bin"), inputs)
                print("round %d %-8s %-4s wall %6.2f s  cpu %6.2f s" % (r + 1, t, s, wall, cpu),
                      file=sys.stderr)
                if found:
                    print("fuzz_ab: %s's %s_fuzzer found something in %s: the sides must replay "
                          "clean (run it alone to see the finding)" % (s, t, inputs),
                          file=sys.stderr)
                    return 1
                res[(t, s)].append((wall, cpu))
    print("| target | base wall (s) | new wall (s) | exec/s ratio | each round | CPU ratio |")
    print("|---|---|---|---|---|---|")
    for t in targets:
        b, n = res[(t, "base")], res[(t, "new")]
        walls = lambda v: ", ".join("%.1f" % x[0] for x in v)
        each = ", ".join("%.2f" % (x[0] / y[0]) for x, y in zip(b, n))
        ratio = sum(x[0] for x in b) / sum(y[0] for y in n)
        cpu = sum(x[1] for x in b) / max(sum(y[1] for y in n), 1e-9)
        print("| %s | %s | %s | **%.2fx** | %s | %.2fx |" % (t, walls(b), walls(n), ratio, each, cpu))
    return 0


if __name__ == "__main__":
    sys.exit(main())
