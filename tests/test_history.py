"""talkbench history STORAGE: each metric per pipeline over saved runs, as one self-contained HTML page."""

import json
import re
from pathlib import Path

import pytest

from talkbench_plugin.cli import main


def bench_file(path: Path, when: str, values: dict[str, dict[str, float]], with_pipeline: bool = True) -> None:
    """A pytest-benchmark storage file as talkbench writes it: one entry per (case, metric)."""
    benchmarks = []
    for case, metrics in values.items():
        for metric, value in metrics.items():
            extra = {metric: value, "higher_is_better": metric != "fid"}
            if with_pipeline:
                extra["pipeline"] = case.split("-", 1)[1]
            benchmarks.append({"group": metric, "name": f"test_{metric}[{case}]", "params": {"talkbench_case": case},
                               "extra_info": extra, "stats": {"min": 0.1}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmarks": benchmarks, "datetime": when, "commit_info": {"id": "abcdef123456"}}))


def polyline(page: str, metric: str, pipeline: str) -> list[tuple[float, float]]:
    section = page.split(f'aria-label="{metric}"', 1)[1].split("</svg>", 1)[0]
    points = re.search(rf'data-pipeline="{re.escape(pipeline)}"[^>]*points="([^"]+)"', section).group(1)
    return [tuple(map(float, p.split(","))) for p in points.split()]


def test_history_of_a_benchmark_storage_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    # the oldest file predates the pipeline key: its cases are split on the pipelines the others name
    bench_file(storage / "0001_base.json", "2026-01-01T10:00:00+00:00",
               {"a-ER-NeRF": {"psnr": 20.0, "fid": 30.0}, "b-ER-NeRF": {"psnr": 22.0}, "a-Mine": {"psnr": 25.0}},
               with_pipeline=False)
    bench_file(storage / "0003_later.json", "2026-01-03T10:00:00+00:00",
               {"a-ER-NeRF": {"psnr": 26.0, "fid": 20.0}, "a-Mine": {"psnr": 24.0},
                "a-reference": {"psnr": float("inf")}})
    bench_file(storage / "0002_mid.json", "2026-01-02T10:00:00+00:00", {"a-ER-NeRF": {"psnr": 23.0}})
    (storage / "0004_other_tool.json").write_text(json.dumps({"benchmarks": [{"group": None, "extra_info": {}}]}))
    out = tmp_path / "h" / "history.html"
    assert main(["history", str(tmp_path / ".benchmarks"), "--out", str(out)]) == 0
    assert f"wrote {out} (3 runs)" in capsys.readouterr().out
    page = out.read_text()
    assert "<script" not in page and "<link" not in page and "src=" not in page and "url(" not in page
    assert "PSNR (higher is better)" in page and "FID (lower is better)" in page
    nerf, mine = polyline(page, "psnr", "ER-NeRF"), polyline(page, "psnr", "Mine")
    assert len(nerf) == 3 and len(mine) == 2
    assert [x for x, _ in nerf] == sorted(x for x, _ in nerf)  # oldest left
    ys = [y for _, y in nerf]  # means 21, 23, 26 (higher values are drawn higher: smaller y)
    assert ys[0] > ys[1] > ys[2] and (ys[0] - ys[1]) / (ys[1] - ys[2]) == pytest.approx(2 / 3, abs=0.01)
    assert mine[0][0] == nerf[0][0] and mine[1][0] == nerf[2][0]  # no 0002 value for Mine: no point there
    assert "0001_base (abcdef1)" in page and "<td>21.000</td>" in page and "<td>26.000</td>" in page
    assert 'data-pipeline="reference"' not in page.split('aria-label="psnr"', 1)[1].split("</svg>", 1)[0]


def test_history_of_a_folder_of_results_json_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i, value in enumerate((0.9, 0.8)):
        run = tmp_path / "runs" / f"run{i}"
        run.mkdir(parents=True)
        results = [{"case": "a-P", "pipeline": "P", "metrics": {"ssim": {"value": value, "higher_is_better": True}}}]
        (run / "results.json").write_text(json.dumps({"run": {}, "results": results}))
        __import__("os").utime(run / "results.json", (1_700_000_000 + i, 1_700_000_000 + i))
    out = tmp_path / "history.html"
    assert main(["history", str(tmp_path / "runs"), "--out", str(out)]) == 0
    page = out.read_text()
    (x0, y0), (x1, y1) = polyline(page, "ssim", "P")
    assert x0 < x1 and y0 < y1  # 0.9 then 0.8: the line goes down
    assert page.index("<td class=\"l\">run0</td>") < page.index("<td class=\"l\">run1</td>")
    assert main(["history", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "nowhere: not found; give a pytest-benchmark storage folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["history", str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert "no talkbench runs found" in capsys.readouterr().err
    (tmp_path / "runs" / "broken.json").write_text("{")
    assert main(["history", str(tmp_path / "runs"), "--out", str(out)]) == 2
    assert "broken.json: not a readable JSON file" in capsys.readouterr().err
