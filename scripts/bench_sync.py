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
   frame) and with detection on every k-th frame, each with an empty cache, then the exact mode again
   with its face detections cached by the first run. Prints median wall times and the ratios.
3. Score change of every k-th frame detection: fixed boxes cannot show it (interpolating between equal
   boxes changes nothing), so scikit-image's LBP frontal-face cascade (a trained classical detector
   shipped with scikit-image) stands in for S3FD's boxes on several real 25 fps clips: its boxes jitter
   and follow the head as real detections do. For each clip: how far the every-k-th crops are from the
   exact ones (mean absolute difference in grey levels, beside the difference between consecutive exact
   crops, the motion a crop sees anyway), and how far LSE-C / LSE-D move (random SyncNet weights).
4. Memory: fresh processes evaluate the 5 s clip and a 20 s clip (talkbench, exact mode) and print
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
MOVING = ("may_5s.mp4", "katiehill_hdtf_8s.mp4", "obama_20s.mp4", "german_anchor_20s.mp4", "may_radnerf_generated.mp4")


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


class CascadeDetector:
    """scikit-image's LBP frontal-face cascade; overlapping hits reduced to the largest (S3FD's NMS, area as
    score)."""

    def __init__(self) -> None:
        from skimage import data
        from skimage.feature import Cascade

        self.cascade = Cascade(data.lbp_frontal_face_cascade_filename())

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        from syncnet_python.detectors.s3fd.box_utils import nms_

        found = []
        for frame in frames:
            side = min(frame.shape[:2])
            hits = self.cascade.detect_multi_scale(img=frame, scale_factor=1.2, step_ratio=1, min_size=(80, 80),
                                                   max_size=(side, side))
            boxes = np.array([[h["c"], h["r"], h["c"] + h["width"], h["r"] + h["height"], h["width"] * h["height"]]
                              for h in hits], dtype=np.float64).reshape(-1, 5)
            found.append(boxes[nms_(boxes, 0.1)] if len(boxes) else boxes)
        return found

    def settings(self) -> dict[str, str]:
        return {"detector": "skimage LBP frontal-face cascade"}


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


def crops(clip: Path, every: int) -> dict[int, np.ndarray]:
    """The first valid track's 224x224 crops by frame, cascade boxes detected on every ``every``-th frame."""
    import av

    from talkbench_plugin.sync.faces import FaceCropper, FaceSettings

    cropper = FaceCropper(CascadeDetector(), FaceSettings(detect_every=every))
    batches, frames = [], []
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == 32:
                batches += cropper.update(np.stack(frames))
                frames = []
    if frames:
        batches += cropper.update(np.stack(frames))
    batches += cropper.finish()
    track = next((t.id for t in cropper.tracks if t.valid), None)
    if track is None:
        raise SystemExit(f"{clip.name}: the cascade found no face track; leave it out of MOVING")
    return {b.start + i: c for b in batches if b.track == track for i, c in enumerate(b.crops)}


def score_change(clip: Path, weights: Path, every: int, work: Path) -> dict[str, float]:
    """Crop and score differences of every-``every``-th detection against exact, with cascade boxes."""
    exact, sparse = crops(clip, 1), crops(clip, every)
    common = sorted(set(exact) & set(sparse))
    mad = float(np.mean([np.abs(exact[f].astype(np.int16) - sparse[f]).mean() for f in common]))
    motion = float(np.mean([np.abs(exact[f].astype(np.int16) - exact[f + 1]).mean()
                            for f in common if f + 1 in exact]))
    one = talkbench(clip, weights, 1, work / f"{clip.stem}-1")
    k = talkbench(clip, weights, every, work / f"{clip.stem}-{every}")
    return {"frames": len(common), "crop_mad": mad, "motion_mad": motion,
            "lse_c": one["lse_c"], "lse_d": one["lse_d"], "d_lse_c": k["lse_c"] - one["lse_c"],
            "d_lse_d": k["lse_d"] - one["lse_d"], "d_offset": k["av_offset"] - one["av_offset"]}


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
        times: dict[str, list[float]] = {"reference": [], "exact": [], "every": [], "cached": []}
        scores: dict[str, dict[str, float]] = {}
        runs = {"reference": lambda i: reference(clip, weights, BOXES[clip.name], work / f"ref{i}"),
                "exact": lambda i: talkbench(clip, weights, 1, work / f"cache{i}"),
                "every": lambda i: talkbench(clip, weights, args.every, work / f"cache-every{i}"),
                "cached": lambda i: talkbench(clip, weights, 1, work / f"cache{i}")}  # exact's detections
        for i in range(args.repeats):
            for mode, run in runs.items():
                seconds, scores[mode] = timed(run, i)
                times[mode].append(seconds)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"lip sync, {clip.name} (5 s, 512x512, 25 fps), median of {args.repeats}, "
              f"load {os.getloadavg()[0]:.2f}")
        print(f"{'':<36}{'seconds':>9}{'speed-up':>10}   LSE-C     LSE-D   offset")
        for mode, label in (("reference", "syncnet-python SyncNetPipeline"),
                            ("exact", "talkbench, every frame (exact)"),
                            ("every", f"talkbench, every {args.every}th frame"),
                            ("cached", "talkbench, exact, detections cached")):
            s = scores[mode]
            print(f"{label:<36}{med[mode]:>9.2f}{med['reference'] / med[mode]:>9.2f}x  {s['lse_c']:7.4f}  "
                  f"{s['lse_d']:7.4f}  {s['av_offset']:>5}", flush=True)
        from talkbench_plugin.sync.faces import S3FDDetector

        cascade = CascadeDetector()
        S3FDDetector.detect = lambda self, frames: cascade.detect(frames)
        print(f"\nevery {args.every}th frame vs every frame, skimage LBP cascade boxes, random SyncNet weights")
        print(f"{'clip':<28}{'frames':>7}{'crop MAD':>10}{'motion MAD':>12}{'LSE-C':>9}{'dLSE-C':>9}{'LSE-D':>9}"
              f"{'dLSE-D':>9}{'dOffset':>8}")
        change = {}
        for name in MOVING:
            c = change[name] = score_change(CLIPS / name, weights, args.every, work / "change")
            print(f"{name:<28}{c['frames']:>7}{c['crop_mad']:>10.2f}{c['motion_mad']:>12.2f}{c['lse_c']:>9.4f}"
                  f"{c['d_lse_c']:>+9.4f}{c['lse_d']:>9.4f}{c['d_lse_d']:>+9.4f}{c['d_offset']:>+8.0f}", flush=True)
        memory = {name: peak_rss(CLIPS / name, weights, BOXES[name]) for name in ("may_5s.mp4", "obama_20s.mp4")}
    print("\npeak RSS after imports (talkbench, exact): " +
          ", ".join(f"{name} {mib:.1f} MiB" for name, mib in memory.items()))
    if args.json:
        args.json.write_text(json.dumps({"seconds": times, "scores": scores, "every_k_change": change,
                                         "rss_mib": memory}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
