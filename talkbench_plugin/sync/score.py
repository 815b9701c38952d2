"""SyncNet lip-sync scores (LSE-C, LSE-D, AV offset), streamed over batches of face crops.

The algorithm is syncnet-python's ``SyncNetInstance.evaluate``: 25 fps BGR 224×224 crops, 16 kHz
audio, MFCC (13 × 100 Hz), 5-frame video windows against 20 MFCC steps, batches of 20 windows,
distances to audio windows shifted by −vshift…+vshift (zero vectors outside the clip), LSE-D = min
over offsets of the mean distance, LSE-C = median − min, AV offset = vshift − argmin. Unlike the
reference, frames are never stacked: embeddings are computed batch by batch and dropped once their
distance rows are done, so memory stays flat in clip length.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from scipy import signal

from ..errors import TalkbenchError
from .mfcc import as_int16_scale, mfcc

FPS = 25
SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
MFCC_PER_FRAME = 4
WINDOW = 5  # video frames per window
MFCC_WINDOW = 20  # MFCC steps per window
CROP = 224


class SyncNetLike(Protocol):
    """What the scorer needs from a model: syncnet-python's ``S`` or a test oracle."""

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor: ...  # (B, 3, 5, 224, 224) -> (B, D)

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor: ...  # (B, 1, 13, 20) -> (B, D)


@dataclass
class SyncScore:
    """One clip's scores, the distance-vs-offset curve and the per-window confidence curve."""

    offset: int  # frames; positive: the video lags the audio
    lse_c: float  # confidence: median − min of the mean distances
    lse_d: float  # min over offsets of the mean distance
    offsets: list[int]  # vshift … −vshift
    distances: list[float]  # mean distance at each of ``offsets``
    frame_confidence: list[float]  # per window (start frame), median-filtered (9) as the reference prints it
    windows: int
    video_frames: int
    audio_frames: int  # whole 25 fps frames of audio
    protocol: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def protocol(vshift: int = 15, batch_size: int = 20) -> dict[str, Any]:
    """The settings that define the scores (recorded with every result)."""
    return {
        "name": "syncnet-lse",
        "version": 1,
        "reference": "syncnet-python SyncNetInstance.evaluate",
        "fps": FPS,
        "sample_rate": SAMPLE_RATE,
        "crop": f"{CROP}x{CROP} BGR, 0-255",
        "mfcc": "python_speech_features.mfcc(int16-scale audio, 16000): 13 coefficients, 100 Hz",
        "video_window": WINDOW,
        "audio_window": MFCC_WINDOW,
        "vshift": vshift,
        "batch_size": batch_size,
        "distance": "pairwise_distance (eps 1e-6), zero vectors outside the clip",
        "frame_confidence": "median(mean distances) - distance at best offset, medfilt 9",
    }


def check_audio(samples: np.ndarray, silence_dbfs: float = -60.0) -> None:
    """Raise TalkbenchError for empty audio or audio quieter than ``silence_dbfs`` (RMS, int16 scale)."""
    if len(samples) == 0:
        raise TalkbenchError("the audio is empty: no samples to score lip sync against")
    rms = float(np.sqrt(np.mean(np.square(np.asarray(samples, dtype=np.float64)))))
    level = 20 * math.log10(rms / 32768) if rms > 0 else -math.inf
    if level < silence_dbfs:
        raise TalkbenchError(f"the audio is silent ({level:.1f} dBFS RMS, below {silence_dbfs:g} dBFS): "
                             "lip sync cannot be scored; check that the right audio track is used")


