"""Speed and memory of lip sync end to end: talkbench's engine against syncnet-python's SyncNetPipeline.

Run from the repository root, in the project's environment:

    python scripts/bench_sync.py                  # may_5s (5 s) for speed; 5 s and 20 s clips for memory
    python scripts/bench_sync.py --repeats 3 --every 5

What it does:

1. Writes deterministic random SyncNet and S3FD weights in the official format to a temporary folder
   (no real weights can be downloaded here) and pins them in talkbench's registry for this process.
   Both sides run the real S3FD network on every frame it is asked to look at, but the boxes they keep
   are one fixed box per clip (random weights find no faces), so both score the same face track.
2. Speed, alternating in one run: ``SyncNetPipeline.inference(video)`` (its ffmpeg conversion to a
   25 fps AVI, JPEG dump, S3FD per JPEG, scene detection, tracking, cropping through XVID, scoring) and
   ``evaluate_case(case, ["lse_c", "lse_d", "av_offset"])`` in reference-exact mode (detection on every
   frame) and with detection on every k-th frame. Prints median wall times, the ratios, and how far the
   every-k-th scores move from the exact ones.
3. Memory: fresh processes evaluate the 5 s clip and a 20 s clip (talkbench, exact mode) and print
   their peak RSS after the imports (VmHWM, reset through /proc/self/clear_refs), so growth with clip
   length shows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT.parent / "shared" / "data" / "clips"
sys.path.insert(0, str(ROOT))
BOXES = {"may_5s.mp4": (120, 100, 400, 420), "obama_20s.mp4": (100, 60, 350, 360)}


def setup(weights: Path, boxes: tuple[float, float, float, float]) -> None:
    """Random weights pinned in the registry; S3FD runs, then reports the clip's fixed box."""
    from talkbench_plugin import weights as registry
    from talkbench_plugin.sync.faces import S3FDDetector
    from talkbench_plugin.sync.model import write_random_weights

    for kind, name in (("syncnet", "syncnet_v2.model"), ("s3fd", "sfd_face.pth")):
        if not (weights / name).is_file():
            write_random_weights(kind, weights / name, seed=0)
        digest = hashlib.sha256((weights / name).read_bytes()).hexdigest()
        registry.register(registry.WeightSpec(kind, name, (), sha256=digest))
    detect = S3FDDetector.detect

    def fixed(self, frames: np.ndarray) -> list[np.ndarray]:
        detect(self, frames)  # the network's cost, as the reference pays it
        return [np.array([[*boxes, 1.0]])] * len(frames)

    S3FDDetector.detect = fixed


def talkbench(clip: Path, weights: Path, every: int, cache: Path) -> dict[str, float]:
    from talkbench_plugin.engine import evaluate_case
    from talkbench_plugin.manifest import CALIBRATION, Case, Pipeline, Segment, Speaker
    from talkbench_plugin.metrics.sync import SyncOptions

    case = Case(Speaker("clip", "en", clip), Pipeline("reference", CALIBRATION), None, Segment())
    record = evaluate_case(case, ["lse_c", "lse_d", "av_offset"], cache,
                           options={"sync": SyncOptions(weights=str(weights), detect_every=every)})
    metrics = record["metrics"]
    if "error" in metrics["lse_c"]:
        raise SystemExit(f"talkbench failed: {metrics['lse_c']['error']}")
    return {k: metrics[k]["value"] for k in ("lse_c", "lse_d", "av_offset")}


def reference(clip: Path, weights: Path, boxes: tuple[float, ...], work: Path) -> dict[str, float]:
    from syncnet_python import SyncNetPipeline

    pipe = SyncNetPipeline({"syncnet_weights": str(weights / "syncnet_v2.model"),
                            "s3fd_weights": str(weights / "sfd_face.pth")}, device="cpu")
    detect = pipe.s3fd.detect_faces

    def fixed(img, conf_th, scales):
        detect(img, conf_th=conf_th, scales=scales)
        return np.array([[*boxes, 1.0]])

    pipe.s3fd.detect_faces = fixed
    offsets, confs, dists, *_ = pipe.inference(str(clip), None, cache_dir=str(work))
    return {"lse_c": confs[0], "lse_d": dists[0], "av_offset": offsets[0]}


def timed(fn, *args) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def peak_rss(clip: Path, weights: Path, boxes: tuple[float, ...]) -> float:
    """Peak RSS (MiB) of a fresh process evaluating ``clip``, measured after its imports."""
    code = f"""
import sys, tempfile; sys.path.insert(0, {str(ROOT)!r}); sys.argv = ['x']
from pathlib import Path
import scripts.bench_sync as b
import talkbench_plugin.engine, talkbench_plugin.metrics.sync, torch
b.setup(Path({str(weights)!r}), {tuple(boxes)!r})
open('/proc/self/clear_refs', 'w').write('5')
b.talkbench(Path({str(clip)!r}), Path({str(weights)!r}), 1, Path(tempfile.mkdtemp()))
print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--every", type=int, default=5, help="k of the every-k-th-frame detection mode")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    clip = CLIPS / "may_5s.mp4"
    if not clip.is_file():
        raise SystemExit(f"{clip} not found: the benchmark uses ../shared/data/clips")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        weights = work / "weights"
        weights.mkdir()
        setup(weights, BOXES[clip.name])
        times: dict[str, list[float]] = {"reference": [], "exact": [], "every": []}
        scores: dict[str, dict[str, float]] = {}
        runs = {"reference": lambda i: reference(clip, weights, BOXES[clip.name], work / f"ref{i}"),
                "exact": lambda i: talkbench(clip, weights, 1, work / "cache"),
                "every": lambda i: talkbench(clip, weights, args.every, work / "cache")}
        for i in range(args.repeats):
            for mode, run in runs.items():
                seconds, scores[mode] = timed(run, i)
                times[mode].append(seconds)
        med = {k: statistics.median(v) for k, v in times.items()}
        memory = {name: peak_rss(CLIPS / name, weights, BOXES[name]) for name in ("may_5s.mp4", "obama_20s.mp4")}
    print(f"lip sync, {clip.name} (5 s, 512x512, 25 fps), median of {args.repeats}, load {os.getloadavg()[0]:.2f}")
    print(f"{'':<34}{'seconds':>9}{'speed-up':>10}   LSE-C     LSE-D   offset")
    for mode, label in (("reference", "syncnet-python SyncNetPipeline"), ("exact", "talkbench, every frame (exact)"),
                        ("every", f"talkbench, every {args.every}th frame")):
        s = scores[mode]
        print(f"{label:<34}{med[mode]:>9.2f}{med['reference'] / med[mode]:>9.2f}x  {s['lse_c']:7.4f}  "
              f"{s['lse_d']:7.4f}  {s['av_offset']:>5}")
    moved = {k: scores["every"][k] - scores["exact"][k] for k in ("lse_c", "lse_d")}
    print(f"every-{args.every}th vs exact: LSE-C {moved['lse_c']:+.4f}, LSE-D {moved['lse_d']:+.4f}")
    print("peak RSS after imports (talkbench, exact): " +
          ", ".join(f"{name} {mib:.1f} MiB" for name, mib in memory.items()))
    if args.json:
        args.json.write_text(json.dumps({"seconds": times, "scores": scores, "rss_mib": memory}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
