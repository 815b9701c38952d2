"""Baselines: direction-aware tolerances, the file format, and refusals of files that do not fit."""

import json
import math
from pathlib import Path

import pytest

from talkbench_plugin.baseline import Baseline, Change, load
from talkbench_plugin.errors import ManifestError, RunFileError
from talkbench_plugin.thresholds import Thresholds, Tolerance

PROTOCOL = {"convention": "ffmpeg", "filter": "psnr", "pix_fmt": "yuv420p"}


def record(case: str, psnr: float, fid: float, protocol: dict = PROTOCOL, error: str | None = None) -> dict:
    speaker, pipeline = case.split("-")
    return {"case": case, "speaker": speaker, "pipeline": pipeline, "language": "en", "error": error,
            "metrics": {"psnr": {"value": psnr, "unit": "dB", "higher_is_better": True, "protocol": protocol},
                        "fid": {"value": fid, "unit": "", "higher_is_better": False, "protocol": {"fid": 1}}}}


def test_direction_and_tolerances() -> None:
    absolute = Tolerance(0.5, None, "t.toml: W2L.psnr")
    assert Change("a-W2L", "psnr", 30.0, 29.6, "dB", True, absolute).status == "worse"
    assert Change("a-W2L", "psnr", 30.0, 29.4, "dB", True, absolute).status == "regressed"
    assert Change("a-W2L", "psnr", 30.0, 31.0, "dB", True, absolute).status == "better"
    assert Change("a-W2L", "psnr", 30.0, 29.9, "dB", True, None).status == "regressed"  # no tolerance: no worse
    relative = Tolerance(None, 0.1, "t.toml: W2L.fid")
    assert Change("a-W2L", "fid", 20.0, 21.9, "", False, relative).bound == pytest.approx(22.0)
    assert Change("a-W2L", "fid", 20.0, 22.1, "", False, relative).status == "regressed"  # FID up is bad
    assert Change("a-W2L", "fid", 20.0, 12.0, "", False, relative).status == "better"
    both = Tolerance(0.5, 0.1, "x")
    assert both.allowance(30.0) == pytest.approx(3.0) and both.allowance(1.0) == 0.5
    assert Change("a-ref", "psnr", math.inf, math.inf, "dB", True, absolute).status == "same"
    assert Change("a-ref", "psnr", math.inf, 80.0, "dB", True, relative).status == "regressed"
    assert Change("a-W2L", "psnr", 30.0, math.nan, "dB", True, absolute).status == "regressed"
    assert Change("a-W2L", "av_offset", 1.0, 3.0, "frames", None, absolute).status == "changed"
    assert Change("a-W2L", "psnr", None, 3.0, "dB", True).status == "new"


def test_violation_names_bound_baseline_and_delta() -> None:
    change = Change("a-W2L", "psnr", 30.0, 29.25, "dB", True, Tolerance(0.5, None, "t.toml: W2L.psnr"))
    message = change.violation("base.json")
    assert message == ("is below 29.5 dB: baseline 30 dB, minus the tolerance 0.5 (t.toml: W2L.psnr); "
                       "Δ -0.75 dB (baseline: base.json)")
    fid = Change("a-W2L", "fid", 20.0, 25.0, "", False, None).violation("b.json")
    assert fid.startswith("is above 20: baseline 20, no tolerance set; Δ +5")


def test_save_load_round_trip_and_check(tmp_path: Path) -> None:
    records = [record("a-W2L", 30.0, 20.0), record("b-W2L", 0, 0, error="broken.mp4: not a video")]
    path = Baseline.from_records(records, "tiny").save(tmp_path / "base.json")
    baseline = load(path)
    assert baseline.dataset == "tiny" and list(baseline.cases) == ["a-W2L"]  # the failed case is left out
    assert baseline.entry("a-W2L", "fid")["higher_is_better"] is False
    assert baseline.violation(record("a-W2L", 30.2, 20.0), "psnr", None) is None
    worse = baseline.violation(record("a-W2L", 29.0, 20.0), "psnr", Tolerance(0.5, None, "t"))
    assert "is below 29.5 dB: baseline 30 dB" in worse and str(path) in worse
    assert "is above 20" in baseline.violation(record("a-W2L", 30.0, 21.0), "fid", None)
    assert baseline.violation(record("c-W2L", 1.0, 99.0), "psnr", None) is None  # not in the baseline
    other = baseline.violation(record("a-W2L", 30.0, 20.0, {**PROTOCOL, "pix_fmt": "yuv444p"}), "psnr", None)
    assert "protocol differs (pix_fmt: 'yuv420p' -> 'yuv444p')" in other and "--talkbench-save-baseline" in other


