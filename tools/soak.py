#!/usr/bin/python3
"""Long clean runs of every fuzz target under libFuzzer, counted: the nightly soak.

    bazel run //tools:soak -- --time 3600              # every arm an hour, every core
    tools/soak --time 600 --arms tls_sll,mt_free,mt_tsan --jobs 2
    tools/soak --bin-dir DIR --tsan-bin-dir DIR ...    # prebuilt *_fuzzer_bin, no build

The arms are the seven targets as `bazel run //fuzz:<t>` fuzzes them (ASan + UBSan, baton
threads); `mt_free`, mt_fuzzer's ASan build with its threads running at once
(HZF_MODE=free), where a block one thread frees while another still uses it is a
use-after-free ASan sees; and `mt_tsan`, mt_fuzzer built with --config=tsan in the
free-running mode, the one arm that can see a missing acquire or release. Each arm runs
--time seconds with `bazel run //fuzz:<t>`'s flags, from its own working corpus
(out/soak/<arm>/corpus, seeded from corpus/<t>_fuzzer/ and kept from night to night);
--jobs arms run at once. The ASan binaries come from `bazel build //fuzz:<t>_fuzzer_bin`,
the TSan one from the output base tools/matrix uses for tsan
(~/.cache/hzfuzz-matrix/tsan), so neither build evicts the other.

libFuzzer's final stats give each arm's execs. A finding (a nonzero exit, an
HZFUZZ-FINDING line, a crash, leak or timeout file in crashes/) is printed with its log and
replay command, and the exit status is 1. An input libFuzzer only calls slow (slow-unit-*:
over 10 s, where the harness's watchdog and -timeout judge a hang) is no finding; the
report lists it to replay. out/soak/report.md gets the table; out/soak/ledger.jsonl gets one
line per arm and run, keyed by a hash of the core's sources as committed (core/ without
its tests), and the report totals the clean execs the ledger holds for the core as it is
now: the figure behind "no finding in N execs". A run of prebuilt binaries, or with the
core's sources edited, is reported but counts towards no core.
Exit status: 0 clean, 1 a finding, 2 bad usage or a build that failed, 130 interrupted
(Ctrl-C or SIGTERM stop every arm; those that finished are reported and kept).
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workspace  # noqa: E402
from workspace import user_path  # noqa: E402

TARGETS = ["tls_sll", "realloc", "ptag", "alloc", "reuse", "mt", "shim"]
ARMS = TARGETS + ["mt_free", "mt_tsan"]
DEFAULT_OUT = "out/soak"
# libFuzzer's note of an input over -report_slow_units seconds; the run goes on.
SLOW_UNIT = "slow-unit-"
EXECS = re.compile(rb"stat::number_of_executed_units:\s*(\d+)")
FINDING = re.compile(rb"^HZFUZZ-FINDING:.*$", re.M)
REPLAY = re.compile(rb"^replay: .*$", re.M)


def die(msg):
    workspace.die("soak", msg)


def core_version(root):
    """(the core's name, HEAD's): a hash of the blobs of core/'s sources, its tests left out
    (they are not in the fuzzers), with "+dirty" when those sources have uncommitted edits."""
    def git(*args):
        return subprocess.run(["git"] + list(args), cwd=root, capture_output=True,
                              text=True).stdout
    src = lambda path: not path.endswith("_test.c")
    blobs = [l for l in git("ls-tree", "-r", "HEAD", "core/").splitlines()
             if src(l.split("\t", 1)[-1])]
    if not blobs:
        return "unknown", "unknown"
    dirty = any(src(l[3:]) for l in git("status", "--porcelain", "--", "core").splitlines())
    name = hashlib.sha1("\n".join(blobs).encode()).hexdigest()[:12]
    head = git("rev-parse", "--short=12", "HEAD").strip() or "unknown"
    return name + ("+dirty" if dirty else ""), head + ("+dirty" if dirty else "")


def binaries(a, root, arms, out):
    """{arm: executable}, built unless --bin-dir / --tsan-bin-dir name prebuilt ones."""
    bins = {}
    asan = [t for t in arms if t != "mt_tsan"]
    if asan:
        if a.bin_dir:
            d = user_path(a.bin_dir)
        else:
            # Only the libFuzzer binaries: //fuzz:all would build the AFL++ ones too.
            want = sorted({"//fuzz:%s_fuzzer_bin" % target_of(arm) for arm in asan})
            print("soak: bazel build " + " ".join(want), file=sys.stderr)
            d = os.path.join(workspace.bazel_bin("soak", root, want,
                                                 os.path.join(out, "build.log")), "fuzz")
        for arm in asan:
            bins[arm] = os.path.join(d, target_of(arm) + "_fuzzer_bin")
    if "mt_tsan" in arms:
        if a.tsan_bin_dir:
            d = user_path(a.tsan_bin_dir)
        else:
            base = os.path.join(os.path.expanduser("~"), ".cache", "hzfuzz-matrix", "tsan")
            print("soak: bazel build --config=tsan //fuzz:mt_fuzzer_bin (output base %s)" % base,
                  file=sys.stderr)
            d = os.path.join(workspace.bazel_bin("soak", root, ["//fuzz:mt_fuzzer_bin"],
                                                 os.path.join(out, "build-tsan.log"),
                                                 output_base=base, config="tsan"), "fuzz")
        bins["mt_tsan"] = os.path.join(d, "mt_fuzzer_bin")
    for arm, b in bins.items():
        if not os.access(b, os.X_OK):
            die("%s has no executable %s (arm %s)" % (os.path.dirname(b), os.path.basename(b), arm))
    # Copies, so that a build during a long soak cannot swap the binary of an arm that has
    # not started yet.
    for arm, b in bins.items():
        d = os.path.join(out, "bin-tsan" if arm.endswith("_tsan") else "bin")
        os.makedirs(d, exist_ok=True)
        copy = os.path.join(d, os.path.basename(b))
        if os.path.realpath(copy) != os.path.realpath(b):
            shutil.copy2(b, copy + ".new")
            os.replace(copy + ".new", copy)  # never over a binary another soak is running
        bins[arm] = copy
    return bins


def target_of(arm):
    return arm.split("_")[0] if arm.endswith(("_free", "_tsan")) else arm


def seeds_of(root, arm):
    """The arm's checked-in seed folder; a missing one ends the soak before any arm runs
    (found later, it would leave the arms already running without their soak)."""
    seeds = os.path.join(root, "corpus", target_of(arm) + "_fuzzer")
    if not os.path.isdir(seeds) or not os.listdir(seeds):
        die("the seed corpus %s is missing or empty" % seeds)
    return seeds


def start(arm, binary, root, out, seconds):
    """Starts one arm as `bazel run //fuzz:<t>` would, in its own process group."""
    t = target_of(arm)
    d = os.path.join(out, arm)
    corpus, crashes = os.path.join(d, "corpus"), os.path.join(d, "crashes")
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(crashes, exist_ok=True)
    seeds = seeds_of(root, arm)
    for f in os.listdir(seeds):
        if not f.endswith(".txt") and not os.path.exists(os.path.join(corpus, f)):
            shutil.copy(os.path.join(seeds, f), corpus)
    # The flags of `bazel run //fuzz:<t>` (fuzz/libfuzzer.options says why each is there).
    cmd = ([binary, "-artifact_prefix=" + crashes + "/"] + workspace.libfuzzer_flags(root) +
           ["-print_final_stats=1", "-max_total_time=%d" % seconds])
    dict_ = os.path.join(root, "fuzz", "dicts", t + "_fuzzer.dict")
    if os.path.isfile(dict_) and os.path.getsize(dict_) > 0:
        cmd.append("-dict=" + dict_)
    cmd.append(corpus)
    env = dict(os.environ, HZF_FINDINGS_DIR=crashes)
    if arm.endswith(("_free", "_tsan")):
        env["HZF_MODE"] = "free"
    log = open(os.path.join(d, "log"), "wb")
    before = set(os.listdir(crashes))  # before the fuzzer starts: it may write at once
    p = subprocess.Popen(cmd, cwd=d, env=env, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    return {"arm": arm, "proc": p, "log": log, "dir": d, "t0": time.monotonic(),
            "before": before, "binary": binary}


def finish(run):
    run["log"].close()
    wall = time.monotonic() - run["t0"]
    with open(os.path.join(run["dir"], "log"), "rb") as f:
        text = f.read()
    m = EXECS.findall(text)
    crashes = os.path.join(run["dir"], "crashes")
    new = sorted(set(os.listdir(crashes)) - run["before"])
    slow = [f for f in new if f.startswith(SLOW_UNIT)]
    rc = run["proc"].returncode
    found = rc != 0 or bool(FINDING.search(text)) or len(new) > len(slow)
    return {"arm": run["arm"], "dir": run["dir"], "seconds": round(wall),
            "execs": int(m[-1]) if m else 0, "rc": rc, "finding": found, "new_files": new,
            "slow": [os.path.join(crashes, f) for f in slow], "binary": run["binary"],
            "lines": [x.decode(errors="replace") for x in FINDING.findall(text)[:1] +
                      REPLAY.findall(text)[:1]]}


def run_all(arms, bins, root, out, seconds, jobs):
    queue, running, done = list(arms), [], []

    def stop(*_):
        for r in running:
            try:
                os.killpg(r["proc"].pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while queue or running:
            while queue and len(running) < jobs:
                arm = queue.pop(0)
                print("soak: %s for %d s" % (arm, seconds), file=sys.stderr)
                running.append(start(arm, bins[arm], root, out, seconds))
            time.sleep(1)
            for r in [r for r in running if r["proc"].poll() is not None]:
                running.remove(r)
                res = finish(r)
                done.append(res)
                print("soak: %s: %d execs in %d s%s" % (
                    res["arm"], res["execs"], res["seconds"],
                    ", FINDING (exit %d)" % res["rc"] if res["finding"] else ", clean"),
                    file=sys.stderr)
    except KeyboardInterrupt:
        for r in running:
            try:
                os.killpg(r["proc"].pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            r["proc"].wait()
        print("soak: interrupted; the arms that finished are reported", file=sys.stderr)
    return done


def slow_replay(run, path):
    """The command that replays one slow input as its arm ran it: the TSan arm through the
    TSan binary it ran (repro is an ASan build), the others through repro's op trace."""
    arm, t = run["arm"], target_of(run["arm"])
    if arm.endswith("_tsan"):
        return "HZF_MODE=free %s -runs=1 %s" % (run["binary"], path)
    return "bazel run //tools:repro -- --target %s_fuzzer%s %s" % (
        t, " --mode free" if arm != t else "", path)


