"""Speed and memory of PSNR+SSIM as users run it: whole processes, against ffmpeg-quality-metrics.

Run from the repository root, in the project's environment:

    python scripts/bench_fidelity.py                 # both pairs, 3 alternating rounds
    python scripts/bench_fidelity.py --repeats 5 --pairs 512 --long 300

What it does:

1. Builds two 30 s pairs in a temporary directory (never in the repository; removed at the end):
   512x512 25 fps (the real clip ``may_5s.mp4`` from ../shared/data/clips looped) and 1280x720 30 fps
   (``german_anchor_20s.mp4`` looped and scaled); the reference is an x264 crf 18 encode, the "generated"
   video a crf 36 re-encode of it. Without the clips folder FFmpeg's ``testsrc2`` stands in. Each pair is
   also a dataset folder with a ``talkbench.toml`` (one speaker, one pipeline).
2. Per pair, in rounds that alternate the commands (after one warm-up round, which also fills Python's
   bytecode caches), each a fresh process as a user types it:
   ``ffmpeg-quality-metrics DIST REF -m psnr ssim``,
   ``pytest benchmarks --talkbench-data DIR --talkbench-metrics psnr,ssim --talkbench-calibrations none`` and
   ``talkbench evaluate --data DIR --metrics psnr,ssim --calibrations none``.
   Beside them, the case alone: ``evaluate_case`` timed inside one process (imports done, no pytest), and
   two floors: ``ffmpeg -i DIST -i REF ... -f null -`` (decoding both videos, which every tool must do) and
   the pytest command with ``--co`` (its start and collection); fqm's time over their sum bounds what the
   pytest route can reach.
   Prints the median wall time, the median CPU seconds (the process and its children), the peak RSS
   (largest single process of the command, from wait4) and each command's speed-up over
   ffmpeg-quality-metrics, with the load average of the machine before and after.
3. With ``--long S``: the peak RSS of ``talkbench evaluate`` on an S-second 512x512 pair (the short one
   repeated by stream copy): decoding streams frame by frame, so it should match the 30 s peak.

Children run without PYTHONDONTWRITEBYTECODE (as a user's shell has it), so imports read bytecode caches
as they do for an installed ffmpeg-quality-metrics. This process imports nothing heavy itself, so the
children's peak RSS (which on Linux starts from the parent's at fork) is theirs. ``--json PATH`` writes
the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT.parent / "shared" / "data" / "clips"
PAIRS = {  # name: (width, height, fps, clip)
    "512": (512, 512, 25, "may_5s.mp4"),
    "720": (1280, 720, 30, "german_anchor_20s.mp4"),
}
TARGETS = {"512": 2.0, "720": 1.5}  # talkbench's speed-up over ffmpeg-quality-metrics to reach
RSS_TARGET_MIB = 300
MANIFEST = """[dataset]
name = "bench"
[speakers.s]
language = "en"
reference = "ref/s.mp4"
[pipelines.crf36]
mode = "dubbing"
outputs = "out/{speaker}_crf36.mp4"
"""


def ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def build_pair(work: Path, name: str, seconds: float) -> Path:
    """The dataset folder of pair ``name``: ref/s.mp4 and out/s_crf36.mp4 with its manifest."""
    width, height, fps, clip = PAIRS[name]
    root = work / name
    (root / "ref").mkdir(parents=True)
    (root / "out").mkdir()
    x264 = ["-an", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    if (CLIPS / clip).is_file():
        source = ["-stream_loop", "-1", "-i", str(CLIPS / clip)]
    else:
        source = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}"]
    ref, dist = root / "ref" / "s.mp4", root / "out" / "s_crf36.mp4"
    ffmpeg(*source, "-t", str(seconds), "-vf", f"scale={width}:{height},fps={fps}", *x264, "-crf", "18", ref)
    ffmpeg("-i", ref, *x264, "-crf", "36", dist)
    (root / "talkbench.toml").write_text(MANIFEST)
    return root


def long_pair(work: Path, short: Path, seconds: float) -> Path:
    """A copy of dataset ``short`` whose videos are repeated (stream copy) to about ``seconds``."""
    root = work / f"long{seconds:g}"
    (root / "ref").mkdir(parents=True)
    (root / "out").mkdir()
    loops = max(0, round(seconds / 30) - 1)
    for part in ("ref/s.mp4", "out/s_crf36.mp4"):
        ffmpeg("-stream_loop", str(loops), "-i", short / part, "-c", "copy", root / part)
    (root / "talkbench.toml").write_text(MANIFEST)
    return root


# --- running a command ----------------------------------------------------------------------------


def child_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["TALKBENCH_CACHE"] = str(cache)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run(cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> dict[str, float]:
    """Run ``cmd``; its wall seconds, CPU seconds (with its children) and peak RSS (MiB, the largest of
    its processes), from wait4. Exits with the command's output if it fails."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            out.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out.read().decode()[-3000:]}")
        out.seek(0)
        text = out.read().decode()
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024, "out": text}


