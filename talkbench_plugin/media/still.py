"""Single frames: the frame a video shows at an instant (by seeking), and PNG encoding, for report thumbnails."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from ..errors import MediaError
from .video import open_container

_EPS = 1e-4  # seconds, as in align.py: timestamps closer than this are the same instant


def frame_at(path: str | Path, t: float) -> av.VideoFrame:
    """The frame shown ``t`` seconds after the video's first frame: the last one whose timestamp is not
    after ``t`` (how the alignment pairs frames), or the first frame for ``t`` before it."""
    with open_container(path) as container:
        stream = container.streams.video[0]
        base = stream.time_base
        origin = stream.start_time or 0
        target = origin + int((t + _EPS) / base)
        shown = None
        try:
            container.seek(max(target, origin), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                if frame.pts > target and shown is not None:
                    break
                shown = frame
        except av.FFmpegError as exc:
            raise MediaError(path, f"cannot decode the frame at {t:.3f} s: {exc.strerror or exc}") from None
    if shown is None:
        raise MediaError(path, f"no frame at {t:.3f} s")
    return shown


def png(rgb: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 image as PNG bytes (FFmpeg's encoder)."""
    height, width = rgb.shape[:2]
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "rgb24"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])


def rgb(frame: av.VideoFrame, size: tuple[int, int] | None = None) -> np.ndarray:
    """``frame`` as an (H, W, 3) uint8 array, resized (bicubic) to ``size`` = (width, height) if given."""
    width, height = size or (frame.width, frame.height)
    return frame.reformat(width=width, height=height, format="rgb24", interpolation="BICUBIC").to_ndarray()


def shrink(image: np.ndarray, height: int) -> np.ndarray:
    """An RGB image scaled (area average) to ``height`` pixels high, keeping its aspect ratio."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    width = max(2, round(frame.width * height / frame.height))
    return frame.reformat(width=width, height=height, interpolation="AREA").to_ndarray()
