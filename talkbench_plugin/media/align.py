"""Map generated frames onto the reference timeline by timestamp, at the reference's size and format."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import av

from ..manifest import Segment
from ..metrics.base import FramePairs
from .video import VideoInfo

# Formats FFmpeg's psnr/ssim filters take as they are; anything else is converted to yuv420p.
PLANAR_8BIT = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuv411p",
               "yuv410p", "gray"}
RESIZE = "bicubic"  # swscale's bicubic through libavfilter's scale filter, as ffmpeg-quality-metrics' scale2ref
_EPS = 1e-4  # seconds: slack when counting frames at a video's end (pairing itself is exact, see sync_time_base)
_AV_TIME_BASE = 1_000_000
# display-matrix rotation (degrees counter-clockwise) -> the filters FFmpeg's autorotate inserts
_TURNS = {0: [], 90: [("transpose", "cclock")], 180: [("hflip", ""), ("vflip", "")], 270: [("transpose", "clock")]}


@dataclass
class Alignment:
    """How the generated frames were matched to the reference frames of the evaluated segment."""

    compared: int = 0
    duplicated: int = 0  # extra uses of a generated frame (generated fps lower than the reference's)
    dropped: int = 0  # generated frames never compared (generated fps higher)
    unmatched: int = 0  # reference frames of the segment with no generated frame (generated too short)
    resized: bool = False
    pix_fmt: str = ""
    size: tuple[int, int] = (0, 0)
    time_base: str = ""  # the common time base timestamps were compared in (FFmpeg's framesync)
    warnings: list[str] = field(default_factory=list)
    conversions: list[str] = field(default_factory=list)  # display-matrix turns, colour-range conversions

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size"] = list(self.size)
        return d


def target_format(ref: VideoInfo) -> str:
    """The pixel format both sides are compared in: the reference's own if FFmpeg's filters take it."""
    return ref.pix_fmt if ref.pix_fmt in PLANAR_8BIT else "yuv420p"


def aligned_batches(
    ref_frames: Iterator[tuple[float, av.VideoFrame]],
    gen_frames: Iterator[tuple[float, av.VideoFrame]],
    ref: VideoInfo,
    gen: VideoInfo,
    alignment: Alignment,
    *,
    segment: Segment = Segment(),
    offset: float = 0.0,
    batch_size: int = 32,
) -> Iterator[FramePairs]:
    """Yield batches of frame pairs: each reference frame in ``segment`` with the generated frame shown
    at that instant: the last one whose timestamp is not after it, both rounded to the common time base of
    the two streams exactly as FFmpeg's framesync does (``sync_time_base``), so a generated frame a few
    microseconds after a reference frame is not shown yet, as in ``ffmpeg -lavfi psnr``.

    The generated video's first frame shows reference time ``offset``. ``alignment`` is filled in as
    frames go by. Nothing is held beyond one batch.
    """
    fmt = target_format(ref)
    width, height = displayed_size(ref)
    alignment.pix_fmt = fmt
    alignment.size = (width, height)
    alignment.resized = displayed_size(gen) != (width, height)
    _note_conversions(alignment, ref, gen)
    gen_period = 1.0 / gen.fps if gen.fps > 0 else 0.0
    current: tuple[float, av.VideoFrame] | None = None
    current_uses = 0
    batch = FramePairs([], [], [])
    last_t = 0.0

    convert = Scaler(width, height, fmt, ref.colour_range)

    ref_frames = _watch_rate(ref_frames, ref, alignment)
    gen_frames = _watch_rate(gen_frames, gen, alignment)
    pending = next(gen_frames, None)
    base: Fraction | None = None
    for t_ref, ref_frame in ref_frames:
        if segment.end is not None and t_ref >= segment.end - 1e-9:
            break
        if not segment.contains(t_ref):
            continue
        t_gen = t_ref - offset
        if base is None and pending is not None:
            base = sync_time_base(ref_frame.time_base, pending[1].time_base)
            alignment.time_base = str(base)
        if base is not None:
            shown = _ticks(t_ref, ref_frame.time_base, base) - _round(Fraction(offset) / base)
        while pending is not None and _ticks(pending[0], pending[1].time_base, base) <= shown:
            if current is not None and current_uses == 0:
                alignment.dropped += 1
            current, current_uses = (pending[0], convert(pending[1])), 0
            pending = next(gen_frames, None)
        if current is None or (pending is None and t_gen >= current[0] + gen_period - _EPS):
            alignment.unmatched += 1
            continue
        if current_uses:
            alignment.duplicated += 1
        current_uses += 1
        alignment.compared += 1
        batch.ref.append(convert(ref_frame))
        batch.gen.append(current[1])
        batch.times.append(t_ref)
        last_t = t_ref
        if len(batch) == batch_size:
            yield batch
            batch = FramePairs([], [], [])
    if len(batch):
        yield batch
    if current is not None and current_uses == 0 and alignment.compared:
        alignment.dropped += 1  # taken up after the last compared reference frame, never compared
    if alignment.compared:
        # generated frames shown during the last compared reference frame, never compared
        end = last_t - offset + (1.0 / ref.fps if ref.fps > 0 else 0.0)
        while pending is not None and pending[0] < end - _EPS:
            alignment.dropped += 1
            pending = next(gen_frames, None)
    _warn(alignment, ref, gen)


def sync_time_base(a: Fraction | None, b: Fraction | None) -> Fraction:
    """The time base FFmpeg's framesync compares two inputs in (libavfilter/framesync.c, ``av_gcd_q`` with
    AV_TIME_BASE / 2): the coarsest one that holds both exactly if its denominator stays below 500000,
    else microseconds."""
    if not a or not b:
        return Fraction(1, _AV_TIME_BASE)
    lcm = a.denominator // math.gcd(a.denominator, b.denominator) * b.denominator
    return Fraction(math.gcd(a.numerator, b.numerator), lcm) if lcm < _AV_TIME_BASE // 2 else Fraction(1, _AV_TIME_BASE)


def _ticks(t: float, stream_base: Fraction | None, base: Fraction) -> int:
    """Seconds ``t`` (an integer count of ``stream_base`` units) in ``base``, rounded as av_rescale_q does."""
    exact = Fraction(round(Fraction(t) / stream_base)) * stream_base if stream_base else Fraction(t)
    return _round(exact / base)


def _round(x: Fraction) -> int:
    """To the nearest integer, halves away from zero (AV_ROUND_NEAR_INF)."""
    n = (2 * abs(x.numerator) + x.denominator) // (2 * x.denominator)
    return n if x >= 0 else -n


def displayed_size(info: VideoInfo) -> tuple[int, int]:
    """Width and height as shown: a display matrix turning it by 90 or 270 degrees swaps them."""
    return (info.height, info.width) if info.rotation in (90, 270) else (info.width, info.height)


def _note_conversions(alignment: Alignment, ref: VideoInfo, gen: VideoInfo) -> None:
    """Record what the Scaler does beyond resizing, and warn of colour matrices that differ."""
    for side, info in (("reference", ref), ("generated", gen)):
        if info.rotation:
            alignment.conversions.append(f"{side}: turned {info.rotation} degrees counter-clockwise as its display "
                                         "matrix says (FFmpeg's autorotate)")
    if ref.colour_range and gen.colour_range and ref.colour_range != gen.colour_range:
        alignment.conversions.append(f"generated: {gen.colour_range}-range YUV converted to {ref.colour_range} "
                                     "range (the reference's)")
    if ref.colour_matrix and gen.colour_matrix and ref.colour_matrix != gen.colour_matrix:
        alignment.warnings.append(f"colour matrices differ ({gen.colour_matrix} generated vs {ref.colour_matrix} "
                                  "reference): YUV planes compared as they are, not converted")


def _watch_rate(
    frames: Iterator[tuple[float, av.VideoFrame]], info: VideoInfo, alignment: Alignment
) -> Iterator[tuple[float, av.VideoFrame]]:
    """Pass frames through; note a variable frame rate (intervals differing by more than 1.5x)."""
    last = None
    shortest = longest = 0.0
    for t, frame in frames:
        if last is not None:
            step = t - last
            shortest = step if not shortest else min(shortest, step)
            longest = max(longest, step)
        last = t
        yield t, frame
    if shortest > 0 and longest > 1.5 * shortest:
        alignment.warnings.append(
            f"{info.path}: variable frame rate (frame intervals from {shortest * 1000:.1f} to "
            f"{longest * 1000:.1f} ms): frames matched by timestamp"
        )


def _warn(alignment: Alignment, ref: VideoInfo, gen: VideoInfo) -> None:
    total = alignment.compared + alignment.unmatched
    if total and alignment.unmatched > 0.1 * total:
        alignment.warnings.append(
            f"the generated video covers only {alignment.compared} of {total} reference frames "
            f"of the evaluated segment"
        )
    if abs(ref.fps - gen.fps) > 0.01:
        alignment.warnings.append(
            f"frame rates differ ({gen.fps:.3f} fps generated vs {ref.fps:.3f} fps reference): "
            f"frames matched by timestamp"
        )


class Scaler:
    """Bring frames to the target size and format with libavfilter's ``scale`` filter (swscale,
    bicubic), exactly as ffmpeg-quality-metrics' ``scale2ref`` does; frames already there pass as they are.

    Not ``VideoFrame.reformat``: PyAV's reformat sites chroma samples by the frame's chroma_location
    (H.264: left) where the scale filter centres them (chroma PSNR then differs by up to 0.09 dB), and it
    builds a new swscale context per frame (~1 ms of CPU per 512x512 frame against ~0.17 ms here).
    One single-threaded graph per input geometry.
    """

    def __init__(self, width: int, height: int, fmt: str, colour_range: str = "") -> None:
        self.target = (width, height, fmt)
        self.range = colour_range  # the reference's: other YUV ranges are converted to it
        self._graphs: dict[tuple[Any, ...], tuple[av.filter.Graph, Any, Any]] = {}  # per input geometry

    def _build(self, frame: av.VideoFrame, rotation: int, in_range: str) -> tuple[av.filter.Graph, Any, Any]:
        width, height, fmt = self.target
        graph = av.filter.Graph()
        graph.threads = 1
        src = graph.add_buffer(
            width=frame.width, height=frame.height, format=frame.format, time_base=frame.time_base or Fraction(1, 25)
        )
        chain = [graph.add(*step) for step in _TURNS[rotation]]  # as FFmpeg's autorotate inserts them
        ranges = f":in_range={in_range}:out_range={self.range}" if in_range and self.range and in_range != self.range \
            else ""
        chain += [graph.add("scale", f"{width}:{height}:flags={RESIZE}{ranges}"), graph.add("format", fmt),
                  graph.add("buffersink")]
        for a, b in zip([src, *chain], chain):
            a.link_to(b)
        graph.configure()
        return graph, src, chain[-1]

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        from .video import colour_range

        rotation = display_rotation(frame)
        in_range = colour_range(frame)
        key = (frame.width, frame.height, frame.format.name, rotation, in_range)
        if key[:3] == self.target and not rotation and in_range in ("", self.range):
            return frame
        if key not in self._graphs:
            self._graphs[key] = self._build(frame, rotation, in_range)
        _, src, sink = self._graphs[key]
        src.push(frame)
        return sink.pull()


def display_rotation(frame: av.VideoFrame) -> int:
    """The quarter turn (0, 90, 180, 270 degrees counter-clockwise) the frame's display matrix asks for."""
    rotation = round(frame.rotation or 0) % 360
    return rotation if rotation in _TURNS else 0


class Upright:
    """Turn frames as their display matrix says, with the filters FFmpeg's autorotate inserts, for the
    metrics fed a video's own frames (lip sync, FID, CPBD, FVD); upright frames pass as they are."""

    def __init__(self) -> None:
        self._graphs: dict[tuple[Any, ...], tuple[av.filter.Graph, Any, Any]] = {}  # the graph keeps its filters

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        rotation = display_rotation(frame)
        if not rotation:
            return frame
        key = (frame.width, frame.height, frame.format.name, rotation)
        if key not in self._graphs:
            graph = av.filter.Graph()
            graph.threads = 1
            src = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                                   time_base=frame.time_base or Fraction(1, 25))
            chain = [*(graph.add(*step) for step in _TURNS[rotation]), graph.add("buffersink")]
            for a, b in zip([src, *chain], chain):
                a.link_to(b)
            graph.configure()
            self._graphs[key] = (graph, src, chain[-1])
        _, src, sink = self._graphs[key]
        src.push(frame)
        return sink.pull()
