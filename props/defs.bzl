"""hz_property_test: one property of the suite (props/), in one line.

For a property `p` (a prop_def_t named in props/registry.c) it declares:

  p        `bazel run //props:p -- --cases 1000000`: the engine's command line (prop.h)
  p_test   bazel test: replays props/regressions/p-*.ops, then runs `cases` generated
           cases, bounded by `seconds`
  p_fuzz   the same property as a libFuzzer target: the input is the choice sequence

`laws` is the library holding the properties and the core they are linked against, so the
same properties run against seeded-bug builds (props/BUILD.bazel, the zoo).
"""

load("//fuzz:defs.bzl", "HZF_COPTS", "HZF_COVERAGE_COPTS", "HZF_DRIVER_LINKOPTS", "HZF_FUZZER_LINKOPTS", "HZF_SAN_COPTS")

# Every property, in the order of docs/PROPERTIES.md, with its test's bound: (cases,
# seconds). The bound in seconds keeps `bazel test //...` within its budget on 2 cores;
# nightly runs take --cases 100000 (tools/props).
PROPERTIES = {
    "model_agreement": (3000, 5),
    "size_alignment": (20000, 5),
    "realloc_laws": (20000, 5),
    "calloc_law": (10000, 5),
    "conservation": (3000, 5),
    "schedule_independence": (3000, 5),
    "replay_determinism": (2000, 5),
    "misuse_contained": (20000, 5),
    "thread_exit": (3000, 5),
    "differential": (20000, 5),
}

PROP_COPTS = HZF_COPTS + HZF_SAN_COPTS + HZF_COVERAGE_COPTS

def hz_property_test(name, cases, seconds, laws = ":laws", tags = []):
    """The three targets of property `name`; see the module docstring."""
    common = dict(
        copts = PROP_COPTS,
        local_defines = ['PROP_NAME=\\"%s\\"' % name],
        deps = [laws],
        # A sanitizer runtime finds the engine's hooks (TSan's suppressions) only in the
        # executable.
        linkstatic = True,
        tags = tags,
    )
    native.cc_binary(
        name = name,
        srcs = ["//props:prop_main.c"],
        linkopts = HZF_DRIVER_LINKOPTS,
        **common
    )
    native.cc_test(
        name = name + "_test",
        srcs = ["//props:prop_main.c"],
        linkopts = HZF_DRIVER_LINKOPTS,
        args = [
            "--replay",
            "props/regressions",
            "--cases",
            str(cases),
            "--time",
            str(seconds),
            "--shrink-time",
            "60",
        ],
        data = ["//props:regressions"],
        size = "medium",
        **common
    )
    native.cc_binary(
        name = name + "_fuzz",
        srcs = ["//props:prop_fuzz.c"],
        linkopts = HZF_FUZZER_LINKOPTS,
        **common
    )
