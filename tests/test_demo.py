"""The embedded demo dataset: complete, deterministic, and its mouths move with its audio."""

from __future__ import annotations

import hashlib
import itertools
import tomllib
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from talkbench_plugin.demo import build_demo

EXPECTED = {  # id: (language, fps, width, height)
    "eileen_en": ("en", 25, 320, 320),
    "eileen_zh": ("zh", 30, 288, 352),
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo(tmp_path_factory.mktemp("demo") / "data")


def _digests(root: Path) -> dict[str, str]:
    files = (p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768, w.getframerate()


def _lumas(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="gray").astype(np.float64) for f in c.decode(video=0)])


def test_manifest_lists_both_speakers_with_existing_files(demo: Path) -> None:
    assert demo.name == "demo.toml"
    manifest = tomllib.loads(demo.read_text(encoding="utf-8"))
    assert manifest["dataset"]["name"] == "demo"
    assert "astronaut" in manifest["dataset"]["description"]
    assert "pipelines" not in manifest
    assert {sid: entry["language"] for sid, entry in manifest["speakers"].items()} == {
        sid: spec[0] for sid, spec in EXPECTED.items()
    }
    for sid, entry in manifest["speakers"].items():
        assert entry["reference"] == f"reference_videos/{sid}.mp4"
        assert entry["audio"] == f"driving_audios/{sid}.wav"
        assert entry["image"] == f"source_images/{sid}.png"
    expected_files = {
        f"{d}/{sid}.{ext}"
        for sid in EXPECTED
        for d, ext in [("reference_videos", "mp4"), ("driving_audios", "wav"), ("source_images", "png")]
    }
    assert set(_digests(demo.parent)) == expected_files | {"demo.toml"}  # and no temporary files left


def test_two_builds_are_byte_identical(demo: Path, tmp_path: Path) -> None:
    again = build_demo(tmp_path / "again")
    assert again == tmp_path / "again" / "demo.toml"
    assert _digests(again.parent) == _digests(demo.parent)


@pytest.mark.parametrize("sid", sorted(EXPECTED))
def test_speaker_video_audio_and_image(demo: Path, sid: str) -> None:
    _, fps, width, height = EXPECTED[sid]
    root = demo.parent
    audio, rate = _wav(root / "driving_audios" / f"{sid}.wav")
    seconds = len(audio) / rate
    assert 5 <= seconds <= 8
    with av.open(str(root / "reference_videos" / f"{sid}.mp4")) as c:
        video, track = c.streams.video[0], c.streams.audio[0]
        assert (video.codec_context.name, video.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert (video.codec_context.width, video.codec_context.height) == (width, height)
        assert video.average_rate == fps
        assert (track.codec_context.name, track.codec_context.sample_rate) == ("aac", rate)
        assert float(track.duration * track.time_base) == pytest.approx(seconds)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video)]
    assert len(frames) == round(seconds * fps)
    assert not np.array_equal(frames[0], frames[1])  # the head moves
    image = np.asarray(Image.open(root / "source_images" / f"{sid}.png"))
    assert image.shape == (height, width, 3)
    mse = np.mean((image.astype(float) - frames[0]) ** 2)
    assert 10 * np.log10(255**2 / mse) > 35  # the image is the clip's first frame


@pytest.mark.parametrize("sid", sorted(EXPECTED))
def test_audio_is_voiced_speech_with_pauses(demo: Path, sid: str) -> None:
    audio, rate = _wav(demo.parent / "driving_audios" / f"{sid}.wav")
    hop = rate // 100
    rms = np.sqrt(np.mean(audio[: len(audio) // hop * hop].reshape(-1, hop) ** 2, axis=1))
    loud = rms > 0.1 * rms.max()
    assert 0.2 < 1 - loud.mean() < 0.6  # pauses between syllables and phrases
    syllables = np.sum(loud[1:] & ~loud[:-1])
    assert 2.5 <= syllables / (len(audio) / rate) <= 5.5
    f0 = []
    for start in np.flatnonzero(loud[::5]) * 5 * hop:  # autocorrelation pitch every 50 ms
        window = audio[start : start + 2 * rate // 50]
        ac = np.correlate(window, window, "full")[len(window) - 1 :]
        lo, hi = rate // 250, rate // 100
        f0.append(rate / (lo + np.argmax(ac[lo:hi])))
    assert 110 <= np.median(f0) <= 220
    if sid == "eileen_zh":  # tones: a wide pitch range
        assert np.percentile(f0, 90) - np.percentile(f0, 10) > 40


@pytest.mark.parametrize("sid", sorted(EXPECTED))
def test_mouth_opening_follows_the_audio(demo: Path, sid: str) -> None:
    _, fps, _, _ = EXPECTED[sid]
    root = demo.parent
    lumas = _lumas(root / "reference_videos" / f"{sid}.mp4")
    audio, rate = _wav(root / "driving_audios" / f"{sid}.wav")
    edges = np.round(np.arange(len(lumas) + 1) * rate / fps).astype(int)
    rms = np.array([np.sqrt(np.mean(audio[a:b] ** 2)) for a, b in itertools.pairwise(edges)])
    # The mouth is where the picture changes most; its darkness should follow the loudness.
    row, col = np.unravel_index(np.argmax(lumas.std(axis=0)), lumas.shape[1:])
    height, width = lumas.shape[1:]
    assert 0.4 * height < row < 0.75 * height and 0.3 * width < col < 0.7 * width  # lower middle of the face
    box = lumas[:, max(row - 12, 0) : row + 12, max(col - 20, 0) : col + 20]
    darkness = 255 - box.mean(axis=(1, 2))
    assert np.corrcoef(darkness, rms)[0, 1] > 0.8
    assert darkness[0] == pytest.approx(darkness.min(), abs=3)  # the first frame is the neutral one
