"""The metric families' settings as command-line options, declared once for ``pytest --talkbench-<name>``
and ``talkbench evaluate --<name>``, and the per-family options ``evaluate_case`` takes from them.

Option classes live in light modules (``talkbench_plugin/options/``); heavy imports go inside the functions
that need them, so building every family's options imports no torch, pyiqa or syncnet."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any

from .metrics import DEFAULT

DEFAULT_METRICS = ",".join(DEFAULT)  # what pytest and `talkbench evaluate` compute by default
METRICS_HELP = ("metrics to compute, comma-separated: talkbench's (psnr, ssim, fid, lse_c, ...) or any of pyiqa's "
                "by name; those whose model weights are missing are skipped, saying which "
                "(default: %(default)s)")


def _positive(text: str) -> int:
    """An option value of 1 or more (argparse's ``type``: a bad one is refused when options are parsed)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1")
    return int(text)


def _sampling(text: str) -> str:
    """``every``, ``stride=K`` (K >= 1) or ``count=N`` (N >= 2), checked when options are parsed."""
    if not re.fullmatch(r"every|stride=[1-9]\d*|count=(?:[2-9]|[1-9]\d+)", text):
        raise argparse.ArgumentTypeError(f"{text!r}: use every, stride=K (K >= 1) or count=N (N >= 2)")
    return text


# option name -> keyword arguments of argparse's add_argument (and pytest's addoption)
OPTIONS: dict[str, dict[str, Any]] = {
    "sync-audio": {"choices": ("own", "driving"), "default": "own",
                   "help": "lip sync against the generated video's own audio track, or the speaker's driving "
                           "audio (default: %(default)s)"},
    "sync-detector": {"choices": ("s3fd", "none"), "default": "s3fd",
                      "help": "S3FD face tracks as syncnet-python makes them, or none for videos that are face "
                              "crops already (default: %(default)s)"},
    "sync-detect-every": {"metavar": "K", "type": _positive, "default": 1,
                          "help": "run the face detector on every K-th frame and interpolate the boxes between; "
                                  "1 is reference-exact (default: %(default)s)"},
    "sync-combine": {"choices": ("best", "longest", "mean", "single"), "default": "best",
                     "help": "how several face tracks make one score: best (syncnet-python), longest, mean "
                             "(frame-weighted) or single (several faces are an error) (default: %(default)s)"},
    "fid-sampling": {"metavar": "every|stride=K|count=N", "type": _sampling, "default": "every",
                     "help": "frames of each video's evaluated segment that FID and the Inception Score use: "
                             "every frame, every K-th, or N evenly spaced (default: %(default)s)"},
    "cpbd-sampling": {"metavar": "every|stride=K", "default": "every",
                      "help": "generated frames that CPBD scores: every frame (as SadTalker) or every K-th "
                              "(default: %(default)s)"},
    "lpips-net": {"choices": ("alex", "vgg"), "default": "alex",
                  "help": "LPIPS backbone: alex (v0.1, the papers' default) or vgg (default: %(default)s)"},
    "runtime": {"choices": ("openvino", "torch"), "default": "openvino",
                "help": "what runs FVD's I3D, LPIPS's network and the face metrics' FAN on the CPU: OpenVINO "
                        "in f32 (converted once per weights file into the cache; the same values to fp32 rounding, "
                        "faster here) or eager torch (default: %(default)s)"},
}


def add_options(add: Callable[..., Any], prefix: str = "") -> None:
    """Declare ``OPTIONS`` as ``--<prefix><name>`` through ``add`` (add_argument or addoption)."""
    for name, kwargs in OPTIONS.items():
        add(f"--{prefix}{name}", **kwargs)


def family_options(value: Callable[[str], Any], weights: str, device: str,
                   moments_dir: str | None) -> dict[str, Any]:
    """``evaluate_case``'s options by family; ``value(name)`` gives an option's value ("sync_audio", ...).

    Raises TalkbenchError for a value the families refuse (detect-every 0, a bad sampling rule).
    """
    from .metrics.cpbd import CpbdOptions
    from .metrics.fvd import FvdOptions
    from .metrics.perceptual import LpipsOptions
    from .options.face import FaceOptions
    from .options.inception import InceptionOptions
    from .options.iqa import IqaOptions
    from .options.sync import SyncOptions

    sync = SyncOptions(value("sync_audio"), value("sync_detector"), value("sync_detect_every"),
                       value("sync_combine"), weights, device)
    inception = InceptionOptions(value("fid_sampling"), weights=weights, device=device, moments_dir=moments_dir)
    return {"sync": sync, "fid": inception, "inception_score": inception, "pyiqa": IqaOptions(weights, device),
            "cpbd": CpbdOptions(value("cpbd_sampling")),
            "lpips": LpipsOptions(value("lpips_net"), weights, device, runtime=value("runtime")),
            "fvd": FvdOptions(weights, device, moments_dir, runtime=value("runtime")),
            "face": FaceOptions(weights=weights, device=device, runtime=value("runtime"))}
