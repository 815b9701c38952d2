"""Inception Score of each case's generated frames, as pyiqa's ``inception_score`` computes it.

The generated video's own frames in the evaluated segment go through pyiqa's FID Inception (resize
``legacy_tensorflow`` by default, as pyiqa's IS) to the 1008-way logits without bias; the frames, in
order, are cut into ``splits`` chunks as ``torch.chunk`` cuts them (size ceil(N / splits)), and
IS = mean over chunks of exp(mean KL(p(y|x) ‖ p(y))). The logits wait in an anonymous temporary file, not
in memory, until the frame count is known, so memory stays flat in the clip length.
"""

from __future__ import annotations

import math
import tempfile
from typing import Any, ClassVar

import av
import numpy as np

from ..errors import TalkbenchError
from ..fid.features import Sampling
from ..timing import StageTimer
from .base import CaseMedia, MetricValue, StreamMetric
from .fid import InceptionOptions, SegmentFrames, inception

SPLITS = 10
_READ = 256  # logit rows per read-back


class InceptionScoreMetric(StreamMetric):
    kinds: ClassVar[dict[str, tuple[str, bool | None]]] = {"inception_score": ("", True)}
    sides = frozenset({"generated"})

    def __init__(self, media: CaseMedia, options: InceptionOptions | None = None) -> None:
        self.media = media
        self.options = options = options or InceptionOptions()
        self.sampling = Sampling.parse(options.sampling)
        self.net = inception(options, options.resize or "legacy_tensorflow")
        self.timings: dict[str, float] = {}
        self._timer = StageTimer()
        self._logits = tempfile.TemporaryFile()
        self._classes = 0
        self._frames = SegmentFrames(media, "generated", self.sampling, options.batch, self._add)

    def protocol(self) -> dict[str, Any]:
        return {**self.net.protocol(), "sampling": self.sampling.name, "splits": SPLITS,
                "score": "pyiqa inception_score: softmax of the unbiased logits, torch.chunk splits, "
                         "mean of exp(mean KL) over splits"}

    def update_frame(self, side: str, time: float, frame: av.VideoFrame) -> bool:
        return self._frames.push(time, frame)

    def compute(self) -> dict[str, MetricValue]:
        self._frames.flush()
        n = self._frames.used
        if n < 2:
            raise TalkbenchError(f"{self.media.generated.path}: Inception Score needs at least 2 frames in the "
                                 f"evaluated segment (sampling {self.sampling.name}), got {n}")
        with self._timer.stage("score"):
            scores = split_scores(self._read_back(), n, self._classes)
        self._logits.close()
        self.timings = dict(self._timer.seconds)
        details = {"std": float(np.std(scores)), "split_scores": scores, "frames": n}
        if n < SPLITS:
            details["warnings"] = [f"{n} frames: fewer than the {SPLITS} splits, so {len(scores)} split(s)"]
        return {"inception_score": MetricValue(float(np.mean(scores)), [], details)}

    def _add(self, batch: np.ndarray) -> None:
        with self._timer.stage("inception forward"):
            logits = self.net.logits(self.net.features(batch))
        if not np.isfinite(logits).all():
            raise TalkbenchError("Inception logits contain NaN or inf: the weights file is probably corrupt; "
                                 "fetch and verify the Inception weights again")
        self._classes = logits.shape[1]
        self._logits.write(np.ascontiguousarray(logits, dtype=np.float32).tobytes())

    def _read_back(self) -> Any:
        self._logits.seek(0)
        while chunk := self._logits.read(_READ * self._classes * 4):
            yield np.frombuffer(chunk, dtype=np.float32).reshape(-1, self._classes)


def split_scores(logits: Any, n: int, classes: int, splits: int = SPLITS) -> list[float]:
    """IS per split of ``n`` frames' logits (an iterable of row batches, in frame order), in one pass:
    mean KL(p ‖ q) over a split = mean(Σ p log p) − Σ q log q, with q the split's mean p."""
    size = math.ceil(n / splits)
    count = math.ceil(n / size)
    sum_p = np.zeros((count, classes))
    sum_plogp = np.zeros(count)
    rows = np.zeros(count)
    start = 0
    for batch in logits:
        x = batch.astype(np.float64)
        log_p = x - x.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        p = np.exp(log_p)
        which = (start + np.arange(len(x))) // size
        np.add.at(sum_p, which, p)
        np.add.at(sum_plogp, which, (p * log_p).sum(axis=1))
        np.add.at(rows, which, 1)
        start += len(x)
    q = sum_p / rows[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q_log_q = np.where(q > 0, q * np.log(q), 0.0).sum(axis=1)
    return [float(v) for v in np.exp(sum_plogp / rows - q_log_q)]
