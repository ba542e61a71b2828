"""Build macros for the hz core and its variants.

One source list, compiled several ways: the default library, a checked build with
internal assertions (HZ_DEBUG=2) for tests, a build with misuse detection compiled out
for the benchmark's cost column, sanitizer builds, and the seeded-bug builds.
"""

load("//config:defs.bzl", "CONFIG_COPTS", "CONFIG_LINKOPTS", "excluded_under")

# Warnings are errors in core: the allocator must compile clean.
HZ_COPTS = [
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wstrict-prototypes",
    "-Wmissing-prototypes",
    "-Wno-missing-field-initializers",
    "-fno-omit-frame-pointer",
]

# The malloc family the preload shim (preload.c) overrides (cfree: glibc still exports it for old binaries).
HZ_PRELOAD_EXPORTS = [
    "malloc",
    "free",
    "cfree",
    "calloc",
    "realloc",
    "reallocarray",
    "malloc_usable_size",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
]

HZ_CORE_HDRS = [
    "api.h",
    "base.h",
    "config.h",
    "hz.h",
    "hz_debug.h",
    "os.h",
    "pagemap.h",
    "remote.h",
    "seed_bugs.h",
    "sizeclass.h",
    "slab.h",
    "tcache.h",
    "thread.h",
    "tls_sll.h",
]

HZ_CORE_SRCS = [
    "alloc.c",
    "check.c",
    "fault.c",
    "free.c",
    "large.c",
    "os.c",
    "pagemap.c",
    "pool.c",
    "remote.c",
    "sizeclass.c",
    "slab.c",
    "tcache.c",
    "thread.c",
]

def hz_core_library(name, defines = [], copts = [], linkopts = [], visibility = None,
                    follow_config = True, tags = [], private_defines = []):
    """The whole core as one cc_library. `defines` (HZ_* knobs) propagate to dependents,
    so tests that include internal headers see the same configuration; `private_defines`
    apply to the core's own files only (the bugzoo's seeded bug: its harness, which only
    observes the core, is then one build shared by every seeded variant). It is instrumented
    with the --config's sanitizer (config/defs.bzl) unless `follow_config = False`: a
    variant that pins its own sanitizer."""
    native.cc_library(
        name = name,
        srcs = ["//core:" + s for s in HZ_CORE_SRCS],
        hdrs = ["//core:" + h for h in HZ_CORE_HDRS],
        copts = HZ_COPTS + copts + (CONFIG_COPTS if follow_config else []),
        local_defines = ["_GNU_SOURCE"] + private_defines,
        defines = defines,
        linkopts = ["-lpthread"] + linkopts + (CONFIG_LINKOPTS if follow_config else []),
        visibility = visibility,
        tags = tags,
    )

def hz_test(name, srcs, deps = [], copts = [], linkopts = [], follow_config = True, **kwargs):
    """A core test: C11, warnings as errors, the test helpers, the --config's sanitizer."""
    native.cc_test(
        name = name,
        srcs = srcs,
        copts = HZ_COPTS + ["-Wno-missing-prototypes"] + copts +
                (CONFIG_COPTS if follow_config else []),
        local_defines = ["_GNU_SOURCE"],
        linkopts = ["-lpthread"] + linkopts + (CONFIG_LINKOPTS if follow_config else []),
        deps = ["//core/testing:hz_test"] + deps,
        **kwargs
    )

def hz_pinned_sanitizer_test(name, sanitizer, srcs, debug, excluded, reason):
    """A core test that needs one sanitizer whatever the --config: the core and the test
    built with -fsanitize=<sanitizer> (the core at HZ_DEBUG=<debug>, as <name>_core), and
    kept out of the configurations in `excluded`, whose sanitizer's runtime cannot join
    this one (`reason`, which tools/matrix prints)."""
    flag = ["-fsanitize=" + sanitizer]
    hz_core_library(
        name = name + "_core",
        copts = flag,
        defines = ["HZ_DEBUG=%d" % debug],
        follow_config = False,
        linkopts = flag,
    )
    hz_test(
        name = name,
        size = "small",
        srcs = srcs,
        copts = flag,
        follow_config = False,
        linkopts = flag,
        tags = excluded_under(excluded, reason),
        deps = [":" + name + "_core"],
    )

def hz_preload_library(name, core, exports, visibility = None):
    """An LD_PRELOAD shared library: core/preload.c over the core variant `core`.

    Only the symbols in `exports` (the malloc family) are exported, through a generated
    version script; the core's own symbols bind locally, so its calls between files are
    direct, as in a static link. Bazel compiles `core` with -fPIC for a linkshared binary."""
    lds = name + "_exports"
    native.genrule(
        name = lds,
        outs = [name + ".lds"],
        cmd = "echo '{ global: " + " ".join([s + ";" for s in exports]) + " local: *; };' > $@",
    )
    native.cc_binary(
        name = name,
        srcs = ["preload.c"],
        additional_linker_inputs = [":" + lds],
        copts = HZ_COPTS,
        linkopts = [
            "-Wl,--version-script=$(location :" + lds + ")",
            # The toolchain adds -lstdc++; a C library must not load it into every program.
            "-Wl,--as-needed",
            "-ldl",
            "-lpthread",
        ],
        linkshared = True,
        local_defines = ["_GNU_SOURCE"],
        visibility = visibility,
        deps = [core],
    )
