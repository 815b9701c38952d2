"""The per-video and per-language tables and the report files."""

import csv
import json
import math
from pathlib import Path

from talkbench_plugin.reports import per_language, per_video, runtime, write_reports


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
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["run"]["dataset"] == "tiny" and len(data["results"]) == 5
    assert data["results"][4]["metrics"]["psnr"]["value"] == math.inf
    rows = list(csv.DictReader((tmp_path / "per_video.csv").open()))
    assert rows[1]["PSNR"] == "32.000"
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
