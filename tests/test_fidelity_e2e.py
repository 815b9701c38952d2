"""The whole path agrees with the ``ffmpeg`` binary: the same files in, the same numbers out.

``evaluate_case`` (decode, timestamp alignment, resize, PSNR/SSIM) runs on whole video files, and the
``ffmpeg`` binary runs its ``psnr`` and ``ssim`` filters on the very same files in the same test.
The binary gets the reference as the main (first) input, so FFmpeg's framesync pairs each reference
frame with the generated frame shown at that instant (the last one at or before it, the previous one
repeated when the generated video is slower) -- the pairing talkbench documents. (ffmpeg-quality-metrics
puts the distorted video first, which pairs per generated frame.) Both inputs go through
``settb=AVTB,setpts=PTS-STARTPTS`` as in ffmpeg-quality-metrics' graph (its ``-r <probed rate>`` input
option is left out: these clips are constant-rate, so it changes nothing), and are cut to the
span where both have a picture (``trim``): the reference up to the end of the generated video's last
frame, the generated video up to the last reference frame left. Without the cut the binary, once one
input has ended, keeps emitting pairs with that input's last frame repeated (it compares 272 frames
for may_5s, 125 frames, against the 272-frame NeRF clip; and one extra pair when a 30 fps generated
frame falls after a 25 fps reference's last one), which is not the reference timeline.

Resizing: talkbench resizes with libavfilter's ``scale=W:H:flags=bicubic`` (swscale), as
ffmpeg-quality-metrics 3.5.3 does with ``[1][0]scale2ref=flags=bicubic`` (FFmpeg < 7.1, as the system
5.1 here) or ``[1][0]scale=rw:rh:flags=bicubic`` (>= 7.1). The ``scale`` filter gives bit-identical
planes in FFmpeg 5.1 (the binary) and 8.1 (PyAV's libavfilter), so resized pairs agree exactly too.
(PyAV's ``VideoFrame.reformat`` would not: it sites chroma samples by the frame's ``chroma_location``,
and chroma PSNR then differs by up to 0.09 dB.)
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from videos import CLIPS, moving_frames, write_video

from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
from talkbench_plugin.media.align import Alignment, aligned_batches
from talkbench_plugin.media.video import iter_frames, probe

PSNR_TOL = 1e-4  # dB
SSIM_TOL = 1e-5

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the ffmpeg binary is not on PATH")
needs_clips = pytest.mark.skipif(not CLIPS.is_dir(), reason=f"real clips not found at {CLIPS}")


# --- media ------------------------------------------------------------------------------------------


def ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def reencode(src: Path, dest: Path, *filters_and_options: str, crf: int = 30) -> Path:
    """A lossy H.264 re-encode of ``src`` made by the ffmpeg binary (video only)."""
    ffmpeg("-i", src, "-an", *filters_and_options, "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf),
           "-pix_fmt", "yuv420p", dest)
    return dest


def span(path: Path) -> tuple[int, float]:
    """(frames, frames per second), counting the packets: no decoding."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for packet in container.demux(stream) if packet.size)
        return frames, float(stream.average_rate)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not CLIPS.is_dir():
        pytest.skip(f"real clips not found at {CLIPS}")
    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg binary is not on PATH")
    return tmp_path_factory.mktemp("e2e")


# --- the two sides ----------------------------------------------------------------------------------


def talkbench(ref: Path, gen: Path, tmp_path: Path) -> dict:
    # no coverage rule: these pairs compare with ffmpeg, shorter generated videos included
    case = Case(Speaker("s", "en", ref), Pipeline("P", "dubbing", "x", min_coverage=0.0), gen, Segment())
    record = evaluate_case(case, ["psnr", "ssim"], tmp_path / "cache")
    assert record["error"] is None, record["error"]
    return record


