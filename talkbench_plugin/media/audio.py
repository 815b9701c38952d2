"""Decode an audio track (of a video or an audio file) to 16 kHz mono, as SyncNet expects."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from ..errors import MediaError
from .video import open_container

SYNC_RATE = 16000


def load_audio(path: str | Path, rate: int = SYNC_RATE) -> np.ndarray:
    """The first audio stream as int16 mono samples at ``rate`` Hz (FFmpeg's resampler).

    Raises MediaError when there is no audio stream or it cannot be decoded.
    """
    chunks = []
    with open_container(path) as container:
        if not container.streams.audio:
            raise MediaError(path, "has no audio stream; lip sync needs the speech that drives the video")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        try:
            for frame in container.decode(stream):
                chunks.extend(r.to_ndarray().reshape(-1) for r in resampler.resample(frame))
            chunks.extend(r.to_ndarray().reshape(-1) for r in resampler.resample(None))
        except av.FFmpegError as exc:
            raise MediaError(path, f"audio decoding failed: {exc.strerror or exc}; the file is corrupt or truncated") from None
    if not chunks:
        raise MediaError(path, "the audio stream holds no samples")
    return np.concatenate(chunks).astype(np.int16, copy=False)
