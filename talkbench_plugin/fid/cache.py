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
from talkbench_plugin.errors import TalkbenchError
from talkbench_plugin.fid.moments import Moments

FORMAT = "talkbench-fid-moments/1"


def describe(video: str | os.PathLike[str], segment: Any, protocol: Mapping[str, Any]) -> str:
    """The canonical JSON that identifies a reference's moments (``segment`` must be JSON-able)."""
    meta = {"format": FORMAT, "video_sha256": file_sha256(video), "segment": segment, "protocol": protocol}
    return json.dumps(meta, sort_keys=True, separators=(",", ":"))


def cache_path(cache_dir: Path, description: str) -> Path:
    return cache_dir / f"fid-{hashlib.sha256(description.encode()).hexdigest()}.npz"


def _load(path: Path, description: str | None) -> Moments | None:
    """The moments if the file is intact and (unless ``description`` is None) describes exactly this key."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if description is not None and str(data["meta"]) != description:
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
        write(path, moments, description)
        return moments, False


def lookup(
    cache_dir: Path, video: str | os.PathLike[str], segment: Any, protocol: Mapping[str, Any]
) -> tuple[Moments | None, Path]:
    """The cached moments for this key if present and intact (nothing computed, no lock), and their path."""
    description = describe(video, segment, protocol)
    path = cache_path(cache_dir, description)
    return _load(path, description), path


def write(path: Path, moments: Moments, description: str) -> None:
    """Save ``moments`` under ``description`` atomically."""
    with atomic_path(path) as tmp:
        np.savez(
            tmp, meta=np.array(description), count=np.array(moments.count), total=moments.total, outer=moments.outer
        )


def read(path: str | os.PathLike[str]) -> Moments:
    """Moments saved by ``write`` (any key); a missing or damaged file is a TalkbenchError naming it."""
    moments = _load(Path(path), None)
    if moments is None:
        raise TalkbenchError(f"{path}: missing or damaged FID moments file; run the benchmark again to rewrite it")
    return moments
