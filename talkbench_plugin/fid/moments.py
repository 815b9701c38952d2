"""Running first and second moments of feature vectors: memory O(d²), flat in the number of frames."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from talkbench_plugin.errors import TalkbenchError


class GaussianStats(NamedTuple):
    """Mean, unbiased covariance (``np.cov``'s n - 1) and sample count of a feature set."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int


@dataclass
class Moments:
    """Float64 sum and sum of outer products of features; sets pool by ``+``."""

    count: int
    total: np.ndarray  # (d,)
    outer: np.ndarray  # (d, d)

    @classmethod
    def zeros(cls, dims: int) -> Moments:
        return cls(0, np.zeros(dims), np.zeros((dims, dims)))

    @property
    def dims(self) -> int:
        return self.total.shape[0]

    def add(self, features: np.ndarray) -> None:
        """Accumulate an (N, d) batch; non-finite features are an error (corrupt weights or input)."""
        feats = np.asarray(features, dtype=np.float64)
        if feats.ndim != 2 or feats.shape[1] != self.dims:
            raise ValueError(f"expected (N, {self.dims}) features, got {feats.shape}")
        if not np.isfinite(feats).all():
            raise TalkbenchError(
                "Inception features contain NaN or inf: the weights file is probably corrupt; "
                "fetch and verify the Inception weights again"
            )
        self.count += feats.shape[0]
        self.total += feats.sum(axis=0)
        self.outer += feats.T @ feats

    def __add__(self, other: Moments) -> Moments:
        if other.dims != self.dims:
            raise ValueError(f"cannot pool {self.dims}-d and {other.dims}-d moments")
        return Moments(self.count + other.count, self.total + other.total, self.outer + other.outer)

    def compute(self, label: str = "feature set") -> GaussianStats:
        """Mean and covariance; a set needs at least 2 samples for a covariance."""
        n = self.count
        if n < 2:
            raise TalkbenchError(f"{label}: FID needs at least 2 frames, got {n}")
        mu = self.total / n
        sigma = (self.outer - n * np.outer(mu, mu)) / (n - 1)
        return GaussianStats(mu, (sigma + sigma.T) / 2, n)
