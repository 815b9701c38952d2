"""Any pyiqa metric by name: full-reference ones on the aligned frame pairs, no-reference ones on the
generated video's own frames.

- Full-reference ("FR"): a frame-pair ``Metric``; frames are RGB in [0, 1] (uint8 / 255, as pyiqa reads
  images), the generated one resized to the reference's size by the alignment, as PSNR/SSIM see them.
- No-reference ("NR"): a ``StreamMetric`` on the generated video's native frames in the evaluated segment,
  each frame once. Not the resized, rate-converted pairs: resizing changes the sharpness and noise that NR
  metrics measure, and a generated video at a lower frame rate would count its frames twice.

Models are built once per process, never downloading: the files pyiqa or torchvision would fetch are
looked up in ``<weights dir>/pyiqa`` (torchvision's under ``torch/checkpoints``) and loaded with
``torch.load(weights_only=True)``; a missing one raises ``IqaWeightsMissing`` with its URL and place.
pyiqa pins no hashes, so these files are not verified.
"""

from __future__ import annotations

import contextlib
import functools
import io
from pathlib import Path
from typing import Any
from unittest import mock

import av
import numpy as np
import torch

from .. import weights
from ..errors import TalkbenchError
from ..fid.sampling import Sampling
from ..options.iqa import IqaOptions
from ..timing import StageTimer
from .base import CaseMedia, FramePairs, Metric, MetricValue, StreamMetric

FOLDER_METRICS = ("fid", "fid_dinov2", "sfid", "inception_score")  # pyiqa scores image folders with these
_MODELS: dict[tuple[str, str, str], torch.nn.Module] = {}


class IqaWeightsMissing(weights.WeightsMissing):
    """A pyiqa metric's pretrained file is not in the weights directory."""

    def __init__(self, metric: str, url: str, path: Path) -> None:
        self.metric, self.url, self.path = metric, url, path
        super().__init__(f"{metric}: {path} not found; download {url} into {path.parent}")


@functools.cache
def _configs() -> dict[str, dict[str, Any]]:
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    return DEFAULT_CONFIGS


def mode(name: str) -> str | None:
    """"FR" or "NR" for a pyiqa metric that talkbench can run per frame, else None."""
    if name in FOLDER_METRICS:
        return None
    found = _configs().get(name, {}).get("metric_mode")
    return found if found in ("FR", "NR") else None


def names() -> list[str]:
    """The pyiqa metrics usable here, by name."""
    return [name for name in _configs() if mode(name)]


def folder(options: IqaOptions) -> Path:
    return weights.weights_dir(options.weights) / "pyiqa"


def model(name: str, options: IqaOptions) -> torch.nn.Module:
    """pyiqa's metric ``name``, built once per process, its files from the weights directory only."""
    key = (name, str(folder(options)), options.device)
    if key not in _MODELS:
        import pyiqa
        from pyiqa.utils import download_util

        root = folder(options)

        def refuse(url: str, dst: str, *args: Any, **kwargs: Any) -> None:
            raise IqaWeightsMissing(name, url, Path(dst))

        safe_load = functools.partial(_safe_load, name, torch.load)
        with contextlib.ExitStack() as stack:
            stack.enter_context(mock.patch.object(download_util, "DEFAULT_CACHE_DIR", str(root)))
            stack.enter_context(mock.patch.object(download_util, "download_url_to_file", refuse))
            stack.enter_context(mock.patch.object(torch.hub, "get_dir", lambda: str(root / "torch")))
            stack.enter_context(mock.patch.object(torch.hub, "download_url_to_file", refuse))
            stack.enter_context(mock.patch.object(torch, "load", lambda *a, weights_only=None, **k: safe_load(*a, **k)))
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))  # pyiqa's "Loading ..." lines
            try:
                _MODELS[key] = pyiqa.create_metric(name, device=torch.device(options.device))
            except TalkbenchError:
                raise
            except Exception as exc:  # noqa: BLE001 - pyiqa's own failures, named for the user
                reason = " ".join(str(exc).split())[:300] or type(exc).__name__
                raise TalkbenchError(f"pyiqa {name}: cannot be built here ({reason})") from None
    return _MODELS[key]


