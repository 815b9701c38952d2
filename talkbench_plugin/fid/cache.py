"""Reference-side Inception moments cached on disk, keyed by video content, segment and protocol.

One ``fid-<key>.npz`` per key, where the key hashes (video SHA-256, segment, protocol: sampling,
resize, weights hash, pyiqa version). The file also stores that description and is reused only when it
matches exactly and its arrays are intact; anything else (truncated, corrupt, another protocol) is
recomputed and replaced. Creation happens under a file lock and lands with an atomic rename, so
several xdist workers asking for the same key compute it once.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from talkbench_plugin.cache import atomic_path, file_sha256, lock_for
from talkbench_plugin.fid.moments import Moments

FORMAT = "talkbench-fid-moments/1"


def describe(video: str | os.PathLike[str], segment: Any, protocol: Mapping[str, Any]) -> str:
    """The canonical JSON that identifies a reference's moments (``segment`` must be JSON-able)."""
    meta = {"format": FORMAT, "video_sha256": file_sha256(video), "segment": segment, "protocol": protocol}
    return json.dumps(meta, sort_keys=True, separators=(",", ":"))


def cache_path(cache_dir: Path, description: str) -> Path:
    return cache_dir / f"fid-{hashlib.sha256(description.encode()).hexdigest()}.npz"


def _load(path: Path, description: str) -> Moments | None:
    """The cached moments if the file is intact and describes exactly this key, else None."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["meta"]) != description:
                return None
            count, total, outer = int(data["count"]), data["total"], data["outer"]
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    dims = total.shape[0] if total.ndim == 1 else -1
    if count < 0 or outer.shape != (dims, dims) or not (np.isfinite(total).all() and np.isfinite(outer).all()):
        return None
    return Moments(count, total.astype(np.float64), outer.astype(np.float64))


def cached_moments(
    cache_dir: Path,
    video: str | os.PathLike[str],
    segment: Any,
    protocol: Mapping[str, Any],
    compute: Callable[[], Moments],
) -> tuple[Moments, bool]:
    """The reference moments for (video content, segment, protocol), and whether they came from the cache.

    ``compute`` runs only on a miss, at most once across processes sharing ``cache_dir``.
    """
    description = describe(video, segment, protocol)
    path = cache_path(cache_dir, description)
    if (moments := _load(path, description)) is not None:
        return moments, True
    with lock_for(path):
        if (moments := _load(path, description)) is not None:
            return moments, True
        moments = compute()
        with atomic_path(path) as tmp:
            np.savez(
                tmp, meta=np.array(description), count=np.array(moments.count), total=moments.total, outer=moments.outer
            )
        return moments, False
