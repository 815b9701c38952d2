"""An xdist scheduler that keeps every metric test of one case on one worker.

``--dist loadgroup`` silently fails to group with pytest 9.2 + xdist 3.8, so talkbench brings its own:
benchmark tests (under a ``benchmarks`` folder) are grouped by their case id, other tests stay apart.
A pyiqa test's id is ``test_iqa[<metric>-<case>]``: the enabled metric names are stripped to find the case.
"""

from __future__ import annotations

import re

from xdist.scheduler import LoadScopeScheduling

_CASE = re.compile(r"(^|/)benchmarks/[^:]*::[^\[]+\[(?P<case>.+)\]$")


class CaseScheduling(LoadScopeScheduling):
    def _split_scope(self, nodeid: str) -> str:
        match = _CASE.search(nodeid)
        if not match:
            return nodeid
        case = match.group("case")
        if "::test_iqa[" in nodeid:
            from .plugin import STATE

            metric = max((m for m in self.config.stash[STATE].iqa_metrics() if case.startswith(f"{m}-")),
                         key=len, default="")
            case = case[len(metric) + 1 :] if metric else case
        return f"talkbench-case::{case}"
