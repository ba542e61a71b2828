#!/usr/bin/python3
"""Mutation testing of core/: does the suite notice a realistic single-site bug?

    tools/mutation [--sample N] [--seed S] [--files F...] [--budget SEC] [--out DIR]
    bazel run //tools:mutation -- ...      (the same, from the workspace)

Mutation points come from libclang's AST (python3-clang-14), at exact source ranges,
never from a regex: relational, arithmetic, logical and bitwise operator replacement,
compound-assignment replacement, integer constants +1 / -1 / 0, negated conditions (if,
while, ?:), memory orders weakened to memory_order_relaxed, and deleted call or
assignment statements; in core/*.c and the inline functions of core/*.h (tests, the
seeded-bug sites and assertions excluded). A seeded, stratified sample takes up to N
points per file.

Each mutant is applied to a private copy of the workspace (DIR/ws, built by its own
Bazel server) and run through three stages, stopping at the first kill:
  1. replay: the fuzz targets' replay tests (seeds and regressions, both modes);
  2. fuzz:   each fuzz target for --budget seconds from an empty corpus, fixed seed;
     replay: the same replays through the HZ_DEBUG=3 core, and under TSan for the
             multithreaded targets (last of the fuzz suite: two more core builds);
  3. unit:   bazel test //core/... //tests/... (the core's unit tests; the preload
             shim under real programs and at start-up)
A mutant is killed (by which stage, after how long), survived, does not compile, or
timed out. Results go to DIR/results.jsonl, one line per mutant, so an interrupted run
resumes where it stopped; --report prints the per-file table and the two scores, fuzz
suite alone and fuzz plus unit tests, and every survivor as a diff. --markdown FILE
writes the table. --check CMD replaces the three stages by one command run in the
mutated copy (killed when it exits non-zero): the smoke test uses it. --stages fuzz runs
the fuzz stage alone (no seeds: what fuzzing from an empty corpus finds), and keeps its
results apart, in DIR/results-fuzz.jsonl.

--patch FILE... runs hand-written bugs instead of sampled points: each file is a unified
diff of core/ (`git diff` output, applied with `patch -p1`), one bug, run through the
same stages, control and report as a mutant. That is how a bug found in review, or a
set kept away from the suite's authors, is held against the suite as it is today.

A kill means something only if the unmutated core passes the same test. Before the
first mutant of a sitting, the copy is built and replayed unmutated (or --check runs on
it), and the run stops if that fails; the unmutated fuzz binaries are kept, and an input
that kills a mutant in a fuzz stage is run through them: if the unmutated core fails it
too, the finding is the harness's, and the run stops with the input kept.
"""
import argparse
import difflib
import hashlib
import json
import re
import os
import random
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workspace  # noqa: E402

TARGETS = ["tls_sll", "alloc", "realloc", "reuse", "ptag", "mt", "shim"]
STAGES = ["replay", "fuzz", "unit"]  # in the order they run
# Lines never mutated: a seeded bug's switch is off in the clean build, an assertion only
# restates what the suite checks, and a static assertion does not compile when broken.
SKIP_MARKERS = ("HZ_BUG(", "HZ_SEED_BUG", "HZ_ASSERT", "_Static_assert", "#")
OPERATORS = {
    "<": ["<=", ">="], "<=": ["<", ">"], ">": [">=", "<="], ">=": [">", "<"],
    "==": ["!="], "!=": ["=="],
    "+": ["-"], "-": ["+"], "*": ["/"], "/": ["*"], "%": ["/"],
    "&&": ["||"], "||": ["&&"],
    "&": ["|"], "|": ["&"], "^": ["|"], "<<": [">>"], ">>": ["<<"],
    "+=": ["-="], "-=": ["+="], "|=": ["&="], "&=": ["|="],
}
ORDERS = ("memory_order_acquire", "memory_order_release", "memory_order_acq_rel",
          "memory_order_seq_cst")


def die(msg, code=2):
    print("mutation: " + msg, file=sys.stderr)
    sys.exit(code)


def load_clang():
    try:
        import clang.cindex as ci
    except ImportError:
        die("libclang's Python bindings are missing: run tools/setup.sh "
            "(apt-get install python3-clang-14) and use /usr/bin/python3")
    for lib in ("/usr/lib/llvm-14/lib/libclang.so.1", "/usr/lib/llvm-14/lib/libclang.so"):
        if os.path.exists(lib):
            ci.Config.set_library_file(lib)
            break
    return ci


