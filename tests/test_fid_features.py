"""Inception features: pyiqa's preprocessing and network on streamed frames, sampling, weights loading."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyiqa
import pytest
import torch
from PIL import Image
from pyiqa.archs.fid_arch import FID, ResizeDataset, get_folder_features
from pyiqa.utils import download_util

from talkbench_plugin.errors import TalkbenchError
from talkbench_plugin.fid.features import (
    DIMS,
    RESIZE_MODES,
    InceptionNet,
    InceptionStats,
    Sampling,
    preprocess,
    random_inception_state,
)

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"  # the official file name pyiqa looks for


@pytest.fixture(scope="module")
def net(weights_file: Path) -> InceptionNet:
    return InceptionNet.from_file(weights_file, batch_size=2)


def small_frames(n: int, seed: int = 0) -> np.ndarray:
    """Odd-sized frames: noise (bicubic overshoot, clipping) over a gradient."""
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0, 255, 67)[None, :, None]
    noise = rng.integers(-60, 60, (n, 45, 67, 3))
    return np.clip(gradient + noise, 0, 255).astype(np.uint8)


def write_pngs(frames: np.ndarray, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    files = [str(folder / f"{i:04d}.png") for i in range(len(frames))]
    for frame, file in zip(frames, files, strict=True):
        Image.fromarray(frame).save(file)
    return files


@pytest.mark.parametrize("mode", list(RESIZE_MODES))
def test_preprocess_is_pyiqa_resize_dataset(tmp_path: Path, mode: str) -> None:
    frames = small_frames(3)
    dataset = ResizeDataset(write_pngs(frames, tmp_path), mode=mode, size=(299, 299))
    expected = torch.stack([dataset[i] for i in range(len(dataset))])
    assert torch.equal(preprocess(frames, mode), expected)


@pytest.mark.filterwarnings("ignore::UserWarning:torchvision")  # pyiqa's own network build
def test_features_are_pyiqa_folder_features(
    tmp_path: Path, net: InceptionNet, weights_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = small_frames(5, seed=1)
    write_pngs(frames, tmp_path / "frames")

    def no_download(url: str, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"pyiqa tried to download {url}")

    # pyiqa finds the official file name in its cache directory and loads it instead of downloading
    monkeypatch.setattr(download_util, "DEFAULT_CACHE_DIR", str(weights_file.parent))
    monkeypatch.setattr(download_util, "download_url_to_file", no_download)
    pyiqa_model = FID().model
    expected = get_folder_features(
        str(tmp_path / "frames"),
        pyiqa_model,
        num_workers=0,
        batch_size=3,
        device=torch.device("cpu"),
        mode="clean",
        verbose=False,
    )
    ours = net.features(frames)
    assert ours.shape == (5, DIMS) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    assert np.std(ours, axis=0).mean() > 1e-3  # the features do depend on the frames


class RecordingNet:
    """Stands in for InceptionNet: records which frames (by their first pixel) reach the network."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def features(self, frames: np.ndarray) -> np.ndarray:
        self.seen.extend(int(v) for v in frames[:, 0, 0, 0])
        return np.random.default_rng(len(self.seen)).random((len(frames), DIMS))

    def protocol(self) -> dict[str, str]:
        return {"resize": "stub"}


@pytest.mark.parametrize(
    "sampling, expected",
    [
        (Sampling(), list(range(20))),
        (Sampling(stride=3), [0, 3, 6, 9, 12, 15, 18]),
        (Sampling(count=5), [0, 4, 8, 12, 16]),
        (Sampling(count=7), [0, 2, 5, 8, 11, 14, 17]),
        (Sampling(count=30), list(range(20))),
    ],
    ids=lambda v: v.name if isinstance(v, Sampling) else None,
)
def test_sampling_picks_by_stream_position(sampling: Sampling, expected: list[int]) -> None:
    frames = np.zeros((20, 4, 4, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(20)
    recorder = RecordingNet()
    stats = InceptionStats(recorder, sampling, total_frames=20)  # type: ignore[arg-type]
    for chunk in np.split(frames, [7, 8]):  # uneven batches: 7, 1, 12
        stats.update(chunk)
    assert recorder.seen == expected
    assert stats.compute().n == len(expected)
    assert stats.protocol()["sampling"] == sampling.name


def test_sampling_names_parse_back_and_bad_ones_are_errors() -> None:
    for text in ("every", "stride=4", "count=500"):
        assert Sampling.parse(text).name == text
    for text in ("stride=0", "count=1", "every=2", "frames=3", "stride=x", ""):
        with pytest.raises(TalkbenchError, match="sampling"):
            Sampling.parse(text)
    with pytest.raises(TalkbenchError):
        Sampling(stride=2, count=10)
    stats = InceptionStats(RecordingNet(), Sampling(count=10))  # type: ignore[arg-type]
    with pytest.raises(TalkbenchError, match="needs the segment's frame count"):
        stats.update(np.zeros((3, 4, 4, 3), np.uint8))


def test_too_few_sampled_frames_name_the_video() -> None:
    stats = InceptionStats(RecordingNet(), Sampling(stride=10), label="may.mp4")  # type: ignore[arg-type]
    stats.update(np.zeros((8, 4, 4, 3), np.uint8))
    with pytest.raises(TalkbenchError, match=r"may.mp4 \(sampling stride=10\): FID needs at least 2 frames, got 1"):
        stats.compute()


def test_protocol_records_weights_resize_and_sampling(net: InceptionNet, weights_file: Path) -> None:
    protocol = InceptionStats(net, Sampling(stride=2)).protocol()
    assert protocol["weights_sha256"] == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert protocol["resize"] == "clean" and "bicubic" in protocol["preprocess"]
    assert protocol["sampling"] == "stride=2"
    assert f"pyiqa {pyiqa.__version__}" in protocol["features"]


class NotATensor:
    pass


@pytest.mark.parametrize(
    "content, message",
    [
        ({"fc.weight": NotATensor()}, "cannot load as Inception weights"),  # refused by weights_only
        ([torch.zeros(1)], "not a state dict"),
        ({"fc.weight": torch.zeros(3)}, "not the FID Inception weights"),
        (None, "cannot load as Inception weights"),  # no file at all
    ],
    ids=["pickled-object", "not-a-dict", "wrong-keys", "missing"],
)
def test_bad_weights_files_are_clear_errors(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / WEIGHTS_NAME
    if content is not None:
        torch.save(content, path)
    with pytest.raises(TalkbenchError, match=message) as info:
        InceptionNet.from_file(path)
    assert str(path) in str(info.value)


def test_unknown_resize_mode_is_an_error() -> None:
    with pytest.raises(TalkbenchError, match="resize mode 'bicubic'"):
        InceptionNet({}, "0" * 64, mode="bicubic")


def test_nan_weights_give_a_clear_error_not_a_number() -> None:
    state = random_inception_state(seed=1)
    state["Conv2d_1a_3x3.conv.weight"][0, 0, 0, 0] = float("nan")
    stats = InceptionStats(InceptionNet(state, "nan-weights"))
    with pytest.raises(TalkbenchError, match="NaN or inf"):
        stats.update(small_frames(1))
