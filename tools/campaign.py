#!/usr/bin/python3
"""tools/campaign: an AFL++ campaign over hzfuzz targets, from seeds to a triaged report.

    tools/campaign --targets mt,alloc --time 3600 --cores 8      # one hour each, 8 cores
    bazel run //tools:campaign -- --targets all --time 600 --cores 2

Each target gets --time seconds of wall clock on --cores cores, one target after another:

  seeds       corpus/<t>/ (or --corpus DIR), the target's regressions (fuzz/regressions/
              <t>-*.ops, encoded) and, on a second run, the working corpus the last one
              left (<out>/<t>/corpus/). A crashing seed is a finding of its own (below).
  instances   AFL++'s multi-core advice: one -M main on the ASan+UBSan binary, one -S
              secondary with the CMPLOG binary (-c, -l 2), and the rest on the fast
              binary, each with another power schedule, MOpt (-L 0) on every tenth and
              sequential queue selection (-Z) on every fifth. AFL_IMPORT_FIRST=1 so the
              instances take each other's finds before their own fuzzing.
  resume      an <out>/<t>/ that holds a campaign resumes it (-i -), unless --fresh.
  the end     afl-cmin over every instance's queue, written back as the working corpus
              (--update-corpus: new inputs also into corpus/<t>/ and corpus/src/<t>/ as op
              lists); every crash and hang replayed by the replay driver (the same harness
              and report as `bazel run //tools:repro`), grouped by its HZFUZZ-FINDING
              check and op kind or its sanitizer headline; the smallest input of each
              group shrunk with afl-tmin (kept only if it fails the same way), written as
              an op list with the exact replay command; afl-plot graphs; the report as
              <out>/report.md and <out>/report.html.

Exit status: 0 no new findings, 1 new findings (a group not in an earlier run's report
of the same <out>), 2 a usage or environment error, named in one line. Ctrl-C (or
SIGTERM) stops the instances and still merges, triages and reports.
"""
import argparse
import hashlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import workspace  # noqa: E402

TARGETS = ["tls_sll", "alloc", "realloc", "reuse", "ptag", "mt", "shim"]
SCHEDULES = ["explore", "coe", "lin", "quad", "exploit", "rare", "fast", "mmopt", "seek"]
LIBFUZZER = workspace.libfuzzer_options(ROOT)  # the flags of `bazel run //fuzz:<t>`
MAX_LEN = int(LIBFUZZER["max_len"])
EXEC_TIMEOUT_MS = 5000  # generous: a loaded machine must not turn slow inputs into hangs
REPLAY_TIMEOUT_S = int(LIBFUZZER["timeout"])
SAN_ENV = {
    # AFL++ needs aborts, not exit codes, and no symbolization inside the fuzzing loop.
    "ASAN_OPTIONS": "abort_on_error=1:symbolize=0:detect_leaks=0:allocator_may_return_null=1",
    "UBSAN_OPTIONS": "halt_on_error=1:abort_on_error=1:symbolize=0",
}
AFL_ENV = {
    "AFL_NO_UI": "1",
    "AFL_SKIP_CPUFREQ": "1",
    "AFL_NO_AFFINITY": "1",  # a shared machine: never fail for want of a free core
    "AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES": "1",
    "AFL_IMPORT_FIRST": "1",
    "AFL_SKIP_CRASHES": "1",  # a crashing seed is triaged below, not a reason to stop
    "AFL_ALLOW_TMP": "1",
    "AFL_QUIET": "1",
}


def die(msg):
    sys.stderr.write("campaign: %s\n" % msg)
    sys.exit(2)


def say(msg):
    print("campaign: " + msg, flush=True)


# ---- binaries --------------------------------------------------------------------------

class Bins:
    """Where the binaries are: --bin-dir, this script's runfiles (bazel run), or
    bazel-bin after a build. The layout is Bazel's: fuzz/<t>_fuzzer_afl{,_cmplog,_fast},
    fuzz/<t>_fuzzer_replay, tools/decode."""

    def __init__(self, base):
        self.base = base

    def afl(self, t, kind):
        return os.path.join(self.base, "fuzz", "%s_fuzzer_afl%s" % (t, kind))

    def replay(self, t):
        return os.path.join(self.base, "fuzz", "%s_fuzzer_replay" % t)

    def libfuzzer(self, t):
        return os.path.join(self.base, "fuzz", "%s_fuzzer_bin" % t)

    def decode(self):
        return os.path.join(self.base, "tools", "decode")

    def missing(self, targets):
        need = [self.decode()]
        for t in targets:
            need += [self.afl(t, k) for k in ("", "_cmplog", "_fast")] + [self.replay(t)]
        return [p for p in need if not os.access(p, os.X_OK)]


