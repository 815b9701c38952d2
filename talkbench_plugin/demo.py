"""The embedded demo dataset: two talking speakers generated from scikit-image's astronaut photo.

Each speaker is a crop of the photo whose mouth opens with the loudness of a synthetic, speech-like
voice (glottal pulses through vowel formants, 3-5 syllables a second, with pauses) and whose head
drifts slightly. Everything is seeded and encoded with fixed settings, so two builds give the same
bytes on the same FFmpeg build.
"""

from __future__ import annotations

import itertools
import math
import wave
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image
from scipy import ndimage, signal
from skimage import data

from talkbench_plugin.cache import atomic_path

SAMPLE_RATE = 16_000
MANIFEST = "demo.toml"

# Geometry of the astronaut photo (rows, cols in its 512x512 pixels).
_MOUTH_ROW = 148.0  # where the lips part, below the upper teeth; the corners are higher:
_MOUTH_CURVE = 8.0
_MOUTH_COL = 223.3
_MOUTH_HALF_WIDTH = 19.5
_CHIN_ROW = 178.0
_MOUTH_BOX = np.s_[130:178, 200:247]  # holds the mouth and the skin down to the chin
_MAX_OPENING = 8.0  # photo pixels, at the loudest frame
_MOUTH_DARK = np.array([38.0, 10.0, 14.0])  # RGB inside the mouth
_TONGUE = np.array([120.0, 45.0, 50.0])

# Vowel formants (Hz) and their bandwidths.
_VOWELS = ((800, 1200, 2500), (300, 2300, 3000), (350, 800, 2300), (500, 1900, 2600), (500, 900, 2400))
_BANDWIDTHS = (80, 100, 130)
# Mandarin tones as F0 contours (Hz) through a syllable: high, rising, dipping, falling.
_TONES = ((218, 218, 216), (160, 180, 215), (165, 130, 160), (225, 180, 140))

# With its AVX-512 code and the macroblock tree on, x264 (core 165) was seen to encode the same frames
# two ways in one process. Without the macroblock tree, and with one thread, the output is reproducible.
_X264 = {"crf": "18", "preset": "medium", "x264-params": "mbtree=0"}


@dataclass(frozen=True)
class Speaker:
    """One demo speaker: how to crop the photo, how to encode the clip, and its voice."""

    id: str
    language: str
    fps: int
    width: int
    height: int
    center: tuple[float, float]  # (row, col) of the photo shown at the frame centre
    scale: float  # output pixels per photo pixel
    mirror: bool
    seconds: float
    seed: int

    @property
    def frames(self) -> int:
        return round(self.seconds * self.fps)


SPEAKERS = (
    Speaker("eileen_en", "en", 25, 320, 320, (130.0, 222.0), 4 / 3, False, 6.0, 1),
    Speaker("eileen_zh", "zh", 30, 288, 352, (118.0, 222.0), 1.76, True, 7.0, 2),
)


def build_demo(dest: Path) -> Path:
    """Build the demo dataset into ``dest`` and return its manifest, written last."""
    dest = Path(dest)
    photo = data.astronaut()
    with ThreadPoolExecutor(len(SPEAKERS)) as pool:  # the speakers are independent, each encoder one thread
        list(pool.map(lambda speaker: _build_speaker(speaker, photo, dest), SPEAKERS))
    manifest = dest / MANIFEST
    with atomic_path(manifest) as tmp:
        tmp.write_text(_manifest_text(), encoding="utf-8")
    return manifest


def _build_speaker(speaker: Speaker, photo: np.ndarray, dest: Path) -> None:
    audio = _speech(speaker)
    opening = _frame_envelope(audio, speaker.fps, speaker.frames)
    frames = (_render(photo, speaker, i / speaker.fps, opening[i]) for i in range(speaker.frames))
    first = _render(photo, speaker, 0.0, opening[0])
    with atomic_path(dest / "source_images" / f"{speaker.id}.png") as tmp:
        Image.fromarray(first).save(tmp, format="PNG")
    with atomic_path(dest / "driving_audios" / f"{speaker.id}.wav") as tmp:
        _write_wav(tmp, audio)
    with atomic_path(dest / "reference_videos" / f"{speaker.id}.mp4") as tmp:
        _write_mp4(tmp, speaker, frames, audio)


