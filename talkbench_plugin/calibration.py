"""Calibration pipelines: videos derived from a speaker's reference that bracket what metrics report.

``reference`` is the reference itself (perfect fidelity and sync), ``static`` holds its first frame
(no motion at all), ``shifted`` is its video with the audio late by SHIFT_FRAMES frames (perfect
fidelity, known sync offset) and ``degraded`` is a small, blocky re-encode at another frame rate
(exercises alignment and resizing). Each is made in one streaming pass over the reference.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from talkbench_plugin.cache import atomic_path
from talkbench_plugin.errors import MediaError

CALIBRATIONS = ("reference", "static", "shifted", "degraded")
SHIFT_FRAMES = 3

_CONTAINER_OPTIONS = {"fflags": "+bitexact"}  # no encoder version strings in the output
_LOSSLESS = {"qp": "0", "preset": "medium"}
_LOW_QUALITY = {"crf": "38", "preset": "medium", "x264-params": "mbtree=0"}  # see demo._X264
_AUDIO_CHUNK = 1024  # samples per AAC frame


def make_calibration(kind: str, reference: Path, dest: Path) -> None:
    """Write the ``kind`` calibration video of ``reference`` to ``dest`` (an .mp4), atomically."""
    makers = {"static": _static, "shifted": _shifted, "degraded": _degraded}
    if kind not in makers:
        raise ValueError(f"no calibration video to make for {kind!r}: choose one of {sorted(makers)}")
    with atomic_path(Path(dest)) as tmp:
        makers[kind](Path(reference), tmp)


def _static(reference: Path, tmp: Path) -> None:
    """The first frame, losslessly encoded at every timestamp of the reference, with its audio."""
    with _open(reference) as src:
        video, audio = _video_stream(src, reference), _audio_stream(src)
        with _create(tmp) as out:
            encoder = _video_encoder(out, video, _rate(video, reference), _LOSSLESS)
            encoder.codec_context.time_base = video.time_base
            sound = _AudioOut(out, audio, reference) if audio else None
            first = None
            for packet in _packets(reference, src, video, audio):
                if packet.stream is video:
                    for frame in _decode(reference, packet):
                        if first is None:
                            first = frame.reformat(format="yuv420p")
                        first.pts = frame.pts
                        out.mux(encoder.encode(first))
                else:
                    sound.write(packet)
            if first is None:
                raise MediaError(reference, "has no video frames: check that the file plays, or re-export it")
            out.mux(encoder.encode(None))
            if sound:
                sound.finish()


def _shifted(reference: Path, tmp: Path) -> None:
    """The reference's video packets as they are, its audio SHIFT_FRAMES frames late, same length."""
    with _open(reference) as src:
        video, audio = _video_stream(src, reference), _audio_stream(src)
        if audio is None:
            raise MediaError(
                reference,
                "has no audio stream: the 'shifted' calibration delays the reference's audio; add the "
                "speaker's audio track to the reference (e.g. ffmpeg -i video.mp4 -i audio.wav -c:v copy "
                "-c:a aac out.mp4) or leave it out with --talkbench-calibrations reference,static,degraded",
            )
        delay = round(SHIFT_FRAMES * audio.codec_context.sample_rate / _rate(video, reference))
        with _create(tmp) as out:
            copy = out.add_stream_from_template(video)
            sound = _AudioOut(out, audio, reference, delay)
            for packet in _packets(reference, src, video, audio):
                if packet.stream is audio:
                    sound.write(packet)
                elif packet.dts is not None:
                    _remux(out, packet, copy)
            sound.finish()


def _degraded(reference: Path, tmp: Path) -> None:
    """Half size, crf 38, 30 fps for 25 fps references and 25 fps for the rest, with the audio."""
    with _open(reference) as src:
        video, audio = _video_stream(src, reference), _audio_stream(src)
        source_rate = _rate(video, reference)
        rate = Fraction(30) if source_rate == 25 else Fraction(25)
        size = (_half(video.codec_context.width), _half(video.codec_context.height))
        with _create(tmp) as out:
            encoder = _video_encoder(out, video, rate, _LOW_QUALITY, size)
            sound = _AudioOut(out, audio, reference) if audio else None
            picker = _FrameRateConverter(rate, 1 / source_rate)
            shrink = {"width": size[0], "height": size[1], "format": "yuv420p", "interpolation": "AREA"}
            for packet in _packets(reference, src, video, audio):
                if packet.stream is video:
                    for frame in _decode(reference, packet):
                        for picked in picker.push(frame):
                            out.mux(encoder.encode(picked.reformat(**shrink)))
                else:
                    sound.write(packet)
            for picked in picker.finish():
                out.mux(encoder.encode(picked.reformat(**shrink)))
            out.mux(encoder.encode(None))
            if sound:
                sound.finish()


