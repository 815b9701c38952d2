"""Options of the Inception families (``metrics.fid``, ``metrics.inception_score``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import TalkbenchError
from ..fid.sampling import RESIZE_MODES, Sampling


@dataclass(frozen=True)
class InceptionOptions:
    """The named settings of the Inception metrics (FID, Inception Score), recorded with their results."""

    sampling: str = "every"  # Sampling.parse: every | stride=K | count=N
    resize: str | None = None  # None: the family's default (pyiqa's): FID "clean", IS "legacy_tensorflow"
    weights: str | None = None  # weights directory (default: $TALKBENCH_WEIGHTS or the cache's)
    device: str = "cpu"
    batch: int = 32
    moments_dir: str | None = None  # where generated-side FID moments go for group pooling (None: not kept)

    def __post_init__(self) -> None:
        Sampling.parse(self.sampling)
        if self.resize is not None and self.resize not in RESIZE_MODES:
            raise TalkbenchError(f"Inception resize must be one of {', '.join(RESIZE_MODES)}, not {self.resize!r}")
        if self.batch < 1:
            raise TalkbenchError(f"Inception batch must be at least 1, not {self.batch}")

    def to_dict(self) -> dict[str, Any]:
        return {"sampling": self.sampling, "resize": self.resize}
