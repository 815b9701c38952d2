"""A video's face detections cached on disk, keyed by content, frames and detector protocol.

Detection (S3FD on every frame) is most of lip sync's cost, and its result depends only on the
frames it sees and the detector, so a second run over the same video (another threshold, another
metric, a re-run in CI) replays the boxes instead of running the network: tracking, cropping and
scoring then run as before, on the same boxes, so the scores are the same.

One ``faces-<key>.npz`` per key, where the key hashes (video SHA-256, the frames detected on, the
detector's settings and weights hash). The file keeps that description and the boxes; it is used only
when the description matches exactly and the arrays are intact, else detection runs again and the
file is replaced atomically (several xdist workers may write the same key; the last rename wins).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import atomic_path, file_sha256
from ..errors import TalkbenchError
from .faces import Detector

FORMAT = "talkbench-face-detections/1"


def describe(video: str | os.PathLike[str], frames: Mapping[str, Any], detector: Mapping[str, Any]) -> str:
    """The canonical JSON that identifies a video's detections (``frames``: which frames, at what rate)."""
    meta = {"format": FORMAT, "video_sha256": file_sha256(video), "frames": frames, "detector": detector}
    return json.dumps(meta, sort_keys=True, separators=(",", ":"))


def cache_path(cache_dir: Path, description: str) -> Path:
    return cache_dir / f"faces-{hashlib.sha256(description.encode()).hexdigest()}.npz"


def load(path: Path, description: str) -> list[np.ndarray] | None:
    """The boxes per detected frame if ``path`` is intact and describes exactly this key."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["meta"]) != description:
                return None
            counts, boxes = data["counts"], data["boxes"]
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    if (counts.ndim != 1 or boxes.ndim != 2 or boxes.shape[1] != 5 or (counts < 0).any()
            or counts.sum() != len(boxes) or not np.isfinite(boxes).all()):
        return None
    return np.split(boxes.astype(np.float64), np.cumsum(counts)[:-1]) if len(counts) else []


def save(path: Path, description: str, found: list[np.ndarray]) -> None:
    """Write the boxes of each detected frame under ``description``, atomically."""
    counts = np.array([len(b) for b in found], dtype=np.int64)
    boxes = np.concatenate([np.asarray(b, np.float64).reshape(-1, 5) for b in found]) if found else np.empty((0, 5))
    with atomic_path(path) as tmp:
        np.savez(tmp, meta=np.array(description), counts=counts, boxes=boxes)


class RecordingDetector:
    """A detector that keeps every result it returns, in order, for ``save``."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner
        self.found: list[np.ndarray] = []

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        found = self.inner.detect(frames)
        self.found += found
        return found

    def settings(self) -> dict[str, Any]:
        return self.inner.settings()


class ReplayDetector:
    """Boxes from the cache, handed out in the order the frames are asked for."""

    def __init__(self, found: list[np.ndarray], settings: Mapping[str, Any], path: Path) -> None:
        self.found, self._settings, self.path = found, dict(settings), path
        self.used = 0

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        if self.used + len(frames) > len(self.found):
            raise TalkbenchError(f"{self.path}: the cached face detections cover {len(self.found)} frames but "
                                 f"the video has more; delete the file and run again")
        self.used += len(frames)
        return [b.copy() for b in self.found[self.used - len(frames):self.used]]

    def settings(self) -> dict[str, Any]:
        return dict(self._settings)
