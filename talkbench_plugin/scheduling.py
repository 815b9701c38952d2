"""An xdist scheduler that keeps every metric test of one case on one worker.

``--dist loadgroup`` silently fails to group with pytest 9.2 + xdist 3.8, so talkbench brings its own:
benchmark tests (under a ``benchmarks`` folder) are grouped by their case id, other tests stay apart.
"""

from __future__ import annotations

import re

from xdist.scheduler import LoadScopeScheduling

_CASE = re.compile(r"(^|/)benchmarks/[^:]*::[^\[]+\[(?P<case>.+)\]$")


class CaseScheduling(LoadScopeScheduling):
    def _split_scope(self, nodeid: str) -> str:
        match = _CASE.search(nodeid)
        return f"talkbench-case::{match.group('case')}" if match else nodeid
