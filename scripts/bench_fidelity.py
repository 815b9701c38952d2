"""Speed and memory of PSNR+SSIM end to end: talkbench against ffmpeg-quality-metrics.

Run from the repository root, in the project's environment:

    python scripts/bench_fidelity.py                 # 30 s pair, 5 alternating repeats, 30 s + 5 min memory
    python scripts/bench_fidelity.py --repeats 9 --long 600

What it does:

1. Builds a 512x512 25 fps pair in a temporary directory (never in the repository; removed at the
   end): the reference is the real clip ``may_5s.mp4`` from ../shared/data/clips looped to 30 s and
   encoded with x264 (crf 18), the "generated" video a low-quality re-encode of it (crf 35). Without
   the clips folder FFmpeg's ``testsrc2`` pattern stands in. The 5-minute pair repeats the 30 s files
   (stream copy, so the same frames at the same quality).
2. Speed, in one run, alternating: ``ffmpeg-quality-metrics REF DIST -m psnr ssim`` (a fresh process,
   as a user runs it), ``evaluate_case(case, ["psnr", "ssim"])`` in this process (as the pytest
   plugin runs it), and the same call in a fresh Python process (interpreter start and imports
   included). Prints the median wall times, the median CPU seconds (all threads and child processes:
   ffmpeg-quality-metrics runs ``ffmpeg -version``, ffprobe twice and ffmpeg) and the ratios (target:
   talkbench >= 1.5x faster). The machine's load average is printed too: ffmpeg uses both cores when
   they are free and talkbench mostly one, so on a shared machine the ratio moves with the load
   (measured here between 1.45x and 2.4x); run it on a quiet machine, or several times.
3. Memory: a fresh process evaluates the 30 s pair, another the 5-minute pair; each prints its RSS
   after the imports and its peak RSS during the evaluation (Linux: VmHWM, reset after the imports
   through /proc/self/clear_refs; elsewhere the process's ``ru_maxrss``). Decoding streams in
   batches, so the two peaks must be the same but for the per-frame series every result keeps
   (about 0.5 KB a frame).

The script prints a small table and exits 0; ``--json PATH`` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT.parent / "shared" / "data" / "clips"
sys.path.insert(0, str(ROOT))


def ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def build_pair(work: Path, seconds: float, long_seconds: float) -> dict[str, tuple[Path, Path]]:
    """The short pair and the long one (the short files looped by stream copy)."""
    ref, dist = work / "ref.mp4", work / "dist.mp4"
    x264 = ["-an", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    if (CLIPS / "may_5s.mp4").is_file():
        source = ["-stream_loop", "-1", "-i", str(CLIPS / "may_5s.mp4")]
    else:
        source = ["-f", "lavfi", "-i", "testsrc2=size=512x512:rate=25"]
    ffmpeg(*source, "-t", str(seconds), *x264, "-crf", "18", ref)
    ffmpeg("-i", ref, *x264, "-crf", "35", dist)
    loops = max(0, round(long_seconds / seconds) - 1)
    long_ref, long_dist = work / "ref_long.mp4", work / "dist_long.mp4"
    for src, dest in ((ref, long_ref), (dist, long_dist)):
        ffmpeg("-stream_loop", str(loops), "-i", src, "-c", "copy", dest)
    return {"short": (ref, dist), "long": (long_ref, long_dist)}


# --- the two tools ----------------------------------------------------------------------------------


def talkbench_record(ref: Path, dist: Path, cache: Path) -> dict:
    from talkbench_plugin.engine import evaluate_case
    from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker

    case = Case(Speaker("bench", "en", ref), Pipeline("degraded", "dubbing", "x"), dist, Segment())
    record = evaluate_case(case, ["psnr", "ssim"], cache)
    if record["error"]:
        raise SystemExit(f"talkbench failed: {record['error']}")
    return record


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_fqm(ref: Path, dist: Path, work: Path) -> tuple[float, dict]:
    cmd = ["ffmpeg-quality-metrics", str(ref), str(dist), "-m", "psnr", "ssim", "--tmp-dir", str(work)]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - start, json.loads(out)["global"]


def run_child(args: list[str]) -> tuple[float, dict]:
    """Run this script as a fresh child process; return (wall seconds, what it printed)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"child {args} failed ({out.returncode}):\n{out.stderr}")
    return time.perf_counter() - start, json.loads(out.stdout)


