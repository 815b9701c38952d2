"""PSNR as FFmpeg's ``psnr`` filter computes it, on the YUV planes (the default convention)."""

from __future__ import annotations

from typing import Any

import numpy as np

from talkbench_plugin.metrics.base import FramePairs, Metric, MetricValue, frame_planes
from talkbench_plugin.metrics.lavfi import PairFilter

PEAK = 255  # 8-bit planes: FFmpeg's max = (1 << depth) - 1, and its average_max rounds to the same
# The filter's metadata holds each plane's MSE and PSNR as floats printed with "%f" (6 decimals). A plane's
# MSE is read from the MSE field from this value on, below it from the PSNR field: either way within a
# relative 1e-6 of the exact integer SSE / pixels (PSNR within 5e-6 dB), however small the MSE.
MSE_FIELD_FROM = 1.0


def psnr_from_mse(mse: np.ndarray | float) -> np.ndarray:
    """``10 log10(peak² / mse)``, ``inf`` where the MSE is 0 (as FFmpeg prints it)."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(PEAK**2 / np.asarray(mse, dtype=np.float64))


def _plane_mse(meta: dict[str, str], plane: str) -> float:
    """A plane's MSE from the psnr filter's frame metadata (see ``MSE_FIELD_FROM``)."""
    mse = float(meta[f"lavfi.psnr.mse.{plane}"])
    if mse >= MSE_FIELD_FROM or mse == 0.0:
        return mse
    return PEAK**2 / 10 ** (float(meta[f"lavfi.psnr.psnr.{plane}"]) / 10)


class FFmpegPSNR(Metric):
    """PSNR exactly as FFmpeg's ``psnr`` filter defines it (libavfilter/vf_psnr.c), from the filter itself.

    Per plane, MSE = integer SSE / plane pixels; a frame's MSE is the plane MSEs weighted by each
    plane's share of the samples (4:1:1 for 4:2:0). The summary is the PSNR of the frames' mean MSE,
    what ``ffmpeg -lavfi psnr`` prints as ``average:``; ``y``/``u``/``v`` pool each plane the same way.
    The plane MSEs come from the filter's frame metadata (its SIMD code, in-process; see ``MSE_FIELD_FROM``).
    """

    name = "psnr"
    higher_is_better = True
    frames_per_update = 1
    unit = "dB"

    def __init__(self) -> None:
        self._pix_fmt: str | None = None
        self._weights: np.ndarray | None = None
        self._filter: PairFilter | None = None
        self._mse: list[list[float]] = []  # per frame, per plane

    def protocol(self) -> dict[str, Any]:
        return {
            "convention": "ffmpeg",
            "filter": "psnr",
            "planes": "yuv",
            "pix_fmt": self._pix_fmt,
            "peak": PEAK,
            "frame_mse": "plane MSEs weighted by plane size",
            "summary": "PSNR of the mean frame MSE (ffmpeg 'average:')",
            "implementation": "FFmpeg's psnr filter in-process, plane MSEs from its frame metadata "
                              "(relative precision 1e-6)",
            "threads": 1,
        }

    def update(self, pairs: FramePairs) -> None:
        if not len(pairs):
            return
        self._check_format(pairs)
        if self._weights is None:
            sizes = np.array([plane.size for plane in frame_planes(pairs.ref[0])], dtype=np.float64)
            self._weights = sizes / sizes.sum()
        for ref, gen in zip(pairs.ref, pairs.gen, strict=True):
            if self._filter is None:
                self._filter = PairFilter("psnr", ref)
            self._add(self._filter.push(ref, gen))

    def _add(self, metadata: list[dict[str, str]]) -> None:
        planes = "yuva"[: len(self._weights)]
        self._mse.extend([_plane_mse(meta, plane) for plane in planes] for meta in metadata)

    def _check_format(self, pairs: FramePairs) -> None:
        fmt = pairs.ref[0].format
        if any(comp.bits != 8 for comp in fmt.components):
            raise ValueError(f"FFmpegPSNR needs 8-bit planes, got {fmt.name}")
        if pairs.gen[0].format.name != fmt.name or self._pix_fmt not in (None, fmt.name):
            raise ValueError(f"mixed pixel formats: {self._pix_fmt}, {fmt.name}, {pairs.gen[0].format.name}")
        self._pix_fmt = fmt.name

    def compute(self) -> MetricValue:
        if self._filter is not None:  # flush: end both inputs and collect what the filter still holds
            self._add(self._filter.close())
            self._filter = None
        if not self._mse:
            raise ValueError("FFmpegPSNR.compute() called before any frames were added")
        plane_mse = np.array(self._mse)
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
