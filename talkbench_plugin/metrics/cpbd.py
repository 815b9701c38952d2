"""CPBD (cumulative probability of blur detection): no-reference sharpness of the generated frames, as the
``cpbd`` package computes it (SadTalker's table).

Each frame of the generated video inside the evaluated segment (its own timeline shifted by the case's
offset, native size, decode order, each frame once) is scored as ``cpbd.compute`` scores it
(``cpbd_vectorized``: the package's steps on whole arrays, equal to it within 1e-6) on its 8-bit luma as
FFmpeg converts it to ``gray`` (full range): the same bytes ``ffmpeg -i gen.mp4 -pix_fmt gray f%05d.png``
dumps for the package's script (``imread(path, mode='L')``). The summary is the mean over frames; ``stride=K`` scores
every K-th frame only, recorded in the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any, ClassVar

import av
import numpy as np

from ..errors import TalkbenchError
from ..timing import StageTimer
from .base import CaseMedia, MetricValue, StreamMetric, segment_window

BLOCK = 64  # cpbd's block size: a smaller frame has no block and would score 0


@dataclass(frozen=True)
class CpbdOptions:
    """CPBD's named setting: which frames of the segment are scored ("every" or "stride=K")."""

    sampling: str = "every"

    def __post_init__(self) -> None:
        self.stride  # noqa: B018 - validates the text

    @property
    def stride(self) -> int:
        key, _, value = self.sampling.partition("=")
        if key == "every" and not value:
            return 1
        if key == "stride" and value.isdigit() and int(value) >= 1:
            return int(value)
        raise TalkbenchError(f"CPBD sampling {self.sampling!r}: use 'every' or 'stride=K' (K >= 1)")

    def to_dict(self) -> dict[str, Any]:
        return {"sampling": self.sampling}


def luma(frame: av.VideoFrame) -> np.ndarray:
    """The frame's 8-bit full-range luma as swscale converts it to ``gray`` (what ``ffmpeg -pix_fmt gray``
    dumps: limited-range Y is expanded to 0..255)."""
    return frame.to_ndarray(format="gray")


class CpbdMetric(StreamMetric):
    kinds: ClassVar[dict[str, tuple[str, bool | None]]] = {"cpbd": ("", True)}
    sides = frozenset({"generated"})

    def __init__(self, media: CaseMedia, options: CpbdOptions | None = None) -> None:
        from .cpbd_vectorized import compute

        self._compute = compute
        self.media = media
        self.options = options or CpbdOptions()
        self.stride = self.options.stride
        self.start, self.end = segment_window(media, "generated")
        self.timings: dict[str, float] = {}
        self._timer = StageTimer()
        self._seen = 0
        self.values: list[float] = []

    def protocol(self) -> dict[str, Any]:
        return {"implementation": "cpbd.compute's steps vectorized (talkbench metrics/cpbd_vectorized.py), "
                                  f"equal to cpbd-py312 {metadata.version('cpbd-py312')} within 1e-6",
                "input": "8-bit full-range luma (swscale gray, as ffmpeg -pix_fmt gray) of the generated video's own frames, native size",
                "frames": "every frame of the evaluated segment" if self.stride == 1
                else f"every {self.stride}-th frame of the evaluated segment",
                "sampling": self.options.sampling, "summary": "mean over frames"}

    def update_frame(self, side: str, time: float, frame: av.VideoFrame) -> bool:
        if frame.width < BLOCK or frame.height < BLOCK:
            raise TalkbenchError(f"{self.media.generated.path}: CPBD needs frames of at least {BLOCK}x{BLOCK} "
                                 f"(its block size), got {frame.width}x{frame.height}")
        if self.end is not None and time >= self.end - 1e-9:
            return False
        if time >= self.start - 1e-9:
            if self._seen % self.stride == 0:
                with self._timer.stage("cpbd"):
                    self.values.append(float(self._compute(luma(frame))))
            self._seen += 1
        return True

    def compute(self) -> dict[str, MetricValue]:
        self.timings = dict(self._timer.seconds)
        if not self.values:
            raise TalkbenchError(f"{self.media.generated.path}: CPBD: no frame in the evaluated segment to score")
        return {"cpbd": MetricValue(float(np.mean(self.values)), list(self.values), {"frames": len(self.values)})}
