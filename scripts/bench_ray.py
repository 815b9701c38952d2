"""Cost of the Ray route: the same `pytest benchmarks` run with -n 0, -n 2 and --talkbench-executor ray.

Run from the repository root, in the project's environment:

    python scripts/bench_ray.py                  # ~10 min on a loaded 2-core machine
    python scripts/bench_ray.py --json ray.json

Datasets (PSNR/SSIM, so no weights are needed; caches warmed by an untimed first run):
1. the embedded demo with its four calibration pipelines;
2. a synthetic set of 8 speakers x 4 pipelines (96x96, 2 s at 25 fps; the pipelines' outputs are the
   reference re-encoded at four qualities), written to a temporary folder.

Modes, each a whole `pytest` process: ``-n 0``; ``-n 2``; ``ray`` (starts its own local cluster: the
start-up a user pays without a cluster); ``ray=ADDRESS`` joining a running cluster of one CPU and one of two
CPUs (ray.cluster_utils, started and stopped by this script). The Ray route's overhead per case is
(wall of the one-CPU cluster run - wall of -n 0) / cases: both run one case at a time; the two datasets'
overheads split it into a fixed part per run and a marginal part per case. The load average is printed
with each run (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

MANIFEST_HEAD = '[dataset]\nname = "synthetic8x4"\n'
QUALITIES = {"P1": "18", "P2": "26", "P3": "34", "P4": "42"}  # pipeline -> x264 crf of its "output"


def synthetic(root: Path, speakers: int = 8) -> Path:
    """8 speakers x 4 pipelines with their outputs in place."""
    import numpy as np
    from videos import moving_frames, write_video

    (root / "ref").mkdir(parents=True)
    lines = [MANIFEST_HEAD]
    for i in range(speakers):
        frames = moving_frames(50, 96, 96, seed=i)
        write_video(root / "ref" / f"s{i}.mp4", frames, 25)
        lines.append(f'[speakers.s{i}]\nlanguage = "{"en" if i % 2 else "zh"}"\nreference = "ref/s{i}.mp4"\n')
        for name, crf in QUALITIES.items():
            (root / name).mkdir(exist_ok=True)
            noisy = np.clip(frames.astype(int) + np.random.default_rng(i).integers(-8, 9, frames.shape), 0, 255)
            write_video(root / name / f"s{i}.mp4", noisy.astype(np.uint8), 25, options={"crf": crf})
    for name in QUALITIES:
        lines.append(f'[pipelines.{name}]\nmode = "one-shot"\noutputs = "{name}/{{speaker}}.mp4"\n')
    (root / "talkbench.toml").write_text("\n".join(lines))
    return root


def pytest_run(args: list[str], cache: Path) -> tuple[float, int]:
    """Wall seconds of one `pytest benchmarks` process and its passed tests."""
    command = [sys.executable, "-m", "pytest", "benchmarks", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
               "--talkbench-metrics", "psnr,ssim", "--talkbench-cache", str(cache), *args]
    start = time.perf_counter()
    done = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or "passed" not in last:
        raise SystemExit(f"`{' '.join(command)}` failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return wall, int(last.split(" passed")[0].split()[-1])


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def bench(name: str, data_args: list[str], cache: Path, clusters: dict[str, str]) -> dict:
    pytest_run(data_args, cache)  # warm: demo, calibration videos, imports
    rows = {}
    modes = {"-n 0": ["-n", "0"], "-n 2": ["-n", "2"], "ray (local cluster started by the run)": ["--talkbench-executor", "ray=auto"]}
    modes.update({f"ray={cpus} CPU cluster": ["--talkbench-executor", f"ray={address}"] for cpus, address in clusters.items()})
    for mode, extra in modes.items():
        before = load()
        wall, passed = pytest_run([*data_args, *extra], cache)
        rows[mode] = {"wall_s": wall, "tests": passed, "load_before": before, "load_after": load()}
        print(f"{name:<14} {mode:<40} {wall:7.1f} s  {passed:3d} tests  load {before} -> {load()}", flush=True)
    cases = rows["-n 0"]["tests"] // 2
    serial = rows["-n 0"]["wall_s"]
    summary = {"cases": cases,
               "ray_overhead_per_case_s": (rows["ray=1 CPU cluster"]["wall_s"] - serial) / cases,
               "speedup_n2": serial / rows["-n 2"]["wall_s"],
               "speedup_ray_2cpu": serial / rows["ray=2 CPU cluster"]["wall_s"]}
    print(f"{name:<14} {cases} cases: Ray overhead {summary['ray_overhead_per_case_s']:+.2f} s a case (1-CPU cluster "
          f"vs -n 0); -n 0 / -n 2 = {summary['speedup_n2']:.2f}x, -n 0 / Ray 2 CPUs = {summary['speedup_ray_2cpu']:.2f}x",
          flush=True)
    return {"modes": rows, **summary}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    print(f"{os.cpu_count()} CPUs, load average {load()}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as scratch:
        scratch = Path(scratch)
        data = synthetic(scratch / "synthetic")
        clusters, started = {}, []
        for cpus in (1, 2):
            start = time.perf_counter()
            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": cpus, "include_dashboard": False})
            cluster.wait_for_nodes()
            print(f"a {cpus}-CPU Ray cluster started in {time.perf_counter() - start:.1f} s", flush=True)
            clusters[cpus], started = cluster.address, [*started, cluster]
        try:
            results["demo"] = bench("demo", [], scratch / "cache", clusters)
            results["synthetic8x4"] = bench("synthetic 8x4", ["--talkbench-data", str(data), "--talkbench-calibrations",
                                                              "none"], scratch / "cache", clusters)
        finally:
            for cluster in started:
                cluster.shutdown()
            ray.shutdown()
    (n1, d1), (n2, d2) = ((r["cases"], r["ray_overhead_per_case_s"] * r["cases"]) for r in results.values())
    marginal = (d2 - d1) / (n2 - n1)  # overhead = fixed + marginal x cases, from the two datasets
    results["fit"] = {"marginal_s_per_case": marginal, "fixed_s": d1 - marginal * n1}
    print(f"Ray route overhead = {d1 - marginal * n1:.1f} s per run (connect, worker start-up) + {marginal:.2f} s a case",
          flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
