"""Streaming Inception pool3 features and their running statistics, exactly as pyiqa's FID computes them.

pyiqa's FID reads image folders; here frames arrive as RGB uint8 batches from the decode pass and go
through the same steps as ``pyiqa.archs.fid_arch.ResizeDataset`` + ``get_folder_features``: resize to
299×299 (mode ``clean``: PIL bicubic on each channel as float32, clipped to 0..255; or pyiqa's
``legacy_tensorflow`` / ``legacy_pytorch`` bilinear), scale to [-1, 1], pyiqa's ``InceptionV3`` (the
TF-ported FID network) up to the final average pool: 2048-d.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Callable, Mapping
from typing import Any
from unittest import mock

import numpy as np
import pyiqa
import pyiqa.archs.inception as pyiqa_inception
import torch
import torch.nn.functional as F
from PIL import Image
from pyiqa.archs.arch_util import clean_state_dict
from pyiqa.archs.interpolate_compat_tensorflow import (
    interpolate_bilinear_2d_like_tensorflow1x,
)

from talkbench_plugin.cache import file_sha256
from talkbench_plugin.errors import TalkbenchError
from talkbench_plugin.fid.moments import GaussianStats, Moments
from talkbench_plugin.fid.sampling import RESIZE_MODES, Sampling
from talkbench_plugin.inference import fold_batch_norms

DIMS = 2048
SIZE = (299, 299)


def _build(factory: Callable[[], torch.nn.Module], loader: Callable[..., None]) -> torch.nn.Module:
    """Run a pyiqa Inception factory with ``loader`` in place of its download-and-unpickle step."""
    with mock.patch.object(pyiqa_inception, "load_pretrained_network", loader), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")  # pyiqa's `pretrained=`
        return factory()


def random_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random weights in the official ``pt_inception-2015-12-05`` format (tests, demos).

    Convolutions get He-normal weights so pool3 features stay O(1) instead of vanishing.
    """
    torch.manual_seed(seed)
    net = _build(pyiqa_inception.fid_inception_v3, lambda *args, **kwargs: None)
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return net.state_dict()


def preprocess(frames: np.ndarray, mode: str = "clean") -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB → (N, 3, 299, 299) float32 in 0..255, as pyiqa's ``ResizeDataset`` gives it."""
    if mode == "clean":
        out = np.empty((len(frames), 3, *SIZE), dtype=np.float32)
        for i, frame in enumerate(frames):
            for c in range(3):
                channel = Image.fromarray(frame[:, :, c].astype(np.float32), mode="F")
                out[i, c] = np.asarray(channel.resize(SIZE, resample=Image.BICUBIC)).clip(0, 255)
        return torch.from_numpy(out)
    batch = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    if mode == "legacy_tensorflow":
        return interpolate_bilinear_2d_like_tensorflow1x(batch, size=SIZE, align_corners=False)
    if mode == "legacy_pytorch":
        return F.interpolate(batch, size=SIZE, mode="bilinear", align_corners=False)
    raise TalkbenchError(f"FID resize mode {mode!r}: use one of {', '.join(RESIZE_MODES)}")


class InceptionNet:
    """pyiqa's FID ``InceptionV3`` (pool3) with pyiqa's preprocessing, from explicitly given weights."""

    def __init__(
        self,
        state: Mapping[str, torch.Tensor],
        weights_sha256: str,
        mode: str = "clean",
        device: str | torch.device = "cpu",
        batch_size: int = 32,
    ) -> None:
        if mode not in RESIZE_MODES:
            raise TalkbenchError(f"FID resize mode {mode!r}: use one of {', '.join(RESIZE_MODES)}")
        state = clean_state_dict(state)

        def load(net: torch.nn.Module, *_: Any, **__: Any) -> None:
            try:
                net.load_state_dict(state)
            except RuntimeError as exc:
                raise TalkbenchError(f"not the FID Inception weights: {' '.join(str(exc).split())[:300]}") from None

        block = pyiqa_inception.InceptionV3.BLOCK_INDEX_BY_DIM[DIMS]
        self.model = fold_batch_norms(_build(lambda: pyiqa_inception.InceptionV3([block]), load)).to(device)
        self.device = torch.device(device)
        self.mode = mode
        self.weights_sha256 = weights_sha256
        self.batch_size = batch_size

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> InceptionNet:
        """Load an official-format weights file with ``torch.load(weights_only=True)``."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError, pickle.UnpicklingError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise TalkbenchError(f"{path}: cannot load as Inception weights (weights_only): {reason}") from None
        if not isinstance(state, Mapping):
            raise TalkbenchError(f"{path}: not a state dict of Inception weights")
        try:
            return cls(state, file_sha256(path), **kwargs)
        except TalkbenchError as exc:
            raise TalkbenchError(f"{path}: {exc}") from None

    def protocol(self) -> dict[str, Any]:
        return {
            "features": f"pyiqa {pyiqa.__version__} InceptionV3 FID pool3 ({DIMS}-d)",
            "resize": self.mode,
            "preprocess": RESIZE_MODES[self.mode],
            "weights_sha256": self.weights_sha256,
        }

    @torch.inference_mode()
    def features(self, frames: np.ndarray) -> np.ndarray:
        """Pool3 features (N, 2048) of RGB uint8 frames, in batches of ``batch_size``."""
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected (N, H, W, 3) uint8 frames, got {frames.dtype} {frames.shape}")
        out = []
        for start in range(0, len(frames), self.batch_size):
            batch = preprocess(frames[start : start + self.batch_size], self.mode)
            if self.mode == "legacy_pytorch":
                batch, normalize_input = batch / 255, True
            else:
                batch, normalize_input = (batch - 128) / 128, False
            with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True):  # as pyiqa
                batch = batch.to(self.device).contiguous(memory_format=torch.channels_last)  # ~1.5x on CPU
                feat = self.model(batch, False, normalize_input)[0]
            out.append(feat.reshape(feat.shape[0], -1).double().cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, DIMS))

    @torch.inference_mode()
    def logits(self, features: np.ndarray) -> np.ndarray:
        """The 1008-way classifier logits without bias (pyiqa's ``logits_unbiased``, as its Inception Score
        uses them) of pool3 ``features``, in float32 as pyiqa computes them."""
        pool = torch.from_numpy(np.asarray(features, dtype=np.float32)).to(self.device)
        return pool.mm(self.model.fc.weight.T).cpu().numpy()


class InceptionStats:
    """Running Inception statistics of one frame stream: ``update`` with batches, then ``compute``.

    ``total_frames`` (the segment's length) is needed only by ``Sampling(count=...)``; ``label`` (the
    video) names the stream in errors.
    """

    def __init__(
        self,
        net: InceptionNet,
        sampling: Sampling = Sampling(),
        total_frames: int | None = None,
        label: str = "frames",
    ) -> None:
        self.net = net
        self.sampling = sampling
        self.total_frames = total_frames
        self.label = label
        self.seen = 0
        self.moments = Moments.zeros(DIMS)

    def update(self, frames: np.ndarray) -> None:
        """Add the next frames of the stream (N, H, W, 3) uint8; sampling picks by stream position."""
        keep = self.sampling.mask(self.seen, len(frames), self.total_frames)
        self.seen += len(frames)
        if keep.any():
            self.moments.add(self.net.features(np.asarray(frames)[keep]))

    def compute(self) -> GaussianStats:
        return self.moments.compute(f"{self.label} (sampling {self.sampling.name})")

    def protocol(self) -> dict[str, Any]:
        return {
            **self.net.protocol(),
            "sampling": self.sampling.name,
            "statistics": "mean, covariance (n - 1), float64",
        }
