"""Frame pairing at near-ties matches FFmpeg's framesync exactly: timestamps compared in the streams'
common time base (microseconds when none is finer than 1/500000), checked against ``ffmpeg -lavfi psnr``."""

import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
from talkbench_plugin.media.align import sync_time_base

N = 120
REF_FPS = Fraction(2213, 100)  # a 22.13 fps reference with millisecond timestamps (as Matroska stores them)
GEN_FPS = Fraction(22131, 1000)  # a 22.131 fps constant-rate output


def flat(i: int) -> np.ndarray:
    return np.full((32, 32, 3), 37 * i % 256, np.uint8)  # frame i is told apart by its brightness


def write(path: Path, codec: str, times: list[Fraction], base: Fraction, options: dict | None = None) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=round(1 / (times[1] - times[0])))
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv444p" if codec == "libx264" else "yuv420p"
        stream.time_base = stream.codec_context.time_base = base
        stream.options = options or {}
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(flat(i), format="rgb24")
            frame.pts, frame.time_base = round(t / base), base
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def ffmpeg_psnr(ref: Path, gen: Path, tmp_path: Path) -> list[float]:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", str(ref), "-i", str(gen), "-lavfi",
                    "[0:v][1:v]psnr=stats_file=psnr.log", "-f", "null", "-"], cwd=tmp_path, check=True)
    values = re.findall(r"psnr_avg:(\S+)", (tmp_path / "psnr.log").read_text())
    return [float(v) for v in values[:N]]  # after the reference ends framesync adds an event per leftover frame


def test_sync_time_base_is_framesyncs() -> None:
    assert sync_time_base(Fraction(1, 25), Fraction(1, 1000)) == Fraction(1, 1000)
    assert sync_time_base(Fraction(1, 90000), Fraction(1, 1000)) == Fraction(1, 90000)
    assert sync_time_base(Fraction(1, 22131), Fraction(1, 1000)) == Fraction(1, 1_000_000)  # lcm >= 500000
    assert sync_time_base(Fraction(1001, 30000), Fraction(1, 60000)) == Fraction(1, 60000)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary")
@pytest.mark.parametrize(("container", "codec", "base", "options"), [
    ("mp4", "libx264", Fraction(1, 22131), {"qp": "0", "bframes": "0"}),  # compared at 1 µs: near-ties differ
    ("mkv", "ffv1", Fraction(1, 1000), None),  # both in ms: equal once rounded, so shown at once
])
def test_pairs_as_ffmpeg_psnr_does(tmp_path: Path, container: str, codec: str, base: Fraction,
                                   options: dict | None) -> None:
    ref_times = [Fraction(round(i * 1000 / REF_FPS), 1000) for i in range(N)]
    gen_times = [i / GEN_FPS for i in range(N)]
    ref = write(tmp_path / "ref.mkv", "ffv1", ref_times, Fraction(1, 1000))
    gen = write(tmp_path / f"gen.{container}", codec, gen_times, base, options)
    case = Case(Speaker("s", "en", ref), Pipeline("P", "dubbing", "x"), gen, Segment())
    record = evaluate_case(case, ["psnr"], tmp_path / "cache")
    assert record["error"] is None
    ours = record["metrics"]["psnr"]["per_frame"]
    theirs = ffmpeg_psnr(ref, gen, tmp_path)
    assert len(ours) == len(theirs) == N
    assert [round(v, 2) for v in ours] == theirs
    # the inputs hold near-ties: output frames 1 to 100 µs after a reference frame
    ties = [i for i in range(N) if 0 < round(float(gen_times[i] - ref_times[i]) * 1e6) <= 100]
    assert len(ties) >= 5
    shown_at_once = [ours[i] == float("inf") for i in ties]
    if container == "mp4":  # later by even a microsecond: the previous frame is still shown
        assert record["alignment"]["time_base"] == "1/1000000" and not any(shown_at_once)
    else:  # rounded to ms the generated frame is at the reference's instant
        assert record["alignment"]["time_base"] == "1/1000" and all(shown_at_once)