# ---- finding mutation points -------------------------------------------------------
class Finder:
    def __init__(self, ci, root, files):
        self.ci, self.root, self.files = ci, root, set(files)
        self.points = {}  # id -> point
        self.text = {f: open(os.path.join(root, f), encoding="utf-8").read() for f in files}
        self.bug_spans = {}

    def rel(self, loc_file):
        if loc_file is None:
            return None
        p = os.path.relpath(os.path.realpath(loc_file.name), self.root)
        return p if p in self.files else None

    @staticmethod
    def closing(text, i, until=None):
        """The offset just past the bracket matching text[i], or with `until`, past the
        first `until` at depth 0 from i."""
        depth = 0
        while i < len(text):
            c = text[i]
            if until and c == until and depth == 0:
                return i + 1
            depth += {"(": 1, "{": 1, ")": -1, "}": -1}.get(c, 0)
            if not until and depth == 0:
                return i + 1
            i += 1
        return len(text)

    def seeded_spans(self, f):
        """[start, end) of the code that only a seeded build runs: every HZ_BUG(...)
        condition (to its matching parenthesis: they span lines), and the statement an
        `if (HZ_BUG(...))` guards."""
        spans, text = [], self.text[f]
        at = text.find("HZ_BUG(")
        while at >= 0:
            end = self.closing(text, at + len("HZ_BUG"))
            spans.append((at, end))
            rest = text[end:].lstrip()
            if re.search(r"\bif\s*\(\s*$", text[:at]) and rest.startswith(")"):
                body = end + (len(text) - end - len(rest)) + 1
                body += len(text[body:]) - len(text[body:].lstrip())
                stop = (self.closing(text, body) if text.startswith("{", body)
                        else self.closing(text, body, until=";"))
                spans.append((body, stop))
            at = text.find("HZ_BUG(", end)
        return spans

    def skipped(self, f, offset):
        text = self.text[f]
        if f not in self.bug_spans:
            self.bug_spans[f] = self.seeded_spans(f)
        if any(s <= offset < e for s, e in self.bug_spans[f]):
            return True
        start = text.rfind("\n", 0, offset) + 1
        end = text.find("\n", offset)
        line = text[start:end if end >= 0 else len(text)]
        return any(m in line for m in SKIP_MARKERS)

    def add(self, f, kind, edits, desc):
        edits = sorted(edits)
        if any(self.skipped(f, s) for s, _, _ in edits):
            return
        key = json.dumps([f, edits])
        pid = hashlib.sha1(key.encode()).hexdigest()[:12]
        line = self.text[f].count("\n", 0, edits[0][0]) + 1
        self.points[pid] = {"id": pid, "file": f, "line": line, "kind": kind,
                            "edits": edits, "desc": desc}

    def scan(self, tu):
        self.visit(tu.cursor, False)
        # Memory orders are tokens inside the atomic macros: take them from the lexer.
        for tok in tu.cursor.get_tokens():
            f = self.rel(tok.location.file)
            if f and tok.spelling in ORDERS:
                o = tok.extent.start.offset
                self.add(f, "memory-order", [(o, o + len(tok.spelling), "memory_order_relaxed")],
                         tok.spelling + " -> memory_order_relaxed")

    def visit(self, cur, live):
        """Mutates code that runs: function bodies and the initialisers of variables (the
        size-class tables); not enum values, array bounds or field types."""
        K = self.ci.CursorKind
        for kid in cur.get_children():
            kind = kid.kind
            if kind in (K.ENUM_DECL, K.STRUCT_DECL, K.UNION_DECL, K.TYPEDEF_DECL, K.FIELD_DECL,
                        K.TYPE_REF, K.PARM_DECL):
                continue
            inside = live or kind in (K.FUNCTION_DECL, K.VAR_DECL)
            if inside:
                self.point(kid)
            self.visit(kid, inside)

    def point(self, cur):
        K = self.ci.CursorKind
        f = self.rel(cur.location.file)
        if f is None:
            return
        ext = cur.extent
        if self.rel(ext.start.file) != f or self.rel(ext.end.file) != f:
            return
        kind = cur.kind
        if kind in (K.BINARY_OPERATOR, K.COMPOUND_ASSIGNMENT_OPERATOR):
            self.binary(cur, f)
        elif kind == K.INTEGER_LITERAL:
            self.literal(cur, f)
        elif kind in (K.IF_STMT, K.WHILE_STMT, K.CONDITIONAL_OPERATOR):
            kids = list(cur.get_children())
            if kids:
                self.negate(kids[0], f)
        elif kind == K.COMPOUND_STMT:
            for st in cur.get_children():
                if st.kind in (K.CALL_EXPR, K.BINARY_OPERATOR, K.COMPOUND_ASSIGNMENT_OPERATOR):
                    self.delete(st, f)

    def within(self, node, f):
        e = node.extent
        return self.rel(e.start.file) == f and self.rel(e.end.file) == f

    def binary(self, cur, f):
        kids = list(cur.get_children())
        if len(kids) != 2 or not all(self.within(k, f) for k in kids):
            return
        lo, hi = kids[0].extent.end.offset, kids[1].extent.start.offset
        if lo > hi:
            return  # a macro argument: the operator is not between its operands here
        ops = [t for t in cur.get_tokens()
               if lo <= t.extent.start.offset < hi and t.spelling in OPERATORS]
        if len(ops) != 1:
            return
        tok = ops[0]
        o = tok.extent.start.offset
        if self.text[f][o:o + len(tok.spelling)] != tok.spelling:
            return
        cls = "relational" if tok.spelling in ("<", "<=", ">", ">=", "==", "!=") else \
              "logical" if tok.spelling in ("&&", "||") else \
              "arithmetic" if tok.spelling in ("+", "-", "*", "/", "%", "+=", "-=") else "bitwise"
        for rep in OPERATORS[tok.spelling]:
            self.add(f, cls, [(o, o + len(tok.spelling), rep)], tok.spelling + " -> " + rep)

    def literal(self, cur, f):
        s, e = cur.extent.start.offset, cur.extent.end.offset
        text = self.text[f][s:e]
        digits = text.rstrip("uUlL")
        try:
            v = int(digits, 0)
        except ValueError:
            return
        suffix = text[len(digits):]
        reps = {v + 1, 0} | ({v - 1} if v > 0 else set())
        reps.discard(v)
        for r in sorted(reps):
            self.add(f, "constant", [(s, e, str(r) + suffix)], "%s -> %d%s" % (text, r, suffix))

    def negate(self, cond, f):
        if not self.within(cond, f):
            return
        s, e = cond.extent.start.offset, cond.extent.end.offset
        if e <= s:
            return
        self.add(f, "negation", [(s, s, "!("), (e, e, ")")],
                 "negate " + " ".join(self.text[f][s:e].split())[:60])

    def delete(self, st, f):
        if not self.within(st, f):
            return
        s, e = st.extent.start.offset, st.extent.end.offset
        if e <= s:
            return
        self.add(f, "deletion", [(s, e, "(void)0")],
                 "delete " + " ".join(self.text[f][s:e].split())[:60])


