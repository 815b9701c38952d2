"""Speed of CPBD, LPIPS and FVD end to end: talkbench against each reference implementation run the way its
README runs it, on the same clip.

Run from the repository root, in the project's environment (needs ``ffmpeg`` and ../shared/data/clips):

    python scripts/bench_metrics.py --seconds 4 --metrics cpbd,lpips,fvd

The reference video is the first ``--seconds`` of ``--clip`` (re-encoded, crf 18), the generated one the
same seconds degraded (crf 35). LPIPS and FVD load deterministic random weights in the official file
formats (speed does not depend on the values): talkbench through its weights registry, the references
from where they look (torch.hub's cache, cd-fvd's ``ckpt_path``).

- talkbench: ``evaluate_case(case, [metric])`` (one decode pass, an empty cache: FVD's reference clips
  are computed, not cached).
- CPBD: ``ffmpeg -i GEN -pix_fmt gray DIR/%05d.png``, then ``cpbd.compute(imread(png, mode='L'))`` per file.
- LPIPS: ``ffmpeg`` dumps both videos to PNG, then lpips' ``lpips_2dirs.py`` loop: ``lpips.load_image``,
  ``im2tensor``, ``LPIPS(net='alex')`` one pair at a time.
- FVD: both videos decoded whole into (clips, 16, H, W, 3) arrays, ``cdfvd.cdfvd('i3d').compute_fvd``
  (cd-fvd's README usage on arrays).
Prints frames/s of each side (generated frames scored) and the ratio; ``--json`` saves them.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIPS = Path("/work/shared/data/clips")
sys.path.insert(0, str(ROOT))


def cut(src: Path, dst: Path, seconds: float, crf: int) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-t", str(seconds), "-an", "-c:v", "libx264",
                    "-crf", str(crf), "-pix_fmt", "yuv420p", str(dst)], check=True)
    return dst


def dump(video: Path, folder: Path, *args: str) -> list[Path]:
    folder.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), *args, str(folder / "%05d.png")], check=True)
    return sorted(folder.glob("*.png"))


def random_weights(folder: Path) -> None:
    """Random AlexNet and I3D in their official formats, registered under their registry names."""
    import torch
    import torchvision
    from cdfvd.third_party.i3d.pytorch_i3d import InceptionI3d

    from talkbench_plugin import weights

    torch.manual_seed(0)
    for name, net in (("alexnet", torchvision.models.alexnet(weights=None)), ("i3d", InceptionI3d(400))):
        path = folder / weights.spec_for(name).filename
        torch.save(net.state_dict(), path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        weights.register(replace(weights.spec_for(name), sha256=digest, sha256_ends=None, git_blob=None))


def talkbench_run(metric: str, ref: Path, gen: Path, work: Path, folder: Path) -> tuple[float, int]:
    from talkbench_plugin.engine import evaluate_case
    from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
    from talkbench_plugin.run_options import family_options

    options = family_options({"sync_audio": "own", "sync_detector": "s3fd", "sync_detect_every": 1,
                              "sync_combine": "best", "fid_sampling": "every", "cpbd_sampling": "every",
                              "lpips_net": "alex"}.__getitem__, str(folder), "cpu", str(work / "moments"))
    case = Case(Speaker("s", "en", ref), Pipeline("P", "dubbing", "x"), gen, Segment())
    start = time.perf_counter()
    record = evaluate_case(case, [metric], work / f"cache-{metric}", options=options)
    seconds = time.perf_counter() - start
    entry = record["metrics"][metric]
    if entry.get("error"):
        raise SystemExit(f"{metric}: {entry['error']}")
    frames = 16 * entry["details"]["clips"]["generated"] if metric == "fvd" else len(entry["per_frame"])
    return seconds, frames


def reference_cpbd(ref: Path, gen: Path, work: Path, folder: Path) -> float:
    import cpbd
    from imageio.v2 import imread

    start = time.perf_counter()
    for png in dump(gen, work / "cpbd", "-pix_fmt", "gray"):
        cpbd.compute(imread(png, mode="L"))
    return time.perf_counter() - start


def reference_lpips(ref: Path, gen: Path, work: Path, folder: Path) -> float:
    import lpips
    import torch

    hub = work / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    shutil.copy(folder / "alexnet-owt-7be5be79.pth", hub / "checkpoints")
    torch.hub.set_dir(str(hub))
    start = time.perf_counter()
    net = lpips.LPIPS(net="alex", verbose=False)
    pairs = zip(dump(ref, work / "lpips0"), dump(gen, work / "lpips1"), strict=False)
    with torch.no_grad():
        for p0, p1 in pairs:
            net(lpips.im2tensor(lpips.load_image(str(p0))), lpips.im2tensor(lpips.load_image(str(p1))))
    return time.perf_counter() - start


def reference_fvd(ref: Path, gen: Path, work: Path, folder: Path) -> float:
    import av
    import numpy as np
    from cdfvd import fvd

    def clips(path: Path) -> np.ndarray:
        with av.open(str(path)) as container:
            frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        n = len(frames) // 16
        return frames[: n * 16].reshape(n, 16, *frames.shape[1:])

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        model = fvd.cdfvd("i3d", n_real="full", n_fake="full", ckpt_path=str(folder / "i3d_pretrained_400.pt"),
                          device="cpu")
    model.compute_fvd(clips(ref), clips(gen))
    return time.perf_counter() - start


REFERENCES = {"cpbd": reference_cpbd, "lpips": reference_lpips, "fvd": reference_fvd}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=CLIPS / "obama_20s.mp4")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--metrics", default="cpbd,lpips,fvd")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        folder = tmp_path / "weights"
        folder.mkdir()
        random_weights(folder)
        ref = cut(args.clip, tmp_path / "ref.mp4", args.seconds, 18)
        gen = cut(args.clip, tmp_path / "gen.mp4", args.seconds, 35)
        for metric in args.metrics.split(","):
            work = tmp_path / metric
            work.mkdir()
            ours, frames = talkbench_run(metric, ref, gen, work, folder)
            theirs = REFERENCES[metric](ref, gen, work, folder)
            results[metric] = {"frames": frames, "talkbench_s": ours, "reference_s": theirs,
                               "talkbench_fps": frames / ours, "reference_fps": frames / theirs,
                               "speedup": theirs / ours}
            print(f"{metric:6} {frames:5d} frames  talkbench {frames / ours:7.2f} frames/s ({ours:6.1f} s)  "
                  f"reference {frames / theirs:7.2f} frames/s ({theirs:6.1f} s)  x{theirs / ours:.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"clip": str(args.clip), "seconds": args.seconds, **results}, indent=2))


if __name__ == "__main__":
    main()
