"""Face detection, tracking and 224×224 crops, streamed from frames in memory.

The algorithm is syncnet-python's ``SyncNetPipeline`` (steps 4, 6 and 7 of ``inference``): S3FD at
scale 0.25 keeping boxes above 0.9, greedy IoU tracking (> 0.5, gaps up to 25 frames), tracks of more
than 50 detections, linear interpolation over gaps, faces larger than 100 px on average, box size and
centre median-filtered over 13 frames (zero-padded at the track's ends, as ``scipy.signal.medfilt``
does), crop_scale 0.4 with a grey (110) border, resized to 224×224 BGR. Differences: frames come from
memory in batches and only about 32 of them are held at a time; there is no scene-cut split (each
video is one scene); ``detect_every = k`` runs the detector on every k-th frame only and lets the
interpolation fill the rest (a track then needs more than ``min_track / k`` detections).
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np
import torch

SMOOTH = 13  # median filter length of the reference's crop smoothing
_S3FD_MEAN_RGB = np.array([123.0, 117.0, 104.0], dtype=np.float32)  # S3FD's BGR mean (104, 117, 123), as RGB
CROP = 224
BORDER = 110


@dataclass(frozen=True)
class FaceSettings:
    """Detection, tracking and crop settings; the defaults are syncnet-python's ``PipelineConfig``."""

    min_track: int = 50  # a track needs more detections than this (frames / detect_every)
    num_failed_det: int = 25  # largest gap in frames between two detections of one track
    min_face_size: int = 100  # pixels: mean box width or height must exceed this
    iou: float = 0.5
    crop_scale: float = 0.4
    detect_every: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Detector(Protocol):
    """Face boxes for a batch of RGB frames: one (k, 5) array [x1, y1, x2, y2, score] per frame."""

    def detect(self, frames: np.ndarray) -> list[np.ndarray]: ...

    def settings(self) -> dict[str, Any]: ...


