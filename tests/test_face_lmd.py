"""LMD against face-alignment itself: the same frames and boxes through ``FaceAlignment`` (its FAN forward,
crop and heatmap decoding) with the same deterministic random 2DFAN4 weights; and LMD's errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pinned import pin
from videos import moving_frames, write_video

from talkbench_plugin import weights
from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.face.landmarks import (
    FaceProblem,
    Landmarker,
    write_random_fan,
)
from talkbench_plugin.manifest import CALIBRATION, Case, Pipeline, Segment, Speaker
from talkbench_plugin.metrics.base import FramePairs
from talkbench_plugin.metrics.face import LandmarkDistance
from talkbench_plugin.options.face import FaceOptions

BOX = np.array([20.0, 24.0, 104.0, 116.0, 0.99])  # one face box in the 128x128 test frames


@pytest.fixture(scope="session")
def fan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fan-weights")
    write_random_fan(folder / weights.spec_for("fan2d").filename, seed=0)
    return folder


@pytest.fixture
def fan_weights(fan_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``fan_dir`` with the registry pinning its random file, as it pins the official one."""
    pin(monkeypatch, "fan2d", fan_dir / weights.spec_for("fan2d").filename)
    return fan_dir


class Boxes:
    """A detector that returns the given boxes for every frame."""

    conf_th = 0.9

    def __init__(self, *boxes: np.ndarray) -> None:
        self.found = np.array(boxes, dtype=np.float64).reshape(-1, 5)

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        return [self.found.copy() for _ in frames]


def _reference_landmarks(fan_path: Path, frames: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    """face-alignment's own ``FaceAlignment`` (loading our file where it would download 2DFAN4) on each frame."""
    import face_alignment
    import torch
    from face_alignment import api
    from face_alignment.detection.sfd import net_s3fd, sfd_detector

    monkeypatch.setattr(api, "load_file_from_url", lambda url, *a, **k: str(fan_path))
    # its default S3FD is built too; it is not used (the box is given), so any weights of its shape do
    monkeypatch.setattr(sfd_detector, "load_state_dict_from_url", lambda url, *a, **k: net_s3fd.s3fd().state_dict())
    fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device="cpu", flip_input=False,
                                      compile=False, dtype=torch.float32)
    return np.stack([fa.get_landmarks_from_image(f, detected_faces=[BOX])[0] for f in frames])


@pytest.mark.parametrize("runtime", ["openvino", "torch"])
def test_landmarks_and_lmd_agree_with_face_alignment(fan_weights: Path, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path, runtime: str) -> None:
    from talkbench_plugin.metrics import face

    frames = moving_frames(2, 128, 128, seed=1)
    options = FaceOptions(min_face_size=32, weights=str(fan_weights), runtime=runtime)
    marker = Landmarker(options, Boxes(BOX), cache=tmp_path)
    assert marker.protocol()["landmarks"]["runtime"].startswith({"openvino": "OpenVINO", "torch": "torch"}[runtime])
    assert (tmp_path / "openvino").is_dir() == (runtime == "openvino")
    monkeypatch.setitem(face._LANDMARKERS, options, marker)
    pairs = _pairs(frames, frames[::-1])
    theirs = _reference_landmarks(fan_weights / weights.spec_for("fan2d").filename, frames, monkeypatch)
    for name, points in (("lmd", slice(48, 68)), ("lmd_face", slice(0, 68))):
        metric = LandmarkDistance(name, None, options)
        metric.update(pairs)
        value = metric.compute()
        expected = np.linalg.norm(theirs[:, points] - theirs[::-1, points], axis=2).mean(axis=1)
        np.testing.assert_allclose(value.per_frame, expected, rtol=1e-4)
        assert value.value == pytest.approx(expected.mean(), rel=1e-4)
        eyes = np.linalg.norm(theirs[:, 36] - theirs[:, 45], axis=1)
        assert value.details["normalised"] == pytest.approx((expected / eyes).mean(), rel=1e-4)
    # one landmark pass per side, shared by lmd and lmd_face, each side as face-alignment finds it
    assert len(pairs.shared) == 2
    np.testing.assert_allclose(pairs.shared["faces", "ref", options].points, theirs, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pairs.shared["faces", "gen", options].points, theirs[::-1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("boxes", "message"), [
    ((), "no face in frame 0"),
    ((BOX, BOX + [60, 0, 60, 0, 0]), "2 faces in frame 0"),
    ((np.array([10.0, 10.0, 30.0, 40.0, 0.95]),), r"face too small in frame 0: 20×30 px, below min_face_size 64"),
])
def test_a_frame_without_one_usable_face_is_named(boxes: tuple, message: str) -> None:
    marker = Landmarker(FaceOptions(), detector=Boxes(*boxes), fan=object())
    with pytest.raises(FaceProblem, match=message):
        marker.landmarks(moving_frames(2, 128, 128), ["frame 0", "frame 1"])


def test_frames_too_small_for_s3fd_are_named() -> None:
    detector = Boxes(BOX)
    detector.scale = 0.25
    marker = Landmarker(FaceOptions(), detector=detector, fan=object())
    with pytest.raises(FaceProblem, match="frame 0 is 96×100 px, too small for S3FD at scale 0.25 .* at least 112 px"):
        marker.landmarks(moving_frames(1, 96, 100), ["frame 0"])


def test_lmd_error_leaves_the_other_metrics(sync_weights: Path, fan_weights: Path, tmp_path: Path) -> None:
    """Random S3FD weights find no face in a texture: LMD's error names the frame and file; PSNR goes on."""
    video = write_video(tmp_path / "ref.mp4", moving_frames(3, 128, 128))
    case = Case(Speaker("spk", "en", video), Pipeline("reference", CALIBRATION), None, Segment())
    options = {"face": FaceOptions(weights=str(sync_weights))}
    fan = weights.spec_for("fan2d").filename
    if not (sync_weights / fan).exists():  # both random files in one directory
        (sync_weights / fan).symlink_to(fan_weights / fan)
    record = evaluate_case(case, ["psnr", "lmd", "lmd_face"], tmp_path / "cache", options=options)
    assert record["error"] is None
    assert record["metrics"]["psnr"]["value"] == float("inf")
    for name in ("lmd", "lmd_face"):
        entry = record["metrics"][name]
        assert entry["value"] is None
        assert entry["error"].startswith(f"{name}: no face in the reference frame at 0.000 s of {video}")


def _pairs(ref: np.ndarray, gen: np.ndarray) -> FramePairs:
    """Aligned pairs of RGB frames, as the engine hands them over."""
    import av

    def frames(rgb: np.ndarray) -> list:
        return [av.VideoFrame.from_ndarray(f, format="rgb24") for f in rgb]

    return FramePairs(frames(ref), frames(gen), [i / 25 for i in range(len(ref))])


def test_registry_pins_face_alignment_and_insightface_files(tmp_path: Path) -> None:
    fan, arcface = weights.spec_for("fan2d"), weights.spec_for("arcface")
    # torch.hub's convention: the file name's suffix is the start of the file's SHA-256
    assert fan.sha256.startswith(fan.filename.removesuffix(".pth.tar").split("-")[1])
    assert fan.urls[0].endswith(fan.filename) and arcface.urls[0].endswith(arcface.filename)
    with pytest.raises(weights.WeightsMissing, match="talkbench weights fetch arcface"):
        weights.verified_path("arcface", tmp_path)
    (tmp_path / arcface.filename).write_bytes(b"not the model")
    with pytest.raises(weights.WeightsError, match=f"is not the pinned {arcface.filename}.*sha256: expected 4c06341c"):
        weights.verified_path("arcface", tmp_path)
