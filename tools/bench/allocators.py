#!/usr/bin/env python3
"""Runs every benchmark workload under hz and its peers in the same run, and prints the
comparison table.

Each (workload, allocator) pair is one fresh process of the `bench` driver, with the
allocator LD_PRELOADed (glibc: nothing preloaded). Repetitions are interleaved: every
repetition runs every workload under every allocator, in an order rotated per
repetition, so slow drift of the machine hits all allocators alike. The table holds the
median throughput and the median peak RSS (VmHWM, read by the driver at its end). A
summary sets hz beside the best peer of each workload and gives the geometric mean and
the worst row of those ratios, for time and for peak RSS, against the targets.

hz is measured as users run it: the release build of libhz_preload.so. The "detection
off" column preloads libhz_preload_nosecure.so, the same core with misuse detection
compiled out (HZ_SECURE=0).
"""
import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys

LIBDIR = "/usr/lib/x86_64-linux-gnu"
# name, library, Debian package that provides it
PEERS = [
    ("glibc", None, "libc6"),
    ("mimalloc", LIBDIR + "/libmimalloc.so.2", "libmimalloc2.0"),
    ("jemalloc", LIBDIR + "/libjemalloc.so.2", "libjemalloc2"),
    ("tcmalloc", LIBDIR + "/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
]
WORKLOADS = [
    "small-uniform", "small-app", "medium-uniform", "medium-app", "mixed-uniform",
    "mixed-app", "small-uniform-2t", "small-app-2t", "medium-uniform-2t", "medium-app-2t",
    "mixed-uniform-2t", "mixed-app-2t", "remote-0", "remote-50", "remote-90", "realloc",
    "large-churn", "large-realloc", "producer-consumer", "server", "false-sharing", "bursty",
]
# The targets the summary checks, each against the best peer of a workload (the fastest;
# for memory, the smallest peak RSS): hz's time within TARGET_ROW of it on every
# workload, within TARGET_GEOMEAN of it in the geometric mean over the workloads, and
# hz's peak RSS within TARGET_RSS of it on every workload.
TARGET_ROW = 1.25
TARGET_GEOMEAN = 1.0
TARGET_RSS = 1.3


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="bazel run //tools/bench:allocators --",
        description="hz against glibc, mimalloc, jemalloc and tcmalloc, in one run.")
    p.add_argument("--bench", required=True, help=argparse.SUPPRESS)
    p.add_argument("--hz", required=True, help=argparse.SUPPRESS)
    p.add_argument("--hz-nodetect", required=True, help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true",
                   help="2,000,000 iterations and 3 repetitions (about a minute)")
    p.add_argument("--reps", type=int, help="repetitions (default 5; 3 with --quick)")
    p.add_argument("--iters", type=int,
                   help="iterations per thread (default 20,000,000; 2,000,000 with --quick)")
    p.add_argument("--workloads", help="comma-separated subset of: " + ", ".join(WORKLOADS))
    p.add_argument("--also", action="append", default=[], metavar="NAME=LIB",
                   help="measure one more preloaded library as a column of its own, e.g. "
                        "an earlier build of hz: hz-before=/tmp/libhz_preload.so (repeatable)")
    p.add_argument("--markdown", metavar="FILE",
                   help="also write the tables, with date and machine, to FILE")
    a = p.parse_args(argv)
    a.reps = a.reps if a.reps is not None else (3 if a.quick else 5)
    a.iters = a.iters if a.iters is not None else (2_000_000 if a.quick else 20_000_000)
    if a.reps < 1 or a.iters < 1:
        p.error("--reps and --iters must be positive")
    if a.workloads:
        a.workloads = a.workloads.split(",")
        unknown = [w for w in a.workloads if w not in WORKLOADS]
        if unknown:
            p.error("unknown workload(s): %s (known: %s)" % (", ".join(unknown), ", ".join(WORKLOADS)))
    else:
        a.workloads = list(WORKLOADS)
    also = []
    for spec in a.also:
        name, sep, lib = spec.partition("=")
        if not sep or not name or not lib or name in ("hz", "hz-nodetect"):
            p.error("--also takes NAME=LIB, NAME not hz or hz-nodetect (got %r)" % spec)
        also.append((name, lib))
    a.also = also
    return a


