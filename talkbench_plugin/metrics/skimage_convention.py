"""PSNR and SSIM in the scikit-image convention: RGB frames, ``skimage.metrics`` per frame.

Kept apart from the FFmpeg metrics so that the default convention does not import scikit-image.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import skimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from talkbench_plugin.errors import TalkbenchError
from talkbench_plugin.metrics.base import FramePairs, Metric, MetricValue
from talkbench_plugin.metrics.psnr import PEAK, psnr_from_mse


class SkimagePSNR(Metric):
    """PSNR in the scikit-image convention: RGB, ``data_range=255``, per frame.

    The summary pools the frames' MSE like FFmpeg's ``average:``, so one identical frame (PSNR inf)
    does not make the whole video inf; the plain mean of per-frame values is in ``details``.
    """

    name = "psnr_skimage"
    higher_is_better = True
    unit = "dB"

    def __init__(self) -> None:
        self._values: list[float] = []

    def protocol(self) -> dict[str, Any]:
        return {
            "convention": "skimage",
            "function": "skimage.metrics.peak_signal_noise_ratio",
            "skimage": skimage.__version__,
            "colour": "rgb24 via swscale (PyAV to_ndarray)",
            "data_range": 255,
            "summary": "PSNR of the mean frame MSE",
        }

    def update(self, pairs: FramePairs) -> None:
        if not len(pairs):
            return
        with np.errstate(divide="ignore"):
            self._values.extend(
                float(peak_signal_noise_ratio(a, b, data_range=255))
                for a, b in zip(pairs.ref_rgb, pairs.gen_rgb, strict=True)
            )

    def compute(self) -> MetricValue:
        if not self._values:
            raise ValueError("SkimagePSNR.compute() called before any frames were added")
        values = np.array(self._values)
        with np.errstate(over="ignore"):
            mse = PEAK**2 / 10.0 ** (values / 10.0)  # inf PSNR -> MSE 0
        details = {"mean_of_frames": float(values.mean()), "frames": len(values)}
        return MetricValue(float(psnr_from_mse(mse.mean())), values.tolist(), details)


class SkimageSSIM(Metric):
    """SSIM in the scikit-image convention with Wang et al.'s settings, on RGB; summary = mean of frames."""

    name = "ssim_skimage"
    higher_is_better = True
    unit = ""

    def __init__(self) -> None:
        self._values: list[float] = []

    def protocol(self) -> dict[str, Any]:
        return {
            "convention": "skimage",
            "function": "skimage.metrics.structural_similarity",
            "skimage": skimage.__version__,
            "colour": "rgb24 via swscale (PyAV to_ndarray)",
            "gaussian_weights": True,
            "sigma": 1.5,
            "use_sample_covariance": False,
            "data_range": 255,
            "channel_axis": -1,
            "summary": "mean of per-frame SSIM",
        }

    def update(self, pairs: FramePairs) -> None:
        if not len(pairs):
            return
        try:
            self._values.extend(
                float(
                    structural_similarity(
                        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255,
                        channel_axis=-1
                    )
                )
                for a, b in zip(pairs.ref_rgb, pairs.gen_rgb, strict=True)
            )
        except ValueError as exc:  # frames smaller than its window
            height, width = pairs.ref_rgb.shape[1:3]
            raise TalkbenchError(f"SSIM (skimage) cannot be computed on {width}x{height} frames: "
                                 f"{str(exc).split('. ')[0]}") from None

    def compute(self) -> MetricValue:
        if not self._values:
            raise ValueError("SkimageSSIM.compute() called before any frames were added")
        return MetricValue(float(np.mean(self._values)), list(self._values), {"frames": len(self._values)})
