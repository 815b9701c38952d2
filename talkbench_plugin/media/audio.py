"""Decode an audio track (of a video or an audio file) to 16 kHz mono, as SyncNet expects, and cut
clips of it (the driving audio of a person-specific pipeline's evaluated segment)."""

from __future__ import annotations

import itertools
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


def write_clip(source: str | Path, start: float, end: float | None, dest: Path) -> None:
    """Write the first audio stream of ``source`` from ``start`` to ``end`` seconds (None: to its end)
    to ``dest`` as 16-bit PCM WAV at the source's rate and channel count (no resampling otherwise).

    Raises MediaError when there is no audio or none of it falls in the range.
    """
    with open_container(source) as container:
        if not container.streams.audio:
            raise MediaError(source, "has no audio stream to cut the evaluated segment's driving audio from")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        channels = len(stream.codec_context.layout.channels)
        layout = {1: "mono", 2: "stereo"}.get(channels, stream.codec_context.layout.name)
        first, last = round(start * rate), None if end is None else round(end * rate)
        resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
        with av.open(str(dest), "w", format="wav", container_options={"fflags": "+bitexact"}) as out:
            pcm = out.add_stream("pcm_s16le", rate=rate, layout=layout)
            seen = written = 0
            try:
                decoded = itertools.chain(container.decode(stream), [None])  # None drains the resampler
                for frame in (r for f in decoded for r in resampler.resample(f)):
                    samples = frame.to_ndarray().reshape(-1, channels)
                    lo, hi = max(first - seen, 0), len(samples) if last is None else min(last - seen, len(samples))
                    seen += len(samples)
                    if last is not None and seen - len(samples) >= last:
                        break
                    if lo >= hi:
                        continue
                    chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[lo:hi]).reshape(1, -1),
                                                       format="s16", layout=layout)
                    chunk.sample_rate, chunk.pts = rate, written
                    out.mux(pcm.encode(chunk))
                    written += hi - lo
            except av.FFmpegError as exc:
                raise MediaError(source, f"audio decoding failed: {exc.strerror or exc}; the file is corrupt or truncated") from None
            if not written:
                raise MediaError(source, f"its audio ({seen / rate:.2f} s) has nothing from {start} s to "
                                         f"{'the end' if end is None else f'{end} s'}")
            out.mux(pcm.encode(None))
