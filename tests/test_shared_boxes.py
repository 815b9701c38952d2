"""Lip sync and the face metrics share S3FD's boxes: a frame both see is detected once, and the scores are
those of each metric run alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_face_lmd import fan_dir, fan_weights  # noqa: F401 - fixtures
from videos import moving_frames, write_video

from talkbench_plugin import weights
from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.face.landmarks import Landmarker
from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
from talkbench_plugin.metrics.sync import SyncOptions
from talkbench_plugin.options.face import FaceOptions
from talkbench_plugin.sync import shared_boxes
from talkbench_plugin.sync.faces import S3FDDetector

BOX = np.array([[20.0, 20.0, 140.0, 150.0, 0.99]])
SYNC = ["lse_c", "lse_d", "av_offset"]


class Counting:
    """A detector that finds one face per frame, its box shifted by the frame's mean (so boxes differ by
    frame), and counts the frames it is shown."""

    def __init__(self) -> None:
        self.frames = 0

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        self.frames += len(frames)
        return [BOX + [f.mean() / 255, 0, 0, 0, 0] for f in frames]

    def settings(self) -> dict:
        return {"detector": "counting"}


def test_a_frame_is_detected_once_per_detector_identity() -> None:
    frames = moving_frames(6, 32, 32, seed=3)
    inner = Counting()
    first = shared_boxes.SharedDetector(inner, "s3fd A")
    a = first.detect(frames[:4])
    b = shared_boxes.SharedDetector(inner, "s3fd A").detect(frames[2:])  # frames 2, 3 seen, 4, 5 new
    assert inner.frames == 6
    np.testing.assert_array_equal(np.stack(a[2:]), np.stack(b[:2]))
    shared_boxes.SharedDetector(inner, "s3fd B").detect(frames[:2])  # other weights or settings: detected
    assert inner.frames == 8
    replay = shared_boxes.SharedDetector(inner, "s3fd C", lookup=False)
    replay.detect(frames[:2])
    replay.detect(frames[:2])  # a replay sees every frame in order, and only remembers
    assert inner.frames == 12 and (replay.detected, replay.shared) == (4, 0)
    shared_boxes.SharedDetector(inner, "s3fd C").detect(frames[:2])
    assert inner.frames == 12


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """S3FD (random weights find no face) reports one face per frame, placed by the frame's content, and
    counts the frames; FAN's landmarks are the box's corners and centre (its forward is not what is tested)."""
    counts = {"frames": 0}

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        counts["frames"] += len(frames)
        return [BOX + [f.mean() / 8, 0, 0, 0, 0] for f in frames]

    def fan_points(self, frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = boxes[:, :4].T
        corners = np.stack([x1, y1, x2, y2, (x1 + x2) / 2, (y1 + y2) / 2], axis=1)
        return np.resize(corners, (len(boxes), 68 * 2)).reshape(-1, 68, 2).astype(np.float32)

    monkeypatch.setattr(S3FDDetector, "detect", detect)
    monkeypatch.setattr(Landmarker, "fan_points", fan_points)
    return counts


def test_lip_sync_and_lmd_detect_each_frame_once(sync_weights: Path, fan_weights: Path,  # noqa: F811
                                                 counted: dict, tmp_path: Path) -> None:
    n = 70
    audio = np.sin(np.arange(n * 640) / 5) * 0.3
    ref = write_video(tmp_path / "ref.mp4", moving_frames(n, 176, 160, seed=1), 25, audio=audio)
    gen = write_video(tmp_path / "gen.mp4", moving_frames(n, 176, 160, seed=2), 25, audio=audio)
    case = Case(Speaker("spk", "en", ref), Pipeline("p", "dubbing", "gen.mp4"), gen, Segment())
    fan = weights.spec_for("fan2d").filename
    if not (sync_weights / fan).exists():  # all random files in one directory
        (sync_weights / fan).symlink_to(fan_weights / fan)
    options = {"sync": SyncOptions(weights=str(sync_weights)), "face": FaceOptions(weights=str(sync_weights))}

    def run(metrics: list[str], cache: str) -> dict:
        shared_boxes.forget()
        counted["frames"] = 0
        record = evaluate_case(case, metrics, tmp_path / cache, options=options)
        assert record["error"] is None
        assert all(m.get("error") is None for m in record["metrics"].values()), record["metrics"]
        return record["metrics"]

    both = run([*SYNC, "lmd"], "both")
    assert counted["frames"] == 2 * n  # the reference's frames and the generated ones, each once
    frames = both["lse_c"]["details"]["detections"]["frames"]
    assert frames["detected"] + frames["shared_with_face_metrics"] == n
    lmd = run(["lmd"], "lmd")
    assert counted["frames"] == 2 * n
    sync = run(SYNC, "sync")
    assert counted["frames"] == n
    assert both["lmd"]["value"] > 0
    assert both["lmd"]["value"] == lmd["lmd"]["value"] and both["lmd"]["per_frame"] == lmd["lmd"]["per_frame"]
    assert [both[m]["value"] for m in SYNC] == [sync[m]["value"] for m in SYNC]