def commands(data: Path) -> dict[str, list[str]]:
    ref, dist = data / "ref" / "s.mp4", data / "out" / "s_crf36.mp4"
    bindir = Path(sys.executable).parent
    return {
        "fqm": [str(bindir / "ffmpeg-quality-metrics"), str(dist), str(ref), "-m", "psnr", "ssim"],
        "pytest": [sys.executable, "-m", "pytest", "benchmarks", "--talkbench-data", str(data),
                   "--talkbench-metrics", "psnr,ssim", "--talkbench-calibrations", "none", "-q",
                   "-p", "no:cacheprovider"],
        "cli": [str(bindir / "talkbench"), "evaluate", "--data", str(data), "--metrics", "psnr,ssim",
                "--calibrations", "none"],
        # the floors: decoding both videos and nothing else (every tool does), and pytest's start and collection
        "decode": ["ffmpeg", "-v", "error", "-nostdin", "-i", str(dist), "-i", str(ref), "-map", "0:v", "-map", "1:v",
                   "-f", "null", "-"],
        "collect": [sys.executable, "-m", "pytest", "benchmarks", "--talkbench-data", str(data),
                    "--talkbench-metrics", "psnr,ssim", "--talkbench-calibrations", "none", "-q",
                    "-p", "no:cacheprovider", "--co"],
    }


LABELS = {
    "fqm": "ffmpeg-quality-metrics DIST REF -m psnr ssim",
    "pytest": "pytest benchmarks --talkbench-metrics psnr,ssim",
    "cli": "talkbench evaluate --metrics psnr,ssim",
    "case": "evaluate_case in process (the case alone)",
    "decode": "floor: ffmpeg decoding both videos, -f null",
    "collect": "floor: pytest benchmarks ... --co (start, collection)",
}


def in_process(data: Path, cache: Path, repeats: int) -> None:
    """Child mode: time ``evaluate_case`` on the pair ``repeats`` times after a warm-up; print JSON."""
    from talkbench_plugin.engine import evaluate_case
    from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker

    case = Case(Speaker("s", "en", data / "ref" / "s.mp4"), Pipeline("crf36", "dubbing", "x"),
                data / "out" / "s_crf36.mp4", Segment())
    walls, record = [], evaluate_case(case, ["psnr", "ssim"], cache)
    for _ in range(repeats):
        start = time.perf_counter()
        record = evaluate_case(case, ["psnr", "ssim"], cache)
        walls.append(time.perf_counter() - start)
    if record["error"]:
        raise SystemExit(record["error"])
    print(json.dumps({"walls": walls, "frames": record["alignment"]["compared"],
                      "psnr": record["metrics"]["psnr"]["value"], "ssim": record["metrics"]["ssim"]["value"]}))


# --- main ---------------------------------------------------------------------------------------------