def find_points(root, files):
    ci = load_clang()
    core_files = sorted(files)
    finder = Finder(ci, root, core_files)
    index = ci.Index.create()
    args = ["-std=c11", "-I" + root, "-D_GNU_SOURCE", "-DHZ_DEBUG=2",
            "-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"]
    for f in core_files:
        if f.endswith(".c"):
            tu = index.parse(os.path.join(root, f), args=args)
            errors = [d for d in tu.diagnostics if d.severity >= 3]
            if errors:
                die("libclang cannot parse %s: %s" % (f, errors[0].spelling))
            finder.scan(tu)
    return finder


def core_files(root, only):
    names = sorted(os.listdir(os.path.join(root, "core")))
    # preload.c too: shim_fuzzer drives it (fuzz/hzf_api.h).
    files = ["core/" + n for n in names if (n.endswith(".c") or n.endswith(".h"))
             and not n.endswith("_test.c")]
    if only:
        for f in only:
            if f not in files:
                die("%s is not a core source this tool mutates (one of: %s)" % (f, " ".join(files)))
        return files, set(only)
    return files, set(files)


def sample(points, chosen_files, n, seed):
    by_file = {}
    for p in points.values():
        if p["file"] in chosen_files:
            by_file.setdefault(p["file"], []).append(p)
    out = []
    for f in sorted(by_file):
        pts = sorted(by_file[f], key=lambda p: p["id"])
        rng = random.Random("%d:%s" % (seed, f))
        out += rng.sample(pts, min(n, len(pts)))
    return out