def find_bins(args, targets):
    if args.bin_dir:
        bins = Bins(os.path.abspath(args.bin_dir))
    else:
        # bazel run: the binaries are this script's runfiles, and the working directory.
        runfiles = os.environ.get("RUNFILES_DIR") or (os.path.abspath(sys.argv[0]) + ".runfiles")
        rf = [os.path.join(runfiles, "hzfuzz"), os.getcwd()]
        rf = [d for d in rf if os.path.isfile(os.path.join(d, "tools", "decode"))]
        if os.environ.get("BUILD_WORKSPACE_DIRECTORY") and rf:
            bins = Bins(rf[0])
        else:
            bins = Bins(os.path.join(ROOT, "bazel-bin"))
            if not args.no_build:
                labels = ["//fuzz:afl", "//tools:decode"] + [
                    "//fuzz:%s_fuzzer_replay" % t for t in targets] + [
                    "//fuzz:%s_fuzzer_bin" % t for t in targets if args.bench]
                say("building " + " ".join(labels))
                out = subprocess.run(["bazel", "build"] + labels, cwd=ROOT, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                if out.returncode != 0:
                    sys.stderr.write(out.stdout[-4000:])
                    die("bazel build failed (exit %d)" % out.returncode)
    missing = bins.missing(targets)
    if missing:
        die("missing binaries under %s: %s (bazel build //fuzz:afl //tools:decode "
            "//fuzz:<t>_fuzzer_replay)" % (bins.base, ", ".join(missing[:3])))
    return bins


# ---- seeds and corpus ------------------------------------------------------------------

def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


def encode(bins, t, ops, out):
    r = subprocess.run([bins.decode(), "--target", t + "_fuzzer", "--encode", ops, out],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return r.returncode == 0


def gather_seeds(bins, t, corpus_dir, work, dest):
    """Copies every seed, deduplicated by content, into dest; returns the count."""
    os.makedirs(dest, exist_ok=True)
    seen = set()
    def add(path):
        if os.path.getsize(path) == 0 or os.path.getsize(path) > MAX_LEN:
            return
        h = sha(path)
        if h not in seen:
            seen.add(h)
            shutil.copyfile(path, os.path.join(dest, h[:16]))
    for name in sorted(os.listdir(corpus_dir)):
        p = os.path.join(corpus_dir, name)
        if os.path.isfile(p) and not name.endswith(".txt"):
            add(p)
    regs = os.path.join(ROOT, "fuzz", "regressions")
    if os.path.isdir(regs):
        for name in sorted(os.listdir(regs)):
            if name.startswith(t + "_fuzzer-") and name.endswith(".ops"):
                tmp = os.path.join(work, "reg.bin")
                if encode(bins, t, os.path.join(regs, name), tmp):
                    add(tmp)
    kept = os.path.join(work, "corpus")
    if os.path.isdir(kept):
        for name in os.listdir(kept):
            add(os.path.join(kept, name))
    return len(seen)


# ---- instances -------------------------------------------------------------------------

def instance_plan(cores):
    """(name, binary kind, extra afl-fuzz flags) per core, after AFL++'s campaign advice."""
    plan = [("main", "", ["-M", "main"])]
    if cores >= 2:
        plan.append(("cmplog", "_fast", ["-S", "cmplog", "-c", "CMPLOG", "-l", "2"]))
    for i in range(2, cores):
        flags = ["-S", "s%d" % i, "-p", SCHEDULES[(i - 2) % len(SCHEDULES)]]
        if i % 10 == 2:
            flags += ["-L", "0"]
        if i % 5 == 3:
            flags += ["-Z"]
        plan.append(("s%d" % i, "_fast", flags))
    return plan


class Campaign:
    def __init__(self, args, bins, t):
        self.args, self.bins, self.t = args, bins, t
        self.dir = os.path.join(args.out, t)
        self.sync = os.path.join(self.dir, "sync")
        self.procs = []
        self.stopped = False

    def start(self, seeds_dir, resume):
        t, b = self.t, self.bins
        dict_path = os.path.join(ROOT, "fuzz", "dicts", t + "_fuzzer.dict")
        env = dict(os.environ)
        env.update(AFL_ENV)
        env.update(SAN_ENV)
        env["HZF_MODE"] = self.args.mode
        if resume:
            env["AFL_AUTORESUME"] = "1"
        os.makedirs(self.sync, exist_ok=True)
        for name, kind, flags in instance_plan(self.args.cores):
            flags = [b.afl(t, "_cmplog") if f == "CMPLOG" else f for f in flags]
            # An instance added since the last run (more cores) starts from the seeds.
            again = resume and os.path.isfile(os.path.join(self.sync, name, "fuzzer_stats"))
            cmd = ["afl-fuzz", "-i", "-" if again else seeds_dir, "-o", self.sync,
                   "-m", "none", "-t", str(EXEC_TIMEOUT_MS), "-G", str(MAX_LEN)] + flags
            if os.path.isfile(dict_path):
                cmd += ["-x", dict_path]
            cmd += ["--", b.afl(t, kind)]
            log = open(os.path.join(self.dir, name + ".log"), "w")
            self.procs.append((name, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                                      env=env, start_new_session=True)))
            say("%s: %s" % (name, " ".join(cmd[:1] + cmd[5:])))

    def stop(self):
        """SIGINT to every instance we started (AFL++ writes its stats and exits), then
        SIGKILL to any still there after 20 s."""
        for _, p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.time() + 20
        for _, p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def run(self, seconds, interrupted):
        end = time.time() + seconds
        while time.time() < end and not interrupted():
            if all(p.poll() is not None for _, p in self.procs):
                break
            time.sleep(0.5)
        early = [(n, p.returncode) for n, p in self.procs if p.poll() is not None]
        self.stop()
        for name, rc in early:
            with open(os.path.join(self.dir, name + ".log"), errors="replace") as f:
                tail = [l for l in f.read().splitlines() if l.strip()][-3:]
            say("%s: instance %s ended early (exit %s): %s" % (self.t, name, rc, " | ".join(tail)))
        return [n for n, _ in early]


# ---- statistics, corpus merge ----------------------------------------------------------

def read_stats(path):
    stats = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                stats[k.strip()] = v.strip()
    except OSError:
        pass
    return stats


def instance_dirs(sync):
    if not os.path.isdir(sync):
        return []
    return sorted(d for d in (os.path.join(sync, n) for n in os.listdir(sync))
                  if os.path.isdir(os.path.join(d, "queue")))


def merge_corpus(bins, t, sync, work):
    """afl-cmin over every queue into the working corpus; returns (inputs before, after)."""
    pool = os.path.join(work, "pool")
    shutil.rmtree(pool, ignore_errors=True)
    os.makedirs(pool)
    seen = set()
    for d in instance_dirs(sync):
        q = os.path.join(d, "queue")
        for name in os.listdir(q):
            p = os.path.join(q, name)
            if os.path.isfile(p) and os.path.getsize(p) > 0:
                h = sha(p)
                if h not in seen:
                    seen.add(h)
                    shutil.copyfile(p, os.path.join(pool, h[:16]))
    if not seen:
        return 0, 0
    out = os.path.join(work, "cmin")
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, **AFL_ENV)
    env["HZF_MODE"] = "baton"
    r = subprocess.run(["afl-cmin", "-i", pool, "-o", out, "-m", "none", "-t",
                        str(EXEC_TIMEOUT_MS), "--", bins.afl(t, "_fast")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if r.returncode != 0 or not os.path.isdir(out):
        say("%s: afl-cmin failed (exit %d); the working corpus keeps every queue entry: %s"
            % (t, r.returncode, r.stdout.strip().splitlines()[-1:] or ""))
        out = pool
    corpus = os.path.join(work, "corpus")
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.copytree(out, corpus)
    shutil.rmtree(pool, ignore_errors=True)
    return len(seen), len(os.listdir(corpus))


def update_repo_corpus(bins, t, corpus):
    """New inputs of the working corpus into corpus/<t>_fuzzer/ and, as op lists, into
    corpus/src/<t>_fuzzer/ (//corpus:seeds_test keeps the two in step)."""
    name = t + "_fuzzer"
    bin_dir = os.path.join(ROOT, "corpus", name)
    src_dir = os.path.join(ROOT, "corpus", "src", name)
    have = {sha(os.path.join(bin_dir, f)) for f in os.listdir(bin_dir)}
    added = 0
    for f in sorted(os.listdir(corpus)):
        p = os.path.join(corpus, f)
        h = sha(p)
        if h in have:
            continue
        text = subprocess.run([bins.decode(), "--target", name, p], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
        if text.returncode != 0:
            continue
        base = "afl_" + h[:8]
        with open(os.path.join(src_dir, base + ".ops"), "w") as o:
            o.write("# Found by an AFL++ campaign (tools/campaign) on %s.\n" %
                    time.strftime("%Y-%m-%d", time.gmtime()))
            o.write("\n".join(l for l in text.stdout.splitlines() if not l.startswith("# hzfuzz ops")))
            o.write("\n")
        # The binary seed is the source encoded again, so seeds_test holds them in step.
        if encode(bins, t, os.path.join(src_dir, base + ".ops"), os.path.join(bin_dir, base)):
            added += 1
        else:
            os.remove(os.path.join(src_dir, base + ".ops"))
    return added


# ---- triage ----------------------------------------------------------------------------

def replay(bins, t, path, mode):
    """(signature, HZFUZZ-FINDING line or headline, output) of one replay; signature None
    when the input replays clean."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=0:allocator_may_return_null=1"
    try:
        r = subprocess.run([bins.replay(t), "--mode=" + mode, path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, errors="replace",
                           timeout=REPLAY_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return "hang", "no result within %d s" % REPLAY_TIMEOUT_S, ""
    log = r.stdout
    if r.returncode == 0:
        return None, "", log
    op = ""
    m = re.search(r"HZFUZZ-FINDING: (\S+) op #(\d+)", log)
    if m:
        k = re.search(r"^[> ] #%s\s+t\d+ (\S+)" % m.group(2), log, re.M)
        op = k.group(1) if k else ""
    line = next((l for l in log.splitlines() if l.startswith("HZFUZZ-FINDING:")), "")
    s = re.search(r"ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer|MemorySanitizer|"
                  r"ThreadSanitizer|LeakSanitizer): ([\w-]+)", log)
    if m and m.group(1) in ("abort", "signal"):
        # The report names the crash (fuzz/hzf_death.h): the signal, or for an abort the
        # hz line before it (an internal assertion's site, a misuse's kind).
        h = re.search(r"^hz: .*", log, re.M)
        g = re.search(r"HZFUZZ-FINDING: signal op #\d+: (SIG[A-Z]+)", log)
        sig = ("signal: " + g.group(1) if g else
               "abort: " + re.sub(r"\(0x[0-9a-f]+\)", "", h.group(0)) if h else "abort")
    elif s:
        sig = "%s: %s" % (s.group(1), s.group(2))
        line = line or s.group(0)
    elif "runtime error:" in log:
        u = re.search(r"runtime error: ([^0-9]*)", log)
        sig = "UBSan: " + (u.group(1).strip() if u else "runtime error")
        line = line or "UBSan " + u.group(0) if u else line
    elif m:
        sig = "model: " + m.group(1)
    else:
        sig = "exit %d" % r.returncode
        line = line or (log.strip().splitlines()[-1:] or [""])[0]
    if op:
        sig += " @ " + op
    return sig, line, log


def replay_all(bins, t, files):
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=0:allocator_may_return_null=1"
    try:
        return subprocess.run([bins.replay(t), "--mode=baton"] + files, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env,
                              timeout=REPLAY_TIMEOUT_S * 4).returncode
    except subprocess.TimeoutExpired:
        return -1


def slug(sig):
    return re.sub(r"[^a-z0-9]+", "_", sig.lower()).strip("_")[:60]


def triage(args, bins, t, sync, work):
    """Every crash and hang, replayed and grouped; one minimized op list per group."""
    groups = {}
    flaky = 0
    candidates = []
    for d in instance_dirs(sync):
        for kind in ("crashes", "hangs"):
            folder = os.path.join(d, kind)
            if os.path.isdir(folder):
                candidates += [os.path.join(folder, n) for n in sorted(os.listdir(folder))
                               if n.startswith("id:")]
    # AFL++ skips a seed that crashes (AFL_SKIP_CRASHES) and saves nothing for it: the
    # seeds replay here, all in one process first, one by one only if that fails.
    seeds = os.path.join(work, "seeds")
    if os.path.isdir(seeds):
        files = [os.path.join(seeds, n) for n in sorted(os.listdir(seeds))]
        if files and replay_all(bins, t, files) != 0:
            candidates += files
    for path in candidates:
        sig, line, _ = replay(bins, t, path, "baton")
        if sig is None and args.mode == "free":
            sig, line, _ = replay(bins, t, path, "free")
        if sig is None:
            flaky += path.startswith(sync)  # a seed that replays clean is just a seed
            continue
        g = groups.setdefault(sig, {"signature": sig, "line": line, "inputs": []})
        g["inputs"].append(path)
    findings = os.path.join(work, "findings")
    os.makedirs(findings, exist_ok=True)
    for sig, g in sorted(groups.items()):
        g["inputs"].sort(key=os.path.getsize)
        first = g["inputs"][0]
        name = "%s_fuzzer-%s" % (t, slug(sig))
        kept = minimize(args, bins, t, first, sig, work)
        raw = os.path.join(findings, name)
        shutil.copyfile(kept, raw)
        text = subprocess.run([bins.decode(), "--target", t + "_fuzzer", raw],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
        ops = raw + ".ops"
        # The clean targets replay through //tools:repro; binaries from --bin-dir (a
        # seeded-bug build, say) through their own replay driver.
        replay_cmd = ("%s %s" % (bins.replay(t), ops) if args.bin_dir else
                      "bazel run //tools:repro -- --target %s_fuzzer %s" % (t, ops))
        _, line, _ = replay(bins, t, kept, "baton")
        with open(ops, "w") as o:
            o.write("# Found by an AFL++ campaign (tools/campaign) on %s: %d input(s) in this group.\n"
                    % (time.strftime("%Y-%m-%d", time.gmtime()), len(g["inputs"])))
            o.write("# Failed as: %s\n" % (line or g["line"]))
            o.write("# Replay: %s\n" % replay_cmd)
            o.write("# To keep it as a regression: cp it to fuzz/regressions/%s.ops with the fix.\n" % name)
            o.write("\n".join(l for l in text.splitlines() if not l.startswith("# hzfuzz ops")))
            o.write("\n")
        g.update(ops=ops, replay=replay_cmd, size=os.path.getsize(kept),
                 original=os.path.getsize(first), line=line or g["line"], count=len(g["inputs"]))
    return sorted(groups.values(), key=lambda g: g["signature"]), flaky


def minimize(args, bins, t, path, sig, work):
    """afl-tmin on the sanitized binary; kept only if the result fails the same way."""
    if args.tmin_time <= 0 or sig == "hang":
        return path
    out = os.path.join(work, "tmin.out")
    env = dict(os.environ, **AFL_ENV)
    env.update(SAN_ENV)
    env["HZF_MODE"] = "baton"
    try:
        subprocess.run(["afl-tmin", "-i", path, "-o", out, "-m", "none", "-t",
                        str(EXEC_TIMEOUT_MS), "--", bins.afl(t, "")], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=env, timeout=args.tmin_time)
    except subprocess.TimeoutExpired:
        pass
    if os.path.isfile(out) and os.path.getsize(out) > 0 and replay(bins, t, out, "baton")[0] == sig:
        kept = os.path.join(work, "tmin." + sha(out)[:8])
        os.replace(out, kept)
        return kept
    return path


# ---- report ----------------------------------------------------------------------------

def target_stats(sync, wall):
    """Totals over the instances. exec/s is execs over the wall clock of the run: AFL++'s
    own run_time leaves out the seeds' calibration, which is most of a short run."""
    execs = edges = 0
    stab = []
    total_edges = 0
    for d in instance_dirs(sync):
        s = read_stats(os.path.join(d, "fuzzer_stats"))
        if not s:
            continue
        execs += int(s.get("execs_done", 0))
        edges = max(edges, int(s.get("edges_found", 0)))
        total_edges = max(total_edges, int(s.get("total_edges", 0) or 0))
        if s.get("stability"):
            stab.append("%s %s" % (os.path.basename(d), s["stability"]))
    return {"execs": execs, "rate": execs / max(1.0, wall), "edges": edges, "total_edges": total_edges,
            "stability": ", ".join(stab)}


def plot(sync, out):
    if not shutil.which("afl-plot") or not shutil.which("gnuplot"):
        return None, "afl-plot or gnuplot missing (tools/setup.sh installs gnuplot-nox)"
    main = os.path.join(sync, "main")
    if not os.path.isfile(os.path.join(main, "plot_data")):
        return None, "no plot data"
    shutil.rmtree(out, ignore_errors=True)
    r = subprocess.run(["afl-plot", main, out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    pngs = sorted(f for f in os.listdir(out) if f.endswith(".png")) if os.path.isdir(out) else []
    if r.returncode != 0 or not pngs:
        return None, "afl-plot failed: " + " ".join(r.stdout.split()[-12:])
    return pngs, ""


def write_report(args, rows, started):
    md = ["# AFL++ campaign report", "",
          "Started %s UTC, %d s per target on %d cores, mode %s, output `%s`." %
          (time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)), args.time, args.cores,
           args.mode, args.out), "",
          "| target | execs | exec/s | stability | edges | corpus before → after cmin | findings |",
          "|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["stats"]
        md.append("| %s | %d | %.0f | %s | %d | %d → %d | %d (%d new) |" % (
            r["target"], s["execs"], s["rate"], s["stability"] or "-", s["edges"],
            r["seeds"], r["after"], len(r["findings"]), len(r["new"])))
    for r in rows:
        md += ["", "## %s" % r["target"], ""]
        if r["interrupted"]:
            md.append("Interrupted before its time was up.")
        if r["early"]:
            md.append("Instances that ended early: %s (see `%s/<name>.log`)." %
                      (", ".join(r["early"]), os.path.join(args.out, r["target"])))
        md.append("Queue entries merged: %d; after afl-cmin: %d; added to corpus/: %s." %
                  (r["pool"], r["after"], r["added"] if args.update_corpus else "not asked (--update-corpus)"))
        if r["flaky"]:
            md.append("Crashes or hangs that replay clean: %d (not reported)." % r["flaky"])
        if r["findings"]:
            md += ["", "| finding | inputs | minimized | new | replay |", "|---|---|---|---|---|"]
            for g in r["findings"]:
                md.append("| %s | %d | %d → %d B | %s | `%s` |" % (
                    g["signature"], g["count"], g["original"], g["size"],
                    "yes" if g["signature"] in r["new"] else "no", g["replay"]))
            md += [""] + ["- `%s`: %s" % (g["signature"], g["line"]) for g in r["findings"]]
        else:
            md.append("No findings.")
        if r["plots"]:
            md += [""] + ["![%s](%s/%s)" % (p, os.path.relpath(r["plot_dir"], args.out), p)
                          for p in r["plots"]]
        elif r["plot_note"]:
            md.append("Graphs: " + r["plot_note"] + ".")
    text = "\n".join(md) + "\n"
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "report.html"), "w") as f:
        f.write(md_to_html(text))
    state = {r["target"]: [g["signature"] for g in r["findings"]] for r in rows}
    known = load_known(args.out)
    for t, sigs in state.items():
        known[t] = sorted(set(known.get(t, [])) | set(sigs))
    with open(os.path.join(args.out, "findings.json"), "w") as f:
        json.dump(known, f, indent=1)


def md_to_html(text):
    """Just enough Markdown for this report: headings, tables, lists, images, code."""
    def inline(s):
        s = html.escape(s)
        s = re.sub(r"!\[([^\]]*)\]\(([^)]*)\)", r'<img alt="\1" src="\2">', s)
        return re.sub(r"`([^`]*)`", r"<code>\1</code>", s)
    out, in_table, in_list = ["<!doctype html><meta charset=utf-8><title>AFL++ campaign</title>",
                              "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;"
                              "padding:2px 6px}table{border-collapse:collapse}</style>"], False, False
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(set(c) <= set("-") for c in cells):
                continue
            if not in_table:
                out.append("<table>")
                in_table = True
                out.append("<tr>" + "".join("<th>%s</th>" % inline(c) for c in cells) + "</tr>")
            else:
                out.append("<tr>" + "".join("<td>%s</td>" % inline(c) for c in cells) + "</tr>")
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("- "):
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append("<li>%s</li>" % inline(line[2:]))
            continue
        if in_list:
            out.append("</ul>")
            in_list = False
        if line.startswith("## "):
            out.append("<h2>%s</h2>" % inline(line[3:]))
        elif line.startswith("# "):
            out.append("<h1>%s</h1>" % inline(line[2:]))
        elif line.strip():
            out.append("<p>%s</p>" % inline(line))
    if in_table:
        out.append("</table>")
    if in_list:
        out.append("</ul>")
    return "\n".join(out) + "\n"


def load_known(out):
    try:
        with open(os.path.join(out, "findings.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


# ---- engine benchmark ------------------------------------------------------------------

def bench(args, bins, targets, corpora):
    """exec/s of each target under libFuzzer (ASan+UBSan) and AFL++ (the ASan+UBSan and
    the fast binary), one process each, one after another, from the same seeds: execs
    over the wall clock, seed calibration included for both engines."""
    rows = []
    for t in targets:
        if not os.access(bins.libfuzzer(t), os.X_OK):
            die("missing %s (bazel build //fuzz:%s_fuzzer_bin)" % (bins.libfuzzer(t), t))
        work = tempfile.mkdtemp(prefix="bench-", dir=args.out)
        seeds = os.path.join(work, "seeds")
        gather_seeds(bins, t, corpora[t], work, seeds)
        row = {"target": t}
        corp = os.path.join(work, "lf")
        shutil.copytree(seeds, corp)
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1")
        t0 = time.time()
        r = subprocess.run([bins.libfuzzer(t)] + workspace.libfuzzer_flags(ROOT) +
                           ["-max_total_time=%d" % args.bench, "-print_final_stats=1",
                            "-dict=" + os.path.join(ROOT, "fuzz", "dicts", t + "_fuzzer.dict"), corp],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           errors="replace", env=env, cwd=work)
        m = re.search(r"stat::number_of_executed_units:\s*(\d+)", r.stdout)
        row["libfuzzer"] = int(m.group(1)) / (time.time() - t0) if m else 0.0
        for kind, label in (("", "afl_asan"), ("_fast", "afl_fast")):
            env = dict(os.environ, **AFL_ENV)
            env.update(SAN_ENV)
            env["HZF_MODE"] = "baton"
            out = os.path.join(work, label)
            t0 = time.time()
            subprocess.run(["afl-fuzz", "-i", seeds, "-o", out, "-m", "none", "-t",
                            str(EXEC_TIMEOUT_MS), "-G", str(MAX_LEN), "-V", str(args.bench),
                            "--", bins.afl(t, kind)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=env)
            st = read_stats(os.path.join(out, "default", "fuzzer_stats"))
            row[label] = int(st.get("execs_done", 0)) / (time.time() - t0)
        shutil.rmtree(work, ignore_errors=True)
        rows.append(row)
        say("bench %s: libFuzzer %.0f/s, AFL++ ASan %.0f/s, AFL++ fast %.0f/s" % (
            t, row["libfuzzer"], row["afl_asan"], row["afl_fast"]))
    lines = ["| target | libFuzzer (ASan+UBSan) | AFL++ ASan+UBSan | AFL++ fast | AFL++ ASan / libFuzzer | AFL++ fast / libFuzzer |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lf = max(r["libfuzzer"], 1e-9)
        lines.append("| %s | %.0f | %.0f | %.0f | %.2f | %.2f |" % (
            r["target"], r["libfuzzer"], r["afl_asan"], r["afl_fast"], r["afl_asan"] / lf,
            r["afl_fast"] / lf))
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(args.out, "bench.md"), "w") as f:
        f.write(text)
    return 0


# ---- main ------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", default="all",
                    help="comma-separated targets (%s) or all" % ",".join(TARGETS))
    ap.add_argument("--time", type=int, default=600, help="seconds per target (default 600)")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                    help="AFL++ instances per target (default: every core)")
    ap.add_argument("--out", default=None, help="output folder (default out/campaign)")
    ap.add_argument("--corpus", default=None,
                    help="seed folder, for one target (default corpus/<t>_fuzzer/)")
    ap.add_argument("--mode", default="baton", choices=["baton", "free"],
                    help="the harness's thread mode, as HZF_MODE (default baton)")
    ap.add_argument("--fresh", action="store_true", help="do not resume an earlier campaign")
    ap.add_argument("--update-corpus", action="store_true",
                    help="add the merged corpus's new inputs to corpus/<t>_fuzzer/ in the repo")
    ap.add_argument("--tmin-time", type=int, default=60,
                    help="seconds of afl-tmin per finding group (0: none)")
    ap.add_argument("--bin-dir", help="the binaries, in Bazel's layout (default: build them)")
    ap.add_argument("--no-build", action="store_true", help="use bazel-bin as it is")
    ap.add_argument("--bench", type=int, default=0, metavar="SECONDS",
                    help="instead of a campaign: exec/s of libFuzzer and AFL++ per target, "
                    "SECONDS each, one core (written to <out>/bench.md)")
    args = ap.parse_args()

    targets = TARGETS if args.targets == "all" else [
        x.strip().replace("_fuzzer", "") for x in args.targets.split(",") if x.strip()]
    for t in targets:
        if t not in TARGETS:
            die("unknown target %r (targets: %s)" % (t, ", ".join(TARGETS)))
    if args.time <= 0:
        die("--time must be a positive number of seconds")
    if args.cores <= 0:
        die("--cores must be at least 1")
    if args.corpus and len(targets) != 1:
        die("--corpus names the seeds of one target: give one --targets")
    for tool in ("afl-fuzz", "afl-cmin", "afl-tmin"):
        if not shutil.which(tool):
            die("%s not found: install AFL++ with tools/setup.sh" % tool)
    wd = os.environ.get("BUILD_WORKING_DIRECTORY", os.getcwd())
    args.out = os.path.abspath(os.path.join(wd, args.out) if args.out else
                               os.path.join(os.environ.get("BUILD_WORKSPACE_DIRECTORY", ROOT),
                                            "out", "campaign"))
    try:
        os.makedirs(args.out, exist_ok=True)
        probe = os.path.join(args.out, ".write-test")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as e:
        die("output folder %s is not writable: %s" % (args.out, e.strerror))
    corpora = {}
    for t in targets:
        c = os.path.abspath(os.path.join(wd, args.corpus)) if args.corpus else \
            os.path.join(ROOT, "corpus", t + "_fuzzer")
        if not os.path.isdir(c):
            die("corpus folder %s does not exist" % c)
        corpora[t] = c
    bins = find_bins(args, targets)
    if args.bench:
        return bench(args, bins, targets, corpora)

    interrupted = {"flag": False}
    def on_signal(sig, _):
        if not interrupted["flag"]:
            say("interrupted: stopping the instances, then merging, triaging and reporting")
        interrupted["flag"] = True
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    started = time.time()
    known = load_known(args.out)
    rows = []
    for t in targets:
        if interrupted["flag"]:
            break
        c = Campaign(args, bins, t)
        os.makedirs(c.dir, exist_ok=True)
        resume = not args.fresh and os.path.isfile(os.path.join(c.sync, "main", "fuzzer_stats"))
        if args.fresh:
            shutil.rmtree(c.sync, ignore_errors=True)
        seeds_dir = os.path.join(c.dir, "seeds")
        shutil.rmtree(seeds_dir, ignore_errors=True)
        nseeds = gather_seeds(bins, t, corpora[t], c.dir, seeds_dir)
        if nseeds == 0:
            die("%s: no seeds in %s" % (t, corpora[t]))
        say("%s: %s, %d seeds, %d s on %d cores -> %s" % (
            t, "resuming" if resume else "starting", nseeds, args.time, args.cores, c.dir))
        t0 = time.time()
        c.start(seeds_dir, resume)
        early = c.run(args.time, lambda: interrupted["flag"])
        wall = time.time() - t0
        pool, after = merge_corpus(bins, t, c.sync, c.dir)
        added = update_repo_corpus(bins, t, os.path.join(c.dir, "corpus")) \
            if args.update_corpus and after else 0
        findings, flaky = triage(args, bins, t, c.sync, c.dir)
        new = [g["signature"] for g in findings if g["signature"] not in known.get(t, [])]
        plot_dir = os.path.join(c.dir, "plot")
        plots, note = plot(c.sync, plot_dir)
        rows.append({"target": t, "stats": target_stats(c.sync, wall), "seeds": nseeds, "pool": pool,
                     "after": after, "added": added, "findings": findings, "new": new,
                     "flaky": flaky, "plots": plots, "plot_note": note, "plot_dir": plot_dir,
                     "early": early, "interrupted": interrupted["flag"]})
        s = rows[-1]["stats"]
        say("%s: %d execs (%.0f/s), %d edges, corpus %d -> %d, %d finding group(s), %d new" % (
            t, s["execs"], s["rate"], s["edges"], pool, after, len(findings), len(new)))
        for g in findings:
            say("  %s (%d inputs): %s" % (g["signature"], g["count"], g["replay"]))
    write_report(args, rows, started)
    say("report: %s and report.html" % os.path.join(args.out, "report.md"))
    new_total = sum(len(r["new"]) for r in rows)
    if new_total:
        say("%d new finding group(s)" % new_total)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
