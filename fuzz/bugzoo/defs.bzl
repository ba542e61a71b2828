"""The seeded-bug builds of the fuzz targets, for tools/bugzoo (docs/BUGS.md).

For each bug of core/seed_bugs.h, BUGZOO_BUGS lists the fuzz targets whose op mix is meant
to reach it, primary target first. bugzoo_variant(bug) declares:

  core_<bug>                 the core with -DHZ_SEED_BUG=HZ_BUG_<BUG> (its own files only)
  <bug>_harness              the shared harness over that core (for props/ and tools/)
  <bug>_<target>_fuzzer      the libFuzzer binary of <target> against that core
  <bug>_<target>_replay      the standalone replay driver of the same

bugzoo_harness(san) declares what the variants of one sanitizer share: the harness and
the entries, compiled once, as they never see which bug is seeded.

Every variant, the clean one ("none") included, is built the same way: the fuzzing
sanitizers, HZ_DEBUG=0 so that internal assertions do not point at the seeded line (the
suite's own checks must find the bug: the model, the heap check, the sanitizers and the
always-on misuse checks), and the fuzzers' own knobs (HZF_CORE_DEFINES: a 4 MiB
large-block cache, so frees of large blocks reach the decommit path).
"""

load("//config:defs.bzl", "CONFIGS")
load("//core:defs.bzl", "HZ_CORE_HDRS", "hz_core_library")
load("//fuzz:defs.bzl", "HZF_CORE_DEFINES", "HZF_COVERAGE_COPTS", "HZF_PINNED_SAN", "HZF_SAN_COPTS", "hzf_fuzz_entry", "hzf_fuzz_link", "hzf_harness_library")

ALL_TARGETS = ["tls_sll", "alloc", "realloc", "reuse", "ptag", "mt"]

BUGZOO_BUGS = {
    "LARSON": ["tls_sll", "reuse"],
    "DRAIN_PUSHBACK": ["tls_sll", "alloc"],
    "USED_SKIPS_SLL": ["reuse", "tls_sll"],
    "USABLE_OVER": ["alloc", "ptag"],
    "REALLOC_COPY": ["realloc"],
    "TAG0_FOREIGN": ["alloc", "realloc"],
    "FOREIGN_CLAIMED": ["ptag"],
    "REMOTE_OWN_SLL": ["mt"],
    "CAS_NO_RELINK": ["mt"],
    "REMOTE_TWICE": ["mt"],
    "STALE_NEXT": ["tls_sll", "alloc"],
    "DF_SLOW_PATH": ["ptag", "alloc"],
    "EXIT_KEEPS_SLL": ["mt"],
    "STALE_TAG": ["reuse"],
    "LARGE_ROUND_DOWN": ["alloc", "realloc"],
    "LATE_DECOMMIT": ["alloc", "realloc"],
    "OVERFLOW_LEAKS": ["tls_sll", "alloc"],
    "CALLOC_DIRTY": ["alloc", "realloc"],
    "PLAIN_COUNTER": ["mt"],
    "WHERE_UNINIT": ["ptag", "alloc"],
    "BATCH_TWICE": ["mt"],
    "RECLAIM_IN_TRANSIT": ["mt"],
    "BATCH_EXIT_LOST": ["mt"],
}

# Bugs only one sanitizer sees, and the sanitizer their builds pin instead of ASan+UBSan:
# the sanitizer matrix's reason to exist (docs/TESTING.md). A TSan build fuzzes in the
# free-running mode, where threads really race.
BUGZOO_SANITIZER = {
    "PLAIN_COUNTER": "tsan",
    "WHERE_UNINIT": "msan",
}

# The clean core under each pinned sanitizer, on the targets of its bugs: the
# false-positive control of those builds, as NONE is of the default ones.
BUGZOO_CLEAN_PINNED = {
    "NONE_TSAN": ("tsan", ["mt"]),
    "NONE_MSAN": ("msan", ["ptag", "alloc"]),
}

# The knobs every variant shares, seen by the core and the harness alike.
BUGZOO_DEFINES = ["HZ_DEBUG=0"] + HZF_CORE_DEFINES

def _san_name(san):
    return san or "default"

def bugzoo_harness(san = None, targets = ALL_TARGETS):
    """The harness and the entries of `targets` for the variants under sanitizer `san`
    (None: the configuration's), compiled once: they see the core's headers and shared
    knobs but not the seeded bug, which is private to each variant's core. The harness
    only observes the core, so a seeded line inlined from a header (hz_in_arena,
    hz_mark_is_free) misbehaves in the core's own calls, never in the model's."""
    n = _san_name(san)
    default_only = ["no_" + c for c in CONFIGS]
    native.cc_library(
        name = "core_headers_" + n,
        hdrs = ["//core:" + h for h in HZ_CORE_HDRS],
        defines = BUGZOO_DEFINES,
        tags = default_only,
    )
    hzf_harness_library(name = "harness_" + n, core = ":core_headers_" + n,
                        copts = HZF_COVERAGE_COPTS + (HZF_PINNED_SAN[san][0] if san else []),
                        san = "none" if san else "fuzz", tags = default_only)
    for t in targets:
        hzf_fuzz_entry("entry_%s_%s" % (n, t), t, ":harness_" + n, san = san, tags = default_only)

def bugzoo_variant(bug, targets, seed = None, san = None):
    """The seeded build of `bug` (or, with `seed`, of another id: the clean controls)
    for `targets`; `san` pins a sanitizer (BUGZOO_SANITIZER's by default)."""
    b = bug.lower()
    core = "core_" + b
    # Only the default build runs the catalogue (bugzoo_test says why).
    default_only = ["no_" + c for c in CONFIGS]
    san = san or BUGZOO_SANITIZER.get(bug)
    san_copts = HZF_PINNED_SAN[san][0] if san else HZF_SAN_COPTS
    hz_core_library(
        tags = default_only,
        name = core,
        copts = san_copts + HZF_COVERAGE_COPTS,
        follow_config = False,
        defines = BUGZOO_DEFINES,
        private_defines = ["HZ_SEED_BUG=HZ_BUG_" + (seed or bug)],
    )
    n = _san_name(san)

    # The shared harness over this core: what props/ and tools/ link.
    native.cc_library(name = b + "_harness", deps = [":harness_" + n, ":" + core],
                      tags = default_only, visibility = ["//tools:__pkg__", "//props:__pkg__"])
    for t in targets:
        hzf_fuzz_link(
            b + "_" + t,
            entry = ":entry_%s_%s" % (n, t),
            fuzzer = b + "_" + t + "_fuzzer",
            srcs = ["seed_report.c"],
            deps = [":" + core],
            tags = default_only,
            san = san,
        )
