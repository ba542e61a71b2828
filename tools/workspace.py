"""Paths for the tools run both as `bazel run //tools:<tool>` and from a checkout.

`bazel run` starts a tool inside its runfiles tree, so a path the user typed is relative
to BUILD_WORKING_DIRECTORY, and the repository is BUILD_WORKSPACE_DIRECTORY; run directly,
both are the current directory and git's top level.
"""
import os
import subprocess


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
