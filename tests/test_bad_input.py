"""Bad inputs end in a case error that names the file and the problem, never a crash or a silent 0."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from videos import moving_frames, write_video

from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker


def case(reference: Path, generated: Path) -> Case:
    return Case(Speaker("s", "en", reference), Pipeline("P", "dubbing", "x"), generated, Segment())


def evaluate(tmp_path: Path, generated: Path, reference: Path | None = None) -> dict:
    reference = reference or write_video(tmp_path / "ref.mp4", moving_frames(25, 64, 48), 25)
    return evaluate_case(case(reference, generated), ["psnr", "ssim"], tmp_path / "cache")


def test_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "gen.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    record = evaluate(tmp_path, bad)
    assert record["error"].startswith(f"{bad}: not a readable media file")
    assert record["metrics"] == {}


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert evaluate(tmp_path, empty)["error"] == f"{empty}: file is empty (0 bytes)"
    assert evaluate(tmp_path, tmp_path / "nope.mp4")["error"] == f"{tmp_path / 'nope.mp4'}: file not found"


def test_truncated_video(tmp_path: Path) -> None:
    """The index (moov) is intact at the front, the frames stop half-way."""
    whole = write_video(tmp_path / "whole.mp4", moving_frames(50, 64, 48), 25,
                        container_options={"movflags": "faststart"})
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    record = evaluate(tmp_path, cut)
    assert record["error"].startswith(f"{cut}: truncated: the header declares 50 frames but only ")


def test_moov_less_truncation(tmp_path: Path) -> None:
    """The index is at the end and cut off: the file cannot be opened at all."""
    whole = write_video(tmp_path / "whole.mp4", moving_frames(50, 64, 48), 25)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:-2000])
    assert evaluate(tmp_path, cut)["error"].startswith(f"{cut}: not a readable media file")


def test_zero_frames(tmp_path: Path) -> None:
    path = tmp_path / "zero.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    record = evaluate(tmp_path, path)
    assert record["error"].startswith(f"{path}: not a readable media file (End of file)")


def test_audio_only_file(tmp_path: Path) -> None:
    path = tmp_path / "speech.m4a"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        samples = (np.sin(np.arange(16000) / 5) * 3000).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 16000
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    assert evaluate(tmp_path, path)["error"] == f"{path}: has no video stream (audio only?); a video with a face track is expected"


def test_image_instead_of_video(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "portrait.png"
    Image.fromarray(moving_frames(1, 64, 48)[0]).save(path)
    assert evaluate(tmp_path, path)["error"].startswith(f"{path}: is a still image")


def test_no_overlap_with_segment(tmp_path: Path) -> None:
    reference = write_video(tmp_path / "ref.mp4", moving_frames(25, 64, 48), 25)
    generated = write_video(tmp_path / "gen.mp4", moving_frames(25, 64, 48), 25)
    c = Case(Speaker("s", "en", reference), Pipeline("P", "person-specific", "x"), generated, Segment(5.0), 5.0)
    record = evaluate_case(c, ["psnr"], tmp_path / "cache")
    assert record["error"].startswith(f"{generated}: no frame overlaps the reference's evaluated segment")


def test_odd_sizes_are_compared(tmp_path: Path) -> None:
    reference = write_video(tmp_path / "ref.mkv", moving_frames(10, 65, 47), 25, codec="ffv1")
    generated = write_video(tmp_path / "gen.mkv", moving_frames(10, 65, 47, seed=3), 25, codec="ffv1")
    record = evaluate(tmp_path, generated, reference)
    assert record["error"] is None
    assert record["alignment"]["compared"] == 10
    assert 0 < record["metrics"]["psnr"]["value"] < 40


def test_variable_frame_rate_is_aligned_by_timestamp_and_noted(tmp_path: Path) -> None:
    frames = moving_frames(25, 64, 48)
    reference = write_video(tmp_path / "ref.mkv", frames, 25, codec="ffv1")
    path = tmp_path / "vfr.mkv"
    times = [0, 40, 80, 200, 240, 280, 400, 440, 480, 520]  # ms: gaps where frames were dropped
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        for ms in times:
            frame = av.VideoFrame.from_ndarray(frames[ms // 40], format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    record = evaluate(tmp_path, path, reference)
    assert record["error"] is None
    a = record["alignment"]
    assert a["compared"] == 14 and a["duplicated"] == 4  # frames held over the gaps, up to 520 + 40 ms
    assert any("variable frame rate" in w and str(path) in w for w in a["warnings"])
    per_frame = record["metrics"]["psnr"]["per_frame"]
    assert per_frame[0] == float("inf") and per_frame[3] < 60  # frame 3 shows frame 2 held


@pytest.mark.parametrize("which", ["reference", "generated"])
def test_errors_name_the_right_file(tmp_path: Path, which: str) -> None:
    good = write_video(tmp_path / "good.mp4", moving_frames(5, 32, 32), 25)
    bad = tmp_path / f"{which}.mp4"
    bad.write_text("junk")
    record = evaluate(tmp_path, good if which == "reference" else bad, bad if which == "reference" else good)
    assert record["error"].startswith(f"{bad}: not a readable media file")
