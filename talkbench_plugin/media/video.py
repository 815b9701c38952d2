"""Probe and stream-decode videos with PyAV, turning library errors into MediaError."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av

from ..errors import MediaError

_STILL_FORMATS = {"png_pipe", "jpeg_pipe", "bmp_pipe", "tiff_pipe", "webp_pipe", "image2", "gif"}
# AVColorSpace -> the YUV matrix it names (BT470BG and SMPTE170M are both BT.601's); unspecified is left out
_MATRICES = {1: "bt709", 5: "bt601", 6: "bt601", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
_HINT = "re-export it as a video (e.g. H.264 in MP4) and check that it plays"


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video's first video stream."""

    path: str
    width: int
    height: int
    pix_fmt: str
    fps: float
    duration: float | None  # seconds, from the container or stream header
    frames: int | None  # frame count declared by the header, if any
    codec: str
    has_audio: bool
    rotation: int = 0  # display matrix: degrees counter-clockwise (0, 90, 180, 270) that a player turns it
    colour_range: str = ""  # "limited", "full", or "" (not YUV)
    colour_matrix: str = ""  # e.g. "BT709", "" when unspecified

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def open_container(path: str | Path) -> av.container.InputContainer:
    """Open a media file, or raise MediaError saying why it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "file not found")
    if path.stat().st_size == 0:
        raise MediaError(path, "file is empty (0 bytes)")
    try:
        return av.open(str(path))
    except av.FFmpegError as exc:
        raise MediaError(path, f"not a readable media file ({exc.strerror or exc}); {_HINT}") from None


def probe(path: str | Path) -> VideoInfo:
    """Read a video's header; raise MediaError for non-videos, still images and missing streams."""
    with open_container(path) as container:
        if not container.streams.video:
            raise MediaError(path, "has no video stream (audio only?); a video with a face track is expected")
        stream = container.streams.video[0]
        if container.format.name in _STILL_FORMATS or (stream.frames == 1 and container.duration is None):
            raise MediaError(path, f"is a still image ({container.format.name}), not a video")
        rate = stream.average_rate or stream.guessed_rate
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        rotation, colour_range, matrix = _first_frame_facts(container, stream)
        return VideoInfo(
            rotation=rotation, colour_range=colour_range, colour_matrix=matrix,
            path=str(path),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            pix_fmt=stream.codec_context.format.name if stream.codec_context.format else "unknown",
            fps=float(rate) if rate else 0.0,
            duration=duration,
            frames=stream.frames or None,
            codec=stream.codec_context.name,
            has_audio=bool(container.streams.audio),
        )


def colour_range(frame: av.VideoFrame) -> str:
    """"full" or "limited" for a YUV or gray frame (yuvj formats and JPEG range are full), else ""."""
    name = frame.format.name
    if name.startswith("yuvj") or (frame.color_range == 2 and (name.startswith(("yuv", "gray", "nv")))):
        return "full"
    return "limited" if name.startswith(("yuv", "gray", "nv")) else ""


def _first_frame_facts(container: av.container.InputContainer, stream: av.VideoStream) -> tuple[int, str, str]:
    """The rotation of the display matrix, the colour range and the colour matrix, read off the first
    frame (PyAV exposes the display matrix on frames only); zeros when it does not decode here."""
    try:
        frame = next(container.decode(stream), None)
    except av.FFmpegError:
        frame = None
    if frame is None:
        return 0, "", ""
    rotation = round(frame.rotation or 0) % 360
    matrix = _MATRICES.get(int(frame.colorspace or 2), "")
    return (rotation if rotation in (90, 180, 270) else 0), colour_range(frame), matrix


def iter_frames(path: str | Path, info: VideoInfo | None = None) -> Iterator[tuple[float, av.VideoFrame]]:
    """Yield ``(seconds since the first frame, frame)`` in presentation order, one frame at a time.

    Decoding errors and truncation (far fewer frames than the header declares) raise MediaError.
    """
    info = info or probe(path)
    count = 0
    last_t = 0.0
    with open_container(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        origin = None
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                if origin is None:
                    origin = frame.pts
                last_t = float((frame.pts - origin) * frame.time_base)
                count += 1
                yield last_t, frame
        except av.FFmpegError as exc:
            raise MediaError(
                path, f"decoding failed after {count} frames ({last_t:.2f} s): {exc.strerror or exc}; "
                f"the file is corrupt or truncated, {_HINT}"
            ) from None
    if count == 0:
        raise MediaError(path, f"no video frame could be decoded; {_HINT}")
    if info.frames and count < 0.9 * info.frames - 1:
        raise MediaError(
            path, f"truncated: the header declares {info.frames} frames but only {count} decode "
            f"({last_t:.2f} s); re-download or re-export the file"
        )


def prefetch(frames: Iterator[tuple[float, av.VideoFrame]], depth: int = 8) -> Iterator[tuple[float, av.VideoFrame]]:
    """Run a frame iterator in a background thread, at most ``depth`` frames ahead.

    PyAV decodes without the GIL, so the reference's and the generated video's decoders run next to
    the metrics (which also release it: numpy, libavfilter). Errors are re-raised here, in order;
    closing this generator stops the thread and closes the producer (and so its container).
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item: tuple[object, object]) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in frames:
                if not put((None, item)):
                    break
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the consumer
            put((exc, None))
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
            put((end, None))

    thread = threading.Thread(target=produce, name="talkbench-decode", daemon=True)
    thread.start()
    try:
        while True:
            tag, item = items.get()
            if tag is end:
                return
            if tag is not None:
                raise tag
            yield item
    finally:
        stop.set()
        thread.join()
