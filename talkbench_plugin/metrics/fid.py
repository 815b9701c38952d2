"""FID of each case, as a stream metric: the generated video's native frames against its speaker's reference.

Each side's own frames (native size, decode order) inside the evaluated segment (the generated video's
time + the case's offset on the reference timeline) go through pyiqa's FID Inception (``fid.features``).
The reference side's moments come from the content-keyed cache when they are there (then the reference is
not decoded at all), else they are computed from the stream and cached. The generated side's moments are
saved under ``moments_dir`` (the run's directory) so that the controller can pool a group's frames
(``fid.groups``); the record carries both files' paths, not the matrices.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import av
import numpy as np

from .. import weights
from ..errors import TalkbenchError
from ..fid import cache as fid_cache
from ..fid.features import DIMS, InceptionNet, InceptionStats, Sampling
from ..fid.frechet import fid
from ..fid.moments import Moments
from ..options.inception import InceptionOptions
from ..timing import StageTimer
from .base import CaseMedia, MetricValue, StreamMetric, segment_window

SIDES = ("reference", "generated")
_NETS: dict[tuple[str, str, str], InceptionNet] = {}


def inception(options: InceptionOptions, resize: str) -> InceptionNet:
    """pyiqa's FID Inception with the verified weights, loaded once per process and setting."""
    key = (str(weights.weight_path("inception", options.weights)), resize, options.device)
    if key not in _NETS:
        state = weights.load_state("inception", options.weights)
        _NETS[key] = InceptionNet(state, weights.spec_for("inception").sha256 or "", mode=resize,
                                  device=options.device, batch_size=options.batch)
    return _NETS[key]


class SegmentFrames:
    """One video's frames inside the case's evaluated segment, sampled and handed on as RGB batches.

    ``push`` takes frames in decode order with their time on the video's own timeline and returns False
    past the segment's end; ``consume`` gets (N, H, W, 3) uint8 batches of the sampled frames. A
    TalkbenchError from ``consume`` (e.g. NaN features) stops the stream and waits in ``error`` for the
    metric's ``compute``: one metric's problem must not end the case's others.
    """

    def __init__(self, media: CaseMedia, side: str, sampling: Sampling, batch: int,
                 consume: Callable[[np.ndarray], None]) -> None:
        info = getattr(media, side)
        self.path = Path(info.path)
        self.start, self.end = segment_window(media, side)
        self.sampling = sampling
        self.total = self._expected_frames(info.fps, info.duration) if sampling.count is not None else None
        self.batch_size = batch
        self.consume = consume
        self.seen = 0  # frames of the segment so far
        self.used = 0  # of them, sampled
        self.error: TalkbenchError | None = None
        self._batch: list[np.ndarray] = []

    def key(self) -> dict[str, float | None]:
        """The range on the video's own timeline, for the cache key."""
        return {"start": self.start, "end": self.end}

    def push(self, time: float, frame: av.VideoFrame) -> bool:
        if self.error is not None:
            return False
        if self.end is not None and time >= self.end - 1e-9:
            self.flush()
            return False
        if time >= self.start - 1e-9:
            if self.sampling.mask(self.seen, 1, self.total)[0]:
                self._batch.append(frame.to_ndarray(format="rgb24"))
                self.used += 1
                if len(self._batch) >= self.batch_size:
                    self.flush()
            self.seen += 1
        return True

    def flush(self) -> None:
        """Hand on the frames waiting; then raise the error a batch met, if any."""
        if self._batch and self.error is None:
            batch, self._batch = np.stack(self._batch), []
            try:
                self.consume(batch)
            except TalkbenchError as exc:
                self.error = exc
        if self.error is not None:
            raise self.error

    def _expected_frames(self, fps: float, duration: float | None) -> int:
        """The segment's frame count from the header (``count=N`` sampling spreads N frames over it)."""
        end = duration if self.end is None else min(self.end, duration or self.end)
        if not fps or end is None:
            raise TalkbenchError(f"{self.path}: FID sampling {self.sampling.name} needs the video's frame rate "
                                 "and duration, which its header does not give; use 'every' or 'stride=K'")
        return max(round((end - max(self.start, 0.0)) * fps), 0)


class FidMetric(StreamMetric):
    kinds: ClassVar[dict[str, tuple[str, bool | None]]] = {"fid": ("", False)}

    def __init__(self, media: CaseMedia, options: InceptionOptions | None = None) -> None:
        self.media = media
        self.options = options = options or InceptionOptions()
        self.sampling = Sampling.parse(options.sampling)
        self.net = inception(options, options.resize or "clean")
        self.timings: dict[str, float] = {}
        self._timer = StageTimer()
        self._moments: dict[str, Moments] = {}
        self._frames = {side: SegmentFrames(media, side, self.sampling, options.batch,
                                            lambda batch, side=side: self._add(side, batch)) for side in SIDES}
        with self._timer.stage("cache"):
            cached, self._reference_path = fid_cache.lookup(
                self._cache_dir(), media.reference.path, self._frames["reference"].key(), self._protocol())
        self._reference_cached = cached is not None
        if cached is not None:
            self._moments["reference"] = cached
            del self._frames["reference"]
        for side in self._frames:
            self._moments[side] = Moments.zeros(DIMS)
        self.sides = frozenset(self._frames)

    def protocol(self) -> dict[str, Any]:
        return {**self._protocol(), "frames": "each video's own frames (native size) in the evaluated segment",
                "distance": "Fréchet distance, eigenvalue route (agrees with pyiqa's sqrtm)"}

    def update_frame(self, side: str, time: float, frame: av.VideoFrame) -> bool:
        return self._frames[side].push(time, frame)

    def compute(self) -> dict[str, MetricValue]:
        for frames in self._frames.values():
            frames.flush()
        stats = {side: self._moments[side].compute(f"{getattr(self.media, side).path} (FID sampling "
                                                   f"{self.sampling.name})") for side in ("generated", "reference")}
        with self._timer.stage("cache"):
            paths = {"reference": str(self._save_reference()), "generated": self._save_generated()}
        with self._timer.stage("frechet distance"):
            result = fid(stats["generated"], stats["reference"])
        self.timings = dict(self._timer.seconds)
        details = {"warnings": result.warnings, "frames": {"generated": result.n_generated,
                                                           "reference": result.n_reference},
                   "reference_cached": self._reference_cached, "moments": paths}
        return {"fid": MetricValue(result.value, [], details)}

    def _add(self, side: str, batch: np.ndarray) -> None:
        with self._timer.stage("inception forward"):
            features = self.net.features(batch)
        self._moments[side].add(features)

    def _protocol(self) -> dict[str, Any]:
        return InceptionStats(self.net, self.sampling).protocol()

    def _cache_dir(self) -> Path:
        return self.media.cache / "fid"

    def _save_reference(self) -> Path:
        if self._reference_cached:
            return self._reference_path
        moments = self._moments["reference"]
        fid_cache.cached_moments(self._cache_dir(), self.media.reference.path, self._frames["reference"].key(),
                                 self._protocol(), lambda: moments)
        return self._reference_path

    def _save_generated(self) -> str | None:
        if self.options.moments_dir is None:
            return None
        description = fid_cache.describe(self.media.generated.path, self._frames["generated"].key(), self._protocol())
        name = f"fid-{self.media.case.id}-{hashlib.sha256(description.encode()).hexdigest()[:12]}.npz"
        path = Path(self.options.moments_dir) / name
        fid_cache.write(path, self._moments["generated"], description)
        return str(path)
