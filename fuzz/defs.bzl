"""hzf_fuzz_target: one fuzz target of the hzfuzz suite, in one line.

rules_fuzzing is not usable offline here, so this is our own. For a target `<t>_fuzzer`
drawing ops with profile `<t>` (fuzz/hzf_decode.c) it declares:

  <t>_fuzzer              `bazel run` it: fuzzes from corpus/<t>_fuzzer/ into out/fuzz/<t>_fuzzer/
  <t>_fuzzer_bin          the libFuzzer binary (ASan + UBSan; with --config=tsan: TSan and
                          the free-running multithreaded mode)
  <t>_fuzzer_replay       the standalone driver: replays files, no libFuzzer
  <t>_fuzzer_replay_test  replays the seed corpus and fuzz/regressions/<t>_fuzzer-* in the
                          deterministic and the free-running modes

`core` picks the allocator build the target links (any hz_core_library variant), so the
same target runs against seeded-bug builds of the core. hzf_fuzz_binaries declares only
the two binaries, for builds with no runner or replay test of their own (fuzz/bugzoo).
"""

load("//config:defs.bzl", "CONFIGS", "CONFIG_COPTS")
load("//core:defs.bzl", "HZ_PRELOAD_EXPORTS")

HZF_COPTS = [
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wno-missing-field-initializers",
    "-fno-omit-frame-pointer",
]

# Compile flags of the harness and of the fuzzing core variants: the configuration's
# sanitizer (.bazelrc), ASan + UBSan with none.
HZF_SAN_COPTS = select({
    "//config:asan": ["-fsanitize=address"],
    "//config:ubsan": ["-fsanitize=undefined", "-fno-sanitize-recover=undefined"],
    "//config:tsan": ["-fsanitize=thread"],
    "//config:msan": ["-fsanitize=memory", "-fsanitize-memory-track-origins", "-U_FORTIFY_SOURCE"],
    "//config:release": [],
    "//conditions:default": ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"],
})

# Coverage instrumentation for libFuzzer, in the core and the harness alike, and the
# macro fuzzing builds conventionally define: with it the core has race points
# (core/config.h HZ_RACE_POINTS) the harness can land a competing step at.
# (Under TSan the coverage counters are plain stores that threads race on: the entry
# suppresses TSan's reports on them, fuzz/hzf_target.c.) The release configuration has
# no sanitizer runtime to provide the coverage callbacks to the replay drivers, so it has
# none (its libFuzzer binaries are for the replays, not for fuzzing).
HZF_COVERAGE_COPTS = select({
    "//config:release": ["-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"],
    "//conditions:default": ["-fsanitize=fuzzer-no-link", "-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"],
})

HZF_FUZZER_LINKOPTS = select({
    "//config:asan": ["-fsanitize=fuzzer,address"],
    "//config:ubsan": ["-fsanitize=fuzzer,undefined"],
    "//config:tsan": ["-fsanitize=fuzzer,thread"],
    "//config:msan": ["-fsanitize=fuzzer,memory"],
    "//config:release": ["-fsanitize=fuzzer"],
    "//conditions:default": ["-fsanitize=fuzzer,address,undefined"],
})

HZF_DRIVER_LINKOPTS = select({
    "//config:asan": ["-fsanitize=address"],
    "//config:ubsan": ["-fsanitize=undefined"],
    "//config:tsan": ["-fsanitize=thread"],
    "//config:msan": ["-fsanitize=memory"],
    "//config:release": [],
    "//conditions:default": ["-fsanitize=address,undefined"],
})

HZF_DEFAULT_CORE = "//fuzz:hz_fuzz_core"

# The core's knobs at the fuzzers' scale, for every core the suite fuzzes or replays
# through (the bugzoo's too): a 4 MiB floor for the large-block cache, not 64 MiB, so
# that the few large blocks an input holds overflow it and their frees reach the trim and
# its decommits (the `dirty-bound` check) within seconds, as a long-running program's do;
# and exact-length free-extent bins up to 8 MiB, not 64 MiB, so that the freed runs of
# a few large blocks go to the shared list of longer extents and the search walks it.
HZF_CORE_DEFINES = ["HZ_LARGE_CACHE_BYTES=4194304u", "HZ_EXTENT_BINS=4u"]

