"""SSIM: FFmpeg's own ``ssim`` filter run in-process on the YUV planes (the default convention)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import av
import numpy as np

from talkbench_plugin.metrics.base import FramePairs, Metric, MetricValue

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
    unit = ""

    def __init__(self) -> None:
        self._graph: av.filter.Graph | None = None
        self._sources: tuple[av.filter.FilterContext, av.filter.FilterContext] | None = None
        self._sink: av.filter.FilterContext | None = None
        self._geometry: tuple[int, int, str] | None = None  # width, height, pix_fmt
        self._pts = 0
        self._all: list[float] = []
        self._planes: dict[str, list[float]] = {}

    def protocol(self) -> dict[str, Any]:
        return {
            "convention": "ffmpeg",
            "filter": "ssim",
            "planes": "yuv",
            "pix_fmt": self._geometry[2] if self._geometry else None,
            "window": "8x8 blocks, stride 4, unweighted",
            "frame": "plane SSIMs weighted by plane size ('All')",
            "summary": "mean of per-frame All (ffmpeg 'All:')",
            "precision": "per-frame values from filter metadata, '%f'",
            "threads": 1,
            "ffmpeg": av.ffmpeg_version_info,
            "libavfilter": _LIBAVFILTER,
        }

    def _build(self, frame: av.VideoFrame) -> None:
        self._geometry = (frame.width, frame.height, frame.format.name)
        graph = av.filter.Graph()
        graph.threads = 1  # one metric per xdist worker; also fixes the float summation order
        sources = tuple(
            graph.add_buffer(width=frame.width, height=frame.height, format=frame.format, time_base=Fraction(1, 25))
            for _ in range(2)
        )
        ssim, sink = graph.add("ssim"), graph.add("buffersink")
        sources[0].link_to(ssim, 0, 0)
        sources[1].link_to(ssim, 0, 1)
        ssim.link_to(sink)
        graph.configure()
        self._graph, self._sources, self._sink = graph, sources, sink

    def update(self, pairs: FramePairs) -> None:
        for ref, gen in zip(pairs.ref, pairs.gen, strict=True):
            if self._graph is None:
                self._build(ref)
            for frame in (ref, gen):
                if (frame.width, frame.height, frame.format.name) != self._geometry:
                    raise ValueError(f"frame {frame.width}x{frame.height} {frame.format.name} != {self._geometry}")
            # the filter pairs its inputs by timestamp: give both the same pts, then restore the callers'
            saved = ref.pts, gen.pts
            ref.pts = gen.pts = self._pts
            try:
                self._sources[0].push(ref)
                self._sources[1].push(gen)
            finally:
                ref.pts, gen.pts = saved
            self._pts += 1
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                frame = self._sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            if frame.format.name != self._geometry[2]:
                raise ValueError(f"libavfilter converted {self._geometry[2]} to {frame.format.name} for ssim")
            meta = frame.metadata
            self._all.append(float(meta["lavfi.ssim.All"]))
            for plane in "YUV":
                if f"lavfi.ssim.{plane}" in meta:
                    self._planes.setdefault(plane.lower(), []).append(float(meta[f"lavfi.ssim.{plane}"]))

    def compute(self) -> MetricValue:
        if self._graph is not None:  # flush: end both inputs and collect what the filter still holds
            for source in self._sources:
                source.push(None)
            self._drain()
            self._graph = self._sources = self._sink = None
        if not self._all:
            raise ValueError("FFmpegSSIM.compute() called before any frames were added")
        value = float(np.mean(self._all))
        details: dict[str, Any] = {plane: float(np.mean(v)) for plane, v in self._planes.items()}
        details["db"] = -10 * math.log10(1 - value) if value < 1 else math.inf  # ffmpeg's "All: x (dB)"
        details.update(min=min(self._all), max=max(self._all), frames=len(self._all))
        return MetricValue(value, list(self._all), details)
