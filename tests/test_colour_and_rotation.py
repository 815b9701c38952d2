"""Full-range video and display-matrix rotation are handled as FFmpeg does (issue 16.1, 16.2): the numbers
agree with the ``ffmpeg`` binary's ``psnr`` on the same files, and the conversion is recorded."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the ffmpeg binary is not on PATH")


def ffmpeg(*args: str | Path) -> str:
    done = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-y", *map(str, args)], check=True,
                          capture_output=True, text=True)
    return done.stderr


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The issue's reference (testsrc2 + tone, x264), smaller; a full-range re-encode; a rotated copy."""
    root = tmp_path_factory.mktemp("colour")
    ref = root / "ref.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=1", "-f", "lavfi", "-i", "sine=f=220:d=1",
           "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", ref)
    ffmpeg("-i", ref, "-c:v", "libx264", "-crf", "30", "-pix_fmt", "yuvj420p", root / "full.mp4")
    ffmpeg("-i", ref, "-c", "copy", "-metadata:s:v:0", "rotate=90", root / "rotated.mp4")
    return {"ref": ref, "full": root / "full.mp4", "rotated": root / "rotated.mp4"}


def ffmpeg_psnr(ref: Path, gen: Path, width: int, height: int) -> dict[str, float]:
    """The issue's command: ffmpeg (which autorotates) scales the generated video to the reference's size."""
    log = ffmpeg("-i", ref, "-i", gen, "-lavfi", f"[1:v]scale={width}:{height}:flags=bicubic,format=yuv420p[g];"
                 "[0:v][g]psnr", "-f", "null", "-")
    return {k: float(v) for k, v in re.findall(r"(y|u|v|average):([\d.]+|inf)", log.splitlines()[-1])}


def evaluate(ref: Path, gen: Path, tmp_path: Path) -> dict:
    case = Case(Speaker("s", "en", ref), Pipeline("P", "dubbing", "x"), gen, Segment())
    record = evaluate_case(case, ["psnr"], tmp_path / "cache")
    assert record["error"] is None, record["error"]
    return record


def test_full_range_is_converted_to_the_references_range(clips, tmp_path: Path) -> None:
    record = evaluate(clips["ref"], clips["full"], tmp_path)
    expected = ffmpeg_psnr(clips["ref"], clips["full"], 64, 48)
    psnr = record["metrics"]["psnr"]
    assert psnr["details"]["y"] == pytest.approx(expected["y"], abs=1e-4)  # luma: identical planes
    # chroma: swscale 8.1 (PyAV's) rounds the chroma range conversion unlike 5.1 (the binary's): samples
    # differ by at most 1, the average by ~0.03 dB (unconverted it was ~4 dB lower)
    assert psnr["value"] == pytest.approx(expected["average"], abs=0.05)
    assert record["alignment"]["conversions"] == [("generated: full-range YUV converted to limited range "
                                                   "(the reference's)")]
    assert record["inputs"]["generated"]["colour_range"] == "full"


@pytest.mark.parametrize(("ref", "gen"), [("ref", "rotated"), ("rotated", "ref")])
def test_display_matrix_rotation_is_applied_on_either_side(clips, tmp_path: Path, ref: str, gen: str) -> None:
    record = evaluate(clips[ref], clips[gen], tmp_path)
    size = (48, 64) if ref == "rotated" else (64, 48)
    expected = ffmpeg_psnr(clips[ref], clips[gen], *size)
    assert record["metrics"]["psnr"]["value"] == pytest.approx(expected["average"], abs=1e-4)
    assert expected["average"] < 20  # the turned picture is compared, not the stored one
    assert record["alignment"]["size"] == list(size) and record["alignment"]["resized"]
    side = "reference" if ref == "rotated" else "generated"
    assert record["alignment"]["conversions"] == [(f"{side}: turned 90 degrees counter-clockwise as its display "
                                                   "matrix says (FFmpeg's autorotate)")]


def test_metrics_fed_a_videos_own_frames_see_it_turned_too(tmp_path: Path) -> None:
    """CPBD (a stream metric: the generated video's own frames) scores the turned picture, as ffmpeg's gray
    dump of the rotated file (autorotated) gives it to the cpbd package."""
    import cpbd
    from imageio.v2 import imread

    ref = tmp_path / "ref.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=128x80:r=25:d=0.2", "-c:v", "libx264", "-crf", "18",
           "-pix_fmt", "yuv420p", ref)
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-i", ref, "-c", "copy", "-metadata:s:v:0", "rotate=90", rotated)
    (tmp_path / "frames").mkdir()
    ffmpeg("-i", rotated, "-pix_fmt", "gray", tmp_path / "frames" / "%03d.png")
    dumped = [imread(p, mode="L") for p in sorted((tmp_path / "frames").glob("*.png"))]
    assert dumped[0].shape == (128, 80)  # ffmpeg turned it
    case = Case(Speaker("s", "en", rotated), Pipeline("P", "dubbing", "x"), rotated, Segment())
    entry = evaluate_case(case, ["cpbd"], tmp_path / "cache")["metrics"]["cpbd"]
    assert entry["per_frame"] == pytest.approx([cpbd.compute(f) for f in dumped], abs=1e-6)
    assert entry["per_frame"] != pytest.approx([cpbd.compute(f.T) for f in dumped], abs=1e-3)  # not the stored one
