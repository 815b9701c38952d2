"""Frame-pair metrics get the batches they ask for: FFmpeg's filters one frame at a time (no batch of
frames held in memory for them), the others the run's batch size."""

from __future__ import annotations

from pathlib import Path

import pytest
from videos import moving_frames, write_video

from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
from talkbench_plugin.metrics.psnr import FFmpegPSNR
from talkbench_plugin.metrics.skimage_convention import SkimagePSNR
from talkbench_plugin.metrics.ssim import FFmpegSSIM


@pytest.mark.parametrize(("convention", "classes", "sizes"), [
    ("ffmpeg", (FFmpegPSNR, FFmpegSSIM), [1] * 20),
    ("skimage", (SkimagePSNR,), [8, 8, 4]),
])
def test_update_sizes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, convention, classes, sizes) -> None:
    ref = write_video(tmp_path / "ref.mp4", moving_frames(20, 48, 32, seed=1), 25)
    gen = write_video(tmp_path / "gen.mp4", moving_frames(20, 48, 32, seed=1), 25, options={"crf": "35"})
    seen: dict[str, list[int]] = {}
    for cls in classes:
        def spy(self, pairs, _update=cls.update):
            seen.setdefault(type(self).__name__, []).append(len(pairs))
            return _update(self, pairs)

        monkeypatch.setattr(cls, "update", spy)
    case = Case(Speaker("s", "en", ref), Pipeline("P", "dubbing", "x"), gen, Segment())
    metrics = ["psnr", "ssim"] if convention == "ffmpeg" else ["psnr"]
    record = evaluate_case(case, metrics, tmp_path / "cache", convention=convention, batch_size=8)
    assert record["error"] is None and record["alignment"]["compared"] == 20
    assert seen == {cls.__name__: sizes for cls in classes}
    assert 20 < record["metrics"]["psnr"]["value"] < 60