class SyncScorer:
    """Feed face crops with ``update``, then ``compute`` once.

    ``audio`` is the clip's 16 kHz mono audio starting at the first crop (int16, or float in
    [-1, 1] converted as FFmpeg writes pcm_s16le). Crops are uint8 (N, 224, 224, 3) BGR at 25 fps.
    """

    def __init__(self, model: SyncNetLike, audio: np.ndarray, *, vshift: int = 15, batch_size: int = 20,
                 device: str | torch.device = "cpu", silence_dbfs: float = -60.0) -> None:
        samples = as_int16_scale(audio)
        check_audio(samples, silence_dbfs)
        self.model = model
        if isinstance(model, torch.nn.Module):
            model.to(device).eval()
        self.vshift = vshift
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.audio_frames = len(samples) // SAMPLES_PER_FRAME
        self._mfcc = torch.from_numpy(mfcc(samples).T.copy()).float()  # (13, T), as the reference's cct
        self.video_frames = 0
        self._frames = np.empty((0, CROP, CROP, 3), np.uint8)  # crops from global index self._next on
        self._next = 0  # first window without embeddings
        self._vid = torch.empty(0, 0)  # embeddings of windows self._row ... self._next - 1
        self._aud = torch.empty(0, 0)  # embeddings of windows self._aud_start ... self._next - 1
        self._aud_start = 0
        self._row = 0  # first window without a distance row
        self._rows: list[torch.Tensor] = []

    def protocol(self) -> dict[str, Any]:
        return protocol(self.vshift, self.batch_size)

    def update(self, crops: np.ndarray) -> None:
        """Add the next crops (uint8, (N, 224, 224, 3), BGR)."""
        crops = np.asarray(crops)
        if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (CROP, CROP, 3):
            raise ValueError(f"expected uint8 crops of shape (N, {CROP}, {CROP}, 3), got {crops.dtype} {crops.shape}")
        start = self.video_frames
        self.video_frames += len(crops)
        # frames at or after the last audio frame never enter a window
        keep = max(0, min(len(crops), self.audio_frames - 1 - start))
        if keep:
            self._frames = np.concatenate([self._frames, crops[:keep]])
        # a window i is certain once frame i + 5 exists (the reference's lastframe = min_length - 5)
        certain = min(self.video_frames, self.audio_frames) - WINDOW
        while self._next + self.batch_size <= certain:
            self._embed(self._next + self.batch_size)
        self._distances(upto=self._next - self.vshift, limit=self._next)

    def compute(self) -> SyncScore:
        """The scores; raises TalkbenchError when the clip is too short for one window."""
        lastframe = min(self.video_frames, self.audio_frames) - WINDOW
        if lastframe < 1:
            raise TalkbenchError(
                f"clip too short for SyncNet: {self.video_frames} video frames and "
                f"{self.audio_frames / FPS:.2f} s of audio; one {WINDOW}-frame window needs at least "
                f"{WINDOW + 1} frames ({(WINDOW + 1) / FPS:.2f} s) of both")
        while self._next < lastframe:
            self._embed(min(lastframe, self._next + self.batch_size))
        self._distances(upto=lastframe, limit=lastframe)
        dists = torch.cat(self._rows)  # (windows, 2 * vshift + 1)
        mdist = dists.mean(0)
        minval, minidx = torch.min(mdist, 0)
        median = torch.median(mdist)
        fconf = median.numpy() - dists[:, minidx].numpy()
        return SyncScore(
            offset=int(self.vshift - minidx),
            lse_c=float(median - minval),
            lse_d=float(minval),
            offsets=list(range(self.vshift, -self.vshift - 1, -1)),
            distances=mdist.tolist(),
            frame_confidence=signal.medfilt(fconf, kernel_size=9).tolist(),
            windows=lastframe,
            video_frames=self.video_frames,
            audio_frames=self.audio_frames,
            protocol=self.protocol(),
        )

    def _embed(self, stop: int) -> None:
        """Video and audio embeddings of windows self._next ... stop - 1 (one reference batch)."""
        first = self._next
        clip = torch.from_numpy(self._frames[: stop - first + WINDOW - 1])  # (T, H, W, 3) uint8
        windows = clip.unfold(0, WINDOW, 1).permute(0, 3, 4, 1, 2)  # (B, 3, 5, H, W), a view
        video = windows.to(torch.float32, memory_format=torch.channels_last_3d)  # the faster layout on CPU
        audio = torch.stack([self._mfcc[None, :, MFCC_PER_FRAME * i:MFCC_PER_FRAME * i + MFCC_WINDOW]
                             for i in range(first, stop)])
        with torch.inference_mode():
            vid = self.model.forward_lip(video.to(self.device)).float().cpu()
            aud = self.model.forward_aud(audio.to(self.device)).float().cpu()
        self._vid = torch.cat([self._vid, vid]) if len(self._vid) else vid
        self._aud = torch.cat([self._aud, aud]) if len(self._aud) else aud
        self._frames = self._frames[stop - first:]
        self._next = stop

    def _distances(self, upto: int, limit: int) -> None:
        """Distance rows of windows self._row ... upto - 1 against audio windows below ``limit``."""
        if upto <= self._row:
            return
        shifts = torch.arange(-self.vshift, self.vshift + 1)
        idx = torch.arange(self._row, upto)[:, None] + shifts[None, :]
        valid = (idx >= 0) & (idx < limit)
        neighbours = torch.zeros(*idx.shape, self._aud.shape[1])
        neighbours[valid] = self._aud[idx[valid] - self._aud_start]
        vid = self._vid[: upto - self._row]
        self._rows.append(torch.nn.functional.pairwise_distance(vid[:, None, :], neighbours))
        self._vid = self._vid[upto - self._row:]
        drop = max(0, upto - self.vshift - self._aud_start)
        self._aud = self._aud[drop:]
        self._aud_start += drop
        self._row = upto


def score_clip(model: SyncNetLike, crops: np.ndarray, audio: np.ndarray, *, batch: int = 64,
               **settings: Any) -> SyncScore:
    """Score crops already in memory (tests, short clips): feeds ``SyncScorer`` ``batch`` at a time."""
    scorer = SyncScorer(model, audio, **settings)
    for i in range(0, len(crops), batch):
        scorer.update(crops[i:i + batch])
    return scorer.compute()