def _safe_load(metric: str, load: Any, file: Any, *args: Any, **kwargs: Any) -> Any:
    """``torch.load(weights_only=True)`` of a pyiqa/torchvision file; one that is not plain tensors (a
    pickle that would run code) or is damaged is refused naming the file."""
    try:
        return load(file, *args, weights_only=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - torch's pickle and zip errors, named for the user
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise TalkbenchError(f"pyiqa {metric}: {file} refused: not a plain weights file ({first[:200]}); delete "
                             f"it and put the official file there") from None


def _scores(name: str, net: torch.nn.Module, device: str, *frames: np.ndarray) -> list[float]:
    """Per-frame scores of RGB uint8 batches (target first, then the reference for FR)."""
    tensors = [torch.from_numpy(np.ascontiguousarray(f)).permute(0, 3, 1, 2).float().div(255).to(device)
               for f in frames]
    try:
        with torch.inference_mode():
            out = net(*tensors)
    except Exception as exc:  # noqa: BLE001 - pyiqa's own failures (e.g. frames too small for ms_ssim)
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise TalkbenchError(f"pyiqa {name} failed on {frames[0].shape[2]}x{frames[0].shape[1]} frames: "
                             f"{reason}") from None
    return [float(v) for v in torch.as_tensor(out).reshape(len(frames[0]), -1)[:, 0].cpu()]


def _protocol(name: str, net: torch.nn.Module, frames: str) -> dict[str, Any]:
    from importlib.metadata import version

    return {"metric": f"pyiqa {version('pyiqa')} {name} ({net.metric_mode})", "input": "RGB uint8 / 255",
            "frames": frames, "summary": "mean of frames"}


class IqaPairMetric(Metric):
    """A pyiqa full-reference metric on aligned (generated, reference) frame pairs."""

    def __init__(self, name: str, options: IqaOptions | None = None) -> None:
        self.options = options or IqaOptions()
        self.name = name
        self.net = model(name, self.options)
        self.higher_is_better = not self.net.lower_better
        self.values: list[float] = []
        self._error: TalkbenchError | None = None

    def protocol(self) -> dict[str, Any]:
        return _protocol(self.name, self.net, "aligned pairs at the reference's size")

    def update(self, pairs: FramePairs) -> None:
        if self._error is not None:
            return
        for start in range(0, len(pairs), self.options.batch):
            end = start + self.options.batch
            try:
                self.values += _scores(self.name, self.net, self.options.device, pairs.gen_rgb[start:end],
                                       pairs.ref_rgb[start:end])
            except TalkbenchError as exc:  # kept for compute(): this metric's problem, not the case's
                self._error = exc
                return

    def compute(self) -> MetricValue:
        if self._error is not None:
            raise self._error
        return _summary(self.values, f"pyiqa {self.name}")


class IqaStreamMetric(StreamMetric):
    """A pyiqa no-reference metric on the generated video's own frames in the evaluated segment."""

    sides = frozenset({"generated"})

    def __init__(self, media: CaseMedia, options: IqaOptions | None, name: str) -> None:
        from .fid import SegmentFrames

        self.media = media
        self.options = options = options or IqaOptions()
        self.name = name
        self.net = model(name, options)
        self.kinds = {name: ("", not self.net.lower_better)}
        self.timings: dict[str, float] = {}
        self._timer = StageTimer()
        self.values: list[float] = []
        self._frames = SegmentFrames(media, "generated", Sampling(), options.batch, self._add)

    def protocol(self) -> dict[str, Any]:
        return _protocol(self.name, self.net, "the generated video's own frames (native size) in the segment")

    def update_frame(self, side: str, time: float, frame: av.VideoFrame) -> bool:
        return self._frames.push(time, frame)

    def compute(self) -> dict[str, MetricValue]:
        try:
            self._frames.flush()
        except TalkbenchError as exc:
            raise TalkbenchError(f"{self.media.generated.path}: {exc}") from None
        self.timings = dict(self._timer.seconds)
        return {self.name: _summary(self.values, f"{self.media.generated.path}: pyiqa {self.name}")}

    def _add(self, batch: np.ndarray) -> None:
        with self._timer.stage("model"):
            self.values += _scores(self.name, self.net, self.options.device, batch)


def _summary(values: list[float], label: str) -> MetricValue:
    if not values:
        raise TalkbenchError(f"{label}: no frame in the evaluated segment to score")
    bad = [i for i, v in enumerate(values) if not np.isfinite(v)]
    details = {"warnings": [(f"{len(bad)} frame(s) scored NaN or inf (first: frame {bad[0]}); "
                             "the summary leaves them out")]} if bad else {}
    good = [v for v in values if np.isfinite(v)]
    if not good:
        raise TalkbenchError(f"{label}: every frame scored NaN or inf")
    return MetricValue(float(np.mean(good)), values, details)
