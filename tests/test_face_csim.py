"""CSIM against insightface itself: the same frames and keypoints through ``ArcFaceONNX.get`` (norm_crop,
its preprocessing, onnxruntime) and ``compute_sim``, with a deterministic random IResNet ONNX graph; and
CSIM's errors. The landmarks are given (FAN's agreement is tests/test_face_lmd.py's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pinned import pin
from videos import moving_frames, write_video

from talkbench_plugin import weights
from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.face.landmarks import FrameFaces
from talkbench_plugin.face.random_arcface import R18, write_random_arcface
from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
from talkbench_plugin.media.still import png
from talkbench_plugin.metrics import face
from talkbench_plugin.metrics.base import FramePairs
from talkbench_plugin.metrics.face import IdentitySimilarity
from talkbench_plugin.options.face import FaceOptions


@pytest.fixture(scope="session")
def arcface_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("arcface-weights")
    write_random_arcface(folder / weights.spec_for("arcface").filename, seed=0, layers=R18)
    return folder


@pytest.fixture
def arcface_weights(arcface_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pin(monkeypatch, "arcface", arcface_dir / weights.spec_for("arcface").filename)
    return arcface_dir


def _landmarks(seed: int) -> np.ndarray:
    """68 points of a face in a 128x128 frame, moved a little by ``seed``."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(30, 100, (68, 2))
    points[36:42] = [40, 52] + rng.normal(0, 2, (6, 2))
    points[42:48] = [86, 50] + rng.normal(0, 2, (6, 2))
    points[30], points[48], points[54] = [63, 76] + rng.normal(0, 2, 2), [46, 96], [82, 97]
    return points.astype(np.float32)


class GivenLandmarks:
    """A landmarker that finds the face of every frame at ``_landmarks(frame's first pixel)``."""

    def landmarks(self, frames: np.ndarray, where: list[str]) -> FrameFaces:
        points = np.stack([_landmarks(int(f[0, 0, 0])) for f in frames])
        return FrameFaces(points, np.zeros((len(frames), 5)))

    def protocol(self) -> dict:
        return {}


def _pairs(ref: np.ndarray, gen: np.ndarray) -> FramePairs:
    import av

    def frames(rgb: np.ndarray) -> list:
        return [av.VideoFrame.from_ndarray(f, format="rgb24") for f in rgb]

    return FramePairs(frames(ref), frames(gen), [i / 25 for i in range(len(ref))])


def _insightface(model, image: np.ndarray) -> np.ndarray:
    """insightface's embedding of an RGB image's face, its 5 keypoints taken from the 68 as the spec says."""
    from insightface.app.common import Face

    points = _landmarks(int(image[0, 0, 0]))
    kps = np.stack([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]])
    return model.get(np.ascontiguousarray(image[..., ::-1]), Face(kps=kps))


@pytest.mark.parametrize("mode", ["dubbing", "one-shot"])
def test_csim_agrees_with_insightface(arcface_weights: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                      mode: str) -> None:
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    options = FaceOptions(weights=str(arcface_weights))
    monkeypatch.setitem(face._LANDMARKERS, options, GivenLandmarks())
    frames = moving_frames(5, 128, 128, seed=2)
    source = tmp_path / "source.png"
    source.write_bytes(png(frames[4]))
    speaker = Speaker("spk", "en", tmp_path / "ref.mp4", image=source)
    case = Case(speaker, Pipeline("p", mode), tmp_path / "gen.mp4", Segment())
    metric = IdentitySimilarity(case, options)
    for batch in ((frames[:2], frames[2:4]), (frames[2:3], frames[:1])):  # two batches, as the engine sends
        metric.update(_pairs(*batch))
    value = metric.compute()

    model_path = arcface_weights / weights.spec_for("arcface").filename
    ref = [frames[4]] * 3 if mode == "one-shot" else [frames[0], frames[1], frames[2]]
    gen = [frames[2], frames[3], frames[0]]
    model = ArcFaceONNX(model_file=str(model_path))
    expected = [model.compute_sim(_insightface(model, r), _insightface(model, g)) for r, g in zip(ref, gen)]
    np.testing.assert_allclose(value.per_frame, expected, rtol=1e-4)
    assert value.value == pytest.approx(np.mean(expected), rel=1e-4)
    assert max(expected) - min(expected) > 0.01  # random weights still tell the faces apart
    assert value.details["identity_source"] == (f"the source image {source}" if mode == "one-shot"
                                                else "the aligned reference frames")


def test_one_shot_without_identity_image(tmp_path: Path) -> None:
    """A one-shot case whose speaker has no source image: CSIM's error says what to set; PSNR goes on."""
    video = write_video(tmp_path / "ref.mp4", moving_frames(3, 128, 128))
    case = Case(Speaker("spk", "en", video), Pipeline("sadtalker", "one-shot"), video, Segment())
    record = evaluate_case(case, ["psnr", "csim"], tmp_path / "cache",
                           options={"face": FaceOptions(weights=str(tmp_path / "weights"))})
    assert record["error"] is None
    assert record["metrics"]["psnr"]["value"] == float("inf")
    assert record["metrics"]["csim"] == {
        "value": None, "error": "csim: speaker spk has no identity image for the one-shot pipeline sadtalker; set "
                               "speakers.spk.image in the manifest (the source image the pipeline animates)"}


def test_face_metrics_in_the_engine_and_tables(arcface_weights: Path, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """The reference calibration through evaluate_case: LMD 0 and CSIM 1 on identical frames, one landmark
    pass per batch and side for the three metrics, protocols recorded, LMD and CSIM columns in the table."""
    from talkbench_plugin.manifest import CALIBRATION
    from talkbench_plugin.reports import per_video

    options = FaceOptions(weights=str(arcface_weights))
    calls = []

    class Counting(GivenLandmarks):
        def landmarks(self, frames: np.ndarray, where: list[str]) -> FrameFaces:
            calls.append(len(frames))
            return super().landmarks(frames, where)

    monkeypatch.setitem(face._LANDMARKERS, options, Counting())
    video = write_video(tmp_path / "ref.mp4", moving_frames(5, 128, 128))
    case = Case(Speaker("spk", "en", video), Pipeline("reference", CALIBRATION), None, Segment())
    record = evaluate_case(case, ["psnr", "lmd", "lmd_face", "csim"], tmp_path / "cache", batch_size=3,
                           options={"face": options})
    assert record["error"] is None, record
    metrics = record["metrics"]
    assert metrics["lmd"]["value"] == metrics["lmd_face"]["value"] == 0.0
    assert metrics["csim"]["value"] == pytest.approx(1.0, abs=1e-6)
    assert len(metrics["csim"]["per_frame"]) == 5
    assert calls == [3, 3, 2, 2]  # two batches × two sides, shared by lmd, lmd_face and csim
    assert metrics["lmd"]["higher_is_better"] is False and metrics["csim"]["higher_is_better"] is True
    assert metrics["lmd"]["unit"] == "px" and metrics["lmd"]["protocol"]["points"] == "48-67 (mouth)"
    assert metrics["csim"]["protocol"]["embedding"]["weights_sha256"] == weights.spec_for("arcface").sha256
    table = per_video([record]).text()
    assert all(column in table for column in ("LMD", "LMD_FACE", "CSIM"))
