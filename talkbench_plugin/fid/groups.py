"""Group FID: the FID of a (language, pipeline) group's pooled frames, beside the mean of its per-video FIDs.

Each case's FID record names its generated and reference moments files; a group's FID pools the
generated moments of its cases and the reference moments of its speakers (each file once) by summing
them, so it is the FID of all the group's frames at once, not an average. Runs on the controller at the
end of a run; a group with one case reuses that case's FID (the same moments give the same number).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from talkbench_plugin.errors import TalkbenchError
from talkbench_plugin.fid.cache import read
from talkbench_plugin.fid.frechet import fid
from talkbench_plugin.fid.moments import Moments

KEY = "fid_pooled"  # the record field each member of a group gets


def pool(paths: Sequence[str]) -> Moments:
    """The sum of the moments files ``paths``: the moments of all their samples at once."""
    total = read(paths[0])
    for path in paths[1:]:
        total = total + read(path)
    return total


def pooled_fid(members: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The pooled FID of one group's records: {"value", "cases", "frames", "warnings"} or {"value": None, "error"}."""
    entries = [r["metrics"]["fid"] for r in members]
    if len(entries) == 1:
        details = entries[0]["details"]
        return {"value": entries[0]["value"], "cases": 1, "frames": details["frames"],
                "warnings": details.get("warnings", [])}
    try:
        generated, reference = moments_files(entries, "")
        gen, ref = pool(generated).compute("pooled generated frames"), pool(reference).compute("pooled reference")
        result = fid(gen, ref)
    except TalkbenchError as exc:
        return {"value": None, "error": str(exc)}
    return {"value": result.value, "cases": len(entries),
            "frames": {"generated": result.n_generated, "reference": result.n_reference}, "warnings": result.warnings}


def moments_files(entries: Sequence[dict[str, Any]], label: str) -> tuple[list[str], list[str]]:
    """A group's metric entries' moments files: every case's generated side, each speaker's reference once."""
    generated = [e["details"]["moments"]["generated"] for e in entries]
    if None in generated:
        raise TalkbenchError(f"the generated {label}moments were not kept (no run directory)")
    return generated, list(dict.fromkeys(e["details"]["moments"]["reference"] for e in entries))


def add_pooled(records: Sequence[dict[str, Any]], metric: str, key: str,
               pooled: Callable[[Sequence[dict[str, Any]]], dict[str, Any]]) -> None:
    """Give each record with a ``metric`` value its (language, pipeline) group's ``pooled(members)``, under ``key``."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        if not r.get("error") and r.get("metrics", {}).get(metric, {}).get("value") is not None:
            groups.setdefault((r["language"], r["pipeline"]), []).append(r)
    for members in groups.values():
        result = pooled(members)
        for r in members:
            r[key] = result


def add_pooled_fid(records: Sequence[dict[str, Any]]) -> None:
    """Give each record with a FID value its (language, pipeline) group's pooled FID, under ``KEY``."""
    add_pooled(records, "fid", KEY, pooled_fid)
