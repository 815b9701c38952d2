"""Metrics by name and convention; one module per family behind the ``Metric`` interface."""

from __future__ import annotations

import importlib

from .base import Metric

CONVENTIONS = ("ffmpeg", "skimage")
FIDELITY = ("psnr", "ssim")

# (metric, convention) -> (module, class); modules are imported on first use
_CLASSES = {
    ("psnr", "ffmpeg"): ("psnr", "FFmpegPSNR"),
    ("ssim", "ffmpeg"): ("ssim", "FFmpegSSIM"),
    ("psnr", "skimage"): ("skimage_convention", "SkimagePSNR"),
    ("ssim", "skimage"): ("skimage_convention", "SkimageSSIM"),
}


def make_metric(name: str, convention: str = "ffmpeg") -> Metric:
    """A fresh metric object for one case. ``convention`` picks FFmpeg's YUV or scikit-image's RGB."""
    if (name, convention) not in _CLASSES:
        raise KeyError(f"unknown metric {name!r} for convention {convention!r}")
    module, cls = _CLASSES[name, convention]
    return getattr(importlib.import_module(f".{module}", __name__), cls)()
