"""Lip sync records windows scored / total; audio far shorter than the video is an error naming the file; an AV
offset at the search limit is flagged; silent audio names the file (issue 16.5, 16.12)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sync_oracle import Oracle
from videos import write_video

from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
from talkbench_plugin.metrics import sync as sync_metric
from talkbench_plugin.metrics.sync import SyncOptions
from talkbench_plugin.reports import notes

SYNC = ["lse_c", "lse_d", "av_offset"]


@pytest.fixture(autouse=True)
def oracle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's SyncNet replaced by the oracle feature extractor (see sync_oracle)."""
    monkeypatch.setattr(sync_metric, "network", lambda kind, options: Oracle())


def coded(path: Path, frames: int = 75, audio_frames: int | None = None, lag: int = 0, gain: float = 1.0) -> Path:
    """Frame t carries code r[t] in its grey level, audio frame t code r[t + lag] in its tone amplitude."""
    codes = np.random.default_rng(3).integers(0, 8, frames + 40)
    video = np.repeat((40 + 25 * codes[:frames]).astype(np.uint8), 64 * 64 * 3).reshape(frames, 64, 64, 3)
    tone = np.cos(2 * np.pi * 4000 * np.arange(640) / 16000)
    audio = np.concatenate([200 * 2.0 ** c * tone for c in codes[lag : lag + (audio_frames or frames)]]) / 32767
    return write_video(path, video, 25, options={"qp": "0"}, audio=audio * gain)


def evaluate(tmp_path: Path, generated: Path) -> dict:
    reference = coded(tmp_path / "ref.mp4")
    case = Case(Speaker("s", "en", reference), Pipeline("P", "dubbing", "x"), generated, Segment())
    return evaluate_case(case, SYNC, tmp_path / "cache", options={"sync": SyncOptions(detector="none")})


def test_windows_are_recorded(tmp_path: Path) -> None:
    record = evaluate(tmp_path, coded(tmp_path / "gen.mp4"))
    assert record["metrics"]["av_offset"]["value"] == 0
    for name in SYNC:
        assert record["metrics"][name]["details"]["windows"] == {"scored": 70, "total": 70}
    assert notes([record]) == []


def test_audio_shorter_than_the_video_is_an_error(tmp_path: Path) -> None:
    """0.5 s of audio under 3 s of video: 7 of 70 windows could be scored."""
    gen = coded(tmp_path / "gen.mp4", audio_frames=12)
    record = evaluate(tmp_path, gen)
    for name in SYNC:
        error = record["metrics"][name]["error"]
        assert error.startswith(f"{gen}: the audio (0.4") and "covers only " in error
        assert "of the video's 70 5-frame windows" in error and "at least 50%" in error


def test_an_offset_at_the_search_limit_is_flagged(tmp_path: Path) -> None:
    record = evaluate(tmp_path, coded(tmp_path / "gen.mp4", lag=15))  # the audio 15 frames early
    assert record["metrics"]["av_offset"]["value"] == 15
    assert notes([record]) == [("s-P: AV offset 15 frames is at the search limit (±15): the true offset may lie "
                                "beyond it, and LSE-C/LSE-D with it")]


def test_silent_audio_names_the_file(tmp_path: Path) -> None:
    gen = coded(tmp_path / "gen.mp4", gain=0.0)
    record = evaluate(tmp_path, gen)
    assert record["metrics"]["lse_c"]["error"].startswith(f"{gen}: the audio is silent")
