"""Two Ray tasks that meet right before they fill one cache entry, and what each saw (tests/test_ray_executor.py).

The functions run inside Ray workers, which cannot import the tests folder: the test ships this module by
value (``ray.cloudpickle.register_pickle_by_value``). Each task waits at a barrier (a marker file per task in
a shared folder) at the point named, then goes on through the production code; what happened is logged as
one JSON file per task and event. The patches last for one call: Ray reuses worker processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

PARTIES = 2
FACE = np.array([[20.0, 20.0, 140.0, 150.0, 0.99]])  # one fixed face a frame: random S3FD weights find none


def meet(folder: Path, name: str) -> float:
    """Wait until PARTIES tasks have reached ``name``; the time this one went on."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.{uuid.uuid4().hex}.arrived").touch()
    deadline = time.monotonic() + 60
    while len(list(folder.glob(f"{name}.*.arrived"))) < PARTIES:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: the other task never came to the barrier in {folder}")
        time.sleep(0.005)
    return time.time()


def log(folder: Path, event: str, **data: Any) -> None:
    (folder / f"{event}.{uuid.uuid4().hex}.json").write_text(json.dumps({"pid": os.getpid(), **data}))


def events(folder: Path, event: str) -> list[dict[str, Any]]:
    """What the tasks logged for ``event`` (read by the test)."""
    return [json.loads(p.read_text()) for p in sorted(folder.glob(f"{event}.*.json"))]


@contextlib.contextmanager
def patched(target: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, old)


def racing_case(folder: Path, run_case: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """``run_case`` (the executor's task) with a barrier right before the FID reference statistics are stored
    and another between writing the face detections' temporary file and renaming it over the entry."""
    folder = Path(folder)

    def task(*args: Any) -> dict[str, Any]:
        from talkbench_plugin.fid import cache as fid_cache
        from talkbench_plugin.sync import detections
        from talkbench_plugin.sync.faces import S3FDDetector

        cached_moments, write, atomic_path = fid_cache.cached_moments, fid_cache.write, detections.atomic_path

        def fid_entry(cache_dir: Path, video: Any, segment: Any, protocol: Any, compute: Any) -> Any:
            met = meet(folder, "fid")  # both computed the statistics; neither has stored them
            with patched(fid_cache, "write", slow_write):
                moments, cached = cached_moments(cache_dir, video, segment, protocol, compute)
            log(folder, "fid", met=met, done=time.time(), cached=cached)
            return moments, cached

        def slow_write(path: Path, moments: Any, description: str) -> None:
            start = time.time()
            time.sleep(0.5)  # the other task is at the lock by now
            write(path, moments, description)
            log(folder, "fid-write", start=start, done=time.time(), path=str(path))

        @contextlib.contextmanager
        def faces_entry(dest: Path) -> Iterator[Path]:
            with atomic_path(dest) as tmp:
                yield tmp
                met = meet(folder, "faces")  # both temporary files written, neither renamed
                seen = sorted(p.name for p in dest.parent.glob(f".{dest.stem}.*"))
                meet(folder, "faces-seen")  # neither renames before both have looked
                with np.load(tmp) as data:
                    log(folder, "faces", met=met, tmp=tmp.name, seen=seen, boxes=data["boxes"].tolist())
            log(folder, "faces-renamed", done=time.time(), path=str(dest))

        def detect(self: Any, frames: np.ndarray) -> list[np.ndarray]:
            return [FACE.copy() for _ in frames]

        with patched(fid_cache, "cached_moments", fid_entry), patched(detections, "atomic_path", faces_entry), \
                patched(S3FDDetector, "detect", detect):
            return run_case(*args)

    return task


def racing_demo(folder: Path, cache: Path) -> dict[str, Any]:
    """A Ray task: the demo dataset's manifest from ``cache`` (built there by one of the tasks meeting at the
    barrier), a demo of two short speakers to keep the test fast; what the task read back."""
    import dataclasses
    import hashlib
    import socket

    import ray

    from talkbench_plugin import datasets, demo

    folder = Path(folder)
    build = demo.build_demo
    short = tuple(dataclasses.replace(s, width=96, height=96, seconds=0.6) for s in demo.SPEAKERS)

    def logged_build(dest: Path) -> Path:
        start = time.time()
        manifest = build(dest)
        log(folder, "demo-build", start=start, done=time.time())
        return manifest

    with patched(demo, "SPEAKERS", short), patched(demo, "build_demo", logged_build):
        met = meet(folder, "demo")
        manifest = datasets.demo_manifest(Path(cache))
    files = {str(p.relative_to(manifest.parent)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(manifest.parent.rglob("*")) if p.is_file()}
    return {"manifest": str(manifest), "files": files, "met": met, "done": time.time(),
            "node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname()}
