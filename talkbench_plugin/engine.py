"""Evaluate one case: one streaming decode of both videos feeding every enabled metric."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

import av

from . import __version__
from .cache import file_sha256
from .datasets import materialize
from .errors import MediaError, TalkbenchError
from .manifest import Case
from .media.align import Alignment, Upright, aligned_batches
from .media.video import VideoInfo, iter_frames, prefetch, probe
from .metrics import (
    CaseMedia,
    Metric,
    StreamMetric,
    family_of,
    family_options,
    make_metric,
    make_stream_metric,
)
from .progress import ProgressFn
from .timing import StageTimer

SIDES = ("reference", "generated")


def evaluate_case(
    case: Case, metrics: Sequence[str], cache: Path, *, convention: str = "ffmpeg", batch_size: int = 32,
    options: Mapping[str, Any] | None = None, device: str = "cpu", progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Compute ``metrics`` for ``case`` and return its result record (plain, JSON-ready data).

    Calibration outputs are derived into ``cache`` first, a command pipeline's output is generated
    (on ``device``) when missing or stale. ``options`` holds each stream metric
    family's settings (e.g. ``{"sync": SyncOptions(...)}``). Input problems do not raise: a problem
    with the videos ends up in the record's ``error``, one that only a metric family has (no face, no
    audio, no weights) in that family's metrics' ``error``, with the file named. ``progress`` is told
    the stage and the frames compared so far (progress.py).
    """
    progress = progress or _quiet
    record = case_record(case)
    timer = StageTimer()
    start = time.perf_counter()
    try:
        progress("prepare", 0, None)
        with timer.stage("prepare"):
            case, generation = materialize(case, cache, device)
        if generation is not None:
            record["generation"] = generation
        with timer.stage("probe"):
            ref = probe(case.speaker.reference)
            gen = probe(case.generated)
        record["inputs"] = {
            "reference": {**ref.to_dict(), "sha256": file_sha256(ref.path)},
            "generated": {**gen.to_dict(), "sha256": file_sha256(gen.path)},
        }
        pairs = _pair_metrics(metrics, convention, options, record, case, cache)
        streams = _stream_metrics(metrics, CaseMedia(case, ref, gen, cache), options or {}, timer, record)
        failed: dict[str, str] = {}  # stream families that failed on a frame: family -> error
        progress("compare", 0, _expected_frames(case, ref))
        alignment = _decode(case, ref, gen, pairs, streams, failed, timer, batch_size, progress, record)
        if alignment is not None:
            record["alignment"] = alignment.to_dict()
            if alignment.compared == 0:
                raise MediaError(case.generated, f"no frame overlaps the reference's evaluated segment "
                                 f"{case.segment.to_dict()} (offset {case.offset} s)")
            _require_coverage(case, alignment)
        for name, engine in pairs.items():
            progress(name, 0, None)
            if name in record["metrics"]:  # failed on a batch
                continue
            try:
                with timer.stage(name):
                    value = engine.compute()
                record["metrics"][name] = _entry(value, engine.unit, engine.higher_is_better, engine.protocol(),
                                                 timer.seconds[name])
            except Exception as exc:  # noqa: BLE001 - this metric's problem (e.g. a pyiqa model's), not the case's
                record["metrics"][name] = {"value": None, "error": metric_error(name, exc)}
        for family, engine in streams.items():
            progress(family, 0, None)
            if family in failed:
                _family_error(family, metrics, failed[family], record)
            else:
                _stream_results(family, engine, metrics, timer, record)
        record["metrics"] = {name: record["metrics"][name] for name in metrics if name in record["metrics"]}
    except TalkbenchError as exc:
        record["error"] = str(exc)
    except av.FFmpegError as exc:
        record["error"] = f"{case.generated} vs {case.speaker.reference}: FFmpeg failed: {exc}"
    spent = record.get("generation", {}).get("spent_s", 0.0)  # generating is timed in record["generation"]
    timer.seconds["prepare"] = timer.seconds.get("prepare", 0.0) - spent
    total = time.perf_counter() - start - spent
    _stage_times(timer, total, record)
    return printable(record)


