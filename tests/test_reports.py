"""The per-video and per-language tables and the report files."""

import csv
import json
import math
from pathlib import Path

import pytest

from talkbench_plugin import strict_json
from talkbench_plugin.baseline import load_run
from talkbench_plugin.reports import (
    markdown,
    per_language,
    per_video,
    runtime,
    write_reports,
)


def record(speaker: str, language: str, pipeline: str, psnr: float, ssim: float, error: str | None = None) -> dict:
    return {
        "case": f"{speaker}-{pipeline}", "speaker": speaker, "language": language, "pipeline": pipeline,
        "metrics": {} if error else {"psnr": {"value": psnr}, "ssim": {"value": ssim}},
        "alignment": {"compared": 100, "duplicated": 2, "dropped": 1, "warnings": []},
        "timings": {"total": 2.0}, "throughput": {"frames_per_s": 50.0, "rtf": 0.5}, "error": error,
    }


RECORDS = [
    record("obama1", "en", "W2L", 34.0, 0.95),
    record("may", "en", "W2L", 32.0, 0.93),
    record("laoliang", "zh", "W2L", 28.0, 0.90),
    record("luoxiang", "zh", "W2L", 0.0, 0.0, error="gen.mp4: not a readable media file"),
    record("obama1", "en", "reference", math.inf, 1.0),
]


def test_per_language_means_over_speakers_skip_errors() -> None:
    rows = {(r[0], r[1]): r for r in per_language(RECORDS).rows}
    assert rows["en", "W2L"][2:] == ["33.000", "0.9400", "2/2"]
    assert rows["zh", "W2L"][2:] == ["28.000", "0.9000", "1/2"]
    assert rows["en", "reference"][2] == "inf"


def test_per_video_rows() -> None:
    table = per_video(RECORDS)
    assert table.headers[3:5] == ["PSNR", "SSIM"]
    assert table.rows[0][:5] == ["obama1", "en", "W2L", "34.000", "0.9500"]
    assert table.rows[3][3] == "error"
    text = table.text()
    assert "obama1" in text and "RTF" in text


def test_write_reports(tmp_path: Path) -> None:
    paths = write_reports(tmp_path, RECORDS, {"dataset": "tiny"})
    assert sorted(p.name for p in paths) == ["per_language.csv", "per_video.csv", "report.html", "report.md",
                                             "results.json"]
    text = (tmp_path / "results.json").read_text()
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in results.json"))
    assert data["run"]["dataset"] == "tiny" and len(data["results"]) == 5
    psnr = data["results"][4]["metrics"]["psnr"]
    assert psnr["value"] is None and psnr["value_nonfinite"] == "inf"  # strict JSON, documented in strict_json
    assert strict_json.loads(text)["results"][4]["metrics"]["psnr"]["value"] == math.inf
    rows = list(csv.DictReader((tmp_path / "per_video.csv").open()))
    assert rows[1]["PSNR"] == "32.0" and rows[4]["PSNR"] == "inf"
    md = (tmp_path / "report.md").read_text()
    assert "| obama1 | en | W2L | 34.000 | 0.9500 |" in md
    assert "luoxiang-W2L: gen.mp4: not a readable media file" in md


def test_runtime_sums_stages_over_cases() -> None:
    a, b = record("s1", "en", "W", 30.0, 0.9), record("s2", "en", "W", 20.0, 0.8)
    a["timings"] = {"decode reference": 1.0, "psnr": 0.5, "total": 2.0}
    b["timings"] = {"decode reference": 2.0, "sync: face detection": 3.0, "total": 6.0}
    table = runtime([a, b])
    assert table.rows == [["decode reference", "3.00", "37.5"], ["sync: face detection", "3.00", "37.5"],
                          ["psnr", "0.50", "6.2"], ["total", "8.00", "100.0"]]
    frames = a["alignment"]["compared"] + b["alignment"]["compared"]
    assert table.title == f"Runtime over 2 cases ({frames} frames compared, {frames / 8:.1f} frames/s)"


def test_old_results_with_bare_infinity_still_read(tmp_path: Path) -> None:
    records = [{**r, "metrics": {n: {**m, "higher_is_better": True} for n, m in r["metrics"].items()}} for r in RECORDS]
    (tmp_path / "results.json").write_text(json.dumps({"run": {"dataset": "tiny"}, "results": records}))
    assert "Infinity" in (tmp_path / "results.json").read_text()
    assert load_run(tmp_path)[1][4]["metrics"]["psnr"]["value"] == math.inf


def test_strict_json_round_trips_non_finite_numbers() -> None:
    data = {"a": math.inf, "b": [1.0, -math.inf, math.nan, 2.0], "c": {"d": [math.inf]}, "e": "x"}
    text = strict_json.dumps(data)
    assert "Infinity" not in text and "NaN" not in text
    back = strict_json.loads(text)
    assert back["a"] == math.inf and back["b"][:2] == [1.0, -math.inf] and math.isnan(back["b"][2])
    assert back["c"] == {"d": [math.inf]} and back["e"] == "x" and set(back) == set(data)


def test_csv_full_precision_and_separate_duplicated_dropped(tmp_path: Path) -> None:
    precise = record("s", "en", "W", 31.123456789012, 0.987654321)
    write_reports(tmp_path, [precise], {"dataset": "tiny"})
    row = next(csv.DictReader((tmp_path / "per_video.csv").open()))
    assert float(row["PSNR"]) == 31.123456789012 and float(row["SSIM"]) == 0.987654321
    assert (row["duplicated"], row["dropped"], row["frames"]) == ("2", "1", "100")
    lang = next(csv.DictReader((tmp_path / "per_language.csv").open()))
    assert float(lang["PSNR"]) == 31.123456789012


FAILURE = {"test": "benchmarks/test_fidelity.py::test_psnr[may-W2L]", "case": "may-W2L", "metric": "psnr",
           "message": "may-W2L: psnr = 32 dB is below the minimum 33 (t.toml: W2L.psnr)", "value": 32.0,
           "bound": ">= 33"}


def test_markdown_names_failed_tests_flags_cells_and_weight_skips() -> None:
    gate = {"verdict": "failed", "failed": 1, "failures": [FAILURE],
            "weights_skipped": {"metrics": ["lse_c"], "note": "lse_c skipped: no syncnet weights in /w"}}
    md = markdown(RECORDS, {"dataset": "tiny", "gate": gate})
    assert "**Gate: failed** (1 metric test(s) failed)" in md
    assert ("- ✗ benchmarks/test_fidelity.py::test_psnr[may-W2L]: may-W2L: psnr = 32 dB is below the minimum 33 "
            "(t.toml: W2L.psnr) [value 32.000; bound >= 33]") in md
    assert "| may | en | W2L | **32.000** ✗ | 0.9300 |" in md
    assert "| obama1 | en | W2L | 34.000 | 0.9500 |" in md
    assert "- skipped, not run: lse_c skipped: no syncnet weights in /w" in md
    assert "✗" not in markdown(RECORDS, {"dataset": "tiny", "gate": {"verdict": "passed", "failed": 0}})
