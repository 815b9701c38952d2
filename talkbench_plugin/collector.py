"""The controller's view of a run: merges per-test payloads into case records, checks completeness."""

from __future__ import annotations

import re
from typing import Any

_PARAM = re.compile(r"\[(.+)\]$")


class ResultCollector:
    """Gathers ``report.talkbench`` payloads (one per metric test) into one record per case."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.expected: list[str] = []  # collected node ids, in collection order
        self.finished: set[str] = set()

    def add_payload(self, payload: dict[str, Any]) -> None:
        record = payload["record"]
        merged = self.records.setdefault(record["case"], {**record, "metrics": {}})
        merged["metrics"].update(record.get("metrics", {}))

    def expect(self, nodeids: list[str]) -> None:
        """Every collected test must report back; the first list given (e.g. one xdist worker's) counts."""
        if not self.expected:
            self.expected = list(nodeids)

    def finish(self, nodeid: str) -> None:
        self.finished.add(nodeid)

    def missing(self) -> list[str]:
        """Collected tests whose reports never arrived (e.g. lost by a serialisation error)."""
        return sorted(set(self.expected) - self.finished)

    def ordered(self) -> list[dict[str, Any]]:
        """The case records in collection order (the manifest's), then any others by id."""
        order: dict[str, int] = {}
        for nodeid in self.expected:
            match = _PARAM.search(nodeid)
            if match:
                order.setdefault(match.group(1), len(order))
        return sorted(self.records.values(), key=lambda r: (order.get(r["case"], len(order)), r["case"]))