def _status_mib(key: str) -> float | None:
    """A field of /proc/self/status (Linux) in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child(ref: Path, dist: Path, cache: Path) -> None:
    """In a fresh process: import, reset the peak-RSS counter, evaluate once, print the numbers.

    The peak is read from VmHWM, not ``ru_maxrss``: a child's ``ru_maxrss`` starts from the RSS of
    the parent that forked it (the exec keeps the high-water mark), which here would be the parent's
    few hundred MiB.
    """
    import talkbench_plugin.engine
    from talkbench_plugin.metrics import make_metric

    make_metric("psnr"), make_metric("ssim")  # the metric modules and what they import
    after_imports = _status_mib("VmRSS")
    import_peak = _status_mib("VmHWM")
    reset = _reset_peak()
    record = talkbench_record(ref, dist, cache)
    peak = _status_mib("VmHWM") if reset else None
    if peak is None:  # no /proc: the process's whole-life peak
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "after_imports_mib": after_imports,
        "import_peak_mib": import_peak,
        "peak_mib": peak,
        "peak_is_evaluation_only": reset,
        "frames": record["alignment"]["compared"],
        "psnr": record["metrics"]["psnr"]["value"],
        "ssim": record["metrics"]["ssim"]["value"],
        "seconds": record["timings"]["total"],
    }))
    del talkbench_plugin


# --- main ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each tool (default 5)")
    parser.add_argument("--seconds", type=float, default=30, help="length of the speed pair (default 30)")
    parser.add_argument("--long", type=float, default=300, help="length of the long memory pair (default 300)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--child", nargs=3, metavar=("REF", "DIST", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*map(Path, args.child))
        return 0
    for tool in ("ffmpeg", "ffmpeg-quality-metrics"):
        if shutil.which(tool) is None:
            print(f"{tool} is not on PATH: activate the project's environment", file=sys.stderr)
            return 0

    import av
    import ffmpeg_quality_metrics

    work = Path(tempfile.mkdtemp(prefix="talkbench-bench-"))
    try:
        pairs = build_pair(work, args.seconds, args.long)
        ref, dist = pairs["short"]
        cache = work / "cache"

        # warm-up (page cache, imports), then alternate
        talkbench_record(ref, dist, cache)
        run_fqm(ref, dist, work)
        times: dict[str, list[float]] = {"fqm": [], "talkbench": [], "talkbench_process": []}
        cpu: dict[str, list[float]] = {k: [] for k in times}
        load_before = os.getloadavg()
        for _ in range(args.repeats):
            c0 = _cpu(resource.RUSAGE_CHILDREN)
            wall, fqm_stats = run_fqm(ref, dist, work)
            times["fqm"].append(wall)
            cpu["fqm"].append(_cpu(resource.RUSAGE_CHILDREN) - c0)
            c0, start = _cpu(resource.RUSAGE_SELF), time.perf_counter()
            record = talkbench_record(ref, dist, cache)
            times["talkbench"].append(time.perf_counter() - start)
            cpu["talkbench"].append(_cpu(resource.RUSAGE_SELF) - c0)
            c0 = _cpu(resource.RUSAGE_CHILDREN)
            wall, _ = run_child(["--child", str(ref), str(dist), str(cache)])
            times["talkbench_process"].append(wall)
            cpu["talkbench_process"].append(_cpu(resource.RUSAGE_CHILDREN) - c0)
        load_after = os.getloadavg()
        med = {k: statistics.median(v) for k, v in times.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}

        memory = {}
        for name, (r, d) in pairs.items():
            wall, out = run_child(["--child", str(r), str(d), str(cache)])
            memory[name] = {"wall_s": wall, **out}

        frames = record["alignment"]["compared"]
        ffv = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout.split()[2]
        print()
        print(f"talkbench fidelity benchmark: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
              f"ffmpeg {ffv} binary, PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info}), "
              f"ffmpeg-quality-metrics {ffmpeg_quality_metrics.__version__}")
        print(f"pair: 512x512 {frames / args.seconds:g} fps, {args.seconds:g} s ({frames} frames); "
              f"PSNR {record['metrics']['psnr']['value']:.3f} dB (mean of frames "
              f"{record['metrics']['psnr']['details']['mean_of_frames']:.3f}; fqm "
              f"{fqm_stats['psnr']['psnr_avg']['average']:.3f}), SSIM {record['metrics']['ssim']['value']:.4f} "
              f"(fqm {fqm_stats['ssim']['ssim_avg']['average']:.3f})")
        print()
        print(f"speed: PSNR+SSIM end to end, median of {args.repeats} alternating runs "
              f"(load average {load_before[0]:.1f} before, {load_after[0]:.1f} after)")
        print(f"  {'tool':46s} {'median s':>9s} {'min s':>7s} {'CPU s':>7s} {'fqm / it':>9s}")
        rows = [
            ("ffmpeg-quality-metrics -m psnr ssim", "fqm"),
            ("talkbench evaluate_case (in process)", "talkbench"),
            ("talkbench evaluate_case (fresh python process)", "talkbench_process"),
        ]
        for label, key in rows:
            print(f"  {label:46s} {med[key]:9.3f} {min(times[key]):7.3f} {med_cpu[key]:7.3f} "
                  f"{med['fqm'] / med[key]:8.2f}x")
        ratio = med["fqm"] / med["talkbench"]
        print(f"  target >= 1.5x faster (in process): {'met' if ratio >= 1.5 else 'NOT met'} ({ratio:.2f}x)")
        print()
        print("memory: RSS of a fresh process evaluating the pair (VmRSS after imports; VmHWM reset after "
              "imports, read after the evaluation)")
        print(f"  {'pair':10s} {'frames':>7s} {'after imports':>14s} {'peak while evaluating':>22s} {'eval s':>7s}")
        for name, m in memory.items():
            length = args.seconds if name == "short" else args.long
            label = f"{length / 60:g} min" if length >= 60 else f"{length:g} s"
            after = f"{m['after_imports_mib']:.1f} MiB" if m["after_imports_mib"] is not None else "n/a"
            print(f"  {label:10s} {m['frames']:7d} {after:>14s} {m['peak_mib']:18.1f} MiB {m['seconds']:7.2f}")
        growth = memory["long"]["peak_mib"] - memory["short"]["peak_mib"]
        print(f"  peak growth from {memory['short']['frames']} to {memory['long']['frames']} frames: {growth:+.1f} MiB")
        if args.json:
            args.json.write_text(json.dumps({"times": times, "cpu": cpu, "median": med, "ratio": ratio, "memory": memory}, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
