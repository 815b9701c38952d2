"""Case records are computed once per run, also by concurrent processes."""

import json
import multiprocessing
from pathlib import Path

from talkbench_plugin.store import RunStore


def _compute_once(directory: str, marker: str) -> dict:
    def compute() -> dict:
        with open(marker, "a") as fh:
            fh.write("x")
        return {"case": "a", "value": 1.5}

    return RunStore(Path(directory)).get("a", {"metrics": ["psnr"]}, compute)


def test_concurrent_workers_compute_once(tmp_path: Path) -> None:
    marker = tmp_path / "computed"
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.starmap(_compute_once, [(str(tmp_path / "store"), str(marker))] * 6)
    assert marker.read_text() == "x"
    assert all(r == {"case": "a", "value": 1.5} for r in results)


def test_other_settings_compute_again(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    calls = []
    for settings in ({"metrics": ["psnr"]}, {"metrics": ["psnr"]}, {"metrics": ["ssim"]}):
        store.get("a", settings, lambda: calls.append(1) or {"n": len(calls)})
    assert len(calls) == 2
    assert all(json.loads(p.read_text())["n"] in (1, 2) for p in tmp_path.glob("a.*.json"))
