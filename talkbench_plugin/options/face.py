"""The face metrics' options (LMD, CSIM): light, a PSNR/SSIM run imports this module."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import TalkbenchError

LANDMARK_METRICS = ("lmd", "lmd_face")
IDENTITY_METRICS = ("csim",)


@dataclass(frozen=True)
class FaceOptions:
    """The named settings of a face-metric result (recorded with it)."""

    min_face_size: int = 64  # pixels: the larger side of each S3FD box must reach this
    flip_input: bool = False  # face-alignment's option (its README runs FaceAlignment with flip_input=False)
    weights: str | None = None  # weights directory (default: $TALKBENCH_WEIGHTS or the cache's)
    device: str = "cpu"
    runtime: str = "openvino"  # or "torch": what runs FAN on the CPU (the same landmarks to fp32 rounding)

    def __post_init__(self) -> None:
        if self.min_face_size < 1:
            raise TalkbenchError(f"face min_face_size must be at least 1 pixel, not {self.min_face_size}")

    @staticmethod
    def needed_weights(metric: str) -> tuple[str, ...]:
        """The registry's weights ``metric`` needs: S3FD boxes and FAN landmarks, and ArcFace for CSIM."""
        return ("s3fd", "fan2d", "arcface") if metric in IDENTITY_METRICS else ("s3fd", "fan2d")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("weights", "device", "runtime")}