def test_a_results_json_or_its_folder_is_a_baseline(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"run": {"dataset": "tiny"},
                                                       "results": [record("a-W2L", math.inf, 3.0)]}))
    for path in (tmp_path, tmp_path / "results.json"):
        baseline = load(path)
        assert baseline.entry("a-W2L", "psnr")["value"] == math.inf
        assert baseline.source == str(tmp_path / "results.json")


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", "not a valid baseline file (corrupt JSON"),
     ('{"format": "other"}', "neither a talkbench baseline"),
     ('{"format": "talkbench-baseline", "version": 9, "dataset": "x", "cases": {}, "protocols": {}}',
      "baseline format version 9; this talkbench reads version 1"),
     ('{"format": "talkbench-baseline", "version": 1, "dataset": "x", "protocols": {},'
      ' "cases": {"a-W": {"speaker": "a", "pipeline": "W", "language": "en",'
      ' "metrics": {"psnr": {"value": "high", "higher_is_better": true, "protocol": "p"}}}}}',
      "cases.a-W.metrics.psnr: needs a numeric value"),
     ('{"format": "talkbench-baseline", "version": 1, "dataset": "x", "protocols": {},'
      ' "cases": {"a-W": {"speaker": "a", "pipeline": "W", "language": "en",'
      ' "metrics": {"psnr": {"value": 1, "higher_is_better": true, "protocol": "p"}}}}}',
      "protocol 'p' is not among the file's protocols"),
     ('{"format": "talkbench-baseline", "version": 1, "dataset": "x", "protocols": {}, "cases": []}',
      "needs dataset (text), protocols and cases (tables)"),
     ('{"format": "talkbench-baseline", "version": 1, "dataset": "x", "protocols": {},'
      ' "cases": {"a-W": {"speaker": "a", "pipeline": "W", "language": "en"}}}', "malformed (KeyError"),
     ('{"run": {"dataset": "x"}, "results": [{"case": "a-W"}]}', "results[0]: not a case record")],
)
def test_bad_files_are_refused_with_the_file_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "base.json"
    path.write_text(text)
    with pytest.raises(RunFileError, match="base.json") as info:
        load(path)
    assert message in str(info.value)


def test_another_dataset_is_refused(tmp_path: Path) -> None:
    baseline = load(Baseline.from_records([record("a-W2L", 30.0, 20.0)], "tiny").save(tmp_path / "b.json"))
    baseline.require_dataset("tiny")
    with pytest.raises(RunFileError, match="a baseline of dataset 'tiny', but this run evaluates 'microbench'"):
        baseline.require_dataset("microbench")
    with pytest.raises(RunFileError, match="not found"):
        load(tmp_path / "missing.json")


def test_tolerances_in_the_thresholds_file(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('["*"]\nssim = { min = 0.0, rel_tolerance = 0.01 }\n'
                    "[W2L]\npsnr = { min = 28.0, tolerance = 0.5 }\n"
                    "[W2L.speakers.obama1]\npsnr = { min = 30.0 }\nfid = { tolerance = 2 }\n")
    thresholds = Thresholds.load(path)
    assert thresholds.tolerance("W2L", "may", "psnr") == Tolerance(0.5, None, f"{path}: W2L.psnr")
    assert thresholds.tolerance("W2L", "obama1", "psnr").absolute == 0.5  # the speaker table sets only a bound
    assert thresholds.bound("W2L", "obama1", "psnr").min == 30.0
    assert thresholds.bound("W2L", "obama1", "fid") is None  # a tolerance alone is no bound
    assert thresholds.tolerance("W2L", "obama1", "fid").absolute == 2
    assert thresholds.tolerance("Other", "x", "ssim").relative == 0.01
    assert thresholds.tolerance("Other", "x", "psnr") is None
    path.write_text("[W2L]\npsnr = { tolerance = -1 }\n")
    with pytest.raises(ManifestError, match="W2L.psnr.tolerance: must be a finite number >= 0"):
        Thresholds.load(path)
