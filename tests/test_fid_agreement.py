"""Agreement: talkbench's streaming FID equals pyiqa's own FID on the same frames, on real clips.

Frames are decoded once with PyAV; talkbench streams them in uneven batches through ``InceptionStats``
(reference side through the cache), while pyiqa gets the same frames as lossless PNG folders and runs
``create_metric('fid')`` end to end. Both load the same random-weights file in the official format.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
import pyiqa
import pytest
import torch
from PIL import Image
from pyiqa.utils import download_util
from videos import CLIPS

from talkbench_plugin.fid.cache import cached_moments
from talkbench_plugin.fid.features import InceptionNet, InceptionStats
from talkbench_plugin.fid.frechet import FidResult, fid
from talkbench_plugin.fid.moments import GaussianStats, Moments

GENERATED, REFERENCE = CLIPS / "may_radnerf_generated.mp4", CLIPS / "may_5s.mp4"
WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
N_FRAMES, STRIDE = 12, 10  # 12 frames spread over 4.8 s of each clip
SEGMENT = [0, N_FRAMES * STRIDE]  # frames, for the cache key

pytestmark = pytest.mark.skipif(not CLIPS.is_dir(), reason=f"real clips not found at {CLIPS}")


def decode(path: Path) -> np.ndarray:
    """Every STRIDE-th frame, N_FRAMES of them, as RGB uint8 (PyAV, swscale rgb24)."""
    with av.open(str(path)) as container:
        frames = container.decode(video=0)
        return np.stack([f.to_ndarray(format="rgb24") for f in itertools.islice(frames, 0, N_FRAMES * STRIDE, STRIDE)])


def stream(stats: InceptionStats, frames: np.ndarray) -> InceptionStats:
    for batch in np.split(frames, [3, 4, 9]):  # uneven batches, as a decode pass delivers them
        stats.update(batch)
    return stats


@pytest.fixture(scope="module")
def frames() -> dict[str, np.ndarray]:
    return {"generated": decode(GENERATED), "reference": decode(REFERENCE)}


@pytest.fixture(scope="module")
def net(weights_file: Path) -> InceptionNet:
    return InceptionNet.from_file(weights_file, batch_size=8)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


class Streamed(NamedTuple):
    result: FidResult
    generated: GaussianStats
    reference: GaussianStats


@pytest.fixture(scope="module")
def streamed(frames: dict[str, np.ndarray], net: InceptionNet, cache_dir: Path) -> Streamed:
    """talkbench's FID, with the reference moments computed through an empty cache."""
    generated = stream(InceptionStats(net, label=GENERATED.name), frames["generated"]).compute()
    reference = InceptionStats(net, label=REFERENCE.name)
    moments, hit = cached_moments(
        cache_dir, REFERENCE, SEGMENT, reference.protocol(), lambda: stream(reference, frames["reference"]).moments
    )
    assert not hit
    return Streamed(fid(generated, moments.compute()), generated, moments.compute())


@pytest.fixture(scope="module")
def pyiqa_fid(frames: dict[str, np.ndarray], weights_file: Path, tmp_path_factory: pytest.TempPathFactory) -> float:
    """pyiqa's FID of the same frames written losslessly to two PNG folders."""
    root = tmp_path_factory.mktemp("png")
    for side, clip in frames.items():
        (root / side).mkdir()
        for i, frame in enumerate(clip):
            Image.fromarray(frame).save(root / side / f"{i:05d}.png")
        assert np.array_equal(np.asarray(Image.open(root / side / "00000.png")), clip[0])

    def no_download(url: str, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"pyiqa tried to download {url}")

    with pytest.MonkeyPatch.context() as patch:
        # pyiqa finds the official file name in its cache directory and loads it instead of downloading
        patch.setattr(download_util, "DEFAULT_CACHE_DIR", str(weights_file.parent))
        patch.setattr(download_util, "download_url_to_file", no_download)
        metric = pyiqa.create_metric("fid", device=torch.device("cpu"))
        return float(
            metric(str(root / "generated"), str(root / "reference"), num_workers=0, batch_size=8, verbose=False)
        )


@pytest.mark.filterwarnings(
    "ignore::UserWarning:torchvision",  # pyiqa's network build
    "ignore:The `disp` argument:DeprecationWarning",  # pyiqa's sqrtm call
    "ignore:Matrix is singular:scipy.linalg.LinAlgWarning",  # pyiqa's sqrtm on a rank-deficient product
)
def test_streaming_fid_equals_pyiqa_fid_on_png_folders(streamed: Streamed, pyiqa_fid: float) -> None:
    result = streamed.result
    assert pyiqa_fid > 0
    assert result.value == pytest.approx(pyiqa_fid, rel=1e-3)
    assert (result.n_generated, result.n_reference) == (N_FRAMES, N_FRAMES)
    assert len(result.warnings) == 2 and "fewer than the 2048 feature dimensions" in result.warnings[0]


def test_reference_against_itself_is_zero(streamed: Streamed) -> None:
    assert abs(fid(streamed.reference, streamed.reference).value) < 1e-6 * streamed.result.value


def test_cached_reference_gives_identical_fid(net: InceptionNet, cache_dir: Path, streamed: Streamed) -> None:
    def recompute() -> Moments:
        raise AssertionError("reference moments recomputed despite the cache")

    protocol = InceptionStats(net).protocol()
    moments, hit = cached_moments(cache_dir, REFERENCE, SEGMENT, protocol, recompute)
    assert hit
    assert fid(streamed.generated, moments.compute()).value == streamed.result.value