def bench_pair(name: str, data: Path, env: dict[str, str], repeats: int) -> dict:
    cmds = commands(data)
    for cmd in cmds.values():  # warm-up: page cache, bytecode caches
        run(cmd, env)
    load_before = os.getloadavg()
    results: dict[str, list[dict[str, float]]] = {key: [] for key in cmds}
    for _ in range(repeats):
        for key, cmd in cmds.items():
            results[key].append(run(cmd, env))
    case = run([sys.executable, __file__, "--in-process", str(data), env["TALKBENCH_CACHE"], str(repeats)], env)
    load_after = os.getloadavg()
    inner = json.loads(case["out"].strip().splitlines()[-1])
    fqm = json.loads(results["fqm"][-1]["out"][results["fqm"][-1]["out"].index("{"):])["global"]
    med = {key: {m: statistics.median(r[m] for r in runs) for m in ("wall", "cpu", "rss")}
           for key, runs in results.items()}
    med["case"] = {"wall": statistics.median(inner["walls"]), "cpu": float("nan"), "rss": float("nan")}
    width, height, fps, _ = PAIRS[name]
    print(f"\npair {width}x{height} {fps} fps, {inner['frames']} frames; talkbench PSNR {inner['psnr']:.3f} dB "
          f"SSIM {inner['ssim']:.4f} (ffmpeg-quality-metrics, mean of frames: PSNR "
          f"{fqm['psnr']['psnr_avg']['average']:.3f}, SSIM {fqm['ssim']['ssim_avg']['average']:.4f})")
    print(f"median of {repeats} alternating rounds; load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after, on {os.cpu_count()} CPUs")
    print(f"  {'command':50s} {'wall s':>7s} {'CPU s':>6s} {'peak RSS':>9s} {'fqm/this':>9s}")
    for key, label in LABELS.items():
        m = med[key]
        cpu = f"{m['cpu']:6.2f}" if m["cpu"] == m["cpu"] else f"{'-':>6s}"
        rss = f"{m['rss']:5.0f} MiB" if m["rss"] == m["rss"] else f"{'-':>9s}"
        print(f"  {label:50s} {m['wall']:7.2f} {cpu} {rss} {med['fqm']['wall'] / m['wall']:8.2f}x")
    bound = med["fqm"]["wall"] / (med["collect"]["wall"] + med["decode"]["wall"])
    print(f"  pytest's bound: fqm / (start and collection + decoding both videos) = {bound:.2f}x")
    target = TARGETS[name]
    for key in ("pytest", "cli"):
        ratio = med["fqm"]["wall"] / med[key]["wall"]
        ok = ratio >= target and med[key]["rss"] <= RSS_TARGET_MIB
        print(f"  target {key}: >= {target}x and <= {RSS_TARGET_MIB} MiB: {'met' if ok else 'NOT met'} "
              f"({ratio:.2f}x, {med[key]['rss']:.0f} MiB)")
    return {"median": med, "runs": {k: [{m: r[m] for m in ("wall", "cpu", "rss")} for r in v]
                                    for k, v in results.items()},
            "case_walls": inner["walls"], "load": [load_before, load_after]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds per pair (default 3)")
    parser.add_argument("--pairs", default="512,720", help="which pairs: 512, 720 (default both)")
    parser.add_argument("--seconds", type=float, default=30, help="length of each pair (default 30)")
    parser.add_argument("--long", type=float, default=0, help="also the peak RSS on a pair this long (s)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--in-process", nargs=3, metavar=("DATA", "CACHE", "REPEATS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:
        data, cache, repeats = args.in_process
        in_process(Path(data), Path(cache), int(repeats))
        return 0
    if shutil.which("ffmpeg") is None or not (Path(sys.executable).parent / "ffmpeg-quality-metrics").exists():
        print("ffmpeg or ffmpeg-quality-metrics is missing: activate the project's environment", file=sys.stderr)
        return 0
    work = Path(tempfile.mkdtemp(prefix="talkbench-bench-"))
    try:
        env = child_env(work / "cache")
        ffv = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout.split()[2]
        print(f"talkbench PSNR+SSIM benchmark: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
              f"ffmpeg {ffv} binary for ffmpeg-quality-metrics")
        numbers = {}
        names = [n for n in args.pairs.split(",") if n]
        datasets = {name: build_pair(work, name, args.seconds) for name in names}
        for name in names:
            numbers[name] = bench_pair(name, datasets[name], env, args.repeats)
        if args.long and "512" in datasets:
            long = long_pair(work, datasets["512"], args.long)
            cli = commands(long)["cli"]
            m = run(cli, env)
            print(f"\nmemory: talkbench evaluate on a {args.long:g} s 512x512 pair: peak RSS {m['rss']:.0f} MiB "
                  f"({m['wall']:.1f} s), against {numbers['512']['median']['cli']['rss']:.0f} MiB for 30 s")
            numbers["long"] = {k: m[k] for k in ("wall", "cpu", "rss")}
        if args.json:
            args.json.write_text(json.dumps(numbers, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