def load_patches(paths, wd):
    """Hand-written bugs: each a unified diff of core/ only. A patch that touched the
    suite (or a unit test) would change the judge along with the judged."""
    out = []
    for path in paths:
        full = os.path.join(wd, path)
        if not os.path.isfile(full):
            die("no patch file %s" % full)
        text = open(full, encoding="utf-8", errors="replace").read()
        files = []
        for target in re.findall(r"^\+\+\+ (\S+)", text, re.M):
            f = target.split("/", 1)[1] if "/" in target else target
            if f not in files:
                files.append(f)
        hunk = re.search(r"^@@ -\d+(?:,\d+)? \+(\d+)", text, re.M)
        if not files or not hunk:
            die("%s is not a unified diff (no '+++ b/<file>' and '@@' lines): make it with "
                "git diff" % path)
        for f in files:
            if not re.fullmatch(r"core/[^/]+\.[ch]", f) or f.endswith("_test.c"):
                die("%s changes %s: a patch may change only core/ sources (not tests), or "
                    "it changes the suite that judges it" % (path, f))
        # The line of the first change, for the report: the hunk's start plus its context.
        body = text[hunk.end():].split("\n")[1:]
        lead = next((k for k, l in enumerate(body) if l[:1] in "+-"), 0)
        digest = hashlib.sha1(text.encode()).hexdigest()[:12]
        out.append({"id": digest, "file": files[0], "files": files,
                    "line": int(hunk.group(1)) + lead, "kind": "patch",
                    "desc": os.path.basename(path), "patch": full, "text": text})
    return out


def patch_cmd(p, *extra):
    return ["patch", "-p1", "-s", "--batch", "--forward", "--no-backup-if-mismatch",
            "-r", "-", "-i", p["patch"]] + list(extra)


def apply(text, edits):
    for s, e, rep in sorted(edits, reverse=True):
        text = text[:s] + rep + text[e:]
    return text


def diff(root, p):
    if "text" in p:
        return p["text"]
    old = open(os.path.join(root, p["file"]), encoding="utf-8").read()
    new = apply(old, p["edits"])
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                        "a/" + p["file"], "b/" + p["file"], n=1))


