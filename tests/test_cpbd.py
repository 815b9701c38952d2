"""CPBD inside the engine against the cpbd package run the way its README runs it: a gray frame dump by
FFmpeg, ``imread(path, mode='L')``, ``cpbd.compute`` per file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cpbd
import numpy as np
import pytest
from imageio.v2 import imread
from videos import CLIPS, moving_frames, write_video

from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.errors import TalkbenchError
from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
from talkbench_plugin.metrics.cpbd import CpbdOptions


def sharp_and_soft(n: int, size: int, seed: int) -> np.ndarray:
    """Blocky frames (sharp edges) that blur a little more every frame, so CPBD changes per frame."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (n, size // 16, size // 16, 3)).astype(np.uint8)
    frames = blocks.repeat(16, axis=1).repeat(16, axis=2)
    for i in range(1, n):
        kernel = np.ones(i + 1) / (i + 1)
        frames[i] = np.apply_along_axis(lambda r, k=kernel: np.convolve(r, k, "same"), 1, frames[i]).astype(np.uint8)
    return frames


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cpbd")
    return {"ref": write_video(root / "ref.mp4", moving_frames(8, 128, 128, seed=1), 25),
            "gen": write_video(root / "gen.mp4", sharp_and_soft(8, 128, 2), 25, options={"crf": "18"}),
            "tiny": write_video(root / "tiny.mp4", moving_frames(8, 48, 48, seed=3), 25)}


def evaluate(ref: Path, gen: Path, tmp_path: Path, segment: Segment | None = None, **options: str) -> dict:
    case = Case(Speaker("s", "en", ref), Pipeline("P", "dubbing", "x"), gen, segment or Segment())
    return evaluate_case(case, ["psnr", "cpbd"], tmp_path / "cache", options={"cpbd": CpbdOptions(**options)})


def reference_cpbd(video: Path, folder: Path) -> list[float]:
    """The package's way: ffmpeg dumps gray frames, each read back with mode 'L' and scored."""
    folder.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-pix_fmt", "gray", str(folder / "%04d.png")],
                   check=True)
    return [float(cpbd.compute(imread(p, mode="L"))) for p in sorted(folder.glob("*.png"))]


def test_cpbd_agrees_with_the_package_per_frame(videos: dict[str, Path], tmp_path: Path) -> None:
    entry = evaluate(videos["ref"], videos["gen"], tmp_path)["metrics"]["cpbd"]
    expected = reference_cpbd(videos["gen"], tmp_path / "frames")
    assert len(entry["per_frame"]) == len(expected) == 8
    assert len(set(np.round(expected, 6))) > 2  # the frames really differ in sharpness
    np.testing.assert_allclose(entry["per_frame"], expected, rtol=0, atol=1e-6)
    assert entry["value"] == pytest.approx(np.mean(expected), abs=1e-6)
    assert entry["higher_is_better"] is True
    assert entry["protocol"]["sampling"] == "every" and entry["protocol"]["summary"] == "mean over frames"


def test_cpbd_stride_and_segment(videos: dict[str, Path], tmp_path: Path) -> None:
    expected = reference_cpbd(videos["gen"], tmp_path / "frames")
    strided = evaluate(videos["ref"], videos["gen"], tmp_path, sampling="stride=3")["metrics"]["cpbd"]
    np.testing.assert_allclose(strided["per_frame"], expected[::3], atol=1e-6)
    assert strided["protocol"]["frames"] == "every 3-th frame of the evaluated segment"
    part = evaluate(videos["ref"], videos["gen"], tmp_path, Segment(0.08, 0.2))["metrics"]["cpbd"]
    np.testing.assert_allclose(part["per_frame"], expected[2:5], atol=1e-6)


def test_cpbd_bad_input_is_its_own_error(videos: dict[str, Path], tmp_path: Path) -> None:
    record = evaluate(videos["tiny"], videos["tiny"], tmp_path)
    assert record["error"] is None and record["metrics"]["psnr"]["value"] == float("inf")
    assert "CPBD needs frames of at least 64x64" in record["metrics"]["cpbd"]["error"]
    assert str(videos["tiny"]) in record["metrics"]["cpbd"]["error"]
    with pytest.raises(TalkbenchError, match="stride=K"):
        CpbdOptions("stride=0")


def cpbd_inputs() -> list[np.ndarray]:
    """Gray frames that reach every branch of the package's walk: real faces, noise, flat, a hard step, long
    ramps (walks past the 101-step cap) both ways, and a width that is no multiple of the block."""
    x = np.arange(320)
    ramp = np.tile(np.where(x < 160, x * 0.7, (320 - x) * 0.7), (128, 1)).astype(np.uint8)
    step = np.zeros((128, 128), np.uint8)
    step[:, 64:] = 255
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, (130, 200)).astype(np.uint8), np.zeros((128, 128), np.uint8), step, ramp,
              ramp[:, ::-1].copy(), (ramp + rng.normal(0, 2, ramp.shape)).clip(0, 255).astype(np.uint8),
              sharp_and_soft(3, 160, 5)[2, :, :, 0]]
    clip = CLIPS / "may_5s.mp4"
    if clip.is_file():
        import av

        with av.open(str(clip)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in (0, 50):
                    frames.append(frame.to_ndarray(format="gray"))
                if i >= 50:
                    break
    return frames


def test_the_vectorized_steps_equal_cpbd_compute() -> None:
    from talkbench_plugin.metrics.cpbd_vectorized import compute

    values = []
    for image in cpbd_inputs():
        values.append(compute(image))
        assert values[-1] == pytest.approx(cpbd.compute(image), abs=1e-6), image.shape
    assert len(set(np.round(values, 4))) >= 4  # the inputs really differ
