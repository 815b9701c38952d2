"""Calibration videos derived from a reference: static, shifted, degraded."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from videos import write_video

from talkbench_plugin.calibration import CALIBRATIONS, SHIFT_FRAMES, make_calibration
from talkbench_plugin.demo import build_demo
from talkbench_plugin.errors import MediaError

KINDS = [k for k in CALIBRATIONS if k != "reference"]
SPEAKERS = ("eileen_en", "eileen_zh")  # 25 fps and 30 fps


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """The demo's references and every calibration of each: {(speaker, kind): path}."""
    root = build_demo(tmp_path_factory.mktemp("demo")).parent
    paths = {}
    for sid in SPEAKERS:
        paths[sid, "reference"] = root / "reference_videos" / f"{sid}.mp4"
        for kind in KINDS:
            paths[sid, kind] = root / f"{sid}-{kind}.mp4"
            make_calibration(kind, paths[sid, "reference"], paths[sid, kind])
    return paths


def _video_info(path: Path) -> tuple[int, int, Fraction, int, float]:
    """(width, height, average fps, decoded frames, stream duration in seconds)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = sum(1 for _ in c.decode(s))
        return s.codec_context.width, s.codec_context.height, s.average_rate, frames, float(s.duration * s.time_base)


def _yuv_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]


def _audio(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as c:
        rate = c.streams.audio[0].codec_context.sample_rate
        return np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]), rate


def _video_packets(path: Path) -> list[tuple[bytes, float, bool]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(bytes(p), float(p.pts * p.time_base), p.is_keyframe) for p in c.demux(s) if p.size]


def _levels_video(path: Path, fps: int, audio: bool) -> Path:
    """A lossless clip whose frame i is a flat grey of level 10 + 12 i (20 frames)."""
    frames = np.repeat((10 + 12 * np.arange(20, dtype=np.uint8))[:, None, None, None], 64 * 48 * 3)
    tone = 0.3 * np.sin(np.arange(16000 * 20 // fps) * 0.05) if audio else None
    return write_video(path, frames.reshape(20, 48, 64, 3), fps, audio=tone)


def _luma_means(path: Path) -> np.ndarray:
    return np.array([f[: f.shape[0] * 2 // 3].mean() for f in _yuv_frames(path)])


def _shown(path: Path, reference: Path) -> list[int]:
    """Which reference frame each frame of a (possibly lossy) copy of a levels clip shows."""
    levels = _luma_means(reference)
    return [int(np.argmin(np.abs(levels - m))) for m in _luma_means(path)]


def test_kinds() -> None:
    assert CALIBRATIONS == ("reference", "static", "shifted", "degraded")
    assert SHIFT_FRAMES == 3


@pytest.mark.parametrize("kind", ["reference", "blurred"])
def test_no_file_for_the_reference_or_unknown_kinds(calibrated, kind: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=kind):
        make_calibration(kind, calibrated["eileen_en", "reference"], tmp_path / "out.mp4")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("sid", SPEAKERS)
def test_static_holds_the_first_frame(calibrated, sid: str) -> None:
    reference, static = calibrated[sid, "reference"], calibrated[sid, "static"]
    w, h, fps, n, seconds = _video_info(reference)
    assert _video_info(static) == (w, h, fps, n, seconds)
    first = _yuv_frames(reference)[0]
    frames = _yuv_frames(static)
    assert all(np.array_equal(f, first) for f in frames)
    assert np.array_equal(_audio(static)[0], _audio(reference)[0])


@pytest.mark.parametrize("sid", SPEAKERS)
def test_shifted_keeps_the_video_and_advances_the_audio(calibrated, sid: str) -> None:
    reference, shifted = calibrated[sid, "reference"], calibrated[sid, "shifted"]
    assert _video_packets(shifted) == _video_packets(reference)
    fps = _video_info(reference)[2]
    ref_audio, rate = _audio(reference)
    early_audio, early_rate = _audio(shifted)
    assert early_rate == rate and len(early_audio) == len(ref_audio)
    with av.open(str(reference)) as a, av.open(str(shifted)) as b:
        sa, sb = a.streams.audio[0], b.streams.audio[0]
        assert sa.duration * sa.time_base == sb.duration * sb.time_base  # same length
    size = 2 * len(ref_audio)
    xcorr = np.fft.irfft(np.fft.rfft(ref_audio, size) * np.conj(np.fft.rfft(early_audio, size)))
    lead = int(np.argmax(xcorr[: len(ref_audio)]))  # the reference's audio lags the shifted one by this
    assert lead == pytest.approx(SHIFT_FRAMES * rate / fps, abs=1)
    assert np.abs(early_audio[len(early_audio) - lead + 16 :]).max() < 1e-3  # silence last


@pytest.mark.parametrize(("sid", "fps"), [("eileen_en", 30), ("eileen_zh", 25)])
def test_degraded_is_smaller_at_another_rate(calibrated, sid: str, fps: int) -> None:
    reference, degraded = calibrated[sid, "reference"], calibrated[sid, "degraded"]
    w, h, ref_fps, _, seconds = _video_info(reference)
    dw, dh, dfps, dn, dseconds = _video_info(degraded)
    assert (dw, dh) == (w // 4 * 2, h // 4 * 2)
    assert dfps == fps != ref_fps
    assert abs(dseconds - seconds) <= 1 / fps and abs(dn / fps - seconds) <= 1 / fps
    assert degraded.stat().st_size < reference.stat().st_size / 3
    assert np.array_equal(_audio(degraded)[0], _audio(reference)[0])


@pytest.mark.parametrize("fps", [25, 30])
def test_degraded_picks_frames_like_ffmpegs_fps_filter(tmp_path: Path, fps: int) -> None:
    reference = _levels_video(tmp_path / "levels.mp4", fps, audio=False)
    make_calibration("degraded", reference, tmp_path / "degraded.mp4")
    other = 30 if fps == 25 else 25
    lossless = f"-vf fps={other} -c:v libx264 -qp 0".split()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(reference), *lossless, str(tmp_path / "ffmpeg.mp4")], check=True)
    ours, theirs = _shown(tmp_path / "degraded.mp4", reference), _shown(tmp_path / "ffmpeg.mp4", reference)
    assert len(ours) == round(20 * other / fps)
    assert ours == theirs


@pytest.mark.parametrize("sid", ["eileen_zh"])
def test_same_input_gives_identical_files(calibrated, sid: str, tmp_path: Path) -> None:
    for kind in KINDS:
        again = tmp_path / f"{kind}.mp4"
        make_calibration(kind, calibrated[sid, "reference"], again)
        assert again.read_bytes() == calibrated[sid, kind].read_bytes()


def test_reference_without_audio(tmp_path: Path) -> None:
    reference = _levels_video(tmp_path / "silent.mp4", 25, audio=False)
    with pytest.raises(MediaError, match="has no audio stream") as info:
        make_calibration("shifted", reference, tmp_path / "shifted.mp4")
    assert info.value.path == str(reference)
    for kind in ("static", "degraded"):  # these need no audio and make none
        make_calibration(kind, reference, tmp_path / f"{kind}.mp4")
        with av.open(str(tmp_path / f"{kind}.mp4")) as c:
            assert not c.streams.audio and c.streams.video
    assert sorted(p.name for p in tmp_path.iterdir()) == ["degraded.mp4", "silent.mp4", "static.mp4"]


def _mkv_with_pcm_u8(path: Path) -> Path:
    """A 25 fps Matroska clip whose audio codec (8-bit PCM) MP4 cannot hold: it must be re-encoded."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream("pcm_u8", rate=16000, layout="mono")
        rng = np.random.default_rng(0)
        for i in range(25):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * i, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
            chunk = (128 + 100 * np.sin(np.arange(640) * 0.3) * rng.uniform(0, 1)).astype(np.uint8)
            samples = av.AudioFrame.from_ndarray(chunk[None], format="u8", layout="mono")
            samples.sample_rate, samples.pts = 16000, 640 * i
            out.mux(sound.encode(samples))
        out.mux(video.encode(None))
        out.mux(sound.encode(None))
    return path


