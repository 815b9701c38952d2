"""Calibration pipelines: videos derived from a speaker's reference that bracket what metrics report.

``reference`` is the reference itself (perfect fidelity and sync), ``static`` holds its first frame
(no motion at all), ``shifted`` is its video with the audio SHIFT_FRAMES frames early, i.e. the
video lags the speech by that much (perfect fidelity, a known AV offset of +SHIFT_FRAMES) and ``degraded`` is a small, blocky re-encode at another frame rate
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
from talkbench_plugin.media.rate import RateConverter

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
    """The reference's video packets as they are, its audio SHIFT_FRAMES frames early, same length."""
    with _open(reference) as src:
        video, audio = _video_stream(src, reference), _audio_stream(src)
        if audio is None:
            raise MediaError(
                reference,
                "has no audio stream: the 'shifted' calibration moves the reference's audio; add the "
                "speaker's audio track to the reference (e.g. ffmpeg -i video.mp4 -i audio.wav -c:v copy "
                "-c:a aac out.mp4) or leave it out with --talkbench-calibrations reference,static,degraded",
            )
        shift = -round(SHIFT_FRAMES * audio.codec_context.sample_rate / _rate(video, reference))
        with _create(tmp) as out:
            copy = out.add_stream_from_template(video)
            sound = _AudioOut(out, audio, reference, shift)
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
            picker = RateConverter[av.VideoFrame](rate, 1 / source_rate)
            shrink = {"width": size[0], "height": size[1], "format": "yuv420p", "interpolation": "AREA"}
            for packet in _packets(reference, src, video, audio):
                if packet.stream is video:
                    for frame in _decode(reference, packet):
                        duration = frame.duration * frame.time_base if frame.duration else None
                        for slot, picked in picker.push(frame.pts * frame.time_base, duration, frame):
                            out.mux(encoder.encode(_stamped(picked.reformat(**shrink), slot, rate)))
                else:
                    sound.write(packet)
            for slot, picked in picker.finish():
                out.mux(encoder.encode(_stamped(picked.reformat(**shrink), slot, rate)))
            out.mux(encoder.encode(None))
            if sound:
                sound.finish()


class _AudioOut:
    """Writes the reference's audio into the output: its packets as they are when MP4 can hold its
    codec and no shift is asked for, else decoded, shifted by ``shift`` samples and encoded as AAC."""

    def __init__(
        self, out: av.container.OutputContainer, audio: av.AudioStream, reference: Path, shift: int = 0
    ) -> None:
        self.out, self.reference = out, reference
        ctx = audio.codec_context
        self.copy = shift == 0 and ctx.name in out.supported_codecs
        if self.copy:
            self.stream = out.add_stream_from_template(audio)
        else:
            channels = len(ctx.layout.channels)
            layout = {1: "mono", 2: "stereo"}.get(channels, ctx.layout.name)  # some inputs leave it unnamed
            self.stream = out.add_stream("aac", rate=ctx.sample_rate, layout=layout)
            aac_limit = 4 * ctx.sample_rate * channels  # AAC's ceiling is 6 bits a sample
            self.stream.bit_rate = min(ctx.bit_rate or 128_000, aac_limit)
            self.to_float = av.AudioResampler(format="fltp", layout=layout, rate=ctx.sample_rate)
            self.shifted = _AudioShift(shift, _samples(audio))

    def write(self, packet: av.Packet) -> None:
        """Take the next audio packet of the reference (the last, empty one drains the decoder)."""
        if self.copy:
            if packet.dts is not None:
                _remux(self.out, packet, self.stream)
            return
        for frame in _decode(self.reference, packet):
            self._encode(self.shifted.push(self.to_float.resample(frame)))

    def finish(self) -> None:
        """Write what is left once the reference has ended."""
        if not self.copy:
            self._encode(self.shifted.push(self.to_float.resample(None)))
            self._encode(self.shifted.finish())
            self.out.mux(self.stream.encode(None))

    def _encode(self, frames: Iterator[av.AudioFrame]) -> None:
        for frame in frames:
            self.out.mux(self.stream.encode(frame))


def _stamped(frame: av.VideoFrame, slot: int, rate: Fraction) -> av.VideoFrame:
    frame.pts, frame.time_base = slot, 1 / rate
    return frame


def _samples(audio: av.AudioStream) -> int | None:
    """The audio stream's length in samples as its container states it (without encoder padding)."""
    if not audio.duration:
        return None
    return round(audio.duration * audio.time_base * audio.codec_context.sample_rate)


def _half(n: int) -> int:
    """About half of ``n``, even, at least 2."""
    return max(2, n // 4 * 2)


class _AudioShift:
    """Shifts float planar audio by ``shift`` samples and keeps its length (``length`` samples when
    given, else the input's). Positive: silence first, the last samples cut; negative: the first
    samples cut, silence at the end. Output comes in chunks of _AUDIO_CHUNK samples, stamped in samples."""

    def __init__(self, shift: int, length: int | None) -> None:
        self.shift = shift
        self.length = length
        self._fifo = av.AudioFifo()
        self._like: av.AudioFrame | None = None
        self._skip = max(0, -shift)
        self._received = 0
        self._sent = 0

    def push(self, frames: list[av.AudioFrame]) -> Iterator[av.AudioFrame]:
        """Take the next decoded frames; yield the chunks now complete."""
        for frame in frames:
            if self._like is None and self.shift > 0:
                self._fifo.write(_silence(frame, self.shift))
            self._like = frame
            self._received += frame.samples
            frame.pts = None
            self._fifo.write(frame)
            if self._skip:
                self._skip -= self._fifo.read(min(self._skip, self._fifo.samples)).samples
            while self._fifo.samples >= _AUDIO_CHUNK + max(self.shift, 0) and self._left() >= _AUDIO_CHUNK:
                yield self._chunk(_AUDIO_CHUNK)

    def finish(self) -> Iterator[av.AudioFrame]:
        """Yield what is left up to the length: cut, or padded with silence."""
        if self._like is None:
            return
        end = self.length if self.length is not None else self._received
        samples = end - self._sent
        if self._fifo.samples < samples:
            self._fifo.write(_silence(self._like, samples - self._fifo.samples))
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
