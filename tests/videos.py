"""Small synthetic videos for tests, written with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips"  # real clips in ../shared, when present
# manifest tables of two speakers: a (ref/a.mp4, en) and b (ref/b.mp4, zh)
SPEAKERS_AB = """
[speakers.a]
language = "en"
reference = "ref/a.mp4"
[speakers.b]
language = "zh"
reference = "ref/b.mp4"
"""
# a dataset of those two speakers and one pipeline (out/<speaker>_Blur.mp4)
TWO_SPEAKERS = """
[dataset]
name = "tiny"
""" + SPEAKERS_AB + """[pipelines.Blur]
mode = "dubbing"
outputs = "out/{speaker}_Blur.mp4"
"""


def moving_frames(n: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """``n`` RGB frames of a textured pattern that moves a little each frame."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height + n, width + n, 3), dtype=np.uint8)
    base = (base.astype(np.float32) * 0.5 + 64).astype(np.uint8)
    return np.stack([base[i : i + height, i : i + width] for i in range(n)])


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: float | Fraction = 25,
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB ``frames`` (N, H, W, 3) into ``path``; optional mono float ``audio``."""
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w", options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        stream.options = options if options is not None else ({"crf": "0"} if codec == "libx264" else {})
        astream = None
        if audio is not None:
            astream = out.add_stream("aac", rate=sample_rate)
            astream.layout = "mono"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            frame.time_base = 1 / rate
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if astream is not None:
            samples = (np.clip(audio, -1, 1) * 32767).astype(np.int16)[None, :]
            chunk = 1024
            for start in range(0, samples.shape[1], chunk):
                aframe = av.AudioFrame.from_ndarray(samples[:, start : start + chunk], format="s16", layout="mono")
                aframe.sample_rate = sample_rate
                aframe.pts = start
                out.mux(astream.encode(aframe))
            out.mux(astream.encode())
    return path