HZF_HARNESS_SRCS = [
    "//fuzz:hzf_api.c",
    "//fuzz:hzf_audit.c",
    "//fuzz:hzf_death.c",
    "//fuzz:hzf_decode.c",
    "//fuzz:hzf_exec.c",
    "//fuzz:hzf_extent.c",
    "//fuzz:hzf_input.c",
    "//fuzz:hzf_model.c",
    "//fuzz:hzf_oom.c",
    "//fuzz:hzf_oracle.c",
    "//fuzz:hzf_proc.c",
    "//fuzz:hzf_race.c",
    "//fuzz:hzf_report.c",
    "//fuzz:hzf_run_edge.c",
    "//fuzz:hzf_run_ops.c",
    "//fuzz:hzf_trim.c",
]

HZF_HARNESS_HDRS = [
    "//fuzz:hzf_api.h",
    "//fuzz:hzf_death.h",
    "//fuzz:hzf_exec.h",
    "//fuzz:hzf_input.h",
    "//fuzz:hzf_oom.h",
    "//fuzz:hzf_ops.h",
    "//fuzz:hzf_oracle.h",
    "//fuzz:hzf_proc.h",
]

def hzf_harness_library(name, core, copts = [], san = "fuzz", visibility = None, **kwargs):
    """The op language, model and executor, compiled against one core variant. `san`
    picks the sanitizer: "fuzz", the fuzzing ones (HZF_SAN_COPTS); "config", the
    configuration's, as a core that follows it has (the benchmark's harness: the harness
    compiles the core's inline functions, and a block the core poisons under ASan must be
    unpoisoned by the same build of hz_block_out); "none", when `copts` pins one."""
    san_copts = {"fuzz": HZF_SAN_COPTS, "config": CONFIG_COPTS, "none": []}[san]
    native.cc_library(
        name = name,
        srcs = HZF_HARNESS_SRCS,
        hdrs = HZF_HARNESS_HDRS,
        copts = HZF_COPTS + san_copts + copts,
        local_defines = ["_GNU_SOURCE"],
        linkopts = ["-lpthread", "-ldl"],
        deps = [core],
        visibility = visibility,
        **kwargs
    )

def hzf_shim_library(name, core, harness, copts, **kwargs):
    """`name`: the shim profile's entry points (fuzz/hzf_api_shim.c) over `harness`, and
    `<name>_preload`: the preload shim (core/preload.c) over `core`, its exported names
    prefixed (hzshim_malloc, ...) so it does not interpose on the process's malloc, which
    the sanitizer runtime owns. Its next allocator is what RTLD_NEXT finds after the
    executable, glibc's, as in a preloaded program."""
    native.cc_library(
        name = name + "_preload",
        srcs = ["//core:preload.c"],
        copts = HZF_COPTS + copts,
        local_defines = ["%s=hzshim_%s" % (s, s) for s in HZ_PRELOAD_EXPORTS],
        linkopts = ["-ldl"],
        deps = [core],
        alwayslink = True,
        **kwargs
    )
    native.cc_library(
        name = name,
        srcs = ["//fuzz:hzf_api_shim.c"],
        copts = HZF_COPTS + copts,
        deps = [":" + name + "_preload", harness],
        alwayslink = True,
        **kwargs
    )

def _hzf_san_flags(san):
    """(copts, driver linkopts, fuzzer linkopts, defines) of a build: the configuration's
    sanitizer, or `san` pinned (HZF_PINNED_SAN) whatever the configuration."""
    if san:
        copts, driver_link = HZF_PINNED_SAN[san]
        fuzzer_link = ["-fsanitize=fuzzer," + driver_link[0][len("-fsanitize="):]]
        mode = ["HZF_DEFAULT_MODE=HZF_MODE_FREE"] if san == "tsan" else []
        return copts, driver_link, fuzzer_link, mode
    mode = select({
        "//config:tsan": ["HZF_DEFAULT_MODE=HZF_MODE_FREE"],
        "//conditions:default": [],
    })
    return HZF_SAN_COPTS, HZF_DRIVER_LINKOPTS, HZF_FUZZER_LINKOPTS, mode

def hzf_fuzz_entry(name, profile, harness, san = None, tags = []):
    """`name`: the libFuzzer entry of profile `profile` over `harness`, and `<name>_main`:
    the standalone replay driver's main over it. Neither links a core, so seeded variants
    share them (fuzz/bugzoo)."""
    copts, _, _, mode = _hzf_san_flags(san)
    native.cc_library(
        name = name,
        srcs = ["//fuzz:hzf_target.c"],
        hdrs = ["//fuzz:hzf_target.h"],
        copts = HZF_COPTS + copts + HZF_COVERAGE_COPTS,
        local_defines = ['HZF_TARGET=\\"%s\\"' % profile] + mode,
        deps = [harness],
        tags = tags,
    )
    native.cc_library(
        name = name + "_main",
        srcs = ["//fuzz:hzf_replay_main.c"],
        copts = HZF_COPTS + copts,
        deps = [":" + name],
        alwayslink = True,
        tags = tags,
    )

