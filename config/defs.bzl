"""The sanitizer of each build configuration (.bazelrc --config=asan|ubsan|tsan|msan|release).

CONFIG_COPTS and CONFIG_LINKOPTS instrument the code that follows the configuration: the
core libraries and the core tests (hz_core_library, hz_test). The fuzz harness has its
own selection (fuzz/defs.bzl), whose default, with no --config, is ASan + UBSan.

A test that cannot run under a configuration says so with `excluded_under(...)`: a tag
`no_<config>` per configuration, which .bazelrc filters out, and a tag `reason: ...`,
which tools/matrix prints in the excluded cell.
"""

CONFIGS = ["asan", "ubsan", "tsan", "msan", "release"]

SANITIZER_FLAGS = {
    "asan": ["-fsanitize=address"],
    "ubsan": ["-fsanitize=undefined", "-fno-sanitize-recover=undefined"],
    "tsan": ["-fsanitize=thread"],
    # glibc's fortified memcpy (_FORTIFY_SOURCE, which Bazel's toolchain defines in opt
    # builds) copies bytes without their MSan shadow: every copy would read as
    # uninitialised.
    "msan": ["-fsanitize=memory", "-fsanitize-memory-track-origins", "-U_FORTIFY_SOURCE"],
    "release": [],
}

CONFIG_COPTS = select(dict(
    [("//config:" + c, SANITIZER_FLAGS[c]) for c in CONFIGS] +
    [("//conditions:default", [])],
))

CONFIG_LINKOPTS = select(dict(
    [("//config:" + c, SANITIZER_FLAGS[c][:1]) for c in CONFIGS] +
    [("//conditions:default", [])],
))

def excluded_under(configs, reason):
    """Tags that keep a test out of `configs`, with the reason tools/matrix prints."""
    for c in configs:
        if c not in CONFIGS:
            fail("unknown configuration " + c)
    return ["no_" + c for c in configs] + ["reason: " + reason]