def _manifest_text() -> str:
    lines = [
        "[dataset]",
        'name = "demo"',
        "description = \"talkbench's embedded demo dataset: generated from skimage's astronaut photo\"",
    ]
    for s in SPEAKERS:
        lines += [
            "",
            f"[speakers.{s.id}]",
            f'language = "{s.language}"',
            f'reference = "reference_videos/{s.id}.mp4"',
            f'audio = "driving_audios/{s.id}.wav"',
            f'image = "source_images/{s.id}.png"',
        ]
    return "\n".join(lines) + "\n"


# --- audio -------------------------------------------------------------------------------------


def _speech(speaker: Speaker) -> np.ndarray:
    """A mono float signal in [-0.7, 0.7] at SAMPLE_RATE: syllables in phrases, with pauses."""
    rng = np.random.default_rng(speaker.seed)
    out = np.zeros(round(speaker.seconds * SAMPLE_RATE))
    for start, length, position in _syllable_times(rng, speaker.seconds):
        if speaker.language == "zh":
            f0 = _TONES[rng.integers(len(_TONES))]
        else:  # declination across the phrase, a small rise-fall on each syllable
            top = 200 - 12 * position + rng.uniform(-8, 8)
            f0 = (top - 15, top, top - 25)
        vowel = _VOWELS[rng.integers(len(_VOWELS))]
        syllable = _syllable(rng, length, f0, vowel)
        begin = round(start * SAMPLE_RATE)
        out[begin : begin + len(syllable)] += syllable[: len(out) - begin]
    return 0.7 * out / np.abs(out).max()


def _syllable_times(rng: np.random.Generator, seconds: float) -> list[tuple[float, float, int]]:
    """(start, length, position in phrase) of each syllable: phrases of 3-7, pauses between."""
    times, t = [], 0.3
    while True:
        for position in range(int(rng.integers(3, 8))):
            length = rng.uniform(0.16, 0.26)
            if t + length > seconds - 0.25:
                return times
            times.append((t, length, position))
            t += length + rng.uniform(0.0, 0.06)
        t += rng.uniform(0.3, 0.55)


def _syllable(rng: np.random.Generator, seconds: float, f0: tuple[float, ...], vowel: tuple[int, ...]) -> np.ndarray:
    """One voiced syllable: an F0 contour of glottal pulses through three formants, enveloped."""
    n = round(seconds * SAMPLE_RATE)
    contour = np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(f0)), f0)
    contour *= 1 + 0.01 * rng.standard_normal(n).cumsum() / np.sqrt(n)  # slow jitter
    x = np.diff(_glottal_flow(np.cumsum(contour) / SAMPLE_RATE % 1.0), prepend=0.0)
    x += 0.004 * rng.standard_normal(n)  # breath
    for formant, bandwidth in zip(vowel, _BANDWIDTHS):
        x = _resonate(x, formant, bandwidth)
    envelope = np.sin(np.pi * np.linspace(0, 1, n)) ** 0.6
    return x / np.abs(x).max() * envelope


def _glottal_flow(phase: np.ndarray) -> np.ndarray:
    """Rosenberg glottal pulse as a function of the cycle phase in [0, 1)."""
    opening, closing = 0.4, 0.16
    rise = 0.5 * (1 - np.cos(np.pi * phase / opening))
    fall = np.cos(0.5 * np.pi * (phase - opening) / closing)
    return np.where(phase < opening, rise, np.where(phase < opening + closing, fall, 0.0))


def _resonate(x: np.ndarray, frequency: float, bandwidth: float) -> np.ndarray:
    """A two-pole resonator (one formant)."""
    r = math.exp(-math.pi * bandwidth / SAMPLE_RATE)
    theta = 2 * math.pi * frequency / SAMPLE_RATE
    return signal.lfilter([1 - r], [1, -2 * r * math.cos(theta), r * r], x)


def _frame_envelope(audio: np.ndarray, fps: int, frames: int) -> np.ndarray:
    """RMS of the audio over each video frame's interval, scaled so the loudest frame is 1."""
    edges = np.round(np.arange(frames + 1) * SAMPLE_RATE / fps).astype(int)
    rms = np.array([np.sqrt(np.mean(audio[a:b] ** 2)) for a, b in itertools.pairwise(edges)])
    return rms / rms.max()


def _write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(_pcm16(audio).tobytes())


def _pcm16(audio: np.ndarray) -> np.ndarray:
    return np.round(audio * 32767).astype("<i2")


# --- video -------------------------------------------------------------------------------------