class _AudioOut:
    """Writes the reference's audio into the output: its packets as they are when MP4 can hold its
    codec and no delay is asked for, else decoded, delayed by ``delay`` samples and encoded as AAC."""

    def __init__(
        self, out: av.container.OutputContainer, audio: av.AudioStream, reference: Path, delay: int = 0
    ) -> None:
        self.out, self.reference = out, reference
        ctx = audio.codec_context
        self.copy = delay == 0 and ctx.name in out.supported_codecs
        if self.copy:
            self.stream = out.add_stream_from_template(audio)
        else:
            channels = len(ctx.layout.channels)
            layout = {1: "mono", 2: "stereo"}.get(channels, ctx.layout.name)  # some inputs leave it unnamed
            self.stream = out.add_stream("aac", rate=ctx.sample_rate, layout=layout)
            aac_limit = 4 * ctx.sample_rate * channels  # AAC's ceiling is 6 bits a sample
            self.stream.bit_rate = min(ctx.bit_rate or 128_000, aac_limit)
            self.to_float = av.AudioResampler(format="fltp", layout=layout, rate=ctx.sample_rate)
            self.late = _AudioDelay(delay, _samples(audio))

    def write(self, packet: av.Packet) -> None:
        """Take the next audio packet of the reference (the last, empty one drains the decoder)."""
        if self.copy:
            if packet.dts is not None:
                _remux(self.out, packet, self.stream)
            return
        for frame in _decode(self.reference, packet):
            self._encode(self.late.push(self.to_float.resample(frame)))

    def finish(self) -> None:
        """Write what is left once the reference has ended."""
        if not self.copy:
            self._encode(self.late.push(self.to_float.resample(None)))
            self._encode(self.late.finish())
            self.out.mux(self.stream.encode(None))

    def _encode(self, frames: Iterator[av.AudioFrame]) -> None:
        for frame in frames:
            self.out.mux(self.stream.encode(frame))


class _FrameRateConverter:
    """Constant-rate output by timestamp, as FFmpeg's ``fps`` filter does: output slot n (time
    n / rate) shows the latest input frame whose time, rounded to a slot, is at most n; the output
    ends where the last input frame ends."""

    def __init__(self, rate: Fraction, frame_time: Fraction) -> None:
        self.rate = Fraction(rate)
        self.frame_time = frame_time  # an input frame's duration when the frame does not say
        self._held: av.VideoFrame | None = None
        self._next = 0
        self._end = 0

    def push(self, frame: av.VideoFrame) -> Iterator[av.VideoFrame]:
        """Take the next input frame (presentation order); yield the output frames it completes."""
        start = frame.pts * frame.time_base
        slot = _round_half_up(start * self.rate)
        if self._held is None:
            self._next = slot
        yield from self._emit_until(slot)
        self._held = frame
        duration = frame.duration * frame.time_base if frame.duration else self.frame_time
        self._end = _round_half_up((start + duration) * self.rate)

    def finish(self) -> Iterator[av.VideoFrame]:
        """Yield the output frames left once the input has ended."""
        yield from self._emit_until(self._end)

    def _emit_until(self, slot: int) -> Iterator[av.VideoFrame]:
        while self._held is not None and self._next < slot:
            self._held.pts, self._held.time_base = self._next, 1 / self.rate
            yield self._held
            self._next += 1


def _samples(audio: av.AudioStream) -> int | None:
    """The audio stream's length in samples as its container states it (without encoder padding)."""
    if not audio.duration:
        return None
    return round(audio.duration * audio.time_base * audio.codec_context.sample_rate)


