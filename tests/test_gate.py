"""The gate across runs, end to end with pytester: baselines, --talkbench-compare, shards merged into one report."""

import csv
import json
from pathlib import Path

import pytest
import test_plugin
from test_plugin import run

from talkbench_plugin.cli import main

media, project = test_plugin.media, test_plugin.project  # the pytester project of test_plugin.py


def bump(path: Path, case: str, metric: str, by: float) -> None:
    """Make a saved run's (or baseline's) value of ``metric`` for ``case`` better by ``by``."""
    data = json.loads(path.read_text())
    if "results" in data:
        entry = next(r for r in data["results"] if r["case"] == case)["metrics"][metric]
    else:
        entry = data["cases"][case]["metrics"][metric]
    entry["value"] += by
    path.write_text(json.dumps(data))


def test_baseline_and_compare(project: pytest.Pytester) -> None:
    run(project, "-k", "Blur", "--talkbench-report", "r1", "--talkbench-save-baseline", "base.json"
        ).assert_outcomes(passed=2, skipped=2)
    saved = json.loads((project.path / "base.json").read_text())
    assert saved["dataset"] == "tiny" and list(saved["cases"]) == ["a-Blur"]
    psnr = saved["cases"]["a-Blur"]["metrics"]["psnr"]["value"]
    bump(project.path / "base.json", "a-Blur", "psnr", 1.0)
    bump(project.path / "r1" / "results.json", "a-Blur", "psnr", 1.0)
    (project.path / "t.toml").write_text("[Blur]\npsnr = { min = 5.0, tolerance = 0.25 }\n")

    result = run(project, "-k", "Blur", "--talkbench-thresholds", "t.toml", "--talkbench-baseline", "base.json",
                 "--talkbench-compare", "r1")
    result.assert_outcomes(passed=1, failed=1, skipped=2)
    result.stdout.re_match_lines([
        rf".*a-Blur: psnr = {psnr:.6g} dB is below {psnr + 0.75:.6g} dB: baseline {psnr + 1:.6g} dB, minus the "
        rf"tolerance 0.25 \(.*t.toml: Blur.psnr\); Δ -1 dB \(baseline: .*base.json\).*",
        r"a-Blur +psnr +regressed .* -1.000 .*",
        r"a-Blur +ssim +same .*",
        r"comparison FAILED: 1 regressed, 1 same",
        r"regression: a-Blur: psnr = .* is below .* \(baseline: .*r1/results.json\)"])

    (project.path / "t.toml").write_text("[Blur]\npsnr = { rel_tolerance = 0.5 }\n")
    run(project, "-k", "Blur", "--talkbench-thresholds", "t.toml", "--talkbench-baseline", "base.json",
        "--talkbench-compare", "r1").assert_outcomes(passed=2, skipped=2)

    other = run(project, "-k", "Blur", "--talkbench-convention", "skimage", "--talkbench-baseline", "base.json")
    other.assert_outcomes(failed=2, skipped=2)
    other.stdout.fnmatch_lines(["*a-Blur: psnr = * cannot be compared with the baseline *base.json: the protocol "
                                "differs (convention: 'ffmpeg' -> 'skimage'*"])


def test_a_baseline_of_another_dataset_stops_the_run(project: pytest.Pytester) -> None:
    (project.path / "base.json").write_text(json.dumps(
        {"format": "talkbench-baseline", "version": 1, "dataset": "microbench", "protocols": {}, "cases": {}}))
    result = run(project, "--talkbench-baseline", "base.json")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*talkbench: *base.json: a baseline of dataset 'microbench', but this run "
                                 "evaluates 'tiny'*"])
    (project.path / "base.json").write_text("{")
    result = run(project, "--talkbench-compare", "base.json")
    result.stdout.fnmatch_lines(["*base.json: not a valid baseline file (corrupt JSON*"])
    assert "Traceback" not in result.stdout.str()


def metric_columns(folder: Path) -> tuple[list, list]:
    """The per-video table without its timing columns, and the per-language table."""
    video = [{k: v for k, v in row.items() if k not in ("time_s", "fps", "rtf")}
             for row in csv.DictReader((folder / "per_video.csv").open())]
    return video, list(csv.DictReader((folder / "per_language.csv").open()))


def test_shards_merge_into_the_unsharded_report(project: pytest.Pytester, capsys: pytest.CaptureFixture) -> None:
    # split by expected cost: b's cases (36 frames) first, alternating, then a's (30) to the lighter shard
    run(project, "--talkbench-shard", "1/2", "--talkbench-report", "s1").assert_outcomes(passed=8, skipped=2)
    run(project, "--talkbench-shard", "2/2", "--talkbench-report", "s2").assert_outcomes(passed=10)
    run(project, "--talkbench-report", "all").assert_outcomes(passed=18, skipped=2)
    s1, s2, merged = project.path / "s1", project.path / "s2", project.path / "merged"

    assert main(["merge", str(s2), str(s1), "--out", str(merged)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("gate: passed (2 shard report(s))")
    assert metric_columns(merged) == metric_columns(project.path / "all")
    assert (merged / "report.html").is_file() and (merged / "report.md").is_file()
    info = json.loads((merged / "results.json").read_text())["run"]
    assert info["gate"]["verdict"] == "passed" and "shard" not in info and len(info["merged_from"]) == 2

    assert main(["merge", str(s1), "--out", str(project.path / "half")]) == 1
    assert "gate: shard 2/2 is missing" in capsys.readouterr().err
    assert main(["merge", str(s1), str(s1 / "results.json"), "--out", str(project.path / "x")]) == 2
    assert "the shards overlap" in capsys.readouterr().err

    data = json.loads((s2 / "results.json").read_text())
    data["run"]["convention"] = "skimage"
    (project.path / "s3").mkdir()
    (project.path / "s3" / "results.json").write_text(json.dumps(data))
    assert main(["merge", str(s1), str(project.path / "s3"), "--out", str(project.path / "x")]) == 2
    assert "run setting 'convention' is 'skimage' but 'ffmpeg'" in capsys.readouterr().err

    data["run"]["gate"] = {"verdict": "failed", "failed": 3}
    data["run"]["convention"] = "ffmpeg"
    (project.path / "s3" / "results.json").write_text(json.dumps(data))
    assert main(["merge", str(s1), str(project.path / "s3"), "--out", str(project.path / "x")]) == 1
    assert "shard 2/2 failed its gate (3 metric test(s) failed)" in capsys.readouterr().err

    (project.path / "s3" / "results.json").write_text('{"run": {"dataset": "tiny"}, "results": [')
    assert main(["merge", str(s1), str(project.path / "s3"), "--out", str(project.path / "x")]) == 2
    assert "results.json: not a valid results file (corrupt JSON" in capsys.readouterr().err
