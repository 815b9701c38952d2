"""SyncNet and S3FD networks from syncnet-python, loaded from verified weights in the official format."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from .. import weights


def _net(kind: str, device: str) -> torch.nn.Module:
    if kind == "syncnet":
        from syncnet_python.SyncNetModel import S

        return S(num_layers_in_fc_layers=1024)
    if kind == "s3fd":
        from syncnet_python.detectors.s3fd.nets import S3FDNet

        return S3FDNet(device=device)
    raise ValueError(f"unknown network {kind!r}: expected 'syncnet' or 's3fd'")


def build(kind: str, state: Mapping[str, torch.Tensor], device: str = "cpu") -> torch.nn.Module:
    """``kind`` ("syncnet" or "s3fd") with ``state`` loaded strictly, in eval mode on ``device``."""
    net = _net(kind, device)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise weights.WeightsError(f"the weights do not fit syncnet-python's {kind} network: "
                                   f"{str(exc).splitlines()[0]}") from None
    return net.to(device).eval()


def load(kind: str, directory: str | os.PathLike[str] | None = None, device: str = "cpu") -> torch.nn.Module:
    """``kind`` with the pinned official weights from the weights cache (verified, weights_only)."""
    return build(kind, weights.load_state(kind, directory), device)


def random_state(kind: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random weights for ``kind`` (for tests and benchmarks without real weights)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return {k: v.clone() for k, v in _net(kind, "cpu").state_dict().items()}


def write_random_weights(kind: str, path: str | os.PathLike[str], seed: int = 0) -> Path:
    """Save ``random_state(kind, seed)`` as the official files are saved: a ``torch.save``d state dict."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_state(kind, seed), path)
    return path

