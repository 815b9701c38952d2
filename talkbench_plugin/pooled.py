"""The per-group values pooled from a run's records (FID's and FVD's moments), wherever the records come
together: the pytest controller, ``talkbench evaluate``, ``talkbench merge``."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

# metric -> (module, function) that gives each of a run's records its group's pooled value
POOLED = {"fid": ("fid.groups", "add_pooled_fid"), "fvd": ("fvd.groups", "add_pooled_fvd")}


def add_group_pools(records: Sequence[dict[str, Any]]) -> None:
    """Pool each pooled metric that the records hold (reads their moments files; imported only when needed)."""
    for metric, (module, function) in POOLED.items():
        if any(metric in r.get("metrics", {}) for r in records):
            getattr(importlib.import_module(f".{module}", __package__), function)(records)