def printable(value: Any) -> Any:
    """``value`` with every string safe to encode as UTF-8: a file name with a byte that is not UTF-8
    (held by Python as a lone surrogate) is written with that byte escaped (``\\xff``), so that records,
    reports and xdist's messages carry it as text."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return value
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable(v) for v in value]
    return value


def case_record(case: Case, error: str | None = None) -> dict[str, Any]:
    """A case's record before any metric: what it is, and ``error`` when it could not be evaluated."""
    return {
        "case": case.id,
        "speaker": case.speaker.id,
        "pipeline": case.pipeline.name,
        "language": case.speaker.language,
        "mode": case.pipeline.mode,
        "segment": case.segment.to_dict(),
        "offset": case.offset,
        "talkbench": __version__,
        "metrics": {},
        "error": error,
    }


def _require_coverage(case: Case, alignment: Alignment) -> None:
    """A generated video that shows too little of the evaluated segment fails its case: its metrics would
    describe a fraction of the clip (``pipelines.<name>.min_coverage``, default manifest.MIN_COVERAGE)."""
    total = alignment.compared + alignment.unmatched
    if total and alignment.compared < case.pipeline.min_coverage * total:
        raise MediaError(case.generated, f"covers only {alignment.compared} of {total} reference frames of the "
                         f"evaluated segment ({alignment.compared / total:.0%}), below the pipeline's minimum of "
                         f"{case.pipeline.min_coverage:.0%}; regenerate it for the whole segment, or set "
                         f"pipelines.{case.pipeline.name}.min_coverage in the manifest")


def metric_error(name: str, exc: BaseException) -> str:
    """One line for a metric that could not be built or computed; the others of the case go on."""
    if isinstance(exc, TalkbenchError):
        return str(exc)
    reason = " ".join(str(exc).split())[:300] or type(exc).__name__
    return f"{name} could not be computed ({type(exc).__name__}: {reason})"


def _pair_metrics(metrics: Sequence[str], convention: str, options: Mapping[str, Any] | None,
                  record: dict[str, Any], case: Case, cache: Path) -> dict[str, Metric]:
    """One frame-pair metric per name; one that cannot be built gets its error instead."""
    pairs: dict[str, Metric] = {}
    for name in metrics:
        if family_of(name) is None:
            try:
                pairs[name] = make_metric(name, convention, options, case, cache)
            except Exception as exc:  # noqa: BLE001 - isolated: the case's other metrics go on
                record["metrics"][name] = {"value": None, "error": metric_error(name, exc)}
    return pairs


def _stream_metrics(metrics: Sequence[str], media: CaseMedia, options: Mapping[str, Any], timer: StageTimer,
                    record: dict[str, Any]) -> dict[str, StreamMetric]:
    """One stream metric per family asked for; a family that cannot start (weights, settings) gets its
    metrics' errors instead."""
    streams: dict[str, StreamMetric] = {}
    for name in metrics:
        family = family_of(name)
        if family is None or family in streams or name in record["metrics"]:
            continue
        try:
            with timer.stage(family):
                streams[family] = make_stream_metric(family, media, family_options(options, family))
        except Exception as exc:  # noqa: BLE001 - isolated: the case's other metrics go on
            _family_error(family, metrics, metric_error(family, exc), record)
    return streams


def _decode(case: Case, ref: VideoInfo, gen: VideoInfo, pairs: Mapping[str, Metric],
            streams: Mapping[str, StreamMetric], failed: dict[str, str], timer: StageTimer,
            batch_size: int, progress: ProgressFn, record: dict[str, Any]) -> Alignment | None:
    """One decode of each video that some metric needs: aligned pairs for the frame-pair metrics, each
    side's own frames for the stream metrics (also past what the pairs needed). The alignment, if any;
    stream families that fail on a frame go into ``failed`` and are fed no more."""
    consumers = {side: {f: m for f, m in streams.items() if side in m.sides} for side in SIDES}
    with ExitStack() as stack:
        frames: dict[str, Iterator[tuple[float, av.VideoFrame]]] = {}
        for side, info in zip(SIDES, (ref, gen)):
            if pairs or consumers[side]:
                decoded = stack.enter_context(closing(prefetch(iter_frames(info.path, info))))
                frames[side] = _tap(side, timer.timed_iter(f"decode {side}", decoded), consumers[side], failed,
                                    timer)
        alignment = None
        if pairs:
            alignment = Alignment()
            batch_size = max(m.frames_per_update or batch_size for m in pairs.values())
            batches = aligned_batches(frames["reference"], frames["generated"], ref, gen, alignment,
                                      segment=case.segment, offset=case.offset, batch_size=batch_size)
            total = _expected_frames(case, ref)
            for batch in timer.timed_iter("align", batches):
                for name, engine in pairs.items():
                    if name in record["metrics"]:
                        continue
                    try:
                        with timer.stage(name):
                            engine.update(batch)
                    except Exception as exc:  # noqa: BLE001 - isolated: the case's other metrics go on
                        record["metrics"][name] = {"value": None, "error": metric_error(name, exc)}
                progress("compare", alignment.compared, total)
        for side, items in frames.items():
            while consumers[side] and next(items, None) is not None:
                pass
    return alignment