def _fields(text: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(\w+):(-?[\d.]+|inf)", text)}


def _ffmpeg_version() -> tuple[int, int]:
    first = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout.split("\n")[0]
    match = re.search(r"version n?(\d+)\.(\d+)", first)
    return (int(match.group(1)), int(match.group(2))) if match else (99, 0)


def binary(ref: Path, gen: Path, tmp_path: Path, *, resize: tuple[int, int] | None = None) -> dict:
    """The ffmpeg binary's psnr and ssim filters on the two files: summaries and per-frame series.

    ``resize``: the reference size, for a generated video of another size; it is scaled as
    ffmpeg-quality-metrics 3.5.3 scales it.
    """
    (ref_n, ref_fps), (gen_n, gen_fps) = span(ref), span(gen)
    ref_end = gen_n / gen_fps  # the generated video's last frame is shown until here
    last = min(ref_n, math.ceil(ref_end * ref_fps - 1e-6)) - 1  # the last reference frame compared
    gen_end = last / ref_fps + 1e-4  # generated frames shown by that instant
    graph = []
    if resize is None:
        graph += ["[0:v]null[r0]", "[1:v]null[g0]"]
    elif _ffmpeg_version() < (7, 1):
        graph += ["[1:v][0:v]scale2ref=flags=bicubic[g0][r0]"]
    else:
        graph += [f"[1:v]scale={resize[0]}:{resize[1]}:flags=bicubic[g0]", "[0:v]null[r0]"]
    graph += [
        f"[r0]settb=AVTB,setpts=PTS-STARTPTS,trim=end={ref_end:.6f}[r1]",
        f"[g0]settb=AVTB,setpts=PTS-STARTPTS,trim=end={gen_end:.6f},split[g1][g2]",
        "[r1][g1]psnr=stats_file=psnr.log,metadata=mode=print:file=psnr_meta.log[m]",
        "[m][g2]ssim=stats_file=ssim.log",
    ]
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-i", str(ref), "-i", str(gen), "-lavfi", ";".join(graph),
           "-an", "-f", "null", "-"]
    log = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=True).stderr
    psnr_frames = [
        float(v) for v in re.findall(r"lavfi\.psnr\.psnr_avg=(\S+)", (tmp_path / "psnr_meta.log").read_text())
    ]
    ssim_frames = [_fields(line.split(" (")[0])["All"] for line in (tmp_path / "ssim.log").read_text().splitlines()]
    return {
        "psnr": _fields(re.search(r"PSNR (.*)", log).group(1)),
        "ssim": _fields(re.search(r"SSIM (.*)", log).group(1)),
        "psnr_frames": psnr_frames,
        "ssim_frames": ssim_frames,
    }


def differences(record: dict, ff: dict) -> dict[str, float]:
    """The largest |talkbench - binary| per quantity; the frame counts must agree first."""
    psnr, ssim = record["metrics"]["psnr"], record["metrics"]["ssim"]
    n = record["alignment"]["compared"]
    assert len(psnr["per_frame"]) == len(ssim["per_frame"]) == n
    assert len(ff["psnr_frames"]) == len(ff["ssim_frames"]) == n, (n, len(ff["psnr_frames"]))

    def gap(a: float, b: float) -> float:
        return 0.0 if a == b else abs(a - b)  # a == b: both inf

    return {
        "psnr": gap(psnr["value"], ff["psnr"]["average"]),
        "psnr_y": gap(psnr["details"]["y"], ff["psnr"]["y"]),
        "psnr_uv": max(gap(psnr["details"][p], ff["psnr"][p]) for p in "uv"),
        "psnr_frame": max(map(gap, psnr["per_frame"], ff["psnr_frames"])),
        "ssim": gap(ssim["value"], ff["ssim"]["All"]),
        "ssim_y": gap(ssim["details"]["y"], ff["ssim"]["Y"]),
        "ssim_frame": max(map(gap, ssim["per_frame"], ff["ssim_frames"])),
    }


def assert_exact(d: dict[str, float]) -> None:
    for key, value in d.items():
        assert value <= (PSNR_TOL if key.startswith("psnr") else SSIM_TOL), (key, d)


