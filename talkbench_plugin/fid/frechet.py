"""Fréchet distance between Gaussians, exact and without ``scipy.linalg.sqrtm``.

Tr sqrt(Σ1 Σ2) is the sum of the square roots of the eigenvalues of Σ1 Σ2, which are those of the
symmetric PSD matrix Lᵀ Σ2 L where Σ1 = L Lᵀ (L from the eigendecomposition of Σ1). Two symmetric
eigendecompositions replace the Schur-based ``sqrtm`` (≈10× faster at 2048-d); eigenvalues that are
negative by rounding are clipped to 0, and Σ1's null space (fewer samples than dimensions) is dropped,
which also shrinks the second problem to rank(Σ1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from talkbench_plugin.errors import TalkbenchError
from talkbench_plugin.fid.moments import GaussianStats


def _check(name: str, arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise TalkbenchError(f"FID: {name} contains NaN or inf; the features it came from are unusable")
    return arr


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr sqrt(Σ1 Σ2) for symmetric PSD Σ1, Σ2, from two symmetric eigendecompositions."""
    w, v = np.linalg.eigh(sigma1)
    keep = w > w.max(initial=0.0) * len(w) * np.finfo(np.float64).eps
    factor = v[:, keep] * np.sqrt(w[keep])
    inner = factor.T @ sigma2 @ factor
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(eig.clip(min=0.0)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 sqrt(Σ1 Σ2)), as pyiqa's ``frechet_distance`` defines it."""
    mu1, mu2 = _check("mean 1", mu1), _check("mean 2", mu2)
    sigma1, sigma2 = _check("covariance 1", sigma1), _check("covariance 2", sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"mismatched shapes: {mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}")
    diff = mu1 - mu2
    tr_covmean = trace_sqrt_product((sigma1 + sigma1.T) / 2, (sigma2 + sigma2.T) / 2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


@dataclass
class FidResult:
    """A FID value with the sample counts behind it and warnings for the report."""

    value: float
    n_generated: int
    n_reference: int
    warnings: list[str] = field(default_factory=list)


def sample_warning(side: str, n: int, dims: int) -> str | None:
    """The warning for a set with fewer samples than feature dimensions, else None."""
    if n >= dims:
        return None
    return (
        f"{side} set has {n} frames, fewer than the {dims} feature dimensions: its covariance is "
        f"singular (rank <= {n - 1}) and FID is biased; compare only FIDs computed from similar frame counts"
    )


def fid(generated: GaussianStats, reference: GaussianStats) -> FidResult:
    """FID of a generated set against a reference set, with sample-size warnings."""
    value = frechet_distance(generated.mu, generated.sigma, reference.mu, reference.sigma)
    dims = generated.mu.shape[0]
    notes = [sample_warning("generated", generated.n, dims), sample_warning("reference", reference.n, dims)]
    return FidResult(value, generated.n, reference.n, [w for w in notes if w])
