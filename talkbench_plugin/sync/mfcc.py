"""SyncNet's audio features: python_speech_features.mfcc as the reference calls it, in chunks.

The reference reads a 16 kHz int16 wav with scipy and calls ``python_speech_features.mfcc(audio,
16000)``: 13 coefficients every 10 ms over 25 ms frames. Computed here chunk by chunk, so the
temporaries stay bounded however long the audio is; the values equal the one-shot call's.
"""

from __future__ import annotations

import numpy as np
import python_speech_features as psf

SAMPLE_RATE = 16000
WIN = 400  # 25 ms
HOP = 160  # 10 ms
PREEMPH = 0.97


def as_int16_scale(audio: np.ndarray) -> np.ndarray:
    """Mono samples on the int16 scale the reference's wav gives, as float64.

    int16 input is taken as is; float input in [-1, 1] is converted as FFmpeg writes pcm_s16le
    (multiply by 32768, round half to even, clip).
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio as a 1-D array, got shape {audio.shape}")
    if audio.dtype == np.int16:
        return audio.astype(np.float64)
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"expected int16 or float audio, got {audio.dtype}")
    return np.clip(np.rint(audio.astype(np.float64) * 32768.0), -32768, 32767)


def n_mfcc_frames(n_samples: int) -> int:
    """How many MFCC frames ``python_speech_features`` makes from ``n_samples`` samples."""
    if n_samples <= WIN:
        return 1
    return 1 + int(np.ceil((n_samples - WIN) / HOP))


def mfcc(samples: np.ndarray, chunk_frames: int = 3000) -> np.ndarray:
    """MFCC of 16 kHz mono samples on the int16 scale (int16, or ``as_int16_scale``'s floats),
    shape (frames, 13), equal to ``psf.mfcc(samples, 16000)``.

    Each chunk is pre-emphasised here (carrying the previous sample across the boundary, as the
    one-shot filter does) and passed on with ``preemph=0``, so every frame sees the same values.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"expected non-empty 1-D samples, got shape {x.shape}")
    total = n_mfcc_frames(len(x))
    out = np.empty((total, 13))
    for first in range(0, total, chunk_frames):
        count = min(chunk_frames, total - first)
        start = first * HOP
        stop = min(len(x), start + (count - 1) * HOP + WIN)
        seg = x[start:stop]
        pre = np.empty_like(seg)
        pre[0] = seg[0] if start == 0 else seg[0] - PREEMPH * x[start - 1]
        pre[1:] = seg[1:] - PREEMPH * seg[:-1]
        out[first:first + count] = psf.mfcc(pre, SAMPLE_RATE, preemph=0)
    return out
