"""Options of the lip-sync family (``metrics.sync``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import TalkbenchError

AUDIO_SOURCES = ("own", "driving")
DETECTORS = ("s3fd", "none")
# How several face tracks make one number. "best" is what syncnet-python's SyncNetPipeline returns
# (largest LSE-C and smallest LSE-D over tracks, possibly from different tracks).
COMBINE = {
    "best": "LSE-C = max over tracks, LSE-D = min over tracks (syncnet-python), offset of the max-LSE-C track",
    "longest": "the scores of the track with the most frames",
    "mean": "frame-weighted mean of LSE-C and LSE-D over tracks, offset of the longest track",
    "single": "exactly one face track, else an error",
}


@dataclass(frozen=True)
class SyncOptions:
    """The named settings of a lip-sync result (recorded with it)."""

    audio: str = "own"  # the generated video's own track, or the speaker's driving audio
    detector: str = "s3fd"  # or "none": the videos are face crops already
    detect_every: int = 1  # 1 is reference-exact; k > 1 detects every k-th frame and interpolates
    combine: str = "best"  # how several face tracks make one number (COMBINE)
    weights: str | None = None  # weights directory (default: $TALKBENCH_WEIGHTS or the cache's)
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name, value, allowed in (("audio", self.audio, AUDIO_SOURCES), ("detector", self.detector, DETECTORS),
                                     ("combine", self.combine, tuple(COMBINE))):
            if value not in allowed:
                raise TalkbenchError(f"lip sync {name} must be one of {', '.join(allowed)}, not {value!r}")
        if self.detect_every < 1:
            raise TalkbenchError(f"lip sync detect_every must be at least 1, not {self.detect_every}")

    def needed_weights(self) -> tuple[str, ...]:
        return ("syncnet", "s3fd") if self.detector == "s3fd" else ("syncnet",)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("weights", "device")}