def _render(photo: np.ndarray, speaker: Speaker, t: float, opening: float) -> np.ndarray:
    """The RGB frame at time ``t``: the photo with its mouth opened, cropped with a moving head."""
    face = Image.fromarray(_open_mouth(photo, opening))
    size = (speaker.width, speaker.height)
    pose = _head_pose(speaker, t)
    return np.asarray(face.transform(size, Image.Transform.AFFINE, pose, Image.Resampling.BILINEAR))


def _open_mouth(photo: np.ndarray, opening: float) -> np.ndarray:
    """The photo with its mouth opened by ``opening`` (0 closed, 1 widest): the lower lip and jaw
    drop, the skin down to the chin stretches to make room, and the gap between the teeth is dark."""
    rows, cols = np.mgrid[_MOUTH_BOX].astype(np.float64)
    split = _MOUTH_ROW - _MOUTH_CURVE * ((cols - _MOUTH_COL) / _MOUTH_HALF_WIDTH) ** 2
    gap = _MAX_OPENING * opening * _mouth_profile(cols)
    depth = rows - split
    squeeze = (_CHIN_ROW - split) / (_CHIN_ROW - split - gap)
    source_rows = np.where(depth > 0, split + np.maximum(depth - gap, 0) * squeeze, rows)
    region = np.stack(
        [ndimage.map_coordinates(photo[..., c], [source_rows, cols], np.float64, order=1) for c in range(3)], -1
    )
    # Share of each pixel the gap covers, and the gap's colour: dark, a reddish tongue at the bottom.
    inside = np.maximum(np.minimum(depth + 0.5, gap) - np.maximum(depth - 0.5, 0), 0)[..., None]
    tongue = np.clip(depth / np.maximum(gap, 1e-6) * 2 - 1, 0, 1)[..., None] ** 2
    colour = _MOUTH_DARK + (_TONGUE - _MOUTH_DARK) * tongue
    face = photo.copy()
    face[_MOUTH_BOX] = np.round(region * (1 - inside) + colour * inside)
    return face


def _mouth_profile(cols: np.ndarray) -> np.ndarray:
    """How far the mouth opens across its width: 1 at the centre, 0 at the corners."""
    u = np.clip((cols - _MOUTH_COL) / _MOUTH_HALF_WIDTH, -1, 1)
    return 1 - u * u


def _head_pose(speaker: Speaker, t: float) -> tuple[float, ...]:
    """PIL affine coefficients from frame to photo coordinates: the crop, with a slight drift,
    zoom and tilt of the head over time (none at t = 0)."""
    w = 2 * np.pi * t
    zoom = speaker.scale * (1 + 0.006 * math.sin(0.37 * w))
    tilt = math.radians(0.5) * math.sin(0.23 * w)
    row = speaker.center[0] + 0.5 + 0.6 * math.sin(0.41 * w) + 0.2 * math.sin(1.3 * w)
    col = speaker.center[1] + 0.5 + 0.5 * math.sin(0.29 * w) + 0.2 * math.sin(0.9 * w)
    mirror = -1 if speaker.mirror else 1
    a, b = mirror * math.cos(tilt) / zoom, math.sin(tilt) / zoom
    d, e = -mirror * math.sin(tilt) / zoom, math.cos(tilt) / zoom
    half_w, half_h = speaker.width / 2, speaker.height / 2
    return (a, b, col - a * half_w - b * half_h, d, e, row - d * half_w - e * half_h)


def _write_mp4(path: Path, speaker: Speaker, frames: Iterable[np.ndarray], audio: np.ndarray) -> None:
    """H.264 yuv420p video with the audio as an AAC track, fixed settings, no varying metadata."""
    with av.open(str(path), "w", format="mp4", container_options={"fflags": "+bitexact"}) as out:
        video = out.add_stream("libx264", rate=speaker.fps, options=_X264)
        video.width, video.height, video.pix_fmt = speaker.width, speaker.height, "yuv420p"
        video.codec_context.thread_count = 1
        sound = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        sound.bit_rate = 96_000
        samples = (_pcm16(audio) / 32768).astype(np.float32)
        sent = 0
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, speaker.fps)
            out.mux(video.encode(frame))
            while sent < min(len(samples), (i + 1) * SAMPLE_RATE // speaker.fps):  # keep interleaved
                out.mux(sound.encode(_audio_frame(samples[sent : sent + 1024], sent)))
                sent += 1024
        out.mux(video.encode(None))
        out.mux(sound.encode(None))


def _audio_frame(chunk: np.ndarray, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(chunk[None], format="fltp", layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, pts, Fraction(1, SAMPLE_RATE)
    return frame