def _round_half_up(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


def _half(n: int) -> int:
    """About half of ``n``, even, at least 2."""
    return max(2, n // 4 * 2)


class _AudioDelay:
    """Delays float planar audio by ``delay`` samples of silence and keeps its length (``length``
    samples when given, else the input's): output comes in chunks of _AUDIO_CHUNK samples, stamped
    in samples, and the last ``delay`` input samples are cut."""

    def __init__(self, delay: int, length: int | None) -> None:
        self.delay = delay
        self.length = length
        self._fifo = av.AudioFifo()
        self._started = False
        self._sent = 0

    def push(self, frames: list[av.AudioFrame]) -> Iterator[av.AudioFrame]:
        """Take the next decoded frames; yield the chunks now complete."""
        for frame in frames:
            if not self._started and self.delay:
                self._fifo.write(_silence(frame, self.delay))
            self._started = True
            frame.pts = None
            self._fifo.write(frame)
            while self._fifo.samples >= _AUDIO_CHUNK + self.delay and self._left() >= _AUDIO_CHUNK:
                yield self._chunk(_AUDIO_CHUNK)

    def finish(self) -> Iterator[av.AudioFrame]:
        """Yield what is left, less the last ``delay`` samples."""
        samples = min(self._fifo.samples - self.delay, self._left())
        if samples > 0:
            yield self._chunk(samples)

    def _left(self) -> int | float:
        return math.inf if self.length is None else self.length - self._sent

    def _chunk(self, samples: int) -> av.AudioFrame:
        frame = self._fifo.read(samples)
        frame.pts, frame.time_base = self._sent, Fraction(1, frame.sample_rate)
        self._sent += samples
        return frame


def _silence(like: av.AudioFrame, samples: int) -> av.AudioFrame:
    zeros = np.zeros((len(like.layout.channels), samples), np.float32)
    frame = av.AudioFrame.from_ndarray(zeros, format="fltp", layout=like.layout.name)
    frame.sample_rate = like.sample_rate
    return frame


# --- reading the reference, writing the output --------------------------------------------------


def _open(reference: Path) -> av.container.InputContainer:
    try:
        return av.open(str(reference))
    except av.FFmpegError as exc:
        raise _unreadable(reference, exc) from exc


def _packets(reference: Path, src: av.container.InputContainer, *streams) -> Iterator[av.Packet]:
    """Demux the given streams (None entries ignored), reporting read errors as MediaError."""
    try:
        yield from src.demux([s for s in streams if s is not None])
    except av.FFmpegError as exc:
        raise _unreadable(reference, exc) from exc


def _decode(reference: Path, packet: av.Packet) -> list:
    try:
        return packet.decode()
    except av.FFmpegError as exc:
        raise _unreadable(reference, exc) from exc


def _unreadable(reference: Path, exc: av.FFmpegError) -> MediaError:
    reason = getattr(exc, "strerror", None) or str(exc)
    return MediaError(
        reference,
        f"cannot be read as a video ({reason}): check that it is a complete, playable video file "
        "(ffprobe lists its streams), or re-encode it, e.g. ffmpeg -i IN -c:v libx264 -c:a aac OUT.mp4",
    )


def _video_stream(src: av.container.InputContainer, reference: Path) -> av.VideoStream:
    if not src.streams.video:
        raise MediaError(reference, "has no video stream: a reference must be a video of the speaker")
    return src.streams.video[0]


def _audio_stream(src: av.container.InputContainer) -> av.AudioStream | None:
    return src.streams.audio[0] if src.streams.audio else None


def _rate(video: av.VideoStream, reference: Path) -> Fraction:
    rate = video.average_rate or video.guessed_rate
    if not rate:
        raise MediaError(reference, "has no frame rate: re-encode it at a constant rate (ffmpeg -i IN -r 25 OUT.mp4)")
    return Fraction(rate)


def _create(path: Path) -> av.container.OutputContainer:
    return av.open(str(path), "w", format="mp4", container_options=_CONTAINER_OPTIONS)


def _video_encoder(
    out: av.container.OutputContainer,
    video: av.VideoStream,
    rate: Fraction,
    options: dict[str, str],
    size: tuple[int, int] | None = None,
) -> av.VideoStream:
    stream = out.add_stream("libx264", rate=rate, options=options)
    stream.width, stream.height = size or (video.codec_context.width, video.codec_context.height)
    stream.pix_fmt = "yuv420p"
    stream.codec_context.thread_count = 1  # one thread: reproducible output
    return stream


def _remux(out: av.container.OutputContainer, packet: av.Packet, stream: av.stream.Stream) -> None:
    packet.stream = stream
    out.mux(packet)
