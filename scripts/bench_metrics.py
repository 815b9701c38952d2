"""Speed and peak memory of CPBD, LPIPS and FVD end to end: talkbench against each reference implementation
run the way its README runs it, on the same 30 s clip.

Run from the repository root, in the project's environment (needs ``ffmpeg`` and ../shared/data/clips):

    python scripts/bench_metrics.py                              # 30 s pair, RSS also at 10 s
    python scripts/bench_metrics.py --seconds 4 --rss-seconds 2 --metrics lpips
    python scripts/bench_metrics.py --reference-seconds cpbd=5    # cpbd's reference on the first 5 s only

The pair (bench_common.build_pair): ``katiehill_hdtf_8s.mp4`` (512x512, 25 fps) looped to ``--seconds``
(crf 18), the generated video its crf 35 re-encode. LPIPS and FVD load deterministic random weights in the
official file formats (speed does not depend on the values): talkbench through its weights registry, the
references from where they look (torch.hub's cache, cd-fvd's ``ckpt_path``).

- talkbench: ``evaluate_case(case, [metric])`` in a fresh process (one decode pass, an empty cache: FVD's
  reference clips are computed, not cached), timed inside it (model loading included, Python's imports
  not); its peak RSS (the process's ``VmHWM``), on the ``--seconds`` pair and on the ``--rss-seconds`` one.
- CPBD: ``ffmpeg -i GEN -pix_fmt gray DIR/%05d.png``, then ``cpbd.compute(imread(png, mode='L'))`` per file.
- LPIPS: ``ffmpeg`` dumps both videos to PNG, then lpips' ``lpips_2dirs.py`` loop: ``lpips.load_image``,
  ``im2tensor``, ``LPIPS(net='alex')`` one pair at a time.
- FVD: both videos decoded whole into (clips, 16, H, W, 3) arrays, ``cdfvd.cdfvd('i3d').compute_fvd``
  (cd-fvd's README usage on arrays). talkbench's first run starts from an empty cache (I3D is converted for
  OpenVINO in it); it runs again with the converted I3D but no statistics, then with the reference's
  statistics cached too (what a speaker's second and later pipelines cost), each on its own line.
``--runtime torch`` runs LPIPS's and FVD's networks in eager torch instead of OpenVINO.
A reference given ``--reference-seconds`` runs on that prefix of the same pair (said in the output); the
frames/s compare. Rounds alternate who goes first. Prints frames/s (generated frames scored) of each side,
the ratio, the peak RSS and the load average; ``--json`` saves them.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import ROOT, build_pair, child_result, fresh_process, load

sys.path.insert(0, str(ROOT))
NAMES = {"alexnet": "alexnet-owt-7be5be79.pth", "i3d": "i3d_pretrained_400.pt"}


def dump(video: Path, folder: Path, *args: str) -> list[Path]:
    folder.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), *args, str(folder / "%05d.png")], check=True)
    return sorted(folder.glob("*.png"))


def random_weights(folder: Path) -> None:
    """Random AlexNet and I3D in their official formats."""
    import torch
    import torchvision
    from cdfvd.third_party.i3d.pytorch_i3d import InceptionI3d

    torch.manual_seed(0)
    for name, net in (("alexnet", torchvision.models.alexnet(weights=None)), ("i3d", InceptionI3d(400))):
        torch.save(net.state_dict(), folder / NAMES[name])


def register(folder: Path) -> None:
    """Pin the registry to the random files (verify accepts only pinned hashes)."""
    from talkbench_plugin import weights

    for name in NAMES:
        digest = hashlib.sha256((folder / weights.spec_for(name).filename).read_bytes()).hexdigest()
        weights.register(replace(weights.spec_for(name), sha256=digest, sha256_ends=None, git_blob=None))


def talkbench_run(metric: str, ref: Path, gen: Path, work: Path, folder: Path, runtime: str) -> tuple[float, int]:
    from talkbench_plugin.engine import evaluate_case
    from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
    from talkbench_plugin.run_options import family_options

    options = family_options({"sync_audio": "own", "sync_detector": "s3fd", "sync_detect_every": 1,
                              "sync_combine": "best", "fid_sampling": "every", "cpbd_sampling": "every",
                              "lpips_net": "alex", "runtime": runtime}.__getitem__, str(folder), "cpu", str(work / "moments"))
    case = Case(Speaker("s", "en", ref), Pipeline("P", "dubbing", "x"), gen, Segment())
    start = time.perf_counter()
    record = evaluate_case(case, [metric], work / f"cache-{metric}", options=options)
    seconds = time.perf_counter() - start
    entry = record["metrics"][metric]
    if entry.get("error") or record["error"]:
        raise SystemExit(f"{metric}: {entry.get('error') or record['error']}")
    frames = 16 * entry["details"]["clips"]["generated"] if metric == "fvd" else len(entry["per_frame"])
    return seconds, frames


def reference_cpbd(ref: Path, gen: Path, work: Path, folder: Path) -> tuple[float, int]:
    import cpbd
    from imageio.v2 import imread

    start = time.perf_counter()
    pngs = dump(gen, work / "cpbd", "-pix_fmt", "gray")
    for png in pngs:
        cpbd.compute(imread(png, mode="L"))
    return time.perf_counter() - start, len(pngs)


def reference_lpips(ref: Path, gen: Path, work: Path, folder: Path) -> tuple[float, int]:
    import lpips
    import torch

    hub = work / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    shutil.copy(folder / NAMES["alexnet"], hub / "checkpoints")
    torch.hub.set_dir(str(hub))
    start = time.perf_counter()
    net = lpips.LPIPS(net="alex", verbose=False)
    pairs = list(zip(dump(ref, work / "lpips0"), dump(gen, work / "lpips1"), strict=False))
    with torch.no_grad():
        for p0, p1 in pairs:
            net(lpips.im2tensor(lpips.load_image(str(p0))), lpips.im2tensor(lpips.load_image(str(p1))))
    return time.perf_counter() - start, len(pairs)


def reference_fvd(ref: Path, gen: Path, work: Path, folder: Path) -> tuple[float, int]:
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
        model = fvd.cdfvd("i3d", n_real="full", n_fake="full", ckpt_path=str(folder / NAMES["i3d"]),
                          device="cpu")
    fake = clips(gen)
    model.compute_fvd(clips(ref), fake)
    return time.perf_counter() - start, 16 * len(fake)


REFERENCES = {"cpbd": reference_cpbd, "lpips": reference_lpips, "fvd": reference_fvd}


def child(metric: str, ref: str, gen: str, work: str, folder: str, runtime: str) -> None:
    """talkbench's side, in this fresh process: one JSON line."""
    register(Path(folder))
    seconds, frames = talkbench_run(metric, Path(ref), Path(gen), Path(work), Path(folder), runtime)
    print(child_result({"seconds": seconds, "frames": frames}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rss-seconds", type=float, default=10.0, help="a shorter pair for peak RSS (0: none)")
    parser.add_argument("--metrics", default="cpbd,lpips,fvd")
    parser.add_argument("--reference-seconds", default="", help="e.g. cpbd=5,lpips=10: the reference on a prefix")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--runtime", choices=("openvino", "torch"), default="openvino",
                        help="what runs I3D (talkbench's --talkbench-runtime)")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    metrics = args.metrics.split(",")
    prefix = {m: float(s) for m, s in (item.split("=") for item in args.reference_seconds.split(",") if item)}
    results: dict = {m: {"rounds": []} for m in metrics}
    print(f"start: {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        tmp_path = Path(tmp)
        folder = tmp_path / "weights"
        folder.mkdir()
        random_weights(folder)
        pairs = {s: build_pair(tmp_path / f"pair-{s:g}s", s)
                 for s in {args.seconds, *prefix.values(), *([args.rss_seconds] if args.rss_seconds else [])}}
        for n in range(args.rounds):
            for metric in metrics:
                work = tmp_path / f"r{n}-{metric}"
                work.mkdir()
                ref_s = prefix.get(metric, args.seconds)

                runs = {"talkbench": lambda m=metric, w=work: fresh_process(Path(__file__), m, *pairs[args.seconds],
                                                                           w / "tb", folder, args.runtime),
                        "reference": lambda m=metric, w=work, r=ref_s: REFERENCES[m](*pairs[r], w, folder)}
                done = {who: runs[who]() for who in (("reference", "talkbench") if n % 2 else runs)}
                (tb, rss), (r_s, r_frames) = done["talkbench"], done["reference"]
                row = {"frames": tb["frames"], "talkbench_s": tb["seconds"], "talkbench_fps": tb["frames"] / tb["seconds"],
                       "peak_rss_mib": rss, "reference_seconds": ref_s, "reference_frames": r_frames,
                       "reference_s": r_s, "reference_fps": r_frames / r_s, "load": load()}
                row["speedup"] = row["talkbench_fps"] / row["reference_fps"]
                if metric == "fvd":  # again: the IR converted, the statistics not; then both cached
                    shutil.rmtree(work / "tb" / "cache-fvd" / "fvd")
                    for label, key in (("I3D converted, no statistics cached", "ir_cached"),
                                       ("reference statistics cached", "warm")):
                        again, _ = fresh_process(Path(__file__), metric, *pairs[args.seconds], work / "tb", folder,
                                                 args.runtime)
                        row[f"talkbench_{key}_fps"] = again["frames"] / again["seconds"]
                        row[f"speedup_{key}"] = row[f"talkbench_{key}_fps"] / row["reference_fps"]
                        print(f"round {n} fvd    {label}: talkbench {row[f'talkbench_{key}_fps']:7.2f}/s "
                              f"({again['seconds']:6.1f} s)  x{row[f'speedup_{key}']:.2f}  {load()}", flush=True)
                results[metric]["rounds"].append(row)
                print(f"round {n} {metric:6} talkbench {row['frames']:5d} frames {row['talkbench_fps']:7.2f}/s "
                      f"({tb['seconds']:6.1f} s, peak RSS {rss:5.0f} MiB)  reference {r_frames:5d} frames "
                      f"({ref_s:g} s of video) {row['reference_fps']:7.2f}/s ({r_s:6.1f} s)  "
                      f"x{row['speedup']:.2f}  {row['load']}", flush=True)
        if args.rss_seconds:
            for metric in metrics:
                work = tmp_path / f"rss-{metric}"
                work.mkdir()
                tb, rss = fresh_process(Path(__file__), metric, *pairs[args.rss_seconds], work / "tb", folder,
                                        args.runtime)
                results[metric]["short"] = {"seconds_of_video": args.rss_seconds, "frames": tb["frames"],
                                            "talkbench_s": tb["seconds"], "peak_rss_mib": rss}
                print(f"peak RSS {metric:6} {args.rss_seconds:g} s pair: {rss:5.0f} MiB ({tb['frames']} frames, "
                      f"{tb['seconds']:.1f} s)  {load()}", flush=True)
    print(f"\n{'metric':8}{'tb fps':>8}{'ref fps':>9}{'ratio':>7}  peak RSS MiB ({args.rss_seconds:g} s / {args.seconds:g} s)")
    for metric, r in results.items():
        best = max(r["rounds"], key=lambda row: row["speedup"])
        worst = min(r["rounds"], key=lambda row: row["speedup"])
        short = r.get("short", {}).get("peak_rss_mib", float("nan"))
        ratio = f"x{worst['speedup']:.2f}" + (f"-{best['speedup']:.2f}" if len(r["rounds"]) > 1 else "")
        print(f"{metric:8}{best['talkbench_fps']:8.2f}{best['reference_fps']:9.2f}{ratio:>7}  "
              f"{short:5.0f} / {max(row['peak_rss_mib'] for row in r['rounds']):5.0f}")
    print(f"end: {load()}")
    if args.json:
        args.json.write_text(json.dumps({"seconds": args.seconds, **results}, indent=2))


if __name__ == "__main__":
    main()
