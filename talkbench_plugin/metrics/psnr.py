"""PSNR as FFmpeg's ``psnr`` filter defines it, on the YUV planes (the default convention)."""

from __future__ import annotations

from typing import Any

import numpy as np

from talkbench_plugin.metrics.base import FramePairs, Metric, MetricValue

PEAK = 255  # 8-bit planes: FFmpeg's max = (1 << depth) - 1, and its average_max rounds to the same


def psnr_from_mse(mse: np.ndarray | float) -> np.ndarray:
    """``10 log10(peak² / mse)``, ``inf`` where the MSE is 0 (as FFmpeg prints it)."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(PEAK**2 / np.asarray(mse, dtype=np.float64))


def _sse(a: np.ndarray, b: np.ndarray) -> int:
    """Exact integer sum of squared differences of two uint8 planes."""
    diff = np.subtract(a, b, dtype=np.int16)
    sq = np.abs(diff, out=diff).view(np.uint16)  # |d| <= 255, so d² fits in uint16
    np.square(sq, out=sq)
    return int(sq.sum(axis=1, dtype=np.uint32).sum(dtype=np.uint64))  # a row fits in uint32 below 66k wide


class FFmpegPSNR(Metric):
    """PSNR exactly as FFmpeg's ``psnr`` filter defines it (libavfilter/vf_psnr.c).

    Per plane, MSE = integer SSE / plane pixels; a frame's MSE is the plane MSEs weighted by each
    plane's share of the samples (4:1:1 for 4:2:0). The summary is the PSNR of the frames' mean MSE,
    what ``ffmpeg -lavfi psnr`` prints as ``average:``; ``y``/``u``/``v`` pool each plane the same way.
    """

    name = "psnr"
    higher_is_better = True
    unit = "dB"

    def __init__(self) -> None:
        self._pix_fmt: str | None = None
        self._weights: np.ndarray | None = None
        self._mse: list[np.ndarray] = []  # one (frames, planes) array per batch

    def protocol(self) -> dict[str, Any]:
        return {
            "convention": "ffmpeg",
            "filter": "psnr",
            "planes": "yuv",
            "pix_fmt": self._pix_fmt,
            "peak": PEAK,
            "frame_mse": "plane MSEs weighted by plane size",
            "summary": "PSNR of the mean frame MSE (ffmpeg 'average:')",
            "implementation": "numpy port of libavfilter/vf_psnr.c, exact integer SSE",
        }

    def update(self, pairs: FramePairs) -> None:
        if not len(pairs):
            return
        self._check_format(pairs)
        ref, gen = pairs.planes("ref"), pairs.planes("gen")
        # frame by frame: one frame's planes stay in cache, which is ~2.5x faster than whole-batch arrays
        mse = np.array(
            [[_sse(a, b) / a.size for a, b in zip(r, g, strict=True)] for r, g in zip(ref, gen, strict=True)]
        )
        if self._weights is None:
            sizes = np.array([plane.size for plane in ref[0]], dtype=np.float64)
            self._weights = sizes / sizes.sum()
        self._mse.append(mse)

    def _check_format(self, pairs: FramePairs) -> None:
        fmt = pairs.ref[0].format
        if any(comp.bits != 8 for comp in fmt.components):
            raise ValueError(f"FFmpegPSNR needs 8-bit planes, got {fmt.name}")
        if pairs.gen[0].format.name != fmt.name or self._pix_fmt not in (None, fmt.name):
            raise ValueError(f"mixed pixel formats: {self._pix_fmt}, {fmt.name}, {pairs.gen[0].format.name}")
        self._pix_fmt = fmt.name

    def compute(self) -> MetricValue:
        if not self._mse:
            raise ValueError("FFmpegPSNR.compute() called before any frames were added")
        plane_mse = np.concatenate(self._mse)
        frame_mse = plane_mse @ self._weights
        per_frame = psnr_from_mse(frame_mse)
        details: dict[str, Any] = {plane: float(psnr_from_mse(m)) for plane, m in zip("yuva", plane_mse.mean(axis=0))}
        details.update(
            min=float(psnr_from_mse(frame_mse.max())),
            max=float(psnr_from_mse(frame_mse.min())),
            # what ffmpeg-quality-metrics reports as its "average": the mean of per-frame PSNR
            mean_of_frames=float(per_frame.mean()),
            frames=len(frame_mse),
        )
        return MetricValue(float(psnr_from_mse(frame_mse.mean())), per_frame.tolist(), details)
