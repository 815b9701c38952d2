"""The interface every metric implements: a small stateful class fed aligned frame batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import av
import numpy as np

if TYPE_CHECKING:
    from ..manifest import Case
    from ..media.video import VideoInfo


def frame_planes(frame: av.VideoFrame) -> tuple[np.ndarray, ...]:
    """The frame's planes as 2-D uint8 arrays, without the line padding (works for odd sizes)."""
    planes = []
    for plane in frame.planes:
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        planes.append(rows[:, : plane.width])
    return tuple(planes)


@dataclass
class FramePairs:
    """A batch of aligned frames: ``ref[i]`` and ``gen[i]`` show the same instant.

    Both sides have the reference's size and pixel format (8-bit planar YUV), so metrics that follow
    FFmpeg's definitions can use the planes as they are; ``rgb`` converts with swscale when asked.
    """

    ref: list[av.VideoFrame]
    gen: list[av.VideoFrame]
    times: list[float]  # seconds on the reference timeline
    shared: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)  # work several metrics use

    def __len__(self) -> int:
        return len(self.ref)

    def planes(self, side: str) -> list[tuple[np.ndarray, ...]]:
        return [frame_planes(f) for f in getattr(self, side)]

    @cached_property
    def ref_rgb(self) -> np.ndarray:
        """Reference frames as an (N, H, W, 3) uint8 array."""
        return np.stack([f.to_ndarray(format="rgb24") for f in self.ref])

    @cached_property
    def gen_rgb(self) -> np.ndarray:
        """Generated frames as an (N, H, W, 3) uint8 array."""
        return np.stack([f.to_ndarray(format="rgb24") for f in self.gen])


@dataclass
class MetricValue:
    """What a metric computes for one case: the summary value, its per-frame series, and details."""

    value: float
    per_frame: list[float] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


class Metric:
    """One metric for one case: ``update`` with frame batches, then ``compute`` once.

    Subclasses set ``name``, ``higher_is_better`` and ``protocol`` (the settings that produced the
    number, recorded with every result).
    """

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]
    unit: ClassVar[str] = ""
    # frames per ``update`` it wants: None for the run's batch size (models), 1 for a metric that takes
    # frames one by one (FFmpeg's filters), so that no batch of frames is held for it
    frames_per_update: ClassVar[int | None] = None

    def protocol(self) -> dict[str, Any]:
        raise NotImplementedError

    def update(self, pairs: FramePairs) -> None:
        raise NotImplementedError

    def compute(self) -> MetricValue:
        raise NotImplementedError


@dataclass(frozen=True)
class CaseMedia:
    """What a stream metric is told about its case: the case (outputs in place) and both headers."""

    case: Case
    reference: VideoInfo
    generated: VideoInfo
    cache: Path


def segment_window(media: CaseMedia, side: str) -> tuple[float, float | None]:
    """The evaluated segment on ``side``'s own timeline: (start, end or None for the video's end); a generated
    video longer than the reference is read up to the reference's end."""
    shift = media.case.offset if side == "generated" else 0.0
    segment = media.case.segment
    end = segment.end if segment.end is not None or side == "reference" else media.reference.duration
    return segment.start - shift, None if end is None else end - shift


class StreamMetric:
    """A metric family fed each video's own frames in decode order rather than aligned pairs (lip sync
    at 25 fps from the generated video, FID from each side's frames). One computation can give several
    named values; ``kinds`` maps each name to (unit, higher_is_better), None when neither direction is
    better. ``sides`` says which videos it needs ("reference", "generated").
    """

    kinds: ClassVar[dict[str, tuple[str, bool | None]]]
    sides: frozenset[str]
    timings: dict[str, float]  # seconds of its own sub-stages (detection, model forward, ...)

    def protocol(self) -> dict[str, Any]:
        raise NotImplementedError

    def update_frame(self, side: str, time: float, frame: av.VideoFrame) -> bool:
        """Take the next decoded frame of ``side``; return False once no more frames of it are needed."""
        raise NotImplementedError

    def compute(self) -> dict[str, MetricValue]:
        raise NotImplementedError