def agrees_with_binary(ref: Path, gen: Path, tmp_path: Path) -> dict:
    """talkbench's record for the pair, once its numbers are shown to equal the binary's."""
    record = talkbench(ref, gen, tmp_path)
    assert_exact(differences(record, binary(ref, gen, tmp_path)))
    return record


def counts(record: dict) -> tuple[int, int, int, int]:
    a = record["alignment"]
    return a["compared"], a["duplicated"], a["dropped"], a["unmatched"]


def dump_compared_frames(ref: Path, gen: Path, dest: Path) -> Path:
    """Write, losslessly, the generated frames exactly as talkbench compares them (aligned and resized
    by the engine's own code), at the reference's frame rate."""
    ri, gi = probe(ref), probe(gen)
    with av.open(str(dest), "w") as out:
        stream = out.add_stream("ffv1", rate=Fraction(ri.fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = ri.width, ri.height, "yuv420p"
        i = 0
        for batch in aligned_batches(iter_frames(ref, ri), iter_frames(gen, gi), ri, gi, Alignment()):
            for frame in batch.gen:
                copy = av.VideoFrame.from_ndarray(frame.to_ndarray(), format=frame.format.name)
                copy.pts, copy.time_base = i, 1 / stream.codec_context.framerate
                out.mux(stream.encode(copy))
                i += 1
        out.mux(stream.encode())
    return dest


# --- same size, same frame rate ---------------------------------------------------------------------


@needs_ffmpeg
@needs_clips
@pytest.mark.slow
def test_real_generated_video_longer_than_the_reference(tmp_path):
    """A NeRF renderer's May (10.9 s) against the real May (5 s): the reference's 125 frames count."""
    ref, gen = CLIPS / "may_5s.mp4", CLIPS / "may_radnerf_generated.mp4"
    record = agrees_with_binary(ref, gen, tmp_path)
    assert record["alignment"]["compared"] == 125


@needs_ffmpeg
@needs_clips
@pytest.mark.slow
def test_low_quality_reencode(tmp_path, media):
    ref = CLIPS / "may_5s.mp4"
    gen = reencode(ref, tmp_path / "low.mp4", crf=40)
    record = agrees_with_binary(ref, gen, tmp_path)
    assert record["alignment"]["compared"] == 125 and not record["alignment"]["resized"]
    assert 25 < record["metrics"]["psnr"]["value"] < 40


# --- different sizes --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resized(media: Path):
    """may_5s re-encoded at other sizes (the generated side is resized to 512x512)."""
    made: dict[str, Path] = {}

    def make(size: str) -> Path:
        if size not in made:
            w, h = size.split("x")
            made[size] = reencode(CLIPS / "may_5s.mp4", media / f"may_{size}.mp4", "-vf", f"scale={w}:{h}", crf=28)
        return made[size]

    return make


@needs_ffmpeg
@needs_clips
@pytest.mark.slow
@pytest.mark.parametrize("size", ["256x256", "640x480"])
def test_resized_generated_video_against_the_same_resize(tmp_path, resized, size):
    """The binary agrees exactly, given the frames talkbench compared and with its own scaler."""
    ref, gen = CLIPS / "may_5s.mp4", resized(size)
    record = talkbench(ref, gen, tmp_path)
    assert record["alignment"]["resized"] and record["alignment"]["size"] == [512, 512]
    assert record["alignment"]["compared"] == 125
    same_resize = dump_compared_frames(ref, gen, tmp_path / "compared.nut")
    assert_exact(differences(record, binary(ref, same_resize, tmp_path)))
    assert_exact(differences(record, binary(ref, gen, tmp_path, resize=(512, 512))))


@needs_ffmpeg
@needs_clips
@pytest.mark.slow
@pytest.mark.parametrize("size", ["256x256", "640x480"])
def test_resized_generated_video_against_ffmpeg_quality_metrics_scaler(tmp_path, resized, size):
    """ffmpeg-quality-metrics itself, on the same files: equal to its printed precision."""
    ref, gen = CLIPS / "may_5s.mp4", resized(size)
    record = talkbench(ref, gen, tmp_path)

    fqm = pytest.importorskip("ffmpeg_quality_metrics")
    tool = fqm.FfmpegQualityMetrics(str(ref), str(gen), tmp_dir=str(tmp_path))
    data = tool.calculate(["psnr", "ssim"])
    psnr, ssim = record["metrics"]["psnr"], record["metrics"]["ssim"]
    assert len(data["psnr"]) == len(data["ssim"]) == len(psnr["per_frame"])
    # it rounds per-frame PSNR to 2 decimals and SSIM to 3
    for ours, theirs in zip(psnr["per_frame"], data["psnr"], strict=True):
        assert abs(ours - theirs["psnr_avg"]) <= 0.005 + PSNR_TOL, (ours, theirs)
    for ours, theirs in zip(ssim["per_frame"], data["ssim"], strict=True):
        assert abs(ours - theirs["ssim_avg"]) <= 5e-4 + SSIM_TOL, (ours, theirs)


# --- different frame rates --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hdtf_25fps(media: Path) -> Path:
    """The first 3 s of the 30 fps HDTF clip, re-encoded at 25 fps by the binary (``-r 25``)."""
    return reencode(CLIPS / "hdtf_face4_30fps.mp4", media / "hdtf_25fps_3s.mp4", "-t", "3", "-r", "25")


@needs_ffmpeg
@needs_clips
@pytest.mark.slow
def test_slower_and_shorter_generated_video(tmp_path, hdtf_25fps):
    """30 fps reference (6.6 s), 25 fps generated (3 s): generated frames repeat, the rest is unmatched."""
    ref = CLIPS / "hdtf_face4_30fps.mp4"
    record = agrees_with_binary(ref, hdtf_25fps, tmp_path)
    assert counts(record) == (90, 15, 0, 109)


@needs_ffmpeg
@needs_clips
@pytest.mark.slow
def test_faster_and_longer_generated_video(tmp_path, hdtf_25fps):
    """25 fps reference (3 s), 30 fps generated (6.6 s): generated frames are dropped."""
    gen = CLIPS / "hdtf_face4_30fps.mp4"
    record = agrees_with_binary(hdtf_25fps, gen, tmp_path)
    assert counts(record) == (75, 0, 15, 0)


@needs_ffmpeg
def test_frame_rates_on_synthetic_clips(tmp_path):
    """Runs without the real clips: 25 fps reference, 30 fps generated that ends early (1.0 s)."""
    ref = write_video(tmp_path / "ref.mp4", moving_frames(40, 96, 64), 25)
    gen = write_video(tmp_path / "gen.mp4", moving_frames(30, 96, 64, seed=1), 30, options={"crf": "20"})
    record = agrees_with_binary(ref, gen, tmp_path)
    assert counts(record) == (25, 0, 5, 15)


# --- odd sizes --------------------------------------------------------------------------------------


@needs_ffmpeg
@needs_clips
@pytest.mark.slow
def test_odd_size_real_clips(tmp_path):
    """451x317 yuv420p crops (chroma planes 226x159), cut losslessly (FFV1) by the binary."""
    crop = ["-t", "2", "-an", "-vf", "crop=451:317:30:60:exact=1", "-c:v", "ffv1", "-pix_fmt", "yuv420p"]
    ref, gen = tmp_path / "ref.mkv", tmp_path / "gen.mkv"
    ffmpeg("-i", CLIPS / "may_5s.mp4", *crop, ref)
    ffmpeg("-i", CLIPS / "may_radnerf_generated.mp4", *crop, gen)
    assert (probe(ref).width, probe(ref).height) == (451, 317)
    record = agrees_with_binary(ref, gen, tmp_path)
    assert record["alignment"]["compared"] == 50


def test_span_counts_frames_without_decoding(tmp_path):
    path = write_video(tmp_path / "v.mp4", moving_frames(7, 32, 32), 30)
    assert span(path) == (7, 30.0)
    assert np.isclose(span(path)[1], probe(path).fps)