def hzf_fuzz_link(name, entry, fuzzer, srcs = [], deps = [], san = None, tags = []):
    """`fuzzer` (the libFuzzer binary) and `<name>_replay` (the standalone driver) of the
    entry `entry` (hzf_fuzz_entry), with `deps` (a core, when the entry's harness links
    none) and `srcs` in both."""
    copts, driver_link, fuzzer_link, _ = _hzf_san_flags(san)
    native.cc_binary(
        name = fuzzer,
        srcs = srcs,
        copts = HZF_COPTS,
        deps = [entry] + deps,
        linkopts = fuzzer_link,
        tags = tags,
    )

    native.cc_binary(
        name = name + "_replay",
        srcs = srcs,
        copts = HZF_COPTS + copts,
        deps = [entry + "_main"] + deps,
        linkopts = driver_link,
        tags = tags,
    )

def hzf_fuzz_binaries(name, profile, harness, fuzzer, srcs = [], deps = [], tags = [], san = None):
    """`fuzzer` (the libFuzzer binary) and `<name>_replay` (the standalone driver) of profile
    `profile` against `harness`, sharing `<name>_entry`; `srcs` go into both binaries.
    `san` pins a sanitizer of HZF_PINNED_SAN whatever the configuration (the harness and
    core must pin the same); TSan builds run the free-running mode by default."""
    hzf_fuzz_entry(name + "_entry", profile, harness, san = san, tags = tags)
    hzf_fuzz_link(name, ":" + name + "_entry", fuzzer, srcs = srcs, deps = deps, san = san,
                  tags = tags)

def hzf_fuzz_target(name, core = HZF_DEFAULT_CORE, dict = None, deps = [], tags = []):
    """A fuzz target `<profile>_fuzzer`; see the module docstring. `deps` go into its
    binaries and replay test (the shim target's entry points, fuzz/hzf_api.h)."""
    if not name.endswith("_fuzzer"):
        fail("fuzz target names end in _fuzzer: " + name)
    profile = name[:-len("_fuzzer")]
    harness = "//fuzz:hzf_harness"
    if core != HZF_DEFAULT_CORE:
        harness = ":" + name + "_harness"
        hzf_harness_library(name = name + "_harness", core = core, copts = HZF_COVERAGE_COPTS)

    hzf_fuzz_binaries(name, profile, harness, fuzzer = name + "_bin", deps = deps, tags = tags)

    seeds = "//corpus:" + name
    regressions = native.glob(["regressions/" + name + "-*"])
    dict_args = ["$(rootpath %s)" % dict] if dict else ["-"]
    native.sh_binary(
        name = name,
        srcs = ["//fuzz:run_fuzzer.sh"],
        args = [name, "$(rootpath :%s_bin)" % name, "corpus/" + name,
                "$(rootpath //fuzz:libfuzzer.options)"] + dict_args,
        data = [":" + name + "_bin", seeds, "//fuzz:libfuzzer.options",
                "//fuzz:libfuzzer_flags.awk"] + ([dict] if dict else []),
        tags = tags,
    )

    native.cc_test(
        name = name + "_replay_test",
        srcs = ["//fuzz:hzf_replay_main.c"],
        copts = HZF_COPTS + HZF_SAN_COPTS,
        deps = [":" + name + "_entry"] + deps,
        linkopts = HZF_DRIVER_LINKOPTS,
        args = ["--mode=baton", "--mode=free", "$(locations %s)" % seeds] +
               ["$(location %s)" % r for r in regressions],
        data = [seeds] + regressions,
        size = "medium",
        # Static, as the libFuzzer binaries are: a sanitizer runtime finds the entry's
        # hooks (TSan's suppressions and options, fuzz/hzf_target.c) only in the executable.
        linkstatic = True,
        tags = tags,
    )

# Replay variants need the race points, not libFuzzer's counters (which every thread bumps
# without synchronisation: TSan would report them).
HZF_REPLAY_COPTS = ["-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"]

# Sanitizers a replay variant can pin, whatever --config is in force: (copts, linkopts).
HZF_PINNED_SAN = {
    "tsan": (["-fsanitize=thread"], ["-fsanitize=thread"]),
    "msan": (["-fsanitize=memory", "-fsanitize-memory-track-origins", "-U_FORTIFY_SOURCE"],
             ["-fsanitize=memory"]),
}