def report(done, out, core, head):
    ledger = os.path.join(out, "ledger.jsonl")
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    with open(ledger, "a") as f:
        for r in done:
            f.write(json.dumps({"date": stamp, "core": core, "head": head, "arm": r["arm"],
                                "seconds": r["seconds"], "execs": r["execs"],
                                "finding": r["finding"], "slow": len(r["slow"])}) + "\n")
    # A core with uncommitted changes has no name to count under, and prebuilt binaries
    # may be of any core.
    total = None
    if not core.endswith("+dirty") and core != "prebuilt":
        total = {"execs": 0, "runs": 0, "findings": 0, "tsan": 0}
        with open(ledger) as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue  # a line cut short when an earlier run was killed
                if e.get("core") != core:
                    continue
                total["runs"] += 1
                total["findings"] += bool(e.get("finding"))
                if not e.get("finding"):
                    total["execs"] += e.get("execs", 0)
                    if e.get("arm", "").endswith("_tsan"):
                        total["tsan"] += e.get("execs", 0)
    lines = ["# Soak, %s UTC (HEAD %s, core %s)" % (stamp, head, core), "",
             "| arm | seconds | execs | exec/s | result |", "|---|---|---|---|---|"]
    for r in done:
        lines.append("| %s | %d | %d | %.0f | %s |" % (
            r["arm"], r["seconds"], r["execs"], r["execs"] / max(r["seconds"], 1),
            "**finding** (%s)" % os.path.join(r["arm"], "log") if r["finding"] else "clean"))
    lines.append("| **all** | | **%d** | | %d findings |" % (
        sum(r["execs"] for r in done), sum(r["finding"] for r in done)))
    lines.append("")
    slow = [(r, f) for r in done for f in r["slow"]]
    if slow:
        lines.append("Slow inputs (libFuzzer's slow-unit notes, no finding; replay to see "
                     "whether the input or the machine was slow):")
        lines += ["- %s: `%s`" % (r["arm"], slow_replay(r, f)) for r, f in slow]
        lines.append("")
    if total is None:
        why = "the binaries were prebuilt" if core == "prebuilt" else "the core has edits"
        lines.append("Not added to any core's total: %s." % why)
    else:
        lines.append("Ledger for core %s: %d clean execs in %d arm runs (%d under TSan), "
                     "%d runs with a finding." % (core, total["execs"], total["runs"],
                                                  total["tsan"], total["findings"]))
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--time", type=int, default=3600, help="seconds per arm (3600)")
    ap.add_argument("--arms", default="all",
                    help="comma-separated, of %s; or all (default)" % ", ".join(ARMS))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="arms at once (default: every core)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (out/soak)")
    ap.add_argument("--bin-dir", help="prebuilt ASan <t>_fuzzer_bin folder: do not build")
    ap.add_argument("--tsan-bin-dir", help="prebuilt TSan mt_fuzzer_bin folder: do not build")
    a = ap.parse_args()
    arms = ARMS if a.arms == "all" else [x for x in a.arms.split(",") if x]
    for arm in arms:
        if arm not in ARMS:
            die("unknown arm %r (arms: %s)" % (arm, ", ".join(ARMS)))
    if not arms:
        die("--arms names no arm")
    if len(set(arms)) != len(arms):
        die("--arms names an arm twice (each arm has one working corpus)")
    if a.time < 1 or a.jobs < 1:
        die("--time and --jobs must be at least 1")
    root = workspace.require_root("soak")
    for arm in arms:
        seeds_of(root, arm)
    # The default lives in the repository; a folder the user names is taken as typed.
    out = os.path.join(root, a.out) if a.out == DEFAULT_OUT else user_path(a.out)
    os.makedirs(out, exist_ok=True)
    bins = binaries(a, root, arms, out)
    core, head = core_version(root)
    if a.bin_dir or a.tsan_bin_dir:
        core = "prebuilt"
    done = run_all(arms, bins, root, out, a.time, a.jobs)
    report(done, out, core, head)
    for r in done:
        if r["finding"]:
            print("soak: %s found something: %s%s" % (
                r["arm"], os.path.join(r["dir"], "log"),
                "".join("\n  " + l for l in r["lines"])), file=sys.stderr)
    if any(r["finding"] for r in done):
        return 1
    return 0 if len(done) == len(arms) else 130


if __name__ == "__main__":
    sys.exit(main())