class S3FDDetector:
    """syncnet-python's S3FD with its reference settings (scale 0.25, confidence > 0.9).

    ``S3FD.detect_faces`` one frame at a time, except that frames go through the network in batches of
    about ``batch_pixels`` scaled pixels (16 frames of 512×512 at scale 0.25; channels-last): the same
    resize, mean, thresholding and NMS, about 5-8× faster on CPU than one frame at a time.
    """

    SCALE, CONF_TH = 0.25, 0.9

    def __init__(self, net: torch.nn.Module | None = None, *, weights_dir: str | os.PathLike[str] | None = None,
                 device: str = "cpu", scale: float = SCALE, conf_th: float = CONF_TH,
                 batch_pixels: int = 16 * 128 * 128) -> None:
        from . import model

        self.net = net if net is not None else model.load("s3fd", weights_dir, device)
        self.net.to(device).eval()
        self.device, self.scale, self.conf_th, self.batch_pixels = device, scale, conf_th, batch_pixels

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        h, w = frames.shape[1:3]
        batch = max(1, self.batch_pixels // max(1, round(h * self.scale) * round(w * self.scale)))
        return [boxes for i in range(0, len(frames), batch) for boxes in self._detect(frames[i:i + batch])]

    def _detect(self, frames: np.ndarray) -> list[np.ndarray]:
        from syncnet_python.detectors.s3fd.box_utils import nms_

        h, w = frames.shape[1:3]
        scaled = np.stack([cv2.resize(f, dsize=(0, 0), fx=self.scale, fy=self.scale,
                                      interpolation=cv2.INTER_LINEAR) for f in frames]).astype(np.float32)
        scaled -= _S3FD_MEAN_RGB
        x = torch.from_numpy(scaled).permute(0, 3, 1, 2).to(self.device)  # NCHW shape, channels-last memory
        with torch.inference_mode():
            out = self.net(x).cpu()
        scale = torch.Tensor([w, h, w, h])
        found = []
        for det in out:  # as S3FD.detect_faces: per class, boxes in score order while above the threshold
            boxes = [(*(d[1:] * scale).numpy(), d[0].item()) for cls in det for d in cls
                     if d[0] > self.conf_th]
            boxes_np = np.array(boxes, dtype=np.float64).reshape(-1, 5)
            found.append(boxes_np[nms_(boxes_np, 0.1)])
        return found

    def settings(self) -> dict[str, Any]:
        return self.describe(self.scale, self.conf_th)

    @staticmethod
    def describe(scale: float = SCALE, conf_th: float = CONF_TH) -> dict[str, Any]:
        """The settings of an S3FD detector, without loading one."""
        return {"detector": "s3fd", "scale": scale, "conf_th": conf_th}


class FixedBoxDetector:
    """The same box in every frame: for clips whose face does not move, and for tests."""

    def __init__(self, box: tuple[float, float, float, float], score: float = 1.0) -> None:
        self.box = np.array([*box, score], dtype=np.float64)

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        return [self.box[None].copy() for _ in frames]

    def settings(self) -> dict[str, Any]:
        return {"detector": "fixed", "box": self.box[:4].tolist()}


@dataclass
class CropBatch:
    """Consecutive crops of one track: frames ``start`` … ``start + len(crops) - 1``, uint8 BGR."""

    track: int
    start: int
    crops: np.ndarray


@dataclass
class FaceTrack:
    """A track's summary; ``valid`` once ``FaceCropper.finish`` has checked its length and size."""

    id: int
    first: int
    last: int
    detections: int
    mean_width: float
    mean_height: float
    valid: bool = False
    reason: str = ""

    @property
    def frames(self) -> int:
        return self.last - self.first + 1


@dataclass
class _Builder:
    """One track as syncnet-python's ``_track`` grows it, plus its streaming interpolation and crops."""

    id: int
    last_box: np.ndarray
    last_frame: int
    first: int
    detections: int = 1
    closed: bool = False
    confirmed: bool = False
    # (frame, s, x, y) of interpolated frames from next_crop - SMOOTH // 2 on
    smooth: deque = field(default_factory=deque)
    next_crop: int = 0
    sum_w: float = 0.0
    sum_h: float = 0.0
    held: list = field(default_factory=list)  # crops made before the track was confirmed


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """syncnet-python's ``SyncNetPipeline._iou``."""
    xa, ya = max(a[0], b[0]), max(a[1], b[1])
    xb, yb = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, xb - xa) * max(0, yb - ya)
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter + 1e-8)


def crop_face(frame: np.ndarray, s: float, x: float, y: float, crop_scale: float = 0.4) -> np.ndarray:
    """The reference's crop around centre (x, y) with half-size s: border, cut, resize to 224×224.

    An empty cut (s = 0: the median filter over a track shorter than 7 frames, which never reaches
    ``min_track``) gives a plain border-grey crop where the reference would fail.
    """
    pad = int(s * (1 + 2 * crop_scale))
    padded = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(BORDER,) * 3)
    my, mx = y + pad, x + pad
    y1, y2 = int(my - s), int(my + s * (1 + 2 * crop_scale))
    x1, x2 = int(mx - s * (1 + crop_scale)), int(mx + s * (1 + crop_scale))
    cut = padded[y1:y2, x1:x2]
    if cut.size == 0:
        return np.full((CROP, CROP, 3), BORDER, np.uint8)
    return cv2.resize(cut, (CROP, CROP))