# ---- running mutants ---------------------------------------------------------------
def run(cmd, cwd, timeout):
    t0 = time.time()
    try:
        r = subprocess.run(cmd, cwd=cwd, shell=isinstance(cmd, str), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        return r.returncode, r.stdout.decode(errors="replace"), time.time() - t0
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        return None, out, time.time() - t0


def make_workspace(root, ws):
    """A copy of the tracked files (every file, outside a git checkout), brought up to
    date on every run: a resumed run tests the suite as it is now, and Bazel's cache in
    the copy keeps the rebuild incremental."""
    r = subprocess.run(["git", "ls-files", "-z"], cwd=root, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    if r.returncode == 0:
        files = [f.decode() for f in r.stdout.split(b"\0") if f]
    else:
        files = [os.path.relpath(os.path.join(d, n), root)
                 for d, dirs, names in os.walk(root) for n in names
                 if not os.path.realpath(os.path.join(d, n)).startswith(os.path.realpath(ws))]
    for f in files:
        src, dst = os.path.join(root, f), os.path.join(ws, f)
        if os.path.exists(dst) and os.path.getsize(dst) == os.path.getsize(src) and \
                open(src, "rb").read() == open(dst, "rb").read():
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)


def finding_line(out):
    for line in out.splitlines():
        if "HZFUZZ-FINDING" in line or "ERROR: AddressSanitizer" in line or \
           "internal assertion" in line or "ERROR: libFuzzer" in line or "FAILED" in line:
            return line.strip()[:200]
    return out.strip().splitlines()[-1][:200] if out.strip() else ""


def stages(args, ws):
    # Cheapest killer first. The ASan replays of every target's seeds and regressions kill
    # most mutants; the HZ_DEBUG=3 and TSan replays (the rest of //fuzz:all) rebuild the
    # core twice more, so they run only for what the fuzzing leaves alive.
    # --build_tests_only: //fuzz:all also names the AFL++ builds, which no stage runs.
    replays = ["//fuzz:%s_fuzzer_replay_test" % t for t in TARGETS]
    bins = ["//fuzz:%s_fuzzer_bin" % t for t in TARGETS]
    yield "build", ["bazel", "build"] + bins + replays
    if "replay" in args.stages:
        yield "replay", ["bazel", "test", "--test_output=errors"] + replays
    for t in (TARGETS if "fuzz" in args.stages else []):
        corpus = os.path.join(args.out, "corpus", t)
        shutil.rmtree(corpus, ignore_errors=True)
        os.makedirs(corpus)
        # The flags of `bazel run //fuzz:<t>`, but a shorter -timeout: a mutant that loops
        # forever is common, and a budget of seconds has no minute to wait for it.
        yield "fuzz:" + t, (["bazel-bin/fuzz/%s_fuzzer_bin" % t] + workspace.libfuzzer_flags(ws) +
                            ["-seed=%d" % args.seed, "-max_total_time=%d" % args.budget,
                             "-timeout=20", "-rss_limit_mb=4096",
                             "-artifact_prefix=" + corpus + "/", corpus])
    if "replay" in args.stages:
        yield "replay", ["bazel", "test", "--test_output=errors", "--build_tests_only", "//fuzz:all"]
    if "unit" in args.stages:
        yield "unit", ["bazel", "test", "--test_output=errors", "//core/...", "//tests/..."]


def clean_control(args, ws):
    """The unmutated copy must build and pass every replay, the late ones (the
    HZ_DEBUG=3 and TSan builds) included: a late stage that failed on any core would
    "kill" every mutant that reached it. Its fuzz binaries are kept so that each
    fuzz-stage kill can be tried on them. The unit stage is not run: what it would cost,
    every mutant the suite misses pays anyway."""
    if args.check:
        rc, out, _ = run(args.check, ws, args.timeout)
        if rc != 0:
            die("the check fails on the unmutated core, so no kill would mean anything: %s"
                % finding_line(out), 1)
        return
    for name, cmd in stages(args, ws):
        if name.startswith("fuzz:") or name == "unit":
            continue
        rc, out, _ = run(cmd, ws, args.timeout)
        if rc != 0:
            die("%s fails on the unmutated core, so no kill would mean anything: %s"
                % (name, finding_line(out)), 1)
    clean = os.path.join(args.out, "clean")
    os.makedirs(clean, exist_ok=True)
    for t in TARGETS:
        shutil.copy2(os.path.join(ws, "bazel-bin/fuzz/%s_fuzzer_bin" % t), clean)


def false_kill(args, ws, target):
    """The input a fuzz stage stopped on, if the unmutated core fails it as well."""
    corpus = os.path.join(args.out, "corpus", target)
    found = [os.path.join(corpus, f) for f in os.listdir(corpus)
             if f.split("-")[0] in ("crash", "timeout", "oom", "leak", "slow")]
    binary = os.path.join(args.out, "clean", "%s_fuzzer_bin" % target)
    if not found or not os.path.exists(binary):
        return None
    found.sort(key=os.path.getmtime)
    rc, out, _ = run([binary, "-timeout=20", "-rss_limit_mb=4096", found[-1]], ws, 300)
    return (found[-1], finding_line(out)) if rc != 0 else None


def mutate(ws, p):
    """Applies mutant p to the copy and returns the texts to put back: the copy's, not
    the checkout's, since the copy is the tree the points were found in when the run
    started, and the checkout may be edited while a long run goes on."""
    files = p.get("files", [p["file"]])
    saved = {f: open(os.path.join(ws, f), encoding="utf-8").read() for f in files}
    if "patch" in p:
        r = subprocess.run(patch_cmd(p), cwd=ws, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if r.returncode != 0:
            restore(ws, saved)
            die("%s no longer applies to the copy: %s" % (
                p["desc"], r.stdout.decode(errors="replace").strip()), 1)
    else:
        with open(os.path.join(ws, p["file"]), "w", encoding="utf-8") as fh:
            fh.write(apply(saved[p["file"]], p["edits"]))
    return saved


def restore(ws, saved):
    for f, text in saved.items():
        with open(os.path.join(ws, f), "w", encoding="utf-8") as fh:
            fh.write(text)


def run_mutant(args, ws, p):
    saved = mutate(ws, p)
    result = {"id": p["id"], "file": p["file"], "line": p["line"], "kind": p["kind"],
              "desc": p["desc"], "status": "survived", "by": None, "seconds": 0.0}
    t0 = time.time()
    try:
        steps = [("check", args.check)] if args.check else stages(args, ws)
        for name, cmd in steps:
            rc, out, _ = run(cmd, ws, args.timeout)
            if rc is None:
                result.update(status="timed out", by=name, detail="no result in %d s" % args.timeout)
                break
            # Bazel's exit code 1 is a failed build (a failed test is 3): the mutant does
            # not compile in that stage's configuration, which kills nothing.
            if rc != 0 and (name == "build" or (cmd[0] == "bazel" and rc == 1)):
                result.update(status="does not compile", detail=finding_line(out))
                if name != "build":
                    result["by"] = name
                break
            if rc != 0:
                result.update(status="killed", by=name, detail=finding_line(out))
                if name.startswith("fuzz:"):
                    result["false_kill"] = false_kill(args, ws, name[len("fuzz:"):])
                break
    finally:
        restore(ws, saved)
    result["seconds"] = round(time.time() - t0, 1)
    return result


# ---- reporting -----------------------------------------------------------------------
def report(results, root, points, markdown):
    rows, total = {}, {"n": 0, "compiled": 0, "fuzz": 0, "any": 0, "survived": 0}
    for r in results:
        row = rows.setdefault(r["file"], {"n": 0, "compiled": 0, "fuzz": 0, "any": 0, "survived": 0})
        for d in (row, total):
            d["n"] += 1
            if r["status"] == "does not compile":
                continue
            d["compiled"] += 1
            if r["status"] == "killed":
                d["any"] += 1
                if r["by"] in ("replay", "check") or r["by"].startswith("fuzz:"):
                    d["fuzz"] += 1
            elif r["status"] == "timed out":
                d["any"] += 1
                d["fuzz"] += 1
            else:
                d["survived"] += 1

    def pct(a, b):
        return "%.0f%%" % (100.0 * a / b) if b else "-"

    lines = ["| file | mutants | compiled | killed by fuzz | killed by fuzz + unit | survived | fuzz score | fuzz + unit score |",
             "|---|---|---|---|---|---|---|---|"]
    for f in sorted(rows):
        d = rows[f]
        lines.append("| %s | %d | %d | %d | %d | %d | %s | %s |" % (
            f, d["n"], d["compiled"], d["fuzz"], d["any"], d["survived"],
            pct(d["fuzz"], d["compiled"]), pct(d["any"], d["compiled"])))
    d = total
    lines.append("| **all** | %d | %d | %d | %d | %d | **%s** | **%s** |" % (
        d["n"], d["compiled"], d["fuzz"], d["any"], d["survived"],
        pct(d["fuzz"], d["compiled"]), pct(d["any"], d["compiled"])))
    table = "\n".join(lines)
    print(table)
    survivors = [r for r in results if r["status"] == "survived"]
    for r in survivors:
        print("\nsurvived %s (%s:%d, %s): %s" % (r["id"], r["file"], r["line"], r["kind"], r["desc"]))
        if r["id"] in points:
            print(diff(root, points[r["id"]]), end="")
    if markdown:
        with open(markdown, "w", encoding="utf-8") as fh:
            fh.write(table + "\n")
    return total


def main():
    ap = argparse.ArgumentParser(prog="mutation", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", type=int, default=5, help="mutants per file (default 5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--files", nargs="+", help="core files to mutate (default: all)")
    ap.add_argument("--ids", nargs="+", help="exactly these mutants (ids from --list or a "
                    "report), e.g. to re-run survivors after a fix; --rerun runs them again")
    ap.add_argument("--rerun", action="store_true", help="ignore earlier results of the mutants")
    ap.add_argument("--budget", type=int, default=20, help="seconds per fuzz target (default 20)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per stage before 'timed out'")
    ap.add_argument("--out", default="out/mutation", help="results and the private workspace")
    ap.add_argument("--list", action="store_true", help="print the sampled mutants and stop")
    ap.add_argument("--report", action="store_true", help="print the table from the results so far")
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--check", help="one command instead of the three stages (smoke test)")
    ap.add_argument("--stages", default="replay,fuzz,unit", help="the stages to run, of "
                    "replay,fuzz,unit (default all); e.g. fuzz alone measures what fuzzing "
                    "from an empty corpus finds without the seeds")
    ap.add_argument("--patch", nargs="+", metavar="FILE", help="hand-written bugs instead of "
                    "sampled points: unified diffs of core/, one bug each")
    ap.add_argument("--root", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sample < 1:
        die("--sample must be at least 1")
    if args.budget < 1:
        die("--budget must be at least 1 second")
    root = os.path.realpath(args.root or os.environ.get("BUILD_WORKSPACE_DIRECTORY") or os.getcwd())
    if not os.path.isfile(os.path.join(root, "core", "hz.h")):
        die("%s is not the hzfuzz workspace (no core/hz.h); run from its root" % root)
    wd = os.environ.get("BUILD_WORKING_DIRECTORY")
    if not os.path.isabs(args.out):
        args.out = os.path.join(wd or root, args.out)
    if args.markdown and not os.path.isabs(args.markdown):
        args.markdown = os.path.join(wd or root, args.markdown)
    asked = set(x for x in args.stages.split(",") if x)
    if not asked or asked - set(STAGES):
        die("--stages takes a comma list of replay, fuzz, unit (got %r)" % args.stages)
    args.stages = [x for x in STAGES if x in asked]
    if args.patch and (args.ids or args.files):
        die("--patch runs the patches given; it takes no --ids or --files")
    if args.patch:
        # No parsing: a patch names its own sites, so libclang is not needed.
        picked, npoints = load_patches(args.patch, wd or root), None
    else:
        files, chosen = core_files(root, args.files)
        finder = find_points(root, files)
        npoints = len(finder.points)
        if args.ids:
            unknown = [i for i in args.ids if i not in finder.points]
            if unknown:
                die("no mutant %s in the current core (ids change when the code they point "
                    "at moves)" % ", ".join(unknown))
            picked = [finder.points[i] for i in args.ids]
        else:
            picked = sample(finder.points, chosen, args.sample, args.seed)
    os.makedirs(args.out, exist_ok=True)
    # A run of fewer stages keeps its own results: its survivors are not the full
    # suite's, and a later full run must not take them as done.
    results_path = os.path.join(args.out, "results.jsonl" if args.stages == STAGES else
                                "results-%s.jsonl" % "-".join(args.stages))
    done = {}
    if os.path.exists(results_path) and not args.rerun:
        for line in open(results_path, encoding="utf-8"):
            if line.strip():
                r = json.loads(line)
                done[r["id"]] = r
    if args.list:
        if args.patch:
            print("%d patches" % len(picked))
        else:
            print("%d mutation points in %d files; %d sampled (seed %d)" % (
                npoints, len(files), len(picked), args.seed))
        for p in picked:
            print("%s %s:%d %-12s %s" % (p["id"], p["file"], p["line"], p["kind"], p["desc"]))
        return 0
    if not args.report:
        ws = os.path.join(args.out, "ws")
        make_workspace(root, ws)
        for p in (p for p in picked if "patch" in p):
            r = subprocess.run(patch_cmd(p, "--dry-run"), cwd=ws, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            if r.returncode != 0:
                die("%s does not apply to the current tree: %s" % (
                    p["desc"], r.stdout.decode(errors="replace").strip()))
        todo = [p for p in picked if p["id"] not in done]
        print("mutation: %d sampled, %d done, %d to run (workspace %s)" % (
            len(picked), len(picked) - len(todo), len(todo), ws), flush=True)
        if todo:
            clean_control(args, ws)
        for k, p in enumerate(todo):
            r = run_mutant(args, ws, p)
            bad = r.pop("false_kill", None)
            if bad:
                keep = os.path.join(args.out, "false-kill-%s" % os.path.basename(bad[0]))
                shutil.copy2(bad[0], keep)
                die("mutant %s was 'killed' by %s, but the unmutated core fails the same input "
                    "(%s): a harness false positive, kept as %s; fix the harness, then resume"
                    % (r["id"], r["by"], bad[1], keep), 1)
            done[r["id"]] = r
            with open(results_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(r) + "\n")
            print("[%d/%d] %s %s:%d %s: %s%s (%.0f s)" % (
                k + 1, len(todo), r["id"], r["file"], r["line"], r["desc"], r["status"],
                " by " + r["by"] if r["by"] else "", r["seconds"]), flush=True)
    results = [done[p["id"]] for p in picked if p["id"] in done]
    points = {p["id"]: p for p in picked}
    report(results, root, points, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
