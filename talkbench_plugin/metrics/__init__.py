"""Metrics by name and convention; one module per family behind the ``Metric`` / ``StreamMetric`` interfaces.

Option classes live in light modules (``talkbench_plugin/options/``); heavy imports inside functions: a metric
module is imported only when a run enables its metric, so PSNR/SSIM never import torch or pyiqa.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base import CaseMedia, Metric, StreamMetric

CONVENTIONS = ("ffmpeg", "skimage")
FIDELITY = ("psnr", "ssim")
SYNC = ("lse_c", "lse_d", "av_offset")
INCEPTION = ("fid", "inception_score")
PERCEPTUAL = ("lpips",)  # frame-pair metrics with a network, whatever the convention (metrics.perceptual)
FACE = ("lmd", "lmd_face", "csim")  # frame-pair metrics of the faces (metrics.face), options["face"]

# (metric, convention) -> (module, class); modules are imported on first use
_CLASSES = {
    ("psnr", "ffmpeg"): ("psnr", "FFmpegPSNR"),
    ("ssim", "ffmpeg"): ("ssim", "FFmpegSSIM"),
    ("psnr", "skimage"): ("skimage_convention", "SkimagePSNR"),
    ("ssim", "skimage"): ("skimage_convention", "SkimageSSIM"),
}
# stream metric families: family -> (module, class, the names it computes)
FAMILIES = {
    "sync": ("sync", "SyncNetMetric", SYNC),
    "fid": ("fid", "FidMetric", ("fid",)),
    "inception_score": ("inception_score", "InceptionScoreMetric", ("inception_score",)),
    "cpbd": ("cpbd", "CpbdMetric", ("cpbd",)),
    "fvd": ("fvd", "FvdMetric", ("fvd",)),
}
DEFAULT = (*FIDELITY, "cpbd", "fid", *SYNC)  # what a run computes unless told otherwise (pytest and CLI)
KNOWN = FIDELITY + PERCEPTUAL + FACE + tuple(name for _, _, names in FAMILIES.values() for name in names)
IQA = "pyiqa"  # any other name is pyiqa's: FR ones are frame-pair metrics, NR ones the family "pyiqa:<name>"


def iqa_mode(name: str) -> str | None:
    """"FR" or "NR" for a pyiqa metric talkbench runs per frame (not a built-in name), else None."""
    if name in KNOWN:
        return None
    from .iqa import mode

    return mode(name)


def family_of(name: str) -> str | None:
    """The stream metric family computing ``name``, or None for a frame-pair metric."""
    family = next((family for family, (_, _, names) in FAMILIES.items() if name in names), None)
    if family is None and iqa_mode(name) == "NR":
        return f"{IQA}:{name}"
    return family


def family_options(options: Mapping[str, Any], family: str) -> Any:
    """A family's options from the run's options by family; pyiqa's families share the "pyiqa" entry."""
    return options.get(family, options.get(family.partition(":")[0]))


def make_metric(name: str, convention: str = "ffmpeg", options: Mapping[str, Any] | None = None,
                case: Any = None, cache: Path | None = None) -> Metric:
    """A fresh metric object for one case. ``convention`` picks FFmpeg's YUV or scikit-image's RGB; the
    face metrics take ``options["face"]`` and the ``case`` (its files, its identity source); LPIPS and FAN
    convert their networks into ``cache``; other names are pyiqa's full-reference metrics, with ``options["pyiqa"]``."""
    if name == "lpips":  # talkbench's own, before pyiqa's metric of that name
        from .perceptual import LpipsMetric

        return LpipsMetric((options or {}).get("lpips"), cache)
    if name in FACE:
        from .face import make_face_metric

        return make_face_metric(name, case, (options or {}).get("face"), cache)
    if (name, convention) in _CLASSES:
        module, cls = _CLASSES[name, convention]
        return getattr(importlib.import_module(f".{module}", __name__), cls)()
    if iqa_mode(name) == "FR":
        from .iqa import IqaPairMetric

        return IqaPairMetric(name, (options or {}).get(IQA))
    raise KeyError(f"unknown metric {name!r} for convention {convention!r}")


def make_stream_metric(family: str, media: CaseMedia, options: Any = None) -> StreamMetric:
    """A fresh stream metric of ``family`` for one case, with that family's options (None: defaults)."""
    if family.startswith(f"{IQA}:"):
        from .iqa import IqaStreamMetric

        return IqaStreamMetric(media, options, family.partition(":")[2])
    module, cls, _ = FAMILIES[family]
    return getattr(importlib.import_module(f".{module}", __name__), cls)(media, options)
