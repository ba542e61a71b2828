#!/usr/bin/python3
"""tools/coverage: which lines, functions and branches of core/ the tests reach.

    tools/coverage                                  seeds + regressions + unit tests
    tools/coverage --inputs seeds --targets alloc   one target's seed corpus
    tools/coverage --inputs queue:out/campaign      a campaign's queues (or any folder
                                                    holding <t>/ or <t>_fuzzer/ inputs)
    tools/coverage --compare                        unit tests alone, fuzz inputs alone,
                                                    both: the table of docs/TESTING.md
    bazel run //tools:coverage -- --inputs unit

Builds the core and the harness with clang's source-based coverage
(-fprofile-instr-generate -fcoverage-mapping) outside Bazel: the fuzz targets through
fuzz/build.sh, linked with the standalone replay driver (so .ops text inputs replay as
they do in `bazel test`), and the core unit tests with the defines their BUILD rules give.
Replays the chosen inputs in the baton mode, merges the profiles with llvm-profdata and
writes under --out (default out/coverage/):

  html/index.html   llvm-cov's line-by-line report of core/
  summary.md        line, function and branch coverage per file of core/
  unreached.md      the core/ functions no input enters and the branches of which one
                    side no input takes: the suite's to-do list

Exit 0 when the report is written, 2 on a usage or environment error, named in one line.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
TARGETS = ["tls_sll", "alloc", "realloc", "reuse", "ptag", "mt", "shim"]
INPUT_KINDS = ["seeds", "regressions", "unit"]
COV_FLAGS = ["-fprofile-instr-generate", "-fcoverage-mapping"]
CORE_SRCS = ["alloc", "check", "fault", "free", "large", "os", "pagemap", "pool", "remote",
             "sizeclass", "slab", "tcache", "thread"]
# The core unit tests and the defines of the core each links (core/BUILD.bazel).
UNIT_TESTS = [
    ("sizeclass_test", []), ("tls_sll_test", []), ("ptag_test", []), ("api_test", []),
    ("misuse_test", []), ("slab_test", []), ("thread_test", []), ("fork_test", []),
    ("reset_test", []), ("seed_bugs_test", []),
    ("oom_test", ["-DHZ_ARENA_SHIFT=26"]),
    ("race_test", ["-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"]),
]


def die(msg):
    sys.stderr.write("coverage: %s\n" % msg)
    sys.exit(2)


def say(msg):
    print("coverage: " + msg, flush=True)


def tool(name):
    for n in (name, name + "-14"):
        p = shutil.which(n)
        if p:
            return p
    die("%s not found: install llvm with tools/setup.sh" % name)


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       errors="replace", **kw)
    return r


def build(out, targets, want_unit):
    """Coverage builds: <out>/build/fuzz/<t>_fuzzer and <out>/build/unit/<test>."""
    b = os.path.join(out, "build")
    os.makedirs(os.path.join(b, "fuzz"), exist_ok=True)
    os.makedirs(os.path.join(b, "unit"), exist_ok=True)
    base = ["clang", "-std=c11", "-D_GNU_SOURCE", "-I", ROOT, "-O1", "-g"] + COV_FLAGS
    bins = {}
    if targets:
        main_o = os.path.join(b, "replay_main.o")
        r = run(base + ["-c", os.path.join(ROOT, "fuzz", "hzf_replay_main.c"), "-o", main_o])
        if r.returncode != 0:
            die("cannot compile the replay driver: " + r.stdout.strip()[-300:])
        env = dict(os.environ, CC="clang", CFLAGS=" ".join(COV_FLAGS + ["-O1"]),
                   LIB_FUZZING_ENGINE=main_o, OUT=os.path.join(b, "fuzz"), SRC="")
        r = run([os.path.join(ROOT, "fuzz", "build.sh"), "--binaries-only", "--properties", "none", "--targets",
                 " ".join(targets)], env=env)
        if r.returncode != 0:
            die("fuzz/build.sh failed: " + r.stdout.strip()[-400:])
        bins.update({t: os.path.join(b, "fuzz", t + "_fuzzer") for t in targets})
    if want_unit:
        core = [os.path.join(ROOT, "core", s + ".c") for s in CORE_SRCS]
        helper = os.path.join(ROOT, "core", "testing", "hz_test.c")
        for name, defines in UNIT_TESTS:
            exe = os.path.join(b, "unit", name)
            r = run(base + ["-DHZ_DEBUG=2"] + defines + core + [
                helper, os.path.join(ROOT, "core", name + ".c"), "-o", exe, "-lpthread"])
            if r.returncode != 0:
                die("cannot build %s: %s" % (name, r.stdout.strip()[-300:]))
            bins["unit:" + name] = exe
    return bins


def input_sets(kinds, targets, queues):
    """{target: [files]} per fuzz input kind asked for."""
    sets = {t: [] for t in targets}
    for t in targets:
        name = t + "_fuzzer"
        if "seeds" in kinds:
            d = os.path.join(ROOT, "corpus", name)
            sets[t] += [os.path.join(d, f) for f in sorted(os.listdir(d))
                        if not f.endswith(".txt")]
        if "regressions" in kinds:
            d = os.path.join(ROOT, "fuzz", "regressions")
            sets[t] += [os.path.join(d, f) for f in sorted(os.listdir(d))
                        if f.startswith(name + "-")]
        for q in queues:
            for sub in (t, name):
                d = os.path.join(q, sub)
                if os.path.isdir(d):
                    for dirpath, _, files in os.walk(d):
                        sets[t] += [os.path.join(dirpath, f) for f in sorted(files)
                                    if f.startswith("id:") or dirpath.endswith("corpus")]
    return sets


def profile_runs(out, bins, sets, want_unit, tag):
    """Runs everything with LLVM_PROFILE_FILE under <out>/profiles/<tag>/; returns them."""
    prof = os.path.join(out, "profiles", tag)
    shutil.rmtree(prof, ignore_errors=True)
    os.makedirs(prof)
    env = dict(os.environ, HZF_MODE="baton",
               LLVM_PROFILE_FILE=os.path.join(prof, "%p-%m.profraw"))
    ran = 0
    for t, files in sets.items():
        for i in range(0, len(files), 200):  # the driver takes many files per process
            chunk = files[i:i + 200]
            r = run([bins[t], "--mode=baton"] + chunk, env=env, timeout=1800)
            if r.returncode != 0:
                say("warning: %s exits %d on its inputs (a finding?): %s" % (
                    t, r.returncode, (re.findall(r"HZFUZZ-FINDING.*", r.stdout) or [""])[0]))
            ran += len(chunk)
    if want_unit:
        for name, _ in UNIT_TESTS:
            r = run([bins["unit:" + name]], env=env, timeout=600, cwd=out)
            if r.returncode != 0:
                say("warning: unit test %s failed under the coverage build" % name)
            ran += 1
    raws = [os.path.join(prof, f) for f in os.listdir(prof) if f.endswith(".profraw")]
    if not raws:
        die("no profile written for %s" % tag)
    merged = os.path.join(out, "profiles", tag + ".profdata")
    r = run([tool("llvm-profdata"), "merge", "-sparse", "-o", merged] + raws)
    if r.returncode != 0:
        die("llvm-profdata merge failed: " + r.stdout.strip()[-300:])
    return merged, ran


def objects(bins):
    objs = sorted(bins.values())
    return objs[:1] + sum((["-object", o] for o in objs[1:]), [])


def core_summary(bins, profdata):
    """{file: {lines, functions, branches: (covered, count)}} for core/*.c and the totals."""
    r = run([tool("llvm-cov"), "export", "-summary-only", "-instr-profile", profdata] +
            objects(bins))
    if r.returncode != 0:
        die("llvm-cov export failed: " + r.stdout.strip()[-300:])
    data = json.loads(r.stdout)["data"][0]
    files = {}
    core_dir = os.path.join(ROOT, "core") + os.sep
    for f in data["files"]:
        name = os.path.realpath(f["filename"])
        if not name.startswith(core_dir) or "/testing/" in name or name.endswith("_test.c"):
            continue
        s = f["summary"]
        files[os.path.relpath(name, ROOT)] = {
            k: (s[k]["covered"], s[k]["count"]) for k in ("lines", "functions", "branches")}
    total = {k: (sum(v[k][0] for v in files.values()), sum(v[k][1] for v in files.values()))
             for k in ("lines", "functions", "branches")}
    return files, total


def pct(c):
    return "%.1f%% (%d/%d)" % (100.0 * c[0] / c[1], c[0], c[1]) if c[1] else "-"


def unreached(bins, profdata):
    """The core/ functions never entered and the branches with a side never taken."""
    r = run([tool("llvm-cov"), "export", "-instr-profile", profdata] + objects(bins))
    data = json.loads(r.stdout)["data"][0]
    core_dir = os.path.join(ROOT, "core") + os.sep
    counts, branches = {}, []
    for fn in data["functions"]:
        names = [os.path.realpath(x) for x in fn["filenames"]]
        if names and names[0].startswith(core_dir) and \
                not names[0].endswith("_test.c") and "/testing/" not in names[0]:
            # Static functions carry their file as a prefix ("core/slab.c:hz__f"), and a
            # static inline function of a header has one copy per file that includes it:
            # unreached means no copy ever ran.
            key = (os.path.relpath(names[0], ROOT), fn["name"].split(":")[-1],
                   fn["regions"][0][0] if fn["regions"] else 0)
            counts[key] = counts.get(key, 0) + fn["count"]
    funcs = [k for k, n in counts.items() if n == 0]
    for f in data["files"]:
        name = os.path.realpath(f["filename"])
        if not name.startswith(core_dir) or name.endswith("_test.c") or "/testing/" in name:
            continue
        src = open(name, errors="replace").read().splitlines()
        seen = set()
        for b in f.get("branches", []):
            line, col, true_n, false_n = b[0], b[1], b[4], b[5]
            if (true_n == 0) == (false_n == 0):
                continue  # both sides taken, or the line never reached (see functions)
            key = (line, col)
            if key in seen:
                continue
            seen.add(key)
            side = "never true" if true_n == 0 else "never false"
            text = src[line - 1].strip() if line - 1 < len(src) else ""
            branches.append((os.path.relpath(name, ROOT), line, col, side, text[:90]))
    return sorted(funcs), sorted(branches)


def write_report(out, bins, profdata, ran, kinds):
    html = os.path.join(out, "html")
    shutil.rmtree(html, ignore_errors=True)
    r = run([tool("llvm-cov"), "show", "-format=html", "-output-dir", html,
             "-show-branches=count", "-instr-profile", profdata] + objects(bins) +
            [os.path.join(ROOT, "core")])
    if r.returncode != 0:
        die("llvm-cov show failed: " + r.stdout.strip()[-300:])
    files, total = core_summary(bins, profdata)
    md = ["# Coverage of core/", "",
          "Inputs: %s (%d runs). Source-based coverage, llvm-cov; a branch is one side of "
          "a condition." % (", ".join(kinds), ran), "",
          "| file | lines | functions | branches |", "|---|---|---|---|"]
    for name in sorted(files):
        v = files[name]
        md.append("| %s | %s | %s | %s |" % (name, pct(v["lines"]), pct(v["functions"]),
                                             pct(v["branches"])))
    md.append("| **core/ total** | %s | %s | %s |" % (pct(total["lines"]), pct(total["functions"]),
                                                      pct(total["branches"])))
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    funcs, branches = unreached(bins, profdata)
    um = ["# What the inputs never reach in core/", "",
          "Inputs: %s. %d functions never entered, %d branches with a side never taken." % (
              ", ".join(kinds), len(funcs), len(branches)), "", "## Functions", ""]
    um += ["- `%s:%d` %s" % (f, line, n) for f, n, line in funcs] or ["(none)"]
    um += ["", "## Branches", "", "| where | side | code |", "|---|---|---|"]
    um += ["| %s:%d:%d | %s | `%s` |" % (f, l, c, side, t.replace("|", "\\|"))
           for f, l, c, side, t in branches]
    with open(os.path.join(out, "unreached.md"), "w") as f:
        f.write("\n".join(um) + "\n")
    return total, len(funcs), len(branches)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", default="seeds,regressions,unit",
                    help="comma-separated: seeds, regressions, unit, queue:DIR (default "
                    "seeds,regressions,unit)")
    ap.add_argument("--targets", default="all", help="fuzz targets (default all)")
    ap.add_argument("--out", default=None, help="output folder (default out/coverage)")
    ap.add_argument("--compare", action="store_true",
                    help="unit tests alone, fuzz inputs alone, both: one table")
    args = ap.parse_args()

    targets = TARGETS if args.targets == "all" else [
        t.strip().replace("_fuzzer", "") for t in args.targets.split(",") if t.strip()]
    for t in targets:
        if t not in TARGETS:
            die("unknown target %r (targets: %s)" % (t, ", ".join(TARGETS)))
    wd = os.environ.get("BUILD_WORKING_DIRECTORY", os.getcwd())
    kinds, queues = [], []
    for k in [x.strip() for x in args.inputs.split(",") if x.strip()]:
        if k.startswith("queue:"):
            q = os.path.abspath(os.path.join(wd, k[len("queue:"):]))
            if not os.path.isdir(q):
                die("input folder %s does not exist" % q)
            queues.append(q)
            kinds.append(k)
        elif k in INPUT_KINDS:
            kinds.append(k)
        else:
            die("unknown input kind %r (seeds, regressions, unit, queue:DIR)" % k)
    if args.compare:
        kinds = ["seeds", "regressions", "unit"] + ["queue:" + q for q in queues]
    out = os.path.abspath(os.path.join(wd, args.out) if args.out else os.path.join(
        os.environ.get("BUILD_WORKSPACE_DIRECTORY", ROOT), "out", "coverage"))
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        die("cannot create %s: %s" % (out, e.strerror))
    for t in ("clang",):
        if not shutil.which(t):
            die("%s not found: run tools/setup.sh" % t)
    tool("llvm-profdata")
    tool("llvm-cov")

    fuzz_kinds = [k for k in kinds if k != "unit"]
    want_unit = "unit" in kinds
    say("building with coverage into %s/build" % out)
    bins = build(out, targets if fuzz_kinds else [], want_unit)
    sets = input_sets(fuzz_kinds, targets if fuzz_kinds else [], queues)
    if args.compare:
        rows = []
        fuzz_bins = {t: bins[t] for t in targets}
        unit_bins = {k: v for k, v in bins.items() if k.startswith("unit:")}
        for label, b, s, u in (("unit tests alone", unit_bins, {}, True),
                               ("fuzz inputs alone", fuzz_bins, sets, False),
                               ("both", bins, sets, True)):
            profdata, ran = profile_runs(out, bins, s, u, label.split()[0])
            _, total = core_summary(b, profdata)
            rows.append((label, ran, total))
        md = ["| inputs | runs | lines | functions | branches |", "|---|---|---|---|---|"]
        md += ["| %s | %d | %s | %s | %s |" % (l, n, pct(t["lines"]), pct(t["functions"]),
                                                pct(t["branches"])) for l, n, t in rows]
        with open(os.path.join(out, "compare.md"), "w") as f:
            f.write("\n".join(md) + "\n")
        print("\n".join(md))
        total, nf, nb = write_report(out, bins, profdata, rows[-1][1], kinds)
    else:
        profdata, ran = profile_runs(out, bins, sets, want_unit, "run")
        total, nf, nb = write_report(out, bins, profdata, ran, kinds)
    say("core/: lines %s, functions %s, branches %s" % (
        pct(total["lines"]), pct(total["functions"]), pct(total["branches"])))
    say("%d functions never entered, %d branches with a side never taken: %s" % (
        nf, nb, os.path.join(out, "unreached.md")))
    say("report: %s, %s" % (os.path.join(out, "html", "index.html"),
                            os.path.join(out, "summary.md")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