@pytest.mark.parametrize("kind", KINDS)
def test_audio_that_mp4_cannot_hold_is_reencoded(tmp_path: Path, kind: str) -> None:
    reference = _mkv_with_pcm_u8(tmp_path / "reference.mkv")
    make_calibration(kind, reference, tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
    ours, rate = _audio(tmp_path / "out.mp4")
    theirs = _audio(reference)[0].astype(np.float64)
    theirs = (theirs - 128) / 128 if theirs.max() > 2 else theirs
    assert len(ours) == pytest.approx(len(theirs), abs=1024)
    lag = SHIFT_FRAMES * rate // 25 if kind == "shifted" else 0
    n = min(len(ours), len(theirs)) - lag
    assert np.corrcoef(ours[:n], theirs[lag : n + lag])[0, 1] > 0.95  # 'shifted' plays its audio early


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("content", [b"this is not a video\n", None])
def test_unreadable_reference_is_a_media_error(tmp_path: Path, kind: str, content: bytes | None) -> None:
    reference = tmp_path / "broken.mp4"
    if content is not None:
        reference.write_bytes(content)
    with pytest.raises(MediaError) as info:
        make_calibration(kind, reference, tmp_path / "out" / "calibration.mp4")
    assert info.value.path == str(reference)
    assert str(reference) in str(info.value) and "cannot be read as a video" in str(info.value)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())  # no partial output
