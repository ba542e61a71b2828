"""Paths and builds for the tools run both as `bazel run //tools:<tool>` and from a checkout.

`bazel run` starts a tool inside its runfiles tree, so a path the user typed is relative
to BUILD_WORKING_DIRECTORY, and the repository is BUILD_WORKSPACE_DIRECTORY; run directly,
both are the current directory and git's top level.
"""
import configparser
import os
import subprocess
import sys


def die(tool, msg):
    """The tool's one-line message on stderr, and exit status 2 (bad usage, a failed build)."""
    print("%s: %s" % (tool, msg), file=sys.stderr)
    sys.exit(2)


def user_path(p):
    """A path as the user typed it."""
    return os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY", os.getcwd()), p)


def repo_root():
    """The repository's root, or None outside one."""
    root = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if root:
        return root
    out = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.realpath(__file__)))
    return out.stdout.strip() if out.returncode == 0 else None


def require_root(tool, hint=""):
    """repo_root(), or the tool dies saying it is not in the repository (and `hint`)."""
    root = repo_root()
    if not root:
        die(tool, "not inside the hzfuzz repository (git rev-parse failed)" + hint)
    return root


def bazel_bin(tool, cwd, targets, log, output_base=None, config=None):
    """Builds `targets` in `cwd` (in another output base and with --config=config, if given),
    its output in `log`, and returns that build's bazel-bin; the tool dies naming the log if
    the build fails. No bazel-* links are made: another output base's would replace the
    workspace's own."""
    pre = ["bazel"] + (["--output_base=" + output_base] if output_base else [])
    cfg = ["--config=" + config] if config else []
    with open(log, "w") as f:
        rc = subprocess.run(pre + ["build", "--symlink_prefix=/"] + cfg + targets, cwd=cwd,
                            stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        die(tool, "bazel build %s failed in %s (log: %s)" % (" ".join(cfg + targets), cwd, log))
    out = subprocess.run(pre + ["info"] + cfg + ["bazel-bin"], cwd=cwd, capture_output=True,
                         text=True).stdout.strip()
    if not out:
        die(tool, "bazel info bazel-bin failed in %s (output base %s)"
            % (cwd, output_base or "the default"))
    return out


def libfuzzer_options(root):
    """fuzz/libfuzzer.options's [libfuzzer] section of the checkout at `root`, as a dict of
    strings: the flags every fuzz target runs with (the file says why each is there)."""
    path = os.path.join(root, "fuzz", "libfuzzer.options")
    cp = configparser.ConfigParser()
    try:
        with open(path) as f:
            cp.read_file(f)
    except (OSError, configparser.Error) as e:
        die(os.path.basename(sys.argv[0]), "cannot read the libFuzzer flags %s: %s" % (path, e))
    if not cp.has_section("libfuzzer") or not cp.items("libfuzzer"):
        die(os.path.basename(sys.argv[0]), "%s has no [libfuzzer] flags" % path)
    return dict(cp.items("libfuzzer"))


def libfuzzer_flags(root):
    """libfuzzer_options(root) as libFuzzer's command-line flags (-max_len=2048, ...)."""
    return ["-%s=%s" % kv for kv in libfuzzer_options(root).items()]
