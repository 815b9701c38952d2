"""Metrics by name and convention; one module per family behind the ``Metric`` interface."""

from __future__ import annotations

from .base import Metric

CONVENTIONS = ("ffmpeg", "skimage")
FIDELITY = ("psnr", "ssim")


def make_metric(name: str, convention: str = "ffmpeg") -> Metric:
    """A fresh metric object for one case. ``convention`` picks FFmpeg's YUV or scikit-image's RGB."""
    from .psnr import FFmpegPSNR, SkimagePSNR
    from .ssim import FFmpegSSIM, SkimageSSIM

    table = {
        ("psnr", "ffmpeg"): FFmpegPSNR,
        ("psnr", "skimage"): SkimagePSNR,
        ("ssim", "ffmpeg"): FFmpegSSIM,
        ("ssim", "skimage"): SkimageSSIM,
    }
    if (name, convention) not in table:
        raise KeyError(f"unknown metric {name!r} for convention {convention!r}")
    return table[name, convention]()
