"""One face per frame: syncnet-python's S3FD box, then face-alignment's 2D FAN landmarks (68 points).

The box is the lip-sync detector's (syncnet-python's S3FD, scale 0.25, confidence > 0.9, its pinned
``sfd_face.pth``). face-alignment's own default detector is the same S3FD network (clcarwin's port) but
with another weights file (``s3fd-619a316812.pth``) and other settings (full scale, NMS 0.3, score >
0.5), so talkbench detects once, with lip sync's detector (a frame lip sync has seen is not detected again:
``sync.shared_boxes``), and hands FAN the box as
``FaceAlignment.get_landmarks_from_image(image, detected_faces=[box])`` would take it: the same centre
and scale rule, ``face_alignment.utils.crop`` to 256×256, FAN's last heatmaps, ``get_preds_fromhm``.
Differences: the crops of a batch go through FAN together (up to ``FAN_BATCH`` per forward, not one per face).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import weights
from ..options.face import FaceOptions
from ..runtime.openvino import openvino_network, runtime_described, use_openvino

FAN_BATCH = 2  # crops per FAN forward: on CPU 1-4 crops take ~1.6x less time each than 8 or more, ~40 MiB a crop
_S3FD_MIN_INPUT = 28  # pixels: S3FD's pooling needs this much of the scaled frame's smaller side
_NETS: dict[tuple[str, ...], Any] = {}


class FaceProblem(Exception):
    """A frame without exactly one usable face; the message says which frame and why."""


@dataclass
class FrameFaces:
    """Landmarks of a batch of frames: ``points[i]`` is frame i's (68, 2) array in frame pixels."""

    points: np.ndarray  # (N, 68, 2) float32
    boxes: np.ndarray  # (N, 5) the S3FD box [x1, y1, x2, y2, score] each frame's landmarks come from


def load_fan(directory: str | None = None, device: str = "cpu", cache: Path | None = None) -> Callable[[Any], Any]:
    """face-alignment's 2D FAN (4 stacks) with the pinned 2DFAN4 weights, once per process and setting: a
    function from a crop batch (N, 3, 256, 256) to its last stack's heatmaps. Given a ``cache``, FAN is
    converted into it once and run by OpenVINO on the CPU (``runtime.openvino``)."""
    key = ("fan2d", str(weights.weight_path("fan2d", directory)), device, str(cache))
    if key not in _NETS:
        import torch

        if cache is not None:
            net = openvino_network(cache, "fan2d", weights.verified_sha256("fan2d", directory),
                                   lambda: _last_stack(directory), (torch.zeros(1, 3, 256, 256),), [(-1, 3, 256, 256)])
            _NETS[key] = lambda x: torch.from_numpy(net(x.numpy()))
        else:
            fan = _fan_module(directory).to(device)
            _NETS[key] = lambda x: fan(x)[-1]
    return _NETS[key]


def _fan_module(directory: str | None) -> Any:
    from face_alignment.models import FAN

    net = FAN(4)
    state = weights.load_state("fan2d", directory)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise weights.WeightsError(f"the weights do not fit face-alignment's 2D FAN: "
                                   f"{str(exc).splitlines()[0]}") from None
    return net.eval()


