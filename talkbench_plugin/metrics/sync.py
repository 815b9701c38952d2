"""Lip sync of the generated video (LSE-C, LSE-D, AV offset) as a stream metric of the engine.

The generated video's frames are resampled to 25 fps by timestamp (FFmpeg's ``fps`` filter) and
clipped to the evaluated segment; its own audio track (or the driving audio) from the first kept
frame on is scored against them by ``sync.VideoSyncScorer``. The networks are syncnet-python's,
with the pinned weights from the weights cache, loaded once per process. S3FD's boxes are kept under
``<cache>/faces`` (``sync.detections``): a second run over the same video replays them; the face
metrics find them in memory (``sync.shared_boxes``) rather than detecting the same frames again.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import av
import numpy as np
import torch

from .. import weights
from ..errors import MediaError, TalkbenchError
from ..inference import fold_batch_norms
from ..media.audio import load_audio
from ..media.rate import RateConverter
from ..options.sync import SyncOptions
from ..sync import detections, shared_boxes
from ..sync import model as sync_model
from ..sync.faces import Detector, FaceSettings, S3FDDetector
from ..sync.score import FPS, SAMPLE_RATE, WINDOW
from ..sync.video import VideoSyncScorer
from ..timing import StageTimer
from .base import CaseMedia, MetricValue, StreamMetric

NAMES = ("lse_c", "lse_d", "av_offset")
_BATCH = 32  # frames per detector / scorer update
MIN_WINDOWS = 0.5  # fraction of the video's windows that the audio must cover: less is an error
_NETS: dict[tuple[str, str, str], torch.nn.Module] = {}


def network(kind: str, options: SyncOptions) -> torch.nn.Module:
    """syncnet-python's ``kind`` network with the verified weights, loaded once per process (SyncNet
    with its batch norms folded into the convolutions)."""
    key = (kind, str(weights.weight_path(kind, options.weights)), options.device)
    if key not in _NETS:
        net = sync_model.load(kind, options.weights, options.device)
        _NETS[key] = fold_batch_norms(net)
    return _NETS[key]


class SyncNetMetric(StreamMetric):
    kinds: ClassVar[dict[str, tuple[str, bool | None]]] = {
        "lse_c": ("", True), "lse_d": ("", False), "av_offset": ("frames", None)}
    sides = frozenset({"generated"})

    def __init__(self, media: CaseMedia, options: SyncOptions | None = None) -> None:
        self.media = media
        self.options = options = options or SyncOptions()
        self.timings: dict[str, float] = {}
        self._timer = StageTimer()
        self._syncnet = _Timed(network("syncnet", options), self._timer, "syncnet forward")
        self._detector: _Timed | None = None
        self._record: tuple[Path, str] | None = None  # where this video's detections go once made
        self._replayed: Path | None = None  # the cache file the detections were replayed from
        if options.detector == "s3fd":
            self._detector = _Timed(self._face_detector(), self._timer, "face detection")
        self._faces = FaceSettings(detect_every=options.detect_every)
        self._rate = RateConverter[av.VideoFrame](FPS, Fraction(1) / Fraction(media.generated.fps or FPS))
        self._origin: int | None = None
        self._scorer: VideoSyncScorer | None = None
        self._batch: list[np.ndarray] = []
        self._first_slot = 0
        self._done = False
        self._taken = 0  # 25 fps frames of the evaluated segment
        self._audio_path: Path | None = None
        self._audio_frames = 0  # 25 fps frames' worth of audio from the first frame on

    def _face_detector(self) -> Detector:
        """This video's cached detections if there are some, else S3FD, recorded for the cache."""
        case = self.media.case
        frames = {"fps": FPS, "resample": "timestamp", "segment": case.segment.to_dict(), "offset": case.offset,
                  "detect_every": self.options.detect_every}
        detector = {**S3FDDetector.describe(), "weights_sha256": weights.spec_for("s3fd").sha256}
        description = detections.describe(self.media.generated.path, frames, detector)
        path = detections.cache_path(self.media.cache / "faces", description)
        key = shared_boxes.s3fd_identity(S3FDDetector.describe(), self.options.weights, self.options.device)
        with self._timer.stage("cache"):
            found = detections.load(path, description)
        if found is not None:  # replayed in order; the face metrics may use the boxes too
            self._replayed = path
            return shared_boxes.SharedDetector(detections.ReplayDetector(found, S3FDDetector.describe(), path),
                                               key, lookup=False)
        self._record = path, description
        s3fd = S3FDDetector(network("s3fd", self.options), device=self.options.device)
        return detections.RecordingDetector(shared_boxes.SharedDetector(s3fd, key))

    def protocol(self) -> dict[str, Any]:
        """Known once ``compute`` has run (the scorer is made at the first evaluated frame)."""
        return {**self._scorer.protocol(), "settings": self.options.to_dict(),
                "resample": "25 fps by timestamp (FFmpeg fps filter)",
                "weights": {k: weights.spec_for(k).sha256 for k in self.options.needed_weights()}}

    def update_frame(self, side: str, time: float, frame: av.VideoFrame) -> bool:
        if self._origin is None:
            self._origin = frame.pts
        start = (frame.pts - self._origin) * frame.time_base
        duration = frame.duration * frame.time_base if frame.duration else None
        for slot, picked in self._rate.push(start, duration, frame):
            self._take(slot, picked)
        return not self._done

    def compute(self) -> dict[str, MetricValue]:
        for slot, picked in self._rate.finish():
            self._take(slot, picked)
        self._flush()
        if self._scorer is None:
            raise MediaError(self.media.generated.path, "no frame in the evaluated segment to score lip sync on")
        if self._record is not None:
            with self._timer.stage("cache"):
                detections.save(*self._record, self._detector.inner.found)
        self._require_audio()
        with self._timer.stage("scoring"):
            result = self._scorer.compute()
        self.timings = self._exclusive_timings()
        scored = [t for t in result.tracks if t.score is not None]
        rule = (lambda t: t.score.lse_c) if self.options.combine == "best" else (lambda t: t.track.frames)
        chosen = max(scored, key=rule)  # the track the offset and the confidence curve come from
        windows, warnings = self._windows(chosen.score, result.offset)
        tracks = result.to_dict()["tracks"]
        curve = {"offsets": chosen.score.offsets, "distances": chosen.score.distances,
                 "frame_confidence": result.frame_confidence, "first_frame": self._first_slot,
                 "tracks": tracks, "detections": self._detections_source(), "windows": windows,
                 "warnings": warnings}
        return {
            "lse_c": MetricValue(result.lse_c, list(result.frame_confidence), curve),
            "lse_d": MetricValue(result.lse_d, [], {"tracks": len(tracks), "windows": windows, "warnings": warnings}),
            "av_offset": MetricValue(float(result.offset), [], {"sign": "positive: the video lags the audio",
                                                                "windows": windows, "warnings": warnings}),
        }

    def _require_audio(self) -> None:
        """Audio covering too few of the video's windows is an error (its score would describe a sliver)."""
        total = max(self._taken - WINDOW, 0)
        audio_windows = max(self._audio_frames - WINDOW, 0)
        if total and audio_windows < MIN_WINDOWS * total:
            raise MediaError(self._audio_path, f"the audio ({self._audio_frames / FPS:.2f} s) covers only "
                             f"{audio_windows} of the video's {total} {WINDOW}-frame windows in the evaluated "
                             f"segment; lip sync needs at least {MIN_WINDOWS:.0%}: use the full-length audio track")

    def _windows(self, score: Any, offset: int) -> tuple[dict[str, int], list[str]]:
        """Windows scored / the video's windows, and a warning for an offset at the search limit."""
        windows = {"scored": score.windows, "total": max(self._taken - WINDOW, 0)}
        vshift = max(score.offsets)
        flag = (f"AV offset {offset} frames is at the search limit (±{vshift}): the true offset may lie beyond "
                "it, and LSE-C/LSE-D with it")
        warnings = [flag] if abs(offset) >= vshift else []
        return windows, warnings

    def _detections_source(self) -> dict[str, Any]:
        """Whether the face boxes were detected in this run or replayed from the cache, and the file."""
        if self._detector is None:
            return {"source": "none (detector none)"}
        if self._replayed is not None:
            return {"source": "cache", "file": str(self._replayed)}
        shared = self._detector.inner.inner
        return {"source": "detected", "file": str(self._record[0]),
                "frames": {"detected": shared.detected, "shared_with_face_metrics": shared.shared}}

    def _take(self, slot: int, frame: av.VideoFrame) -> None:
        case = self.media.case
        t = slot / FPS + case.offset  # on the reference timeline
        if case.segment.end is not None and t >= case.segment.end - 1e-9:
            self._done = True
            return
        if self._done or t < case.segment.start - 1e-9:
            return
        if self._scorer is None:
            self._first_slot = slot
            self._scorer = self._start(slot)
        self._taken += 1
        self._batch.append(frame.to_ndarray(format="rgb24"))
        if len(self._batch) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            with self._timer.stage("scoring"):
                self._scorer.update(np.stack(self._batch))
            self._batch = []

    def _start(self, slot: int) -> VideoSyncScorer:
        with self._timer.stage("decode audio"):
            audio = self._audio(slot)
        try:
            return VideoSyncScorer(self._syncnet, audio, detector=self._detector, faces=self._faces,
                                   combine=self.options.combine, device=self.options.device)
        except MediaError:
            raise
        except TalkbenchError as exc:  # empty or silent audio: name the file
            raise MediaError(self._audio_path, str(exc)) from None

    def _audio(self, slot: int) -> np.ndarray:
        """16 kHz mono audio from frame ``slot`` on, to the end of the evaluated segment."""
        case = self.media.case
        if self.options.audio == "own":
            path, shift = Path(self.media.generated.path), 0.0
        else:  # the driving audio is on the reference timeline
            path, shift = case.speaker.audio or case.speaker.reference, case.offset
        self._audio_path = path
        samples = load_audio(path)
        start = round((slot / FPS + shift) * SAMPLE_RATE)
        end = None if case.segment.end is None else round((case.segment.end - case.offset + shift) * SAMPLE_RATE)
        if start >= len(samples):
            raise MediaError(path, f"the audio ({len(samples) / SAMPLE_RATE:.2f} s) ends before the evaluated "
                             f"video starts ({start / SAMPLE_RATE:.2f} s)")
        samples = samples[start:end]
        self._audio_frames = len(samples) * FPS // SAMPLE_RATE
        return samples

    def _exclusive_timings(self) -> dict[str, float]:
        """Sub-stage seconds (they add up): audio, the models' calls, and the tracking, crops and MFCC around them."""
        seconds = dict(self._timer.seconds)
        seconds["tracking, crops, MFCC"] = seconds.pop("scoring", 0.0)
        if "cache" in seconds:
            seconds["face detections cache"] = seconds.pop("cache")
        return seconds

class _Timed:
    """A detector or SyncNet whose calls are charged to a stage of ``timer``."""

    def __init__(self, inner: Any, timer: StageTimer, stage: str) -> None:
        self.inner, self.timer, self.stage = inner, timer, stage

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        with self.timer.stage(self.stage):
            return self.inner.detect(frames)

    def settings(self) -> dict[str, Any]:
        return self.inner.settings()

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        with self.timer.stage(self.stage):
            return self.inner.forward_lip(x)

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        with self.timer.stage(self.stage):
            return self.inner.forward_aud(x)
