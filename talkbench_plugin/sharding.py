"""``--talkbench-shard I/N``: the cases split into N shards of about equal expected cost.

A case costs about its compared frames times the metrics computed on them; frames come from the
reference's header (its evaluated segment), so every shard of a run computes the same split. Cases go,
costliest first, to the shard with the least cost so far (longest-processing-time); ties keep the
manifest's order. Each shard then runs its cases in the manifest's order.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import TalkbenchError
from .manifest import Case


def expected_frames(case: Case) -> float:
    """Frames of the case's evaluated reference segment (1 when the header does not say)."""
    from .media.video import probe

    try:
        info = probe(case.speaker.reference)
    except TalkbenchError:
        return 1.0  # the case's own test reports the problem
    duration = info.duration if info.duration else (info.frames or 0) / info.fps if info.fps else 0.0
    segment = case.pipeline.evaluate or case.speaker.segment
    end = min(duration, segment.end) if segment.end is not None else duration
    return max(1.0, (end - segment.start) * (info.fps or 25.0))


def shard_cases(cases: Sequence[Case], index: int, count: int, metrics: int) -> list[Case]:
    """Shard ``index`` of ``count`` (1-based) of ``cases``, balanced by frames x ``metrics``."""
    frames: dict[object, float] = {}
    costs = []
    for case in cases:
        key = case.speaker.reference
        if key not in frames:
            frames[key] = expected_frames(case)
        costs.append(frames[key] * max(1, metrics))
    loads = [0.0] * count
    mine = set()
    for i in sorted(range(len(cases)), key=lambda i: (-costs[i], i)):
        target = min(range(count), key=lambda k: (loads[k], k))
        loads[target] += costs[i]
        if target == index - 1:
            mine.add(i)
    return [case for i, case in enumerate(cases) if i in mine]


