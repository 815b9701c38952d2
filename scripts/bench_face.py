"""Speed of the face metrics (LMD, LMD over the whole face, CSIM) end to end: talkbench against the
reference tools run the way their READMEs run them.

Run from the repository root, in the project's environment:

    python scripts/bench_face.py                          # 30 s pair at 256x256, RSS also at 10 s
    python scripts/bench_face.py --reference-seconds 5    # the reference on the first 5 s only
    python scripts/bench_face.py --seconds 2 --rss-seconds 0

What it does:

1. Builds a 25 fps pair in a temporary directory (removed at the end, bench_common.build_pair): the
   reference is the real clip ``katiehill_hdtf_8s.mp4`` from ../shared/data/clips (looped, cropped to a
   square, scaled to --size), the "generated" video a low-quality re-encode of it; without the clips
   FFmpeg's ``testsrc2`` stands in.
2. Writes deterministic random weights in the official formats (sfd_face.pth, 2DFAN4, an IResNet-50
   w600k_r50.onnx) and pins the registry to them: no trained weights are needed, the networks are the
   real ones so the cost is. Random S3FD finds no face, so on both sides the detector runs (its cost
   counts) and a fixed centred box is used instead of what it found.
3. talkbench: ``evaluate_case(case, ["lmd", "lmd_face", "csim"])`` (one decode, S3FD at scale 0.25 on
   batches, FAN on batches (OpenVINO, converted into the empty cache in the run; ``--runtime torch``: eager
   torch), ArcFace on batches, landmarks shared by the three metrics), in a fresh process
   timed inside it (models loaded included, imports not), its peak RSS (the process's ``VmHWM``); again on a
   ``--rss-seconds`` pair to show the peak does not grow with the clip.
4. The reference, as the READMEs run it: ``ffmpeg`` dumps both videos' frames to PNG, then per frame
   ``skimage.io.imread``, face-alignment's ``FaceAlignment(TWO_D, flip_input=False)`` (its S3FD
   ``detect_from_image`` at full size, then ``get_landmarks_from_image`` with the box), insightface's
   ``ArcFaceONNX.get`` on the 5 points, and the distances and cosine in NumPy.

The reference runs on the first ``--reference-seconds`` of the same pair when given (it is slow; said in
the output): frames/s compare. Prints frames/s (frame pairs per second) of both, the ratio, the peak RSS
and the load average.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import ROOT, build_pair, child_result, ffmpeg, fresh_process, load

sys.path.insert(0, str(ROOT))


def random_weights(folder: Path) -> None:
    """The three files in their official formats."""
    from talkbench_plugin import weights
    from talkbench_plugin.face.landmarks import write_random_fan
    from talkbench_plugin.face.random_arcface import write_random_arcface
    from talkbench_plugin.sync.model import write_random_weights

    write_random_weights("s3fd", folder / weights.spec_for("s3fd").filename)
    write_random_fan(folder / weights.spec_for("fan2d").filename)
    write_random_arcface(folder / weights.spec_for("arcface").filename)


def register(folder: Path) -> None:
    """Pin the registry to the random files (verify accepts only pinned hashes)."""
    from talkbench_plugin import weights

    for name in ("s3fd", "fan2d", "arcface"):
        spec = weights.spec_for(name)
        digest = hashlib.sha256((folder / spec.filename).read_bytes()).hexdigest()
        weights.register(weights.WeightSpec(name, spec.filename, (), sha256=digest))


class CentredBox:
    """Runs ``inner`` (its cost counts), then answers a fixed centred box: random weights find no face."""

    def __init__(self, inner, size: int) -> None:
        self.inner, self.conf_th, self.scale = inner, inner.conf_th, inner.scale
        self.box = np.array([0.2 * size, 0.15 * size, 0.8 * size, 0.85 * size, 0.99])

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        self.inner.detect(frames)
        return [self.box[None].copy() for _ in frames]


def talkbench(ref: Path, gen: Path, weights_dir: Path, size: int, cache: Path, runtime: str) -> tuple[float, dict]:
    from talkbench_plugin.engine import evaluate_case
    from talkbench_plugin.face.landmarks import Landmarker, load_detector
    from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
    from talkbench_plugin.metrics import face
    from talkbench_plugin.options.face import FaceOptions

    options = FaceOptions(weights=str(weights_dir), runtime=runtime)
    start = time.perf_counter()  # FAN's OpenVINO conversion into the empty cache counts
    face._LANDMARKERS[options] = Landmarker(options, CentredBox(load_detector(str(weights_dir)), size), cache=cache)
    case = Case(Speaker("bench", "en", ref), Pipeline("degraded", "dubbing", "x"), gen, Segment())
    record = evaluate_case(case, ["lmd", "lmd_face", "csim"], cache, options={"face": options})
    seconds = time.perf_counter() - start
    if record["error"] or any(m.get("error") for m in record["metrics"].values()):
        raise SystemExit(f"talkbench failed: {json.dumps(record['metrics'])[:2000]} {record['error']}")
    return seconds, {k: v["value"] for k, v in record["metrics"].items()} | {"frames": record["alignment"]["compared"]}


def reference(ref: Path, gen: Path, weights_dir: Path, size: int, work: Path) -> tuple[float, dict]:
    """Frame dumps, then face-alignment and insightface per frame, as their READMEs run them."""
    import face_alignment
    import torch
    from face_alignment import api
    from face_alignment.detection.sfd import net_s3fd, sfd_detector
    from insightface.app.common import Face
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX
    from skimage import io

    from talkbench_plugin import weights

    api.load_file_from_url = lambda url, *a, **k: str(weights_dir / weights.spec_for("fan2d").filename)
    torch.manual_seed(0)
    sfd_detector.load_state_dict_from_url = lambda url, *a, **k: net_s3fd.s3fd().state_dict()
    fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, flip_input=False, device="cpu",
                                      compile=False)
    arcface = ArcFaceONNX(model_file=str(weights_dir / weights.spec_for("arcface").filename))
    warnings.filterwarnings("ignore", category=FutureWarning, module="insightface")  # one per frame: its norm_crop
    box = np.array([0.2 * size, 0.15 * size, 0.8 * size, 0.85 * size, 0.99])
    start = time.perf_counter()
    for name, video in (("ref", ref), ("gen", gen)):
        (work / name).mkdir()
        ffmpeg("-i", video, work / name / "%06d.png")
    lmd, sims = [], []
    for ref_png in sorted((work / "ref").glob("*.png")):
        found = []
        for image in (io.imread(ref_png), io.imread(work / "gen" / ref_png.name)):
            fa.face_detector.detect_from_image(image.copy())  # its cost; random weights find no real face
            points = fa.get_landmarks_from_image(image, detected_faces=[box])[0]
            kps = np.stack([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]])
            found.append((points, arcface.get(np.ascontiguousarray(image[..., ::-1]), Face(kps=kps))))
        (p_ref, e_ref), (p_gen, e_gen) = found
        lmd.append(np.linalg.norm(p_ref[48:68] - p_gen[48:68], axis=1).mean())
        sims.append(arcface.compute_sim(e_ref, e_gen))
    seconds = time.perf_counter() - start
    return seconds, {"lmd": float(np.mean(lmd)), "csim": float(np.mean(sims)), "frames": len(lmd)}


def child(ref: str, gen: str, weights_dir: str, size: str, cache: str, runtime: str) -> None:
    """talkbench's side, in this fresh process: one JSON line."""
    register(Path(weights_dir))
    seconds, values = talkbench(Path(ref), Path(gen), Path(weights_dir), int(size), Path(cache), runtime)
    print(child_result({"seconds": seconds, **values}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--reference-seconds", type=float, help="run the reference on this prefix only")
    parser.add_argument("--rss-seconds", type=float, default=10.0, help="a shorter pair for peak RSS (0: none)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--runtime", choices=("openvino", "torch"), default="openvino",
                        help="what runs FAN (talkbench's --talkbench-runtime)")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    ref_seconds = args.reference_seconds or args.seconds
    print(f"start: {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-face-") as tmp:
        work = Path(tmp)
        (work / "weights").mkdir()
        random_weights(work / "weights")
        register(work / "weights")
        pairs = {s: build_pair(work / f"pair-{s:g}s", s, args.size)
                 for s in {args.seconds, ref_seconds, *([args.rss_seconds] if args.rss_seconds else [])}}
        tb, rss = fresh_process(Path(__file__), *pairs[args.seconds], work / "weights", args.size, work / "cache",
                                args.runtime)
        tb_s = tb.pop("seconds")
        print(f"talkbench: {tb_s:.1f} s for {tb['frames']} pairs ({args.seconds:g} s), peak RSS {rss:.0f} MiB; "
              f"{load()}", flush=True)
        (work / "ref-run").mkdir()
        ref_s, rf = reference(*pairs[ref_seconds], work / "weights", args.size, work / "ref-run")
        print(f"reference: {ref_s:.1f} s for {rf['frames']} pairs ({ref_seconds:g} s); {load()}", flush=True)
        short = None
        if args.rss_seconds:
            short, short_rss = fresh_process(Path(__file__), *pairs[args.rss_seconds], work / "weights", args.size,
                                             work / "cache-short", args.runtime)
            short = {"seconds_of_video": args.rss_seconds, "frames": short["frames"], "wall_s": short["seconds"],
                     "peak_rss_mib": short_rss}
    result = {"seconds": args.seconds, "size": args.size, "load": load(),
              "talkbench": {"wall_s": tb_s, "frames_per_s": tb["frames"] / tb_s, "peak_rss_mib": rss, **tb},
              "talkbench_short": short,
              "reference": {"seconds_of_video": ref_seconds, "wall_s": ref_s, "frames_per_s": rf["frames"] / ref_s,
                            **rf}}
    result["speedup"] = result["talkbench"]["frames_per_s"] / result["reference"]["frames_per_s"]
    print(f"{'':<12}{'video s':>8}{'wall s':>9}{'pairs/s':>9}{'lmd':>10}{'csim':>9}")
    for who in ("talkbench", "reference"):
        r = result[who]
        seconds = args.seconds if who == "talkbench" else ref_seconds
        print(f"{who:<12}{seconds:>8g}{r['wall_s']:>9.1f}{r['frames_per_s']:>9.2f}{r['lmd']:>10.4f}{r['csim']:>9.4f}")
    print(f"talkbench {result['speedup']:.2f}x the reference's frames/s"
          + (f" (the reference on the first {ref_seconds:g} s)" if ref_seconds != args.seconds else ""))
    if short:
        print(f"talkbench peak RSS: {short['peak_rss_mib']:.0f} MiB at {args.rss_seconds:g} s, {rss:.0f} MiB at "
              f"{args.seconds:g} s")
    print(f"end: {result['load']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
