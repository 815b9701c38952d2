"""An xdist scheduler that keeps every metric test of one case on one worker.

``--dist loadgroup`` silently fails to group with pytest 9.2 + xdist 3.8, so talkbench brings its own:
benchmark tests (under a ``benchmarks`` folder) are grouped by their case id, other tests stay apart.
A pyiqa test's id is ``test_iqa[<metric>-<case>]``: the enabled metric names are stripped to find the case.
"""

from __future__ import annotations

import re

from xdist.scheduler import LoadScopeScheduling

_CASE = re.compile(r"(^|/)benchmarks/[^:]*::[^\[]+\[(?P<case>.+)\]$")


def case_key(nodeid: str, iqa_metrics: list[str]) -> str | None:
    """The case id of a benchmark test's node id, or None for another test."""
    match = _CASE.search(nodeid)
    if not match:
        return None
    case = match.group("case")
    if "::test_iqa[" in nodeid:
        metric = max((m for m in iqa_metrics if case.startswith(f"{m}-")), key=len, default="")
        case = case[len(metric) + 1 :] if metric else case
    return case


class CaseScheduling(LoadScopeScheduling):
    def _split_scope(self, nodeid: str) -> str:
        from .plugin import STATE

        iqa = self.config.stash[STATE].iqa_metrics() if "::test_iqa[" in nodeid else []
        case = case_key(nodeid, iqa)
        return nodeid if case is None else f"talkbench-case::{case}"
