#!/usr/bin/python3
"""tools/matrix: `bazel test //...` under every build configuration, as one table.

    tools/matrix                               asan, ubsan, tsan, msan, release
    tools/matrix --configs tsan,msan --jobs 2  a subset, two configurations at a time
    tools/matrix --markdown docs/matrix.md     also write the table as Markdown

Each configuration builds in an output base of its own (~/.cache/hzfuzz-matrix/<config>),
so configurations can run side by side (--jobs) and a second run of the matrix is
incremental. The table has the tests as rows and the configurations as columns: PASS,
FAIL with the first telling line of its log, or "excluded" with the reason its
`reason: ...` tag gives (config/defs.bzl). `default` (no --config, the README's command)
is a configuration name too. Exit status 1 on any FAIL, 2 on a usage error.
"""
import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
CONFIGS = ["asan", "ubsan", "tsan", "msan", "release"]
KNOWN = CONFIGS + ["default"]
RESULT = re.compile(r"^(//\S+)\s+(?:\(cached\) )?(PASSED|FAILED|TIMEOUT|NO STATUS|FAILED TO BUILD|FLAKY)")
TELLING = re.compile(r"HZFUZZ-FINDING|ERROR: |FAIL|runtime error|Sanitizer|expect|assert|hz: ", re.I)


def die(msg):
    sys.stderr.write("matrix: %s\n" % msg)
    sys.exit(2)


def base_of(config):
    return os.path.join(os.path.expanduser("~"), ".cache", "hzfuzz-matrix", config)


def bazel(config, args, **kw):
    # --symlink_prefix=/: no bazel-bin & co. of this output base over the workspace's own.
    if args[0] in ("test", "build", "info"):
        args = args[:1] + ["--symlink_prefix=/"] + args[1:]
    return subprocess.run(["bazel", "--output_base=" + base_of(config)] + args, cwd=ROOT,
                          text=True, errors="replace", **kw)


def tests_and_reasons(config):
    """Every test in //..., with its tags."""
    out = bazel(config, ["query", "tests(//...)", "--output=xml"], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE)
    if out.returncode != 0:
        err = [l for l in out.stderr.splitlines() if l.startswith("ERROR")] or \
            out.stderr.strip().splitlines()[-1:]
        die("bazel query failed: %s" % err[0] if err else "bazel query failed")
    tests = {}
    for rule in ET.fromstring(out.stdout).iter("rule"):
        tags = []
        for lst in rule.iter("list"):
            if lst.get("name") == "tags":
                tags = [s.get("value") for s in lst.iter("string")]
        tests[rule.get("name")] = tags
    return tests


def first_telling_line(log_path):
    try:
        with open(log_path, errors="replace") as f:
            lines = [l.rstrip() for l in f if l.strip()]
    except OSError:
        return "no test log"
    body = [l for l in lines if not l.startswith(("exec ${PAGER", "Executing tests from", "-----"))]
    for l in body:
        if TELLING.search(l):
            return l.strip()[:160]
    return (body[-1].strip() if body else "empty log")[:160]


def run_config(config):
    args = ["test", "//...", "--keep_going"] + ([] if config == "default" else ["--config=" + config])
    start = time.time()
    out = bazel(config, args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    took = time.time() - start
    results = {}
    for line in out.stdout.splitlines():
        m = RESULT.match(line)
        if m:
            results[m.group(1)] = m.group(2)
    info = bazel(config, ["info", "bazel-testlogs"] + ([] if config == "default" else
                                                       ["--config=" + config]),
                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    testlogs = info.stdout.strip()
    cells = {}
    for test, status in results.items():
        if status in ("PASSED", "FLAKY"):
            cells[test] = "PASS" if status == "PASSED" else "PASS (flaky)"
        else:
            log = os.path.join(testlogs, test[2:].replace(":", "/"), "test.log")
            cells[test] = "FAIL (%s): %s" % (status.lower(), first_telling_line(log))
    if out.returncode not in (0, 3) and not results:
        tail = [l for l in out.stdout.splitlines() if "ERROR" in l][:1]
        cells["<build>"] = "FAIL: " + (tail[0] if tail else "bazel exit %d" % out.returncode)
    bazel(config, ["shutdown"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return config, cells, took


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default=",".join(CONFIGS),
                    help="comma-separated, from: " + ", ".join(KNOWN))
    ap.add_argument("--jobs", type=int, default=1, help="configurations at a time (default 1)")
    ap.add_argument("--markdown", metavar="FILE", help="also write the table there")
    args = ap.parse_args()
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for c in configs:
        if c not in KNOWN:
            die("unknown configuration %r (known: %s)" % (c, ", ".join(KNOWN)))
    if not configs:
        die("no configuration given")
    if args.jobs < 1:
        die("--jobs must be at least 1")
    if subprocess.run(["which", "bazel"], stdout=subprocess.DEVNULL).returncode != 0:
        die("bazel not found: run tools/setup.sh")

    tests = tests_and_reasons(configs[0])
    cells, took = {}, {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for config, c, t in pool.map(run_config, configs):
            cells[config], took[config] = c, t
            print("matrix: %s done in %.0f s: %d passed, %d failed" % (
                config, t, sum(v.startswith("PASS") for v in c.values()),
                sum(v.startswith("FAIL") for v in c.values())), flush=True)

    rows = []
    failed = 0
    for test in sorted(tests):
        tags = tests[test]
        reason = next((t[len("reason: "):] for t in tags if t.startswith("reason: ")), "")
        row = [test]
        for c in configs:
            if "no_" + c in tags:
                row.append("excluded: " + (reason or "tagged no_" + c))
            elif test in cells[c]:
                row.append(cells[c][test])
                failed += cells[c][test].startswith("FAIL")
            else:
                row.append("FAIL: not run (build failed?)")
                failed += 1
        rows.append(row)
    for c in configs:
        if "<build>" in cells[c]:
            failed += 1
            rows.append(["(build)"] + [cells[x].get("<build>", "") for x in configs])
    rows.append(["time"] + ["%.0f s" % took[c] for c in configs])

    header = ["test"] + configs
    widths = [max(len(r[i]) if i < len(r) else 0 for r in rows + [header]) for i in range(len(header))]
    widths = [min(w, 60) for w in widths]
    def fmt(r):
        return "  ".join((r[i][:widths[i]]).ljust(widths[i]) for i in range(len(r)))
    print(fmt(header))
    for r in rows:
        print(fmt(r))
    if args.markdown:
        md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        md += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        path = os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY", os.getcwd()), args.markdown)
        with open(path, "w") as f:
            f.write("\n".join(md) + "\n")
        print("matrix: table written to %s" % path)
    print("matrix: %s" % ("FAILED: %d cell(s)" % failed if failed else "all passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
