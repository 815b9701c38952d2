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


class FoldedSyncNet(torch.nn.Module):
    """SyncNet for inference: each batch norm folded into the convolution before it
    (``torch.nn.utils.fusion.fuse_conv_bn_eval``), one pass less over every activation; embeddings
    equal the network's to ~1e-6 relative."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.lip, self.aud = _fold(net.netcnnlip), _fold(net.netcnnaud)
        self.fc_lip, self.fc_aud = net.netfclip, net.netfcaud
        self.eval()

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_lip(self.lip(x).flatten(1))

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_aud(self.aud(x).flatten(1))


_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
_CONVS = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


def _fold(stack: torch.nn.Sequential) -> torch.nn.Sequential:
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    layers, out = list(stack.eval()), []
    for layer in layers:
        if isinstance(layer, _NORMS) and out and isinstance(out[-1], _CONVS):
            out[-1] = fuse_conv_bn_eval(out[-1], layer)
        else:
            out.append(layer)
    return torch.nn.Sequential(*out)
