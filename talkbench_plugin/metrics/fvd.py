"""FVD of each case, as a stream metric: 16-frame clips of the generated video against its speaker's reference,
through I3D as ``cd-fvd`` computes it (the video generation papers' FVD, StyleGAN-V's 16-frame protocol).

Each side's own frames (native size, decode order) in the evaluated segment are cut into consecutive,
non-overlapping 16-frame clips; the frames left after the last whole clip are not used. A clip goes
through ``cdfvd``'s ``preprocess_i3d`` (bilinear to 224x224, [-1, 1]) and its PyTorch ``InceptionI3d``
(400 Kinetics logits, averaged over time: the features cd-fvd's ``get_i3d_logits`` takes), with the
``i3d_pretrained_400.pt`` file cd-fvd loads, from talkbench's weights registry. A clip is resized as soon
as its 16 frames are there; up to ``BATCH`` resized clips wait for one I3D forward (as cd-fvd batches
them), so memory is flat in clip length and the batch does not change the values. On the CPU, OpenVINO runs
I3D by default (``runtime.openvino``: ~1.6x eager torch here, the same logits to fp32 rounding); torch runs
it channels-last, the order CPUs' 3-D convolutions prefer. The statistics are cd-fvd's: mean and covariance
normalised by the clip count (``FeatureStats.get_mean_cov``), the Fréchet distance of the two.
Reference moments are cached by content, segment and protocol (as FID's); the generated side's are kept
under ``moments_dir`` so that a language group's clips pool (``fvd.groups``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import av
import numpy as np

from .. import weights
from ..errors import TalkbenchError
from ..fid import cache as moments_cache
from ..fid.frechet import frechet_distance
from ..fid.moments import Moments
from ..runtime.openvino import openvino_network, runtime_described, use_openvino
from ..timing import StageTimer
from .base import CaseMedia, MetricValue, StreamMetric, segment_window

CLIP = 16  # frames per clip
SIZE = 224  # I3D input, square
DIMS = 400  # Kinetics-400 logits
BATCH = 4  # resized clips per I3D forward (each 16x3x224x224 float32, 9.6 MB)
SIDES = ("reference", "generated")
_NETS: dict[tuple[str, str, str, str], Callable[[Any], np.ndarray]] = {}


@dataclass(frozen=True)
class FvdOptions:
    """FVD's settings: where the weights and the generated side's moments go."""

    weights: str | None = None
    device: str = "cpu"
    moments_dir: str | None = None
    runtime: str = "openvino"  # or "torch": what runs I3D's forward on the CPU

    def to_dict(self) -> dict[str, Any]:
        return {"clip": CLIP, "size": SIZE}


def load_i3d(options: FvdOptions) -> Any:
    """cd-fvd's InceptionI3d with the verified ``i3d_pretrained_400.pt``, in eval mode on the CPU."""
    from cdfvd.third_party.i3d.pytorch_i3d import InceptionI3d

    state = weights.load_state("i3d", options.weights)
    net = InceptionI3d(DIMS, in_channels=3)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise TalkbenchError(f"FVD: the i3d weights file is not cd-fvd's InceptionI3d ({first})") from None
    return net.eval()


def i3d(options: FvdOptions, cache: Path) -> Callable[[Any], np.ndarray]:
    """I3D as a function from a (B, 3, 16, 224, 224) float32 batch to its (B, 400) float64 logits (cd-fvd's
    ``get_i3d_logits``), built once per process and setting; OpenVINO's IR is converted once into ``cache``."""
    openvino = use_openvino(options.runtime, options.device, cache)
    key = (str(weights.weight_path("i3d", options.weights)), options.device, str(cache) if openvino else "torch")
    if key not in _NETS:
        import torch

        if openvino:
            shape = (-1, 3, CLIP, SIZE, SIZE)
            net = openvino_network(cache, "i3d", weights.verified_sha256("i3d", options.weights),
                                   lambda: load_i3d(options), (torch.zeros(1, *shape[1:]),), [shape])
            _NETS[key] = lambda batch: net(batch.numpy()).astype(np.float64)
        else:
            module = load_i3d(options).to(options.device, memory_format=torch.channels_last_3d)

            def forward(batch: Any) -> np.ndarray:
                with torch.no_grad():
                    batch = batch.to(options.device).contiguous(memory_format=torch.channels_last_3d)
                    return module(batch).double().cpu().numpy()

            _NETS[key] = forward
    return _NETS[key]


def resized(clips: np.ndarray) -> Any:
    """(B, 16, H, W, 3) uint8 clips -> (B, 3, 16, 224, 224) I3D input, cd-fvd's ``preprocess_i3d``."""
    from cdfvd.third_party.i3d.utils import preprocess_i3d

    return preprocess_i3d(clips)


