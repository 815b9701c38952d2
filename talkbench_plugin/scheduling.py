"""An xdist scheduler that keeps every metric test of one case on one worker.

``--dist loadgroup`` silently fails to group with pytest 9.2 + xdist 3.8, so talkbench brings its own:
benchmark tests (under a ``benchmarks`` folder) are grouped by their case id, other tests stay apart.
A pyiqa test's id is ``test_iqa[<metric>-<case>]``: the enabled metric names are stripped to find the case.

A worker that dies mid-case (killed for memory, a pipeline command that takes it down) loses that case:
its tests fail naming the worker, and the case is not handed to another worker (xdist's LoadScope puts
it back, and a case that kills its worker then kills every replacement, or the run never ends).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
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

    def remove_node(self, node: Any) -> str | None:
        """Forget ``node`` (finished or crashed). After a crash: the first unfinished test is the one it
        crashed in (returned: xdist reports it), the case's other unfinished tests fail here, and the
        node's other unfinished cases go back to the queue for the remaining workers."""
        workload = self.assigned_work.pop(node)
        pending = [(scope, nodeid) for scope, unit in workload.items() for nodeid, done in unit.items() if not done]
        if not pending:
            return None
        lost, crashitem = pending[0]
        for scope, nodeid in pending[1:]:
            if scope == lost:
                self._fail_lost(nodeid, node, crashitem)
        for scope, unit in workload.items():
            if scope != lost and not all(unit.values()):
                self.workqueue[scope] = unit
        for other in self.assigned_work:
            self._reschedule(other)
        return crashitem

    def _fail_lost(self, nodeid: str, node: Any, crashitem: str) -> None:
        """Report ``nodeid`` failed: its case was lost with the worker that crashed in ``crashitem``."""
        path = nodeid.split("::")[0]
        report = pytest.TestReport(
            nodeid=nodeid, location=(path, None, path), keywords={}, outcome="failed", when="???",
            longrepr=f"worker {node.gateway.id!r} crashed while running {crashitem!r} of the same case; "
                     "this test of the case was not run (look for an out-of-memory kill or a pipeline command "
                     "that ends its parent)",
        )
        report.node = node
        self.config.hook.pytest_runtest_logreport(report=report)
