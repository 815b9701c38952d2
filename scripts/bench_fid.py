"""Speed and memory of FID end to end: talkbench against the flow it replaces (frames to PNG, pyiqa's FID).

Run from the repository root, in the project's environment (needs ``ffmpeg`` and ../shared/data/clips):

    python scripts/bench_fid.py                  # ~10 min on 2 CPU cores
    python scripts/bench_fid.py --json fid.json

Both sides load the same deterministic random Inception weights in the official file format (the
real file is not needed): talkbench through its weights registry, pyiqa from its cache directory.

1. Speed, cold: ``evaluate_case(case, ["fid"])`` on may_radnerf_generated.mp4 against may_5s.mp4
   (512x512, 25 fps, the 5 s of the reference: 125 frames a side) with an empty cache, against
   ``ffmpeg -i VIDEO -t 5 DIR/%05d.png`` for both videos followed by
   ``pyiqa.create_metric('fid')(gen_dir, ref_dir)`` (batch 32, no loader workers). The ratio is the
   pyiqa flow's wall time over talkbench's; the values must agree (1e-3 relative).
2. Second pipeline: another generated video (the reference degraded: half size, crf 35) of the same
   speaker with the reference statistics now cached; its FID's cost as a share of the first one's.
3. Inception throughput: frames/s of ``InceptionNet.features`` (pyiqa's resize + the network) against the
   bare network's forward on the same, already preprocessed batches (the resize is talkbench's overhead).
4. Peak RSS of a fresh process evaluating FID on a 40 s pair and on a 120 s pair (the 5 s files looped),
   sampling one frame a second (``stride=25``) so that the long clip stays quick; both sample more than
   one Inception batch (32 frames), which with the model sets the peak. The model is loaded before the
   peak counter is reset (Linux VmHWM); the RSS at that point is printed too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT.parent / "shared" / "data" / "clips"
REFERENCE, GENERATED = CLIPS / "may_5s.mp4", CLIPS / "may_radnerf_generated.mp4"
ENV = "TALKBENCH_BENCH_WEIGHTS"
sys.path.insert(0, str(ROOT))


def ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def register(folder: Path) -> None:
    """Accept the random weights file in ``folder`` as 'inception' (the registry pins the real one's hash)."""
    from talkbench_plugin import weights

    path = folder / weights.spec_for("inception").filename
    weights.register(replace(weights.spec_for("inception"), sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                             size=None))


def fid_record(ref: Path, gen: Path, cache: Path, folder: Path, sampling: str = "every") -> dict:
    from talkbench_plugin.engine import evaluate_case
    from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
    from talkbench_plugin.metrics.fid import InceptionOptions

    case = Case(Speaker("may", "en", ref), Pipeline("P", "dubbing", "x"), gen, Segment())
    record = evaluate_case(case, ["fid"], cache, options={"fid": InceptionOptions(sampling, weights=str(folder))})
    if record["error"] or record["metrics"]["fid"].get("error"):
        raise SystemExit(f"talkbench failed: {record['error'] or record['metrics']['fid']['error']}")
    return record


def pyiqa_flow(ref: Path, gen: Path, work: Path, folder: Path) -> float:
    """Decode both videos to PNG folders with ffmpeg, then pyiqa's FID on the folders."""
    from unittest import mock

    import pyiqa
    import torch
    from pyiqa.utils import download_util

    for name, video in (("ref", ref), ("gen", gen)):
        (work / name).mkdir(parents=True)
        ffmpeg("-i", video, "-t", "5", work / name / "%05d.png")
    with mock.patch.object(download_util, "DEFAULT_CACHE_DIR", str(folder)):
        metric = pyiqa.create_metric("fid", device=torch.device("cpu"))
        return float(metric(str(work / "gen"), str(work / "ref"), batch_size=32, num_workers=0, verbose=False))


def throughput(folder: Path, frames: int = 64) -> tuple[float, float]:
    """Frames/s of InceptionNet.features and of the bare network on the same preprocessed batches."""
    import av
    import numpy as np
    import torch

    from talkbench_plugin.fid.features import InceptionNet, preprocess

    net = InceptionNet.from_file(folder / "pt_inception-2015-12-05-6726825d.pth", batch_size=32)
    with av.open(str(REFERENCE)) as container:
        video = np.stack([f.to_ndarray(format="rgb24") for _, f in zip(range(frames), container.decode(video=0))])
    net.features(video[:8])  # warm-up
    start = time.perf_counter()
    net.features(video)
    ours = time.perf_counter() - start
    batches = [((preprocess(video[i : i + 32]) - 128) / 128).contiguous(memory_format=torch.channels_last)
               for i in range(0, frames, 32)]  # the layout InceptionNet.features feeds the network
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            net.model(batch, False, False)
    bare = time.perf_counter() - start
    return frames / ours, frames / bare


def child(ref: Path, gen: Path, cache: Path, folder: Path) -> None:
    """In a fresh process: load the model, reset the peak-RSS counter, evaluate once, print the numbers."""
    from talkbench_plugin.metrics.fid import InceptionOptions, inception

    register(folder)
    inception(InceptionOptions(weights=str(folder)), "clean")
    before = _status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    record = fid_record(ref, gen, cache, folder, sampling="stride=25")
    print(json.dumps({"peak_mib": _status_mib("VmHWM"), "before_mib": before, "seconds": record["timings"]["total"],
                      "frames": record["metrics"]["fid"]["details"]["frames"]}))


def _status_mib(key: str) -> float:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(status[key].split()[0]) / 1024


def peak(ref: Path, gen: Path, cache: Path, folder: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(ref), str(gen), str(cache), str(folder)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*map(Path, args.child))
        return 0
    if not REFERENCE.is_file() or not GENERATED.is_file():
        raise SystemExit(f"needs {REFERENCE.name} and {GENERATED.name} in {CLIPS}")
    import torch

    from talkbench_plugin.fid.features import random_inception_state

    with tempfile.TemporaryDirectory(prefix="bench-fid-") as tmp:
        work = Path(tmp)
        folder = work / "weights"
        folder.mkdir()
        torch.save(random_inception_state(seed=0), folder / "pt_inception-2015-12-05-6726825d.pth")
        register(folder)
        second = work / "degraded.mp4"
        ffmpeg("-i", REFERENCE, "-vf", "scale=256:256,scale=512:512", "-c:v", "libx264", "-crf", "35", second)

        start = time.perf_counter()
        first = fid_record(REFERENCE, GENERATED, work / "cache", folder)
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        value_pyiqa = pyiqa_flow(REFERENCE, GENERATED, work / "png", folder)
        t_pyiqa = time.perf_counter() - start
        start = time.perf_counter()
        warm = fid_record(REFERENCE, second, work / "cache", folder)
        t_warm = time.perf_counter() - start
        assert warm["metrics"]["fid"]["details"]["reference_cached"]
        fps_ours, fps_bare = throughput(folder)

        pairs = {}
        for name, loops in (("short", 7), ("long", 23)):  # 40 s and 120 s
            pairs[name] = (work / f"{name}_ref.mp4", work / f"{name}_gen.mp4")
            for src, dst in zip((REFERENCE, second), pairs[name]):
                ffmpeg("-stream_loop", str(loops), "-i", src, "-c", "copy", dst)
        short, long = (peak(*pairs[name], work / f"cache-{name}", folder) for name in ("short", "long"))

    value = first["metrics"]["fid"]["value"]
    numbers = {
        "frames": first["metrics"]["fid"]["details"]["frames"],
        "talkbench_s": t_ours, "pyiqa_flow_s": t_pyiqa, "speedup": t_pyiqa / t_ours,
        "fid_talkbench": value, "fid_pyiqa": value_pyiqa, "relative_difference": abs(value - value_pyiqa) / value,
        "second_pipeline_s": t_warm, "second_share": t_warm / t_ours,
        "timings_first": first["timings"], "timings_second": warm["timings"],
        "inception_fps": fps_ours, "bare_forward_fps": fps_bare, "throughput_share": fps_ours / fps_bare,
        "peak_rss_short_mib": short["peak_mib"], "peak_rss_long_mib": long["peak_mib"],
        "short": short, "long": long, "load_average": os.getloadavg(), "torch_threads": torch.get_num_threads(),
    }
    rows = [
        ("FID cold, talkbench (decode + Inception + Fréchet)", f"{t_ours:.1f} s", f"FID {value:.4f}"),
        ("FID cold, ffmpeg -> PNG + pyiqa", f"{t_pyiqa:.1f} s", f"FID {value_pyiqa:.4f}"),
        ("speed-up (target >= 2x)", f"{t_pyiqa / t_ours:.2f}x", f"rel. diff {numbers['relative_difference']:.1e}"),
        ("second pipeline, reference cached", f"{t_warm:.1f} s", f"{100 * t_warm / t_ours:.0f}% of the first"),
        ("Inception features (resize + forward)", f"{fps_ours:.2f} fr/s", f"{100 * fps_ours / fps_bare:.0f}% of bare"),
        ("bare Inception forward", f"{fps_bare:.2f} fr/s", ""),
        ("peak RSS, 40 s pair (stride=25)", f"{short['peak_mib']:.0f} MiB",
         f"{short['before_mib']:.0f} MiB with the model loaded; frames {short['frames']}"),
        ("peak RSS, 120 s pair (stride=25)", f"{long['peak_mib']:.0f} MiB",
         f"{long['before_mib']:.0f} MiB with the model loaded; frames {long['frames']}"),
    ]
    print(f"frames a side: {numbers['frames']}; load average {os.getloadavg()[0]:.1f}; torch threads "
          f"{torch.get_num_threads()}")
    for row in rows:
        print(f"{row[0]:<52} {row[1]:>12}  {row[2]}")
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
