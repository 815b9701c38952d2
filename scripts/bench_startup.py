"""Start-up costs as users meet them: ``talkbench --help``, ``pytest --co`` on the six-speaker manifest and
the demo's first run (empty cache), each a fresh process.

Run from the repository root, in the project's environment:

    python scripts/bench_startup.py                  # 3 alternating rounds of the light commands, 1 demo run
    python scripts/bench_startup.py --demo-runs 3

``pytest --co`` on ``fixtures/datasets/microbench.toml`` needs the speakers' files to exist (the manifest
is validated), not their content: empty stand-ins are made in a temporary folder. The demo's first run is
``pytest benchmarks -n 4`` with a fresh ``TALKBENCH_CACHE`` each time; its report says how much of each
case went to ``prepare`` (building the demo dataset and the calibration videos). For scale, the floors:
``python -c pass`` and ``python -c "import pytest"``. Prints median wall and CPU seconds, peak RSS and the
load average; children run without PYTHONDONTWRITEBYTECODE, after one warm-up run of each light command.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fidelity import ROOT, child_env, run


def stand_ins(root: Path) -> Path:
    """Empty files at every path the six-speaker manifest names for its speakers."""
    manifest = tomllib.loads((ROOT / "fixtures" / "datasets" / "microbench.toml").read_text())
    for speaker in manifest["speakers"].values():
        for key in ("reference", "audio", "image"):
            if key in speaker:
                (root / speaker[key]).parent.mkdir(parents=True, exist_ok=True)
                (root / speaker[key]).touch()
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds of the light commands")
    parser.add_argument("--demo-runs", type=int, default=1, help="first runs of the demo (default 1)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="talkbench-startup-"))
    try:
        env = child_env(work / "cache")
        data = stand_ins(work / "microbench")
        bindir = Path(sys.executable).parent
        light = {
            "python -c pass": [sys.executable, "-c", "pass"],
            'python -c "import pytest"': [sys.executable, "-c", "import pytest"],
            "talkbench --help": [str(bindir / "talkbench"), "--help"],
            "pytest benchmarks --co (microbench, 6 speakers)": [
                sys.executable, "-m", "pytest", "benchmarks", "--co", "-q", "-p", "no:cacheprovider",
                "--talkbench-manifest", "microbench", "--talkbench-data", str(data)],
        }
        for cmd in light.values():
            run(cmd, env)
        load_before = os.getloadavg()
        runs: dict[str, list[dict]] = {label: [] for label in light}
        for _ in range(args.repeats):
            for label, cmd in light.items():
                runs[label].append(run(cmd, env))
        demo, prepare = [], []
        for i in range(args.demo_runs):
            demo_env = {**env, "TALKBENCH_CACHE": str(work / f"demo-cache-{i}")}
            report = work / f"demo-report-{i}"
            demo.append(run([sys.executable, "-m", "pytest", "benchmarks", "-n", "4", "-q", "-p", "no:cacheprovider",
                             "--talkbench-report", str(report)], demo_env))
            records = json.loads((report / "results.json").read_text())["results"]
            prepare.append(sum(r.get("timings", {}).get("prepare", 0.0) for r in records))
        load_after = os.getloadavg()
        print(f"start-up, median of {args.repeats} alternating rounds (demo: {args.demo_runs} run(s)); load average "
              f"{load_before[0]:.1f} before, {load_after[0]:.1f} after, on {os.cpu_count()} CPUs")
        print(f"  {'command':58s} {'wall s':>7s} {'CPU s':>6s} {'peak RSS':>9s}")
        rows = {**runs, "pytest benchmarks -n 4, demo, empty cache (first run)": demo}
        for label, results in rows.items():
            wall, cpu = (statistics.median(r[k] for r in results) for k in ("wall", "cpu"))
            rss = statistics.median(r["rss"] for r in results)
            print(f"  {label:58s} {wall:7.2f} {cpu:6.2f} {rss:5.0f} MiB")
        if prepare:
            print(f"  demo run: 'prepare' (demo dataset, calibration videos) summed over its cases: "
                  f"{statistics.median(prepare):.1f} s (cases run 4 at a time)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