def cd_fvd_stats(moments: Moments) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance normalised by n (cd-fvd's ``FeatureStats.get_mean_cov``)."""
    mu = moments.total / moments.count
    sigma = moments.outer / moments.count - np.outer(mu, mu)
    return mu, (sigma + sigma.T) / 2


def fvd(generated: Moments, reference: Moments) -> float:
    mu_g, sigma_g = cd_fvd_stats(generated)
    mu_r, sigma_r = cd_fvd_stats(reference)
    return frechet_distance(mu_g, sigma_g, mu_r, sigma_r)


class FvdMetric(StreamMetric):
    kinds: ClassVar[dict[str, tuple[str, bool | None]]] = {"fvd": ("", False)}

    def __init__(self, media: CaseMedia, options: FvdOptions | None = None) -> None:
        from ..fid.sampling import Sampling
        from .fid import SegmentFrames

        self.media = media
        self.options = options = options or FvdOptions()
        self._check_length()
        self.net = i3d(options, media.cache)
        self.timings: dict[str, float] = {}
        self._timer = StageTimer()
        self._moments = {side: Moments.zeros(DIMS) for side in SIDES}
        self._left = dict.fromkeys(SIDES, 0)  # frames after the last whole clip
        self._pending: dict[str, list[Any]] = {side: [] for side in SIDES}  # resized clips awaiting a forward
        self._frames = {side: SegmentFrames(media, side, Sampling(), CLIP, lambda b, side=side: self._add(side, b))
                        for side in SIDES}
        with self._timer.stage("cache"):
            cached, self._reference_path = moments_cache.lookup(
                self._cache_dir(), media.reference.path, self._frames["reference"].key(), self._protocol())
        self._reference_cached = cached is not None
        if cached is not None:
            self._moments["reference"] = cached
            del self._frames["reference"]
        self.sides = frozenset(self._frames)

    def _check_length(self) -> None:
        """A generated video whose header says the segment holds less than one clip fails before decoding."""
        info = self.media.generated
        start, end = segment_window(self.media, "generated")
        end = info.duration if end is None else min(end, info.duration or end)
        if info.fps and end is not None and round((end - max(start, 0.0)) * info.fps) < CLIP:
            raise TalkbenchError(f"{info.path}: FVD needs at least {CLIP} frames (one clip) in the evaluated "
                                 f"segment, got {max(round((end - max(start, 0.0)) * info.fps), 0)}")

    def _protocol(self) -> dict[str, Any]:
        spec = weights.spec_for("i3d")
        return {"network": f"cd-fvd {metadata.version('cd-fvd')} InceptionI3d(400), logits averaged over time",
                "weights": f"{spec.filename} git blob {spec.git_blob}", "clip": CLIP, "clips": "consecutive, "
                "non-overlapping, each video's own frames in the segment; the remainder is not used",
                "resize": f"bilinear to {SIZE}x{SIZE}, [-1, 1] (cdfvd preprocess_i3d)"}

    def protocol(self) -> dict[str, Any]:
        runner = runtime_described(use_openvino(self.options.runtime, self.options.device, self.media.cache),
                                    self.options.device)
        return {**self._protocol(), "runtime": runner,
                "statistics": "mean and covariance normalised by the clip count (cd-fvd)",
                "distance": "Fréchet distance, eigenvalue route"}

    def update_frame(self, side: str, time: float, frame: av.VideoFrame) -> bool:
        return self._frames[side].push(time, frame)

    def compute(self) -> dict[str, MetricValue]:
        for side, frames in self._frames.items():
            frames.flush()
            self._forward(side)
            if self._moments[side].count == 0:
                path = getattr(self.media, side).path
                raise TalkbenchError(f"{path}: FVD needs at least {CLIP} frames (one clip) in the evaluated segment, "
                                     f"got {frames.used}")
        with self._timer.stage("cache"):
            paths = {"reference": str(self._save_reference()), "generated": self._save_generated()}
        value = fvd(self._moments["generated"], self._moments["reference"])
        self.timings = dict(self._timer.seconds)
        details = {"clips": {side: self._moments[side].count for side in SIDES},
                   "unused_frames": {side: self._left[side] for side in self._frames},
                   "reference_cached": self._reference_cached, "moments": paths}
        return {"fvd": MetricValue(value, [], details)}

    def _add(self, side: str, batch: np.ndarray) -> None:
        if len(batch) < CLIP:  # the segment's tail: not a whole clip
            self._left[side] = len(batch)
            return
        with self._timer.stage("resize"):
            self._pending[side].append(resized(batch[None]))
        if len(self._pending[side]) >= BATCH:
            self._forward(side)

    def _forward(self, side: str) -> None:
        if self._pending[side]:
            with self._timer.stage("i3d forward"):
                import torch

                features = self.net(torch.cat(self._pending[side]))
            self._pending[side] = []
            self._moments[side].add(features)

    def _cache_dir(self) -> Path:
        return self.media.cache / "fvd"

    def _save_reference(self) -> Path:
        if not self._reference_cached:
            moments = self._moments["reference"]
            moments_cache.cached_moments(self._cache_dir(), self.media.reference.path,
                                         self._frames["reference"].key(), self._protocol(), lambda: moments)
        return self._reference_path

    def _save_generated(self) -> str | None:
        if self.options.moments_dir is None:
            return None
        description = moments_cache.describe(self.media.generated.path, self._frames["generated"].key(),
                                             self._protocol())
        name = f"fvd-{self.media.case.id}-{hashlib.sha256(description.encode()).hexdigest()[:12]}.npz"
        path = Path(self.options.moments_dir) / name
        moments_cache.write(path, self._moments["generated"], description)
        return str(path)