class FaceCropper:
    """Feed frames with ``update`` (uint8 (N, H, W, 3) at 25 fps), get crops of face tracks back.

    ``update`` and ``finish`` return ``CropBatch``es in frame order per track. A track's crops are
    held back until it has more than ``min_track`` detections; a track returned that way can still
    fail the face-size check at the end: ``finish`` returns the last batches, then ``tracks`` says
    which tracks are valid. ``detector=None`` treats every frame as a face crop already (one track).

    Memory: the frames of the last ``num_failed_det + 7`` or so frames (views into the batches given),
    plus the crops of tracks not yet confirmed (about ``min_track`` crops each).
    """

    def __init__(self, detector: Detector | None, settings: FaceSettings | None = None, *,
                 color: str = "rgb") -> None:
        settings = settings or FaceSettings()
        if color not in ("rgb", "bgr"):
            raise ValueError(f"color must be 'rgb' or 'bgr', not {color!r}")
        if settings.detect_every < 1:
            raise ValueError("detect_every must be at least 1")
        self.detector = detector
        self.settings = settings
        self.color = color
        self.frames_seen = 0
        self._builders: list[_Builder] = []
        self._ids = 0
        self._size = (0, 0)  # frame width, height
        self._buffer: deque[tuple[int, np.ndarray]] = deque()  # (frame index, frame) still needed
        self._done: list[FaceTrack] = []

    def protocol(self) -> dict[str, Any]:
        detector = self.detector.settings() if self.detector else {"detector": "none"}
        return {**detector, **self.settings.to_dict(), "crop": f"{CROP}x{CROP} BGR", "smooth": SMOOTH,
                "scene_split": "none"}

    @property
    def tracks(self) -> list[FaceTrack]:
        """Finished tracks in the order they started (the reference's order)."""
        return sorted(self._done, key=lambda t: t.id)

    def update(self, frames: np.ndarray) -> list[CropBatch]:
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
            raise ValueError(f"expected uint8 frames of shape (N, H, W, 3), got {frames.dtype} {frames.shape}")
        first = self.frames_seen
        self.frames_seen += len(frames)
        self._size = (frames.shape[2], frames.shape[1])
        if self.detector is None:
            return [CropBatch(0, first, np.stack([self._bgr(cv2.resize(f, (CROP, CROP))) for f in frames]))]
        every = self.settings.detect_every
        picked = [i for i in range(len(frames)) if (first + i) % every == 0]
        rgb = frames[picked] if self.color == "rgb" else frames[picked][..., ::-1]
        boxes = dict(zip(picked, self.detector.detect(np.ascontiguousarray(rgb)))) if picked else {}
        out: list[CropBatch] = []
        for i, frame in enumerate(frames):
            index = first + i
            self._buffer.append((index, frame))
            if i in boxes:
                self._track(index, list(np.asarray(boxes[i], dtype=np.float64).reshape(-1, 5)))
            for b in self._builders:
                if not b.closed and index - b.last_frame > self.settings.num_failed_det:
                    b.closed = True
            out += self._crop_ready(index)
        return out

    def finish(self) -> list[CropBatch]:
        """Close every track, return the remaining crops and decide which tracks are valid."""
        if self.detector is None:
            self._done = [FaceTrack(0, 0, self.frames_seen - 1, 0, *map(float, self._size), valid=True)]
            return []
        for b in self._builders:
            b.closed = True
        out = self._crop_ready(self.frames_seen - 1)
        self._buffer.clear()
        return out

    # ------------------------------------------------------------------ tracking

    def _track(self, index: int, faces: list[np.ndarray]) -> None:
        """One frame of syncnet-python's greedy ``_track``: existing tracks in creation order, then new
        ones for what is left, with its iteration quirks (a face after a taken one is skipped; the
        first face that does not fit ends the track's turn)."""
        for b in self._builders:
            if not faces:
                return
            if not b.closed:
                self._extend(b, index, faces)
        while faces:
            face = faces.pop(0)
            b = _Builder(id=self._ids, last_box=face[:4], last_frame=index, first=index, next_crop=index)
            self._ids += 1
            self._builders.append(b)
            self._interpolate(b, index, face[:4])
            self._extend(b, index, faces, start=1)

    def _extend(self, b: _Builder, index: int, faces: list[np.ndarray], start: int = 0) -> None:
        i = start
        while i < len(faces):
            face = faces[i]
            near = index - b.last_frame <= self.settings.num_failed_det
            if near and _iou(face[:4], b.last_box) > self.settings.iou:
                del faces[i]
                self._interpolate(b, index, face[:4])
                b.last_box, b.last_frame = face[:4], index
                b.detections += 1
                i += 1  # the list iterator moves on past the face that slid into this slot
            else:
                return

    def _interpolate(self, b: _Builder, index: int, box: np.ndarray) -> None:
        """Boxes of frames (last detection, index] as np.interp between the two detections gives them."""
        if b.smooth and index <= b.smooth[-1][0]:
            return  # a second face in the same frame joined the track: its frame has a box already
        if b.smooth:
            frames = np.arange(b.last_frame + 1, index + 1)
            xp = [b.last_frame, index]
            boxes = np.stack([np.interp(frames, xp, [b.last_box[k], box[k]]) for k in range(4)], 1)
        else:
            frames, boxes = np.array([index]), box[None]
        for f, bb in zip(frames.tolist(), boxes):
            w, h = bb[2] - bb[0], bb[3] - bb[1]
            b.sum_w += w
            b.sum_h += h
            b.smooth.append((f, max(h, w) / 2, (bb[0] + bb[2]) / 2, (bb[1] + bb[3]) / 2))

    # ------------------------------------------------------------------ cropping

    def _crop_ready(self, index: int) -> list[CropBatch]:
        """Crops of every frame (up to ``index``) whose smoothed box is final; frames that no track
        can need any more are dropped."""
        out = []
        half = SMOOTH // 2
        for b in self._builders:
            last = b.last_frame if b.closed else b.last_frame - half
            crops = []
            while b.next_crop <= last:
                crops.append(self._crop(b, b.next_crop, half))
                b.next_crop += 1
                while b.smooth and b.smooth[0][0] < b.next_crop - half:
                    b.smooth.popleft()
            out += self._release(b, crops)
        self._builders_done()
        needed = min((b.next_crop for b in self._builders), default=index + 1)
        while self._buffer and self._buffer[0][0] < needed:
            self._buffer.popleft()
        return out

    def _crop(self, b: _Builder, index: int, half: int) -> np.ndarray:
        values = {f: (s, x, y) for f, s, x, y in b.smooth}
        window = [values.get(f, (0.0, 0.0, 0.0)) if b.first <= f <= b.last_frame else (0.0, 0.0, 0.0)
                  for f in range(index - half, index + half + 1)]
        s, x, y = (float(np.median([w[k] for w in window])) for k in range(3))
        frame = self._buffer[index - self._buffer[0][0]][1]
        return self._bgr(crop_face(frame, s, x, y, self.settings.crop_scale))

    def _release(self, b: _Builder, crops: list[np.ndarray]) -> list[CropBatch]:
        """Hold crops until the track has more than ``min_track`` detections, then pass them on."""
        b.held += crops
        if not b.confirmed and b.detections * self.settings.detect_every > self.settings.min_track:
            b.confirmed = True
        if not b.confirmed or not b.held:
            return []
        start = b.next_crop - len(b.held)
        batch = CropBatch(b.id, start, np.stack(b.held))
        b.held = []
        return [batch]

    def _builders_done(self) -> None:
        """Summarise closed, fully cropped tracks and forget them."""
        keep = []
        for b in self._builders:
            if not (b.closed and b.next_crop > b.last_frame):
                keep.append(b)
                continue
            n = b.last_frame - b.first + 1
            track = FaceTrack(b.id, b.first, b.last_frame, b.detections, b.sum_w / n, b.sum_h / n)
            if not b.confirmed:
                track.reason = (f"{b.detections} detections, not more than min_track "
                                f"{self.settings.min_track} / detect_every {self.settings.detect_every}")
            elif max(track.mean_width, track.mean_height) <= self.settings.min_face_size:
                track.reason = (f"face too small: mean {track.mean_width:.0f}×{track.mean_height:.0f} px, "
                                f"not above min_face_size {self.settings.min_face_size}")
            else:
                track.valid = True
            self._done.append(track)
        self._builders = keep

    def _bgr(self, img: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(img[..., ::-1]) if self.color == "rgb" else img
