"""CPBD, LPIPS and FVD through pytest end to end: CPBD's values in the tables with no weights at all; LPIPS and
FVD skipped naming the command that fetches their weights, failed with --talkbench-require-weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from videos import moving_frames, write_video

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
MANIFEST = """
[dataset]
name = "tinyp"
[speakers.a]
language = "en"
reference = "ref/a.mp4"
[pipelines.Blur]
mode = "dubbing"
outputs = "out/{speaker}_Blur.mp4"
"""


@pytest.fixture
def project(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> pytest.Pytester:
    data = pytester.path / "data"
    (data / "ref").mkdir(parents=True)
    (data / "out").mkdir()
    write_video(data / "ref" / "a.mp4", moving_frames(8, 64, 64, seed=1), 25)
    write_video(data / "out" / "a_Blur.mp4", moving_frames(8, 64, 64, seed=1), 25, options={"crf": "35"})
    (data / "talkbench.toml").write_text(MANIFEST)
    (pytester.path / "benchmarks").mkdir()
    shutil.copy(BENCH / "test_perceptual.py", pytester.path / "benchmarks" / "test_perceptual.py")
    (pytester.path / "empty").mkdir()
    pytester.makeini("[pytest]\ntestpaths = benchmarks\n")
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--talkbench-data", "data", "--talkbench-cache", str(pytester.path / "cache"), "-p", "no:cacheprovider",
        "-p", "no:randomly", "--talkbench-calibrations", "none", "--talkbench-weights", "empty",
        "--talkbench-metrics", "cpbd,lpips,fvd", "-rs", *args)


@pytest.mark.slow
def test_cpbd_has_values_and_the_network_metrics_name_their_weights(project: pytest.Pytester) -> None:
    result = run(project, "--talkbench-report", "report")
    result.assert_outcomes(passed=1, skipped=2)
    out = result.stdout.str()
    assert "lpips needs the alexnet weights" in out and "talkbench weights fetch alexnet" in out
    assert "fvd needs the i3d weights" in out and "talkbench weights fetch i3d" in out
    assert "run `talkbench weights fetch alexnet i3d`" in out  # the run's one-line summary
    record = json.loads((project.path / "report" / "results.json").read_text())["results"][0]
    entry = record["metrics"]["cpbd"]
    assert len(entry["per_frame"]) == 8 and 0 <= entry["value"] <= 1 and entry["higher_is_better"] is True
    assert "CPBD" in out.split("Per language")[0]  # the per-video table's column

    strict = run(project, "--talkbench-require-weights")
    strict.assert_outcomes(passed=1, failed=2)
    assert "(--talkbench-require-weights)" in strict.stdout.str()
