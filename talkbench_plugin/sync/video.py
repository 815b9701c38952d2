"""Lip sync of a whole video: face tracks from ``faces``, one ``SyncScorer`` per track, combined by a rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import TalkbenchError
from ..options.sync import COMBINE
from .faces import Detector, FaceCropper, FaceSettings, FaceTrack
from .mfcc import as_int16_scale
from .score import SAMPLES_PER_FRAME, SyncNetLike, SyncScore, SyncScorer, check_audio
from .score import protocol as score_protocol


@dataclass
class TrackResult:
    track: FaceTrack
    score: SyncScore | None
    error: str = ""


@dataclass
class VideoSync:
    """A video's lip-sync scores and the per-track results they came from."""

    lse_c: float
    lse_d: float
    offset: int
    frame_confidence: list[float]  # of the track the offset comes from
    tracks: list[TrackResult] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lse_c": self.lse_c, "lse_d": self.lse_d, "offset": self.offset,
            "frame_confidence": self.frame_confidence, "protocol": self.protocol,
            "tracks": [{"first": t.track.first, "last": t.track.last, "valid": t.track.valid,
                        "reason": t.track.reason, "error": t.error,
                        "score": None if t.score is None else {k: v for k, v in t.score.to_dict().items()
                                                               if k != "protocol"}}
                       for t in self.tracks],
        }


class VideoSyncScorer:
    """Feed 25 fps frames (uint8 (N, H, W, 3)) with ``update``, then ``compute`` once.

    ``audio`` is the 16 kHz mono audio that starts with the first frame; each face track is scored
    against the audio from its first frame on, as the reference slices it.
    """

    def __init__(self, syncnet: SyncNetLike, audio: np.ndarray, *, detector: Detector | None,
                 faces: FaceSettings | None = None, combine: str = "best", color: str = "rgb",
                 vshift: int = 15, batch_size: int = 20, device: str | torch.device = "cpu") -> None:
        if combine not in COMBINE:
            raise ValueError(f"combine must be one of {', '.join(COMBINE)}, not {combine!r}")
        self.samples = as_int16_scale(audio).astype(np.int16)  # whole values: each track's scorer takes them as they are
        self.cropper = FaceCropper(detector, faces or FaceSettings(), color=color)
        self.syncnet = syncnet
        self.combine = combine
        self._settings = {"vshift": vshift, "batch_size": batch_size, "device": device}
        self._scorers: dict[int, SyncScorer] = {}
        self._errors: dict[int, str] = {}
        check_audio(self.samples)

    def protocol(self) -> dict[str, Any]:
        score = score_protocol(self._settings["vshift"], self._settings["batch_size"])
        return {**score, "faces": self.cropper.protocol(), "combine": self.combine, "audio": "slice per track"}

    def update(self, frames: np.ndarray) -> None:
        self._feed(self.cropper.update(frames))

    def compute(self) -> VideoSync:
        self._feed(self.cropper.finish())
        tracks = self.cropper.tracks
        results = []
        for track in tracks:
            if not track.valid:
                continue
            try:
                if track.id in self._errors:
                    raise TalkbenchError(self._errors[track.id])
                results.append(TrackResult(track, self._scorers[track.id].compute()))
            except TalkbenchError as exc:
                results.append(TrackResult(track, None, f"frames {track.first}-{track.last}: {exc}"))
        scored = [r for r in results if r.score is not None]
        if not scored:
            raise TalkbenchError(self._no_track(tracks, results))
        return self._combine(scored, results)

    def _feed(self, batches) -> None:
        for batch in batches:
            if batch.track in self._errors:
                continue
            if batch.track not in self._scorers:
                try:
                    audio = self.samples[batch.start * SAMPLES_PER_FRAME:]
                    self._scorers[batch.track] = SyncScorer(self.syncnet, audio, **self._settings)
                except TalkbenchError as exc:
                    self._errors[batch.track] = str(exc)
                    continue
            self._scorers[batch.track].update(batch.crops)

    def _no_track(self, tracks: list[FaceTrack], results: list[TrackResult]) -> str:
        frames = self.cropper.frames_seen
        need = self.cropper.settings.min_track + 1
        if results:
            return "no face track could be scored: " + "; ".join(r.error for r in results)
        if not tracks:
            return f"no face detected in any of {frames} frames"
        reasons = "; ".join(f"frames {t.first}-{t.last}: {t.reason}" for t in tracks[:5])
        return f"no face track ≥ {need} frames found in {frames} frames ({len(tracks)} rejected: {reasons})"

    def _combine(self, scored: list[TrackResult], results: list[TrackResult]) -> VideoSync:
        longest = max(scored, key=lambda r: r.track.frames)
        protocol = self.protocol()
        if self.combine == "single" and len(scored) > 1:
            spans = ", ".join(f"{r.track.first}-{r.track.last}" for r in scored)
            raise TalkbenchError(f"several faces: {len(scored)} face tracks (frames {spans}); "
                                 "choose how to combine them: best, longest or mean")
        if self.combine == "best":
            best = max(scored, key=lambda r: r.score.lse_c)
            return VideoSync(best.score.lse_c, min(r.score.lse_d for r in scored), best.score.offset,
                             best.score.frame_confidence, results, protocol)
        if self.combine == "mean":
            weights = np.array([r.track.frames for r in scored], dtype=np.float64)
            lse_c = float(np.average([r.score.lse_c for r in scored], weights=weights))
            lse_d = float(np.average([r.score.lse_d for r in scored], weights=weights))
            return VideoSync(lse_c, lse_d, longest.score.offset, longest.score.frame_confidence, results, protocol)
        s = longest.score
        return VideoSync(s.lse_c, s.lse_d, s.offset, s.frame_confidence, results, protocol)
