"""The face-detection cache: a second run over the same video replays the boxes and scores the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from videos import moving_frames, write_video

from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.errors import TalkbenchError
from talkbench_plugin.manifest import CALIBRATION, Case, Pipeline, Segment, Speaker
from talkbench_plugin.metrics import sync as sync_metric
from talkbench_plugin.metrics.sync import SyncOptions
from talkbench_plugin.sync import detections, shared_boxes
from talkbench_plugin.sync.faces import S3FDDetector

SYNC = ["lse_c", "lse_d", "av_offset"]
BOX = np.array([[20.0, 20.0, 140.0, 150.0, 0.99]])


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """S3FD reports one fixed face per frame (random weights find none); counts frames and network loads."""
    counts = {"frames": 0, "s3fd loads": 0}

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        counts["frames"] += len(frames)
        return [BOX.copy() for _ in frames]

    network = sync_metric.network

    def load(kind: str, options: SyncOptions):
        counts["s3fd loads"] += kind == "s3fd"
        return network(kind, options)

    monkeypatch.setattr(S3FDDetector, "detect", detect)
    monkeypatch.setattr(sync_metric, "network", load)
    return counts


def _video(path: Path, n: int = 70, seed: int = 0) -> Case:
    audio = np.sin(np.arange(n * 640) / 5) * 0.3
    video = write_video(path, moving_frames(n, 160, 176, seed=seed), 25, audio=audio)
    return Case(Speaker("spk", "en", video), Pipeline("reference", CALIBRATION), None, Segment())


def _run(case: Case, cache: Path, weights: Path, **options) -> dict:
    """One run, as a new process makes it (no boxes remembered in memory: only the cache file can help)."""
    shared_boxes.forget()
    record = evaluate_case(case, SYNC, cache, options={"sync": SyncOptions(weights=str(weights), **options)})
    assert record["error"] is None and record["metrics"]["lse_c"].get("error") is None, record
    return record["metrics"]


def _scores(metrics: dict) -> tuple:
    return tuple(metrics[m]["value"] for m in SYNC) + (metrics["lse_c"]["per_frame"],)


def test_second_run_replays_the_detections(sync_weights: Path, counted: dict, tmp_path: Path) -> None:
    case = _video(tmp_path / "v.mp4")
    first = _run(case, tmp_path / "cache", sync_weights)
    assert counted == {"frames": 70, "s3fd loads": 1}
    assert first["lse_c"]["details"]["detections"]["source"] == "detected"
    second = _run(case, tmp_path / "cache", sync_weights)
    assert counted == {"frames": 70, "s3fd loads": 1}  # no detection, not even the network loaded
    source = second["lse_c"]["details"]["detections"]
    assert source["source"] == "cache" and Path(source["file"]).parent == tmp_path / "cache" / "faces"
    assert _scores(second) == _scores(first)
    assert second["lse_c"]["protocol"] == first["lse_c"]["protocol"]


def test_other_frames_or_settings_detect_again(sync_weights: Path, counted: dict, tmp_path: Path) -> None:
    case = _video(tmp_path / "v.mp4")
    _run(case, tmp_path / "cache", sync_weights)
    _run(case, tmp_path / "cache", sync_weights, detect_every=2)  # other frames detected: another key
    assert counted["frames"] == 70 + 35
    _run(Case(case.speaker, case.pipeline, None, Segment(0.4, None)), tmp_path / "cache", sync_weights)
    assert counted["frames"] == 70 + 35 + 60
    _run(_video(tmp_path / "other.mp4", seed=1), tmp_path / "cache", sync_weights)  # other content
    assert counted["frames"] == 70 + 35 + 60 + 70


def test_a_damaged_cache_file_is_detected_again(sync_weights: Path, counted: dict, tmp_path: Path) -> None:
    case = _video(tmp_path / "v.mp4")
    first = _run(case, tmp_path / "cache", sync_weights)
    path = Path(first["lse_c"]["details"]["detections"]["file"])
    path.write_bytes(path.read_bytes()[:100])
    again = _run(case, tmp_path / "cache", sync_weights)
    assert counted["frames"] == 140 and again["lse_c"]["details"]["detections"]["source"] == "detected"
    assert _scores(again) == _scores(first)


def test_boxes_round_trip_per_frame(tmp_path: Path) -> None:
    found = [np.zeros((0, 5)), BOX, np.array([[1.0, 2, 3, 4, 0.95], [5, 6, 7, 8, 0.91]]), np.zeros((0, 5))]
    path = tmp_path / "faces.npz"
    detections.save(path, "key", found)
    loaded = detections.load(path, "key")
    assert [b.tolist() for b in loaded] == [b.tolist() for b in found]
    assert detections.load(path, "another key") is None
    detections.save(path, "none", [])
    assert detections.load(path, "none") == []


def test_replay_refuses_more_frames_than_cached(tmp_path: Path) -> None:
    replay = detections.ReplayDetector([BOX, BOX], S3FDDetector.describe(), tmp_path / "faces-x.npz")
    assert len(replay.detect(np.zeros((2, 8, 8, 3), np.uint8))) == 2
    with pytest.raises(TalkbenchError, match="faces-x.npz.*cover 2 frames"):
        replay.detect(np.zeros((1, 8, 8, 3), np.uint8))
