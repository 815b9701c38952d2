"""Lip sync inside the engine: the calibration pipelines' known offsets, and per-metric errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sync_oracle import Oracle
from videos import moving_frames, write_video

from talkbench_plugin.calibration import SHIFT_FRAMES
from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.manifest import CALIBRATION, Case, Pipeline, Segment, Speaker
from talkbench_plugin.metrics import sync as sync_metric
from talkbench_plugin.metrics.sync import SyncOptions
from talkbench_plugin.reports import errors, per_video

SYNC = ["lse_c", "lse_d", "av_offset"]


def _case(reference: Path, pipeline: str = "reference", segment: Segment = Segment()) -> Case:
    speaker = Speaker("spk", "en", reference)
    return Case(speaker, Pipeline(pipeline, CALIBRATION), None, segment)


def _coded_reference(path: Path, n: int = 125, seed: int = 3) -> Path:
    """Frame t is grey level 40 + 25·r[t] and audio frame t a tone of amplitude 200·2^r[t] (see sync_oracle):
    the oracle reads the code back from both, so it finds the true offset without trained weights."""
    codes = np.random.default_rng(seed).integers(0, 8, n)
    frames = np.repeat((40 + 25 * codes).astype(np.uint8), 96 * 96 * 3).reshape(n, 96, 96, 3)
    tone = np.cos(2 * np.pi * 4000 * np.arange(640) / 16000)
    audio = np.concatenate([200 * 2.0 ** c * tone for c in codes]) / 32767
    return write_video(path, frames, 25, options={"qp": "0"}, audio=audio)


@pytest.fixture
def oracle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's SyncNet replaced by the oracle feature extractor."""
    monkeypatch.setattr(sync_metric, "network", lambda kind, options: Oracle())


@pytest.mark.parametrize(("pipeline", "offset"), [("reference", 0), ("shifted", SHIFT_FRAMES)])
def test_calibration_offsets_with_an_oracle(oracle, tmp_path: Path, pipeline: str, offset: int) -> None:
    """'shifted' plays the reference's audio SHIFT_FRAMES frames early, so the video lags it: +3."""
    reference = _coded_reference(tmp_path / "coded.mp4")
    record = evaluate_case(_case(reference, pipeline), ["psnr", *SYNC], tmp_path / "cache",
                           options={"sync": SyncOptions(detector="none")})
    assert record["error"] is None
    metrics = record["metrics"]
    assert metrics["av_offset"]["value"] == offset
    assert metrics["lse_d"]["value"] < 0.5 < metrics["lse_c"]["value"]
    assert metrics["psnr"]["value"] == float("inf")  # both calibrations keep the reference's pixels
    details = metrics["lse_c"]["details"]
    assert len(details["distances"]) == len(details["offsets"]) == 31
    assert details["offsets"][int(np.argmin(details["distances"]))] == offset
    assert len(metrics["lse_c"]["per_frame"]) == 125 - 5  # one confidence per 5-frame window
    assert metrics["av_offset"]["protocol"]["settings"] == {"audio": "own", "detector": "none",
                                                            "detect_every": 1, "combine": "best"}
    assert {"sync", "sync: syncnet forward", "sync: tracking, crops, MFCC"} <= set(record["timings"])


def test_driving_audio_is_read_on_the_reference_timeline(oracle, tmp_path: Path) -> None:
    """Scored against the reference's audio (the driving audio), 'shifted' is in sync: its video is the
    reference's; against its own (early) audio it lags by SHIFT_FRAMES."""
    reference = _coded_reference(tmp_path / "coded.mp4")
    options = {"sync": SyncOptions(detector="none", audio="driving")}
    record = evaluate_case(_case(reference, "shifted"), SYNC, tmp_path / "cache", options=options)
    assert record["metrics"]["av_offset"]["value"] == 0
    segment = Segment(1.0, 4.0)  # a segment: the audio is cut where the video is
    record = evaluate_case(_case(reference, "shifted", segment), SYNC, tmp_path / "cache",
                           options={"sync": SyncOptions(detector="none")})
    assert record["metrics"]["av_offset"]["value"] == SHIFT_FRAMES
    assert len(record["metrics"]["lse_c"]["per_frame"]) == 75 - 5


def _silent_or_none(path: Path, audio: np.ndarray | None) -> Path:
    return write_video(path, moving_frames(40, 64, 64), 25, audio=audio)


@pytest.mark.parametrize(("audio", "message"), [
    (None, "has no audio stream"),
    (np.zeros(40 * 640), "the audio is silent"),
])
def test_audio_problems_fail_the_sync_metrics_only(oracle, tmp_path: Path, audio, message: str) -> None:
    video = _silent_or_none(tmp_path / "v.mp4", audio)
    record = evaluate_case(_case(video), ["psnr", *SYNC], tmp_path / "cache",
                           options={"sync": SyncOptions(detector="none")})
    assert record["error"] is None and record["metrics"]["psnr"]["value"] == float("inf")
    for name in SYNC:
        assert message in record["metrics"][name]["error"] and record["metrics"][name]["value"] is None
    (problem,) = errors([record])
    assert problem.startswith("spk-reference: lse_c, lse_d, av_offset: ") and message in problem
    assert per_video([record]).rows[0][3:7] == ["inf", "error", "error", "error"]


def test_no_face_is_a_per_case_sync_error(sync_weights: Path, tmp_path: Path, monkeypatch) -> None:
    """The real S3FD path (random weights) with a detector that finds nothing."""
    from talkbench_plugin.sync.faces import S3FDDetector

    monkeypatch.setattr(S3FDDetector, "detect", lambda self, frames: [np.zeros((0, 5))] * len(frames))
    video = _silent_or_none(tmp_path / "v.mp4", np.sin(np.arange(40 * 640) / 3) * 0.3)
    record = evaluate_case(_case(video), ["ssim", *SYNC], tmp_path / "cache",
                           options={"sync": SyncOptions(weights=str(sync_weights))})
    assert record["metrics"]["ssim"]["value"] == 1.0
    assert record["metrics"]["lse_c"]["error"] == "no face detected in any of 40 frames"


def test_wrong_weights_are_refused_per_metric(tmp_path: Path) -> None:
    from talkbench_plugin.weights import spec_for

    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / spec_for("syncnet").filename).write_bytes(b"not the weights")
    video = _silent_or_none(tmp_path / "v.mp4", np.sin(np.arange(40 * 640) / 3) * 0.3)
    record = evaluate_case(_case(video), ["psnr", *SYNC], tmp_path / "cache",
                           options={"sync": SyncOptions(weights=str(folder), detector="none")})
    assert record["metrics"]["psnr"]["value"] == float("inf")
    assert "syncnet_v2.model" in record["metrics"]["lse_c"]["error"]
