"""SSIM: FFmpeg's own ``ssim`` filter run in-process on the YUV planes (the default convention)."""

from __future__ import annotations

import math
from typing import Any

import av
import numpy as np

from talkbench_plugin.errors import TalkbenchError
from talkbench_plugin.metrics.base import FramePairs, Metric, MetricValue
from talkbench_plugin.metrics.lavfi import PairFilter

WINDOW = 8  # vf_ssim's block size: smaller planes give NaN (4x4) or 0 (1x1), not an SSIM
_LIBAVFILTER = ".".join(map(str, av.library_versions["libavfilter"]))


class FFmpegSSIM(Metric):
    """SSIM from FFmpeg's ``ssim`` filter (libavfilter/vf_ssim.c), run through a PyAV filter graph.

    The filter averages SSIM over overlapping 8x8 blocks (stride 4, unweighted) per plane and weights
    the planes by size into "All". The summary is the mean of per-frame "All", what
    ``ffmpeg -lavfi ssim`` prints as ``All:``. Per-frame values come from the filter's frame metadata,
    which it prints with ``%f`` (6 decimals, so within 5e-7 of the filter's own value).
    """

    name = "ssim"
    higher_is_better = True
    frames_per_update = 1
    unit = ""

    def __init__(self) -> None:
        self._filter: PairFilter | None = None
        self._pix_fmt: str | None = None
        self._all: list[float] = []
        self._planes: dict[str, list[float]] = {}

    def protocol(self) -> dict[str, Any]:
        return {
            "convention": "ffmpeg",
            "filter": "ssim",
            "planes": "yuv",
            "pix_fmt": self._pix_fmt,
            "window": "8x8 blocks, stride 4, unweighted",
            "frame": "plane SSIMs weighted by plane size ('All')",
            "summary": "mean of per-frame All (ffmpeg 'All:')",
            "precision": "per-frame values from filter metadata, '%f'",
            "threads": 1,
            "ffmpeg": av.ffmpeg_version_info,
            "libavfilter": _LIBAVFILTER,
        }

    def update(self, pairs: FramePairs) -> None:
        for ref, gen in zip(pairs.ref, pairs.gen, strict=True):
            if self._filter is None:
                _require_window(ref)
                self._filter = PairFilter("ssim", ref)
                self._pix_fmt = ref.format.name
            self._add(self._filter.push(ref, gen))

    def _add(self, metadata: list[dict[str, str]]) -> None:
        for meta in metadata:
            self._all.append(float(meta["lavfi.ssim.All"]))
            for plane in "YUV":
                if f"lavfi.ssim.{plane}" in meta:
                    self._planes.setdefault(plane.lower(), []).append(float(meta[f"lavfi.ssim.{plane}"]))

    def compute(self) -> MetricValue:
        if self._filter is not None:  # flush: end both inputs and collect what the filter still holds
            self._add(self._filter.close())
            self._filter = None
        if not self._all:
            raise ValueError("FFmpegSSIM.compute() called before any frames were added")
        value = float(np.mean(self._all))
        details: dict[str, Any] = {plane: float(np.mean(v)) for plane, v in self._planes.items()}
        details["db"] = -10 * math.log10(1 - value) if value < 1 else math.inf  # ffmpeg's "All: x (dB)"
        details.update(min=min(self._all), max=max(self._all), frames=len(self._all))
        return MetricValue(value, list(self._all), details)


def _require_window(frame: av.VideoFrame) -> None:
    """FFmpeg's ssim filter on planes smaller than its window gives NaN (4x4) or 0 (1x1): refuse them."""
    small = [f"{p.width}x{p.height}" for p in frame.planes if min(p.width, p.height) < WINDOW]
    if small:
        raise TalkbenchError(f"SSIM cannot be computed on {frame.width}x{frame.height} {frame.format.name} "
                             f"frames: FFmpeg's ssim filter needs every plane at least {WINDOW}x{WINDOW} "
                             f"(its window), this one has {', '.join(small)} planes")
