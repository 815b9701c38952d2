"""S3FD boxes remembered by frame content within one process: lip sync and the face metrics detect once.

Lip sync (on the generated video at 25 fps) and the face metrics LMD and CSIM (on the aligned frame pairs)
run the same network with the same settings and weights, so a frame that both see gets the same boxes:
whichever asks first runs S3FD, the other finds the boxes here. A frame is known by its pixels (a
BLAKE2b digest of the RGB array and its shape), so frames that differ in any way (another size after
alignment, another rate, another side) are simply detected on their own.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .faces import Detector

LIMIT = 50_000  # frames remembered per process (a few MiB of boxes), the oldest forgotten first
_BOXES: OrderedDict[tuple[str, bytes], np.ndarray] = OrderedDict()


def forget() -> None:
    """Forget every remembered box (a new process's state)."""
    _BOXES.clear()


def frame_digest(frame: np.ndarray) -> bytes:
    """A frame's identity: its shape and bytes."""
    digest = hashlib.blake2b(repr(frame.shape).encode(), digest_size=20)
    digest.update(np.ascontiguousarray(frame).data)
    return digest.digest()


def s3fd_identity(settings: dict[str, Any], weights_dir: str | None, device: str) -> str:
    """What makes two S3FD detectors give the same boxes: settings, the weights (pinned hash, file) and device."""
    from .. import weights

    return json.dumps({"settings": settings, "weights_sha256": weights.spec_for("s3fd").sha256,
                       "weights_file": str(weights.weight_path("s3fd", weights_dir)), "device": device},
                      sort_keys=True)


class SharedDetector:
    """``inner``'s boxes, kept under ``key`` for the other users of the same detector in this process.

    ``lookup=False`` runs ``inner`` on every frame and only remembers (for a detector that must see each
    frame in order, as the lip-sync cache's replay does); otherwise only frames not seen before reach ``inner``.
    """

    def __init__(self, inner: Detector, key: str, *, lookup: bool = True) -> None:
        self.inner, self.key, self.lookup = inner, key, lookup
        self.detected = 0  # frames that reached ``inner``
        self.shared = 0  # frames answered from memory

    def __getattr__(self, name: str) -> Any:  # the inner detector's settings (scale, conf_th)
        return getattr(self.inner, name)

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        keys = [(self.key, frame_digest(f)) for f in frames]
        missing = [i for i, k in enumerate(keys) if not self.lookup or k not in _BOXES]
        if missing:
            found = self.inner.detect(frames if len(missing) == len(frames) else frames[missing])
            for i, boxes in zip(missing, found, strict=True):
                _BOXES[keys[i]] = np.array(boxes, dtype=np.float64)
        self.detected += len(missing)
        self.shared += len(frames) - len(missing)
        out = []
        for k in keys:
            _BOXES.move_to_end(k)
            out.append(_BOXES[k].copy())
        while len(_BOXES) > LIMIT:
            _BOXES.popitem(last=False)
        return out

    def settings(self) -> dict[str, Any]:
        return self.inner.settings()