def run_one(bench, workload, iters, preload, expect):
    """One process; returns (Mops/s, peak RSS in MiB)."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    proc = subprocess.run([bench, "--iters", str(iters), workload], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    out, err = proc.stdout.decode(), proc.stderr.decode()
    if proc.returncode != 0:
        sys.exit("bench %s under %s failed (status %d):\n%s" %
                 (workload, preload or "glibc", proc.returncode, err))
    fields = dict(kv.split("=", 1) for kv in out.split())
    if expect not in os.path.basename(fields.get("malloc", "")):
        sys.exit("bench %s: malloc came from %s, expected %s: the preload did not take effect"
                 % (workload, fields.get("malloc"), expect))
    return float(fields["mops"]), int(fields["hwm_kib"]) / 1024.0


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d CPUs, Linux %s" % (model, os.cpu_count() or 0, platform.release())


def load():
    """The 1-minute load average: other work on the machine shows up as noise in every
    cell, so the table records it."""
    try:
        return "%.1f" % os.getloadavg()[0]
    except OSError:
        return "?"


def fmt_ratio(a, b):
    return "%.2fx" % (a / b) if a and b else "n/a"


def fmt_mops(v):
    """Mops/s with three significant digits below 10: the large-block workloads run
    thousands of ops per second, not millions."""
    if not v:
        return "n/a"
    return "%.1f" % v if v >= 10 else "%.3g" % v


def tables(workloads, allocs, res):
    """Markdown tables: throughput with hz/peer ratios, peak RSS, detection cost."""
    peers = [a for a in allocs if a not in ("hz", "hz-nodetect")]
    lines = []
    lines.append("Throughput, median Mops/s (higher is better), and hz/peer:")
    lines.append("")
    lines.append("| workload | hz | " + " | ".join(peers) + " | " +
                 " | ".join("hz/" + p for p in peers) + " |")
    lines.append("|---" * (2 + 2 * len(peers)) + "|")
    for w in workloads:
        hz = res[w]["hz"][0]
        cells = [fmt_mops(res[w][p][0]) for p in peers]
        ratios = []
        for p in peers:
            r = fmt_ratio(hz, res[w][p][0])
            if res[w][p][0] and hz < res[w][p][0]:
                r = "**%s**" % r  # hz slower: bold
            ratios.append(r)
        lines.append("| %s | %s | %s | %s |" % (w, fmt_mops(hz), " | ".join(cells), " | ".join(ratios)))
    lines.append("")
    lines.append("Peak RSS, median MiB (lower is better):")
    lines.append("")
    lines.append("| workload | hz | " + " | ".join(peers) + " |")
    lines.append("|---" * (2 + len(peers)) + "|")
    for w in workloads:
        cells = ["%.1f" % res[w][a][1] if res[w][a][0] else "n/a" for a in ["hz"] + peers]
        lines.append("| %s | %s |" % (w, " | ".join(cells)))
    lines.append("")
    lines.append("Cost of misuse detection (HZ_SECURE=1 against HZ_SECURE=0), median Mops/s:")
    lines.append("")
    lines.append("| workload | hz | hz, detection off | detection on / off |")
    lines.append("|---|---|---|---|")
    for w in workloads:
        on, off = res[w]["hz"][0], res[w]["hz-nodetect"][0]
        lines.append("| %s | %s | %s | %s |" % (w, fmt_mops(on), fmt_mops(off), fmt_ratio(on, off)))
    lines.append("")
    lines.extend(summary(workloads, allocs, res))
    return "\n".join(lines)


def summary(workloads, allocs, res):
    """hz against the best peer of each workload, as the ratios the targets are stated in:
    time (hz's over the fastest peer's, which is that peer's Mops/s over hz's) and peak
    RSS (hz's over the smallest peer's), with their geometric means over the workloads
    and the worst row. The peers are the four of PEERS that ran; an --also column is
    not one. A geometric mean, not an arithmetic one: 2x faster on one row and 2x slower
    on another average to 1x."""
    peers = [p[0] for p in PEERS if p[0] in allocs]
    time_rows, rss_rows, cells = [], [], []
    for w in workloads:
        hz_mops, hz_rss = res[w]["hz"]
        ran = [p for p in peers if res[w][p][0]]
        fast = max(ran, key=lambda p: res[w][p][0]) if ran and hz_mops else None
        small = min(ran, key=lambda p: res[w][p][1]) if ran and hz_rss else None
        t = res[w][fast][0] / hz_mops if fast else None
        m = hz_rss / res[w][small][1] if small and res[w][small][1] else None
        if t is not None:
            time_rows.append((t, w, fast))
        if m is not None:
            rss_rows.append((m, w, small))
        cells.append((w, fast, t, small, m))

    def ratio(r, target):
        if r is None:
            return "n/a"
        return "**%.2fx**" % r if r > target else "%.2fx" % r  # over the target: bold

    lines = ["hz against the best peer of each workload (lower is better; bold: over the "
             "target):",
             "",
             "| workload | fastest peer | hz time / its time | smallest-RSS peer "
             "| hz peak RSS / its |",
             "|---|---|---|---|---|"]
    for w, fast, t, small, m in cells:
        lines.append("| %s | %s | %s | %s | %s |" % (
            w, fast or "n/a", ratio(t, TARGET_ROW), small or "n/a", ratio(m, TARGET_RSS)))
    lines.append("")
    mean = {}
    for key, what, rows in (("time", "Time, hz over the fastest peer", time_rows),
                            ("rss", "Peak RSS, hz over the smallest peer", rss_rows)):
        if rows:
            mean[key] = statistics.geometric_mean(r[0] for r in rows)
            worst, w, p = max(rows)
            lines.append("%s: geometric mean %.2fx over %d workloads; worst %s, %.2fx (%s)."
                         % (what, mean[key], len(rows), w, worst, p))
        else:
            lines.append("%s: n/a (no workload with both hz and a peer measured)." % what)
    lines.append("")
    missed = ["%s: hz takes %.2fx the time of %s (target %.2fx)" % (w, t, p, TARGET_ROW)
              for t, w, p in time_rows if t > TARGET_ROW]
    if mean.get("time", 0) > TARGET_GEOMEAN:
        missed.append("geometric mean of hz's time over the fastest peer's %.2fx (target %.2fx)"
                      % (mean["time"], TARGET_GEOMEAN))
    missed += ["%s: hz peak RSS %.2fx that of %s (target %.2fx)" % (w, m, p, TARGET_RSS)
               for m, w, p in rss_rows if m > TARGET_RSS]
    targets = ("hz's time within %.2fx of the fastest peer's on every workload, at most %.2fx "
               "of it in the geometric mean, peak RSS within %.2fx of the smallest peer's"
               % (TARGET_ROW, TARGET_GEOMEAN, TARGET_RSS))
    if missed:
        lines.append("Target (%s) NOT met:" % targets)
        lines.extend("- " + s for s in missed)
    else:
        lines.append("Target met: %s." % targets)
    return lines


def main(argv):
    a = parse_args(argv)
    for path, what in ((a.bench, "bench driver"), (a.hz, "libhz_preload.so"),
                       (a.hz_nodetect, "libhz_preload_nosecure.so")):
        if not os.path.isfile(path):
            sys.exit("allocators: %s not found at %s (build it with bazel)" % (what, path))
    # allocator name -> (library to preload or None, substring of the malloc provider)
    allocs = {"hz": (os.path.abspath(a.hz), "libhz_preload.so"),
              "hz-nodetect": (os.path.abspath(a.hz_nodetect), "libhz_preload_nosecure.so")}
    for name, lib, pkg in PEERS:
        if lib is None:
            allocs[name] = (None, "libc.so")
        elif os.path.isfile(lib):
            allocs[name] = (lib, os.path.basename(lib))
        else:
            print("allocators: %s not found at %s: install the Debian package %s;"
                  " skipping the %s column" % (name, lib, pkg, name), file=sys.stderr)
    for name, lib in a.also:
        if not os.path.isfile(lib):
            sys.exit("allocators: --also %s: %s not found" % (name, lib))
        allocs[name] = (os.path.abspath(lib), os.path.basename(lib))
    names = list(allocs)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print("hz allocator benchmark, %s, on %s" % (when, machine()))
    print("%d iterations per thread, %d interleaved repetitions, allocators: %s"
          % (a.iters, a.reps, ", ".join(names)), flush=True)
    load_start = load()

    samples = {w: {n: [] for n in names} for w in a.workloads}
    for rep in range(a.reps):
        for wi, w in enumerate(a.workloads):
            k = (rep + wi) % len(names)
            for n in names[k:] + names[:k]:
                lib, expect = allocs[n]
                samples[w][n].append(run_one(a.bench, w, a.iters, lib, expect))
        print("repetition %d/%d done" % (rep + 1, a.reps), file=sys.stderr, flush=True)

    res = {w: {} for w in a.workloads}
    for w in a.workloads:
        for n in ["hz", "hz-nodetect"] + [p[0] for p in PEERS] + [x[0] for x in a.also]:
            s = samples[w].get(n)
            res[w][n] = ((statistics.median(x[0] for x in s), statistics.median(x[1] for x in s))
                         if s else (0.0, 0.0))
    shown = [n for n in ["hz", "hz-nodetect"] + [p[0] for p in PEERS] + [x[0] for x in a.also]
             if n in allocs]
    table = tables(a.workloads, shown, res)
    loads = "load average %s at the start, %s at the end" % (load_start, load())
    print()
    print(loads)
    print()
    print(table)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("Measured %s on %s.\n%d iterations per thread, %d interleaved repetitions; "
                    "medians; %s.\n\n%s\n" % (when, machine(), a.iters, a.reps, loads, table))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
