"""Group FVD: the FVD of a (language, pipeline) group's pooled clips, beside the mean of its per-video FVDs.

As for FID (``fid.groups``): each case's FVD record names its generated and reference moments files; the
group's FVD sums the generated moments of its cases and the reference moments of its speakers (each file
once), so it is the FVD of all the group's clips at once. Runs on the controller at the end of a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from talkbench_plugin.errors import TalkbenchError
from talkbench_plugin.fid.groups import add_pooled, moments_files, pool
from talkbench_plugin.metrics.fvd import fvd

KEY = "fvd_pooled"  # the record field each member of a group gets


def pooled_fvd(members: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The pooled FVD of one group's records: {"value", "cases", "clips"} or {"value": None, "error"}."""
    entries = [r["metrics"]["fvd"] for r in members]
    if len(entries) == 1:
        return {"value": entries[0]["value"], "cases": 1, "clips": entries[0]["details"]["clips"]}
    try:
        generated, reference = moments_files(entries, "FVD ")
        gen, ref = pool(generated), pool(reference)
    except TalkbenchError as exc:
        return {"value": None, "error": str(exc)}
    return {"value": fvd(gen, ref), "cases": len(entries), "clips": {"generated": gen.count, "reference": ref.count}}


def add_pooled_fvd(records: Sequence[dict[str, Any]]) -> None:
    """Give each record with an FVD value its (language, pipeline) group's pooled FVD, under ``KEY``."""
    add_pooled(records, "fvd", KEY, pooled_fvd)
