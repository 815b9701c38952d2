"""A run killed by SIGKILL at any point leaves no cache entry that a later run reads as valid: processes
are killed as they land the demo, a calibration video, FID moments, a run record and face detections,
then a rerun in that cache gives what a clean run gives."""

import json
import os
import subprocess
import sys
from pathlib import Path

from videos import moving_frames, write_video

ROOT = Path(__file__).resolve().parents[1]

# One process (the imports once): a clean fill, then per kill point a forked child that fills the "killed"
# cache and SIGKILLs itself as the first file whose path holds that text is about to land (its temporary
# file half written), as an OOM kill or a cancelled CI job would; then a rerun fills the killed cache.
SCRIPT = r'''
import hashlib, json, os, signal, sys
from pathlib import Path
import numpy as np

from talkbench_plugin.datasets import add_calibration, demo_manifest, materialize
from talkbench_plugin.fid.cache import cached_moments
from talkbench_plugin.fid.moments import Moments
from talkbench_plugin.manifest import load_manifest
from talkbench_plugin.store import RunStore
from talkbench_plugin.sync import detections

work, manifest = Path(sys.argv[1]), Path(sys.argv[2])
replace, kill_at = os.replace, None
rng = np.random.default_rng  # one seed per entry: whichever are cached, the others get the same numbers


def landing(src, dst):
    if kill_at and kill_at in str(dst):
        with open(src, "r+b") as fh:
            fh.truncate(os.path.getsize(src) // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    replace(src, dst)


os.replace = landing


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fill(cache):
    """Every kind of cache entry a run makes, and what a run reads back from them."""
    root = demo_manifest(cache).parent
    demo = {str(p.relative_to(root)): sha(p) for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".lock")}
    dataset = load_manifest(manifest)
    add_calibration(dataset, ["static"])
    case = next(c for c in dataset.cases() if c.pipeline.name == "static")
    ref = case.speaker.reference
    calibration = sha(materialize(case, cache)[0].generated)
    moments, _ = cached_moments(cache / "fid", ref, [0, None], {"p": 1},
                                lambda: Moments(7, rng(1).normal(size=4), rng(1).normal(size=(4, 4))))
    record = RunStore(cache / "run").get(case.id, {"m": 1}, lambda: {"value": float(rng(3).normal())})
    description = detections.describe(ref, {"every": 1}, {"detector": "test"})
    path = detections.cache_path(cache / "faces", description)
    boxes = detections.load(path, description)
    if boxes is None:
        boxes = list(rng(2).normal(size=(3, 1, 5)))
        detections.save(path, description, boxes)
    return {"demo": demo, "calibration": calibration, "moments": [moments.count, moments.total.tolist()],
            "record": record, "boxes": [b.tolist() for b in boxes]}


def landed(cache, point):
    return [str(p) for p in cache.rglob("*") if point in str(p) and p.is_file() and not p.name.startswith(".")
            and not p.name.endswith(".lock")]


clean = fill(work / "clean")
killed, statuses = work / "killed", {}
for kill_at in sys.argv[3:]:
    child = os.fork()
    if child == 0:
        fill(killed)
        os._exit(0)
    statuses[kill_at] = [os.waitpid(child, 0)[1], landed(killed, kill_at)]
kill_at = None
print(json.dumps({"clean": clean, "killed": statuses, "rerun": fill(killed)}))
'''
POINTS = ["reference_videos/eileen_zh", "static.mp4", "fid-", f"{os.sep}run{os.sep}", "faces-"]


def test_killed_at_each_point_then_rerun_equals_clean(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    write_video(tmp_path / "data" / "ref.mp4", moving_frames(25, 64, 64), 25)
    manifest = tmp_path / "data" / "m.toml"
    manifest.write_text('[speakers.a]\nlanguage = "en"\nreference = "ref.mp4"\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), str(manifest), *POINTS],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    for point, (status, landed) in result["killed"].items():
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9, point  # each child reached its point
        assert landed == [], point  # and nothing landed under that name
    assert result["rerun"] == result["clean"]
