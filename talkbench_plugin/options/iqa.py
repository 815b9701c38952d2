"""Options of pyiqa's metrics (``metrics.iqa``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IqaOptions:
    weights: str | None = None  # weights directory (pyiqa's files go under its pyiqa/)
    device: str = "cpu"
    batch: int = 8