def hzf_replay_variant(name, target, core, san = None, modes = ["--mode=baton", "--mode=free"],
                       tags = []):
    """`<name>`: a replay test of fuzz target `target`'s seeds and regressions against
    another core variant (a deeper assertion tier, or TSan pinned by `san`), so `bazel
    test //...` runs the corpus through those builds too."""
    profile = target[:-len("_fuzzer")]
    if san:
        copts, linkopts = HZF_PINNED_SAN[san]
    else:
        copts, linkopts = HZF_SAN_COPTS, HZF_DRIVER_LINKOPTS
    hzf_harness_library(name = name + "_harness", core = core, copts = copts + HZF_REPLAY_COPTS,
                        san = "none", testonly = True)
    native.cc_library(
        name = name + "_entry",
        testonly = True,
        srcs = ["//fuzz:hzf_target.c"],
        hdrs = ["//fuzz:hzf_target.h"],
        copts = HZF_COPTS + copts + HZF_REPLAY_COPTS,
        local_defines = ['HZF_TARGET=\\"%s\\"' % profile],
        deps = [":" + name + "_harness"],
    )
    # The shim target's entry points, over this variant's core and harness.
    deps = []
    if profile == "shim":
        hzf_shim_library(name = name + "_shim", core = core, harness = ":" + name + "_harness",
                         copts = copts + HZF_REPLAY_COPTS, testonly = True)
        deps = [":" + name + "_shim"]
    seeds = "//corpus:" + target
    regressions = native.glob(["regressions/" + target + "-*"])
    native.cc_test(
        name = name,
        srcs = ["//fuzz:hzf_replay_main.c"],
        copts = HZF_COPTS + copts,
        deps = [":" + name + "_entry"] + deps,
        linkopts = linkopts,
        args = modes + ["$(locations %s)" % seeds] + ["$(location %s)" % r for r in regressions],
        data = [seeds] + regressions,
        size = "medium",
        # Static, as the libFuzzer binaries are: a sanitizer runtime finds the entry's
        # hooks (TSan's suppressions and options, fuzz/hzf_target.c) only in the executable.
        linkstatic = True,
        tags = tags,
    )

HZF_AFL_TARGETS = ["tls_sll", "alloc", "realloc", "reuse", "ptag", "mt", "shim"]

def hzf_afl_binaries(name, suffix, cflags = "", env = "", targets = HZF_AFL_TARGETS, tags = [],
                     visibility = None):
    """`<t>_fuzzer<suffix>` for each of `targets`: AFL++ binaries built by fuzz/build.sh with
    afl-clang-fast and libAFLDriver.a, `cflags` selecting sanitizers and `env` AFL++'s
    compiler switches (AFL_LLVM_CMPLOG=1). Outside the C toolchain on purpose: the
    compiler is AFL++'s wrapper, and switching Bazel's toolchain to it would rebuild
    everything else."""
    native.genrule(
        name = name,
        srcs = ["//core:sources", "//fuzz:harness_sources", "//fuzz:build.sh"],
        outs = ["%s_fuzzer%s" % (t, suffix) for t in targets],
        cmd = ("AFL_QUIET=1 %s CC=/usr/bin/afl-clang-fast CFLAGS='%s' " % (env, cflags) +
               "LIB_FUZZING_ENGINE=/usr/lib/afl/libAFLDriver.a OUT=$(RULEDIR) SRC= " +
               "FUZZING_ENGINE=afl $(location //fuzz:build.sh) --binaries-only --properties none --suffix %s " % suffix +
               "--targets '%s'" % " ".join(targets)),
        # Built outside the C toolchain, so no configuration changes them: the default
        # build makes them once (docs/TESTING.md).
        tags = tags + ["no_" + c for c in CONFIGS],
        visibility = visibility,
    )

def hzf_afl_variants(prefix, cflags = "", targets = HZF_AFL_TARGETS):
    """The three AFL++ builds a campaign uses, `<prefix>_asan`, `<prefix>_cmplog` and
    `<prefix>_fast`, and a filegroup `<prefix>` of all three; `cflags` (a core
    configuration, e.g. a seeded bug) goes into each."""
    san = "-fsanitize=address,undefined -fno-sanitize-recover=undefined"
    hzf_afl_binaries(name = prefix + "_asan", cflags = (san + " " + cflags).strip(),
                     suffix = "_afl", targets = targets)
    hzf_afl_binaries(name = prefix + "_cmplog", cflags = cflags, env = "AFL_LLVM_CMPLOG=1",
                     suffix = "_afl_cmplog", targets = targets)
    hzf_afl_binaries(name = prefix + "_fast", cflags = cflags, suffix = "_afl_fast",
                     targets = targets)
    native.filegroup(name = prefix, srcs = [":" + prefix + k for k in ["_asan", "_cmplog", "_fast"]])
