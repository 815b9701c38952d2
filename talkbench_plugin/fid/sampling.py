"""Which frames the Inception metrics use (``Sampling``) and their resize modes: light, no pyiqa."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkbench_plugin.errors import TalkbenchError

RESIZE_MODES = {
    "clean": "PIL bicubic per channel on float32, clipped to 0..255, to 299x299; (x - 128) / 128",
    "legacy_tensorflow": "TF1 bilinear (torch-fidelity port) to 299x299; (x - 128) / 128",
    "legacy_pytorch": "torch bilinear, align_corners=False, to 299x299; 2 * x / 255 - 1",
}


@dataclass(frozen=True)
class Sampling:
    """Which frames of a segment enter the statistics: all, every ``stride``-th, or ``count`` evenly spaced."""

    stride: int = 1
    count: int | None = None

    def __post_init__(self) -> None:
        if self.stride < 1 or (self.count is not None and (self.count < 2 or self.stride != 1)):
            raise TalkbenchError(f"FID sampling: stride >= 1, or count >= 2 alone; got {self!r}")

    @classmethod
    def parse(cls, text: str) -> Sampling:
        """``every``, ``stride=K`` or ``count=N`` (the form ``name`` writes)."""
        key, _, value = text.partition("=")
        try:
            if key == "every" and not value:
                return cls()
            if key in ("stride", "count"):
                return cls(**{key: int(value)})
        except ValueError:
            pass
        raise TalkbenchError(f"FID sampling {text!r}: use 'every', 'stride=K' or 'count=N'")

    @property
    def name(self) -> str:
        if self.count is not None:
            return f"count={self.count}"
        return "every" if self.stride == 1 else f"stride={self.stride}"

    def mask(self, start: int, n: int, total: int | None) -> np.ndarray:
        """Which of the frames ``start .. start + n - 1`` of a ``total``-frame segment are used."""
        index = np.arange(start, start + n)
        if self.count is None:
            return index % self.stride == 0
        if total is None:
            raise TalkbenchError(f"FID sampling {self.name} needs the segment's frame count")
        if self.count >= total:
            return np.ones(n, dtype=bool)
        return np.isin(index, np.arange(self.count) * total // self.count)
