"""The controller's view of a run: merges per-test payloads into case records, checks completeness."""

from __future__ import annotations

from typing import Any


class ResultCollector:
    """Gathers ``report.talkbench`` payloads (one per metric test) into one record per case."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.expected: set[str] = set()
        self.finished: set[str] = set()

    def add_payload(self, payload: dict[str, Any]) -> None:
        record = payload["record"]
        merged = self.records.setdefault(record["case"], {**record, "metrics": {}})
        merged["metrics"].update(record.get("metrics", {}))

    def expect(self, nodeids: list[str]) -> None:
        self.expected.update(nodeids)

    def finish(self, nodeid: str) -> None:
        self.finished.add(nodeid)

    def missing(self) -> list[str]:
        """Collected tests whose reports never arrived (e.g. lost by a serialisation error)."""
        return sorted(self.expected - self.finished)

    def ordered(self, case_order: list[str] | None = None) -> list[dict[str, Any]]:
        order = {c: i for i, c in enumerate(case_order or [])}
        return sorted(self.records.values(), key=lambda r: (order.get(r["case"], len(order)), r["case"]))