def _quiet(stage: str, done: int, total: int | None) -> None:
    """No progress display."""


def _expected_frames(case: Case, ref: VideoInfo) -> int | None:
    """About how many reference frames the evaluated segment holds (for progress), or None if unknown."""
    if not ref.fps or ref.duration is None:
        return None
    end = min(ref.duration, case.segment.end) if case.segment.end is not None else ref.duration
    return max(0, round((end - case.segment.start) * ref.fps))


def _tap(side: str, frames: Iterator[tuple[float, av.VideoFrame]], consumers: dict[str, StreamMetric],
         failed: dict[str, str], timer: StageTimer) -> Iterator[tuple[float, av.VideoFrame]]:
    """Pass ``frames`` on, showing each to the stream metrics of ``side`` until they want no more (turned
    upright first, as the aligned pairs are, where the display matrix says so)."""
    upright = Upright()
    for t, stored in frames:
        frame = upright(stored) if consumers else stored
        for family, metric in list(consumers.items()):
            if family in failed:
                del consumers[family]
                continue
            try:
                with timer.stage(family):
                    wanted = metric.update_frame(side, t, frame)
            except Exception as exc:  # noqa: BLE001 - isolated: the case's other metrics go on
                failed[family], wanted = metric_error(family, exc), False
            if not wanted:
                del consumers[family]
        yield t, stored


def _stream_results(family: str, engine: StreamMetric, metrics: Sequence[str], timer: StageTimer,
                    record: dict[str, Any]) -> None:
    try:
        with timer.stage(family):
            values = engine.compute()
    except Exception as exc:  # noqa: BLE001 - isolated: the case's other metrics go on
        _family_error(family, metrics, metric_error(family, exc), record)
        return
    for stage, seconds in engine.timings.items():  # the family's own sub-stages, out of its time
        timer.seconds[f"{family}: {stage}"] = seconds
        timer.seconds[family] -= seconds
    spent = sum(v for k, v in timer.seconds.items() if k == family or k.startswith(f"{family}: "))
    for name in metrics:
        if name in values:
            unit, higher = engine.kinds[name]
            try:
                record["metrics"][name] = _entry(values[name], unit, higher, engine.protocol(), spent)
            except TalkbenchError as exc:
                record["metrics"][name] = {"value": None, "error": str(exc)}


def _family_error(family: str, metrics: Sequence[str], error: str, record: dict[str, Any]) -> None:
    for name in metrics:
        if family_of(name) == family:
            record["metrics"][name] = {"value": None, "error": error}


def _entry(value: Any, unit: str, higher_is_better: bool | None, protocol: dict[str, Any],
           seconds: float) -> dict[str, Any]:
    """A metric's record entry; a NaN summary is an error, never a value (every bound would pass it)."""
    if math.isnan(float(value.value)):
        raise TalkbenchError(f"{protocol.get('filter') or protocol.get('function') or 'the metric'} gave NaN: "
                             "the frames are too small or too few for it (see the metric's protocol)")
    return {
        "value": float(value.value),
        "unit": unit,
        "higher_is_better": higher_is_better,
        "protocol": protocol,
        "seconds": seconds,
        "per_frame": [float(v) for v in value.per_frame],
        "details": value.details,
    }


def _stage_times(timer: StageTimer, total: float, record: dict[str, Any]) -> None:
    """Stage timings, exclusive of each other. Videos decode in background threads, so 'decode …' is
    the time spent waiting for frames."""
    seconds = dict(timer.seconds)
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
