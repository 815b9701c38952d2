"""What the metric benchmarks (bench_metrics.py, bench_face.py) share: the test pair cut from a real clip
looped to any length, and talkbench's run in a fresh process with its peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT.parent / "shared" / "data" / "clips"
CLIP = CLIPS / "katiehill_hdtf_8s.mp4"  # 512x512, 25 fps, HDTF


def ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def build_pair(work: Path, seconds: float, size: int | None = None, clip: Path = CLIP) -> tuple[Path, Path]:
    """A 25 fps reference (``clip`` looped to ``seconds``, cropped square and scaled to ``size`` if given, crf 18)
    and a "generated" video, its crf 35 re-encode; FFmpeg's ``testsrc2`` stands in when the clips are absent."""
    work.mkdir(parents=True, exist_ok=True)
    ref, gen = work / "ref.mp4", work / "gen.mp4"
    x264 = ["-an", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-r", "25"]
    scale = [] if size is None else ["-vf", f"crop='min(iw,ih)':'min(iw,ih)',scale={size}:{size}"]
    if clip.is_file():
        source = ["-stream_loop", "-1", "-i", str(clip), *scale]
    else:
        source = ["-f", "lavfi", "-i", f"testsrc2=size={size or 512}x{size or 512}:rate=25"]
    ffmpeg(*source, "-t", str(seconds), *x264, "-crf", "18", ref)
    ffmpeg("-i", ref, *x264, "-crf", "35", gen)
    return ref, gen


def fresh_process(script: Path, *args: str | Path) -> tuple[dict, float]:
    """Run ``python script --child args...`` (it prints one JSON line last, made by ``child_result``); its
    result and peak RSS in MiB. The peak is the child's own ``VmHWM`` (reset by exec): ``os.wait4``'s
    ``ru_maxrss`` would start from this parent's RSS at the fork."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(script), "--child", *map(str, args)], stdout=subprocess.PIPE,
                          env=env, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{script.name} --child {' '.join(map(str, args))} failed ({done.returncode}):\n{done.stdout}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result, result.pop("peak_rss_mib")


def child_result(result: dict) -> str:
    """``result`` with this process's peak RSS (``VmHWM``, MiB), as the JSON line ``fresh_process`` reads."""
    status = Path("/proc/self/status").read_text()
    hwm = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return json.dumps({**result, "peak_rss_mib": int(hwm) / 1024})


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
