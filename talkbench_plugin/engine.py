"""Evaluate one case: one streaming decode of both videos feeding every enabled metric."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import av

from . import __version__
from .cache import file_sha256
from .datasets import materialize
from .errors import MediaError, TalkbenchError
from .manifest import Case
from .media.align import Alignment, aligned_batches
from .media.video import iter_frames, prefetch, probe
from .metrics import make_metric
from .timing import StageTimer


def evaluate_case(
    case: Case, metrics: Sequence[str], cache: Path, *, convention: str = "ffmpeg", batch_size: int = 32
) -> dict[str, Any]:
    """Compute ``metrics`` for ``case`` and return its result record (plain, JSON-ready data).

    Calibration outputs are derived into ``cache`` first. Input problems do not raise: they end up in
    the record's ``error`` with the file named.
    """
    record: dict[str, Any] = {
        "case": case.id,
        "speaker": case.speaker.id,
        "pipeline": case.pipeline.name,
        "language": case.speaker.language,
        "mode": case.pipeline.mode,
        "segment": case.segment.to_dict(),
        "offset": case.offset,
        "talkbench": __version__,
        "metrics": {},
        "error": None,
    }
    timer = StageTimer()
    start = time.perf_counter()
    try:
        with timer.stage("prepare"):
            case = materialize(case, cache)
        with timer.stage("probe"):
            ref = probe(case.speaker.reference)
            gen = probe(case.generated)
        record["inputs"] = {
            "reference": {**ref.to_dict(), "sha256": file_sha256(ref.path)},
            "generated": {**gen.to_dict(), "sha256": file_sha256(gen.path)},
        }
        engines = {name: make_metric(name, convention) for name in metrics}
        alignment = Alignment()
        with closing(prefetch(iter_frames(ref.path, ref))) as ref_frames, \
                closing(prefetch(iter_frames(gen.path, gen))) as gen_frames:
            batches = aligned_batches(
                timer.timed_iter("decode reference", ref_frames),
                timer.timed_iter("decode generated", gen_frames),
                ref, gen, alignment, segment=case.segment, offset=case.offset, batch_size=batch_size,
            )
            for pairs in timer.timed_iter("align", batches):
                for name, engine in engines.items():
                    with timer.stage(name):
                        engine.update(pairs)
        record["alignment"] = alignment.to_dict()
        if alignment.compared == 0:
            raise MediaError(case.generated, f"no frame overlaps the reference's evaluated segment "
                             f"{case.segment.to_dict()} (offset {case.offset} s)")
        for name, engine in engines.items():
            with timer.stage(name):
                value = engine.compute()
            record["metrics"][name] = {
                "value": float(value.value),
                "unit": engine.unit,
                "higher_is_better": engine.higher_is_better,
                "protocol": engine.protocol(),
                "per_frame": [float(v) for v in value.per_frame],
                "details": value.details,
            }
    except TalkbenchError as exc:
        record["error"] = str(exc)
    except av.FFmpegError as exc:
        record["error"] = f"{case.generated} vs {case.speaker.reference}: FFmpeg failed: {exc}"
    total = time.perf_counter() - start
    _stage_times(timer, total, record)
    return record


def _stage_times(timer: StageTimer, total: float, record: dict[str, Any]) -> None:
    """Stage timings exclusive of each other. Videos decode in background threads, so 'decode …' is
    the time spent waiting for frames, and 'align' what the alignment itself took on top of it."""
    seconds = dict(timer.seconds)
    if "align" in seconds:
        decode = seconds.get("decode reference", 0.0) + seconds.get("decode generated", 0.0)
        seconds["align"] = max(0.0, seconds["align"] - decode)
    seconds["total"] = total
    record["timings"] = seconds
    frames = record.get("alignment", {}).get("compared", 0)
    ref = record.get("inputs", {}).get("reference", {})
    fps = ref.get("fps") or 0.0
    clip = frames / fps if fps else 0.0
    record["throughput"] = {
        "frames_per_s": frames / total if total else 0.0,
        "rtf": total / clip if clip else None,
    }
