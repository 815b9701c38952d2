"""Fréchet distance: exact agreement with pyiqa's sqrtm route, and the statistics that feed it."""

from __future__ import annotations

import numpy as np
import pytest
from pyiqa.archs.fid_arch import frechet_distance as pyiqa_frechet_distance

from talkbench_plugin.errors import TalkbenchError
from talkbench_plugin.fid.frechet import fid, frechet_distance
from talkbench_plugin.fid.moments import GaussianStats, Moments

DIMS = 2048


def inception_like(rng: np.random.Generator, n: int, mixing: np.ndarray, shift: float) -> np.ndarray:
    """Non-negative, correlated features with a decaying spectrum, like pool3 activations."""
    latent = rng.standard_normal((n, mixing.shape[0]))
    return np.maximum(latent @ mixing + shift + 0.1 * rng.standard_normal((n, mixing.shape[1])), 0.0)


def stats(features: np.ndarray) -> GaussianStats:
    return GaussianStats(features.mean(axis=0), np.cov(features, rowvar=False), len(features))


def random_mixing(dims: int) -> np.ndarray:
    return np.random.default_rng(dims).standard_normal((256, dims)) / 16


# 2048-d full rank costs pyiqa's sqrtm ~20 s; the 2048-d rank-deficient case (real frames, pyiqa's own
# FID) is in test_fid_agreement.py, so the rank-deficient case here is smaller.
@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")  # inside pyiqa
@pytest.mark.parametrize(
    "dims, n_gen, n_ref",
    [(DIMS, 2400, 2200), (512, 300, 150)],
    ids=["2048-d-full-rank", "512-d-rank-deficient"],
)
def test_agrees_with_pyiqa_sqrtm(dims: int, n_gen: int, n_ref: int) -> None:
    rng = np.random.default_rng(n_gen)
    mixing = random_mixing(dims)
    gen = stats(inception_like(rng, n_gen, mixing * 1.1, shift=0.32))
    ref = stats(inception_like(rng, n_ref, mixing, shift=0.30))
    ours = frechet_distance(gen.mu, gen.sigma, ref.mu, ref.sigma)
    theirs = pyiqa_frechet_distance(gen.mu, gen.sigma, ref.mu, ref.sigma)
    assert ours == pytest.approx(theirs, rel=1e-3)
    # the sqrt term matters: without it the distance would be far off
    assert abs(np.trace(gen.sigma) + np.trace(ref.sigma) - theirs) > 0.1 * theirs


def test_same_set_is_zero_even_when_singular() -> None:
    ref = stats(inception_like(np.random.default_rng(1), 100, random_mixing(512), shift=0.3))
    assert abs(frechet_distance(ref.mu, ref.sigma, ref.mu, ref.sigma)) < 1e-8 * np.trace(ref.sigma)


def test_zero_covariance_is_handled() -> None:
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.random(8), rng.random(8)
    sigma2 = np.cov(rng.random((20, 8)), rowvar=False)
    expected = (mu1 - mu2) @ (mu1 - mu2) + np.trace(sigma2)
    assert frechet_distance(mu1, np.zeros((8, 8)), mu2, sigma2) == pytest.approx(expected)


def test_nonfinite_statistics_are_an_error() -> None:
    mu, sigma = np.zeros(4), np.eye(4)
    bad = mu.copy()
    bad[1] = np.nan
    with pytest.raises(TalkbenchError, match="NaN or inf"):
        frechet_distance(bad, sigma, mu, sigma)
    with pytest.raises(TalkbenchError, match="NaN or inf"):
        frechet_distance(mu, sigma, mu, np.full((4, 4), np.inf))


def test_nonfinite_features_are_an_error() -> None:
    moments = Moments.zeros(4)
    with pytest.raises(TalkbenchError, match="NaN or inf"):
        moments.add(np.array([[0.0, 1.0, np.inf, 0.0]]))
    assert moments.count == 0


@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_frames_is_an_error(n: int) -> None:
    moments = Moments.zeros(4)
    moments.add(np.ones((n, 4)))
    with pytest.raises(TalkbenchError, match=f"may.mp4: FID needs at least 2 frames, got {n}"):
        moments.compute("may.mp4")


def test_warns_when_fewer_samples_than_dimensions() -> None:
    rng = np.random.default_rng(3)
    small, large = stats(rng.random((5, 8))), stats(rng.random((50, 8)))
    result = fid(small, large)
    assert result.n_generated == 5 and result.n_reference == 50
    assert len(result.warnings) == 1
    assert "generated set has 5 frames, fewer than the 8 feature dimensions" in result.warnings[0]
    assert fid(large, large).warnings == []
    assert len(fid(small, small).warnings) == 2


def test_streamed_and_pooled_moments_equal_numpy() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.random((37, 16)) + 5.0, rng.random((11, 16))
    streamed = Moments.zeros(16)
    for chunk in np.array_split(a, 5):
        streamed.add(chunk)
    mu, sigma, n = streamed.compute()
    assert n == 37
    np.testing.assert_allclose(mu, a.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(a, rowvar=False), rtol=1e-9, atol=1e-12)

    other = Moments.zeros(16)
    other.add(b)
    pooled = (streamed + other).compute()
    both = np.concatenate([a, b])
    assert pooled.n == 48
    np.testing.assert_allclose(pooled.sigma, np.cov(both, rowvar=False), rtol=1e-9, atol=1e-12)
