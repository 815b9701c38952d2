"""LPIPS on the aligned frame pairs, as the ``lpips`` package computes it (ER-NeRF's table).

``lpips.LPIPS(net="alex", version="0.1")`` (or ``net="vgg"``): the package's own linear layers (shipped in
its wheel, ``lpips/weights/v0.1/<net>.pth``) on top of torchvision's ImageNet backbone, whose file comes
from talkbench's weights registry (verified, ``torch.load(weights_only=True)``) instead of torch.hub's
download. Each pair is RGB (swscale's conversion, the generated frame at the reference's size as the
alignment gives it) scaled to [-1, 1] as ``lpips.im2tensor`` does; the per-frame value is the package's
spatially averaged distance, the summary the mean over frames. pyiqa's ``lpips`` is the same network and
the same linear weights file (``LPIPS_v0.1_alex-df73285e.pth`` is the wheel's ``alex.pth``); the tests
prove they agree.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .. import weights
from ..errors import TalkbenchError
from ..runtime.openvino import openvino_network, runtime_described, use_openvino
from .base import FramePairs, Metric, MetricValue

BACKBONES = {"alex": "alexnet", "vgg": "vgg16"}  # LPIPS net -> the registry's torchvision backbone
_NETS: dict[tuple[str, ...], Callable[[Any, Any], np.ndarray]] = {}


@dataclass(frozen=True)
class LpipsOptions:
    """LPIPS's named settings: the backbone ("alex", the papers' default, or "vgg")."""

    net: str = "alex"
    weights: str | None = None  # weights directory (default: $TALKBENCH_WEIGHTS or the cache's)
    device: str = "cpu"
    batch: int = 4  # pairs per forward: on CPU, channels-last AlexNet is no faster in larger batches
    runtime: str = "openvino"  # or "torch": what runs the network on the CPU

    def __post_init__(self) -> None:
        if self.net not in BACKBONES:
            raise TalkbenchError(f"LPIPS net must be one of {', '.join(BACKBONES)}, not {self.net!r}")

    def needed_weights(self) -> tuple[str, ...]:
        return (BACKBONES[self.net],)

    def to_dict(self) -> dict[str, Any]:
        return {"net": self.net}


def linear_weights(net: str) -> Path:
    """The lpips wheel's v0.1 linear-layer file for ``net``."""
    import lpips

    return Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"


def build(net: str, backbone: dict[str, Any]) -> Any:
    """``lpips.LPIPS(net, v0.1)`` with the wheel's linear layers and ``backbone`` (a torchvision state dict)
    as its trunk; nothing is downloaded."""
    import lpips
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")  # lpips' `pretrained=`
        model = lpips.LPIPS(net=net, version="0.1", pnet_rand=True, verbose=False)
    trunk = torch.nn.Sequential()
    for block in (getattr(model.net, f"slice{i}") for i in range(1, model.net.N_slices + 1)):
        for name, module in block.named_children():
            trunk.add_module(name, module)
    features = {key.removeprefix("features."): value for key, value in backbone.items() if key.startswith("features.")}
    try:
        trunk.load_state_dict(features, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise TalkbenchError(f"LPIPS {net}: the backbone file is not torchvision's {BACKBONES[net]} ({first})") from None
    return model.eval()


def network(options: LpipsOptions, cache: Path | None = None) -> Callable[[Any, Any], np.ndarray]:
    """The LPIPS network with the verified backbone as a function of (generated, reference) batches to the
    per-pair distances, built once per process and setting; OpenVINO's IR is converted once into ``cache``."""
    name = BACKBONES[options.net]
    openvino = use_openvino(options.runtime, options.device, cache)
    key = (str(weights.weight_path(name, options.weights)), options.net, options.device,
           str(cache) if openvino else "torch")
    if key not in _NETS:
        import torch

        def module() -> Any:
            return build(options.net, weights.load_state(name, options.weights))

        if openvino:
            linear = hashlib.sha256(linear_weights(options.net).read_bytes()).hexdigest()
            net = openvino_network(cache, f"lpips-{options.net}",
                                   f"{weights.verified_sha256(name, options.weights)}+{linear}", module,
                                   (torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64)), [(-1, 3, -1, -1)] * 2)
            _NETS[key] = lambda gen, ref: net(gen.numpy(), ref.numpy()).astype(np.float64).ravel()
        else:
            lpips = module().to(options.device, memory_format=torch.channels_last)  # CPUs' convolutions prefer it

            def forward(gen: Any, ref: Any) -> np.ndarray:
                with torch.inference_mode():
                    return lpips(gen, ref).flatten().double().cpu().numpy()

            _NETS[key] = forward
    return _NETS[key]


def to_tensor(rgb: np.ndarray, device: str) -> Any:
    """(N, H, W, 3) uint8 as lpips.im2tensor scales it: x / 127.5 - 1, NCHW float32 (channels-last in
    memory, as the frames are)."""
    import torch

    return torch.from_numpy(rgb).to(device).permute(0, 3, 1, 2).float().div_(255.0 / 2.0).sub_(1.0)


class LpipsMetric(Metric):
    name = "lpips"
    higher_is_better = False

    def __init__(self, options: LpipsOptions | None = None, cache: Path | None = None) -> None:
        self.options = options or LpipsOptions()
        self.cache = cache
        self.values: list[float] = []
        self._error: TalkbenchError | None = None  # kept for compute(): this metric's problem, not the case's
        try:
            self.net = network(self.options, cache)
        except TalkbenchError as exc:
            self._error = exc

    def protocol(self) -> dict[str, Any]:
        linear = linear_weights(self.options.net)
        return {"implementation": f"lpips {metadata.version('lpips')} LPIPS(net={self.options.net!r}, version='0.1')",
                "backbone": weights.spec_for(BACKBONES[self.options.net]).filename,
                "linear_layers": f"{linear.name} sha256 {hashlib.sha256(linear.read_bytes()).hexdigest()[:16]}",
                "input": "aligned frame pairs, RGB (generated at the reference's size), scaled to [-1, 1]",
                "summary": "mean over frames of the spatially averaged distance",
                "runtime": runtime_described(use_openvino(self.options.runtime, self.options.device, self.cache),
                                              self.options.device)}

    def update(self, pairs: FramePairs) -> None:
        if not len(pairs) or self._error is not None:
            return
        device, step = self.options.device, self.options.batch
        for start in range(0, len(pairs), step):
            ref = to_tensor(pairs.ref_rgb[start:start + step], device)
            gen = to_tensor(pairs.gen_rgb[start:start + step], device)
            try:
                self.values += self.net(gen, ref).tolist()
            except RuntimeError as exc:  # e.g. frames too small for the backbone's pooling
                last = str(exc).strip().splitlines()[-1]  # OpenVINO's says what failed on its last line
                self._error = TalkbenchError(f"LPIPS {self.options.net} cannot score {gen.shape[3]}x{gen.shape[2]} "
                                             f"frames, too small for the backbone ({last})")
                return

    def compute(self) -> MetricValue:
        if self._error is not None:
            raise self._error
        if not self.values:
            raise TalkbenchError("LPIPS: no aligned frame pair to compare")
        if not np.isfinite(self.values).all():
            raise TalkbenchError("LPIPS: NaN or inf distances: the backbone weights file is probably corrupt; "
                                 "run `talkbench weights fetch` again")
        return MetricValue(float(np.mean(self.values)), list(self.values), {"frames": len(self.values)})