def _last_stack(directory: str | None) -> Any:
    """FAN giving only its last stack's heatmaps (what the landmarks come from), the module converted."""
    import torch

    class LastStack(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fan = _fan_module(directory)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fan(x)[-1]

    return LastStack().eval()


def load_detector(directory: str | None = None, device: str = "cpu") -> Any:
    """syncnet-python's S3FD with lip sync's settings and pinned weights, once per process; the boxes of
    frames lip sync has already seen come from it (``sync.shared_boxes``) instead of a second detection."""
    key = ("s3fd", str(weights.weight_path("s3fd", directory)), device)
    if key not in _NETS:
        from ..sync import shared_boxes
        from ..sync.faces import S3FDDetector
        from ..sync.model import load

        s3fd = S3FDDetector(load("s3fd", directory, device), device=device)
        _NETS[key] = shared_boxes.SharedDetector(s3fd, shared_boxes.s3fd_identity(s3fd.settings(), directory, device))
    return _NETS[key]


def crop_geometry(box: np.ndarray) -> tuple[np.ndarray, float]:
    """face-alignment's centre and scale for a detected box (``get_landmarks_from_image``)."""
    from face_alignment.utils import CENTER_Y_OFFSET, REFERENCE_SCALE

    d = box
    center = np.array([d[2] - (d[2] - d[0]) / 2.0, d[3] - (d[3] - d[1]) / 2.0])
    center[1] = center[1] - (d[3] - d[1]) * CENTER_Y_OFFSET
    return center, (d[2] - d[0] + d[3] - d[1]) / REFERENCE_SCALE


class Landmarker:
    """S3FD + FAN for batches of RGB frames; one face per frame or a ``FaceProblem``."""

    def __init__(self, options: FaceOptions, detector: Any = None, fan: Callable[[Any], Any] | None = None,
                 cache: Path | None = None) -> None:
        self.options = options
        self.detector = detector if detector is not None else load_detector(options.weights, options.device)
        self.openvino = fan is None and use_openvino(options.runtime, options.device, cache)
        self.fan = fan if fan is not None else load_fan(options.weights, options.device,
                                                        cache if self.openvino else None)

    def boxes(self, frames: np.ndarray, where: list[str]) -> np.ndarray:
        """One S3FD box per frame; ``where[i]`` names frame i in the error of a frame without one."""
        scale = getattr(self.detector, "scale", 1.0)
        if min(frames.shape[1:3]) * scale < _S3FD_MIN_INPUT:
            raise FaceProblem(f"{where[0]} is {frames.shape[2]}×{frames.shape[1]} px, too small for S3FD at scale "
                              f"{scale} (its smaller side must be at least {math.ceil(_S3FD_MIN_INPUT / scale)} px)")
        found = self.detector.detect(frames)
        for boxes, place in zip(found, where):
            if len(boxes) == 0:
                raise FaceProblem(f"no face in {place} (S3FD confidence > {self.detector.conf_th}); the face "
                                  "metrics need one face in every frame")
            if len(boxes) > 1:
                raise FaceProblem(f"{len(boxes)} faces in {place}; the face metrics compare one face per frame "
                                  "(crop the video to the speaker)")
            w, h = boxes[0][2] - boxes[0][0], boxes[0][3] - boxes[0][1]
            if max(w, h) < self.options.min_face_size:
                raise FaceProblem(f"face too small in {place}: {w:.0f}×{h:.0f} px, below min_face_size "
                                  f"{self.options.min_face_size}")
        return np.stack([b[0] for b in found])

    def landmarks(self, frames: np.ndarray, where: list[str]) -> FrameFaces:
        """68 landmarks of each frame's single face, in frame pixels."""
        boxes = self.boxes(frames, where)
        return FrameFaces(self.fan_points(frames, boxes), boxes)

    def fan_points(self, frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """FAN's landmarks for one box per frame, decoded as face-alignment decodes them."""
        import torch
        from face_alignment.utils import NUM_LANDMARKS, crop, flip, get_preds_fromhm

        geometry = [crop_geometry(box) for box in boxes]
        crops = np.stack([crop(f, c, s).transpose((2, 0, 1)).astype(np.float32) / 255.0
                          for f, (c, s) in zip(frames, geometry)])
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(crops), FAN_BATCH):
                x = torch.from_numpy(crops[start:start + FAN_BATCH]).to(self.options.device)
                heatmaps = self.fan(x)
                if self.options.flip_input:
                    heatmaps = heatmaps + flip(self.fan(flip(x)), is_label=True)
                chunks.append(heatmaps.to("cpu", torch.float32).numpy())
        heatmaps = np.concatenate(chunks)
        points = [get_preds_fromhm(heatmaps[i:i + 1], c, s)[1].reshape(NUM_LANDMARKS, 2)
                  for i, (c, s) in enumerate(geometry)]
        return np.stack(points).astype(np.float32)

    def protocol(self) -> dict[str, Any]:
        from ..sync.faces import S3FDDetector

        return {"detector": {**S3FDDetector.describe(), "weights_sha256": weights.spec_for("s3fd").sha256,
                             "faces_per_frame": 1, "min_face_size": self.options.min_face_size},
                "landmarks": {"model": "face-alignment 2DFAN4 (68 2-D points)", "crop": "256x256, face-alignment's "
                              "centre/scale from the box", "flip_input": self.options.flip_input,
                              "weights_sha256": weights.spec_for("fan2d").sha256,
                              "runtime": runtime_described(self.openvino, self.options.device)}}


def write_random_fan(path: Any, seed: int = 0) -> Any:
    """face-alignment's 2D FAN with deterministic random weights, saved as 2DFAN4's file is: a
    ``torch.save``d state dict (for tests and benchmarks without the real weights)."""
    from pathlib import Path

    import torch
    from face_alignment.models import FAN

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = FAN(4).state_dict()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path
