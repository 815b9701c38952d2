"""``talkbench run [pytest args]``: the packaged benchmark tests (talkbench_plugin/benchmarks), from any folder.

The same as ``pytest --pyargs talkbench_plugin.benchmarks [args]`` with the current folder as pytest's
rootdir, so ids, reports, ``.pytest_cache`` and relative paths belong to the user's project, not to
site-packages.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

PACKAGE = "talkbench_plugin.benchmarks"


def pytest_args(args: Sequence[str], cwd: str | None = None) -> list[str]:
    """pytest's arguments: the packaged tests (unless ``args`` names test paths itself), rooted at ``cwd``."""
    args = list(args)
    rooted = any(a == "--rootdir" or a.startswith("--rootdir=") for a in args)
    return ["--pyargs", PACKAGE, *([] if rooted else ["--rootdir", cwd or os.getcwd()]), *args]


def run(args: Sequence[str]) -> int:
    """Run pytest on the packaged benchmarks (in a fresh interpreter: this one has imported talkbench_plugin
    already, which pytest would warn it cannot assertion-rewrite); its exit code."""
    import subprocess
    import sys

    return subprocess.call([sys.executable, "-m", "pytest", *pytest_args(args)])
