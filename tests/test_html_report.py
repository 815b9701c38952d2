"""report.html: self-contained, the two tables, per-frame plots, and thumbnails at the right worst frames."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from videos import moving_frames, write_video

from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.html_report import frame_times, render
from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
from talkbench_plugin.media.still import frame_at, rgb
from talkbench_plugin.reports import write_reports

ROOT = Path(__file__).resolve().parents[1]
WORST = 30  # the reference frame (25 fps, t = 1.2 s) whose generated counterpart is noise


def luma(image: np.ndarray) -> np.ndarray:
    return image.astype(float) @ [0.299, 0.587, 0.114]


@pytest.fixture(scope="module")
def case_record(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Reference 2 s at 25 fps; generated at 30 fps showing reference time 0.4 s onwards, noise at 1.2 s."""
    root = tmp_path_factory.mktemp("html")
    frames = moving_frames(50, 64, 48, seed=3)
    write_video(root / "ref.mp4", frames, 25)
    brighter = np.clip(frames.astype(np.int16) + 3, 0, 255).astype(np.uint8)  # every frame differs a little
    gen = [brighter[int((0.4 + k / 30) * 25 + 1e-6)] for k in range(48)]  # 1.6 s at 30 fps
    gen[24] = np.random.default_rng(0).integers(0, 256, frames[0].shape, dtype=np.uint8)  # shown at 1.2 s only
    write_video(root / "gen.mp4", np.stack(gen), 30)
    case = Case(Speaker("s", "en", root / "ref.mp4"), Pipeline("P", "dubbing", "x"), root / "gen.mp4",
                Segment(0.2), offset=0.4)
    record = evaluate_case(case, ["psnr", "ssim"], root / "cache")
    assert record["error"] is None, record["error"]
    return record | {"frames": frames}


def test_worst_frame_time_and_decoded_frames(case_record: dict) -> None:
    series = case_record["metrics"]["psnr"]["per_frame"]
    worst = int(np.argmin(series))
    t_ref, t_gen = frame_times(case_record, worst, 25.0)
    assert t_ref == pytest.approx(WORST / 25) and t_gen == pytest.approx(WORST / 25 - 0.4)
    frames = [luma(f) for f in case_record["frames"]]
    ref = luma(rgb(frame_at(case_record["inputs"]["reference"]["path"], t_ref)))
    errors = [np.abs(ref - frames[i]).mean() for i in (WORST - 1, WORST, WORST + 1)]
    assert int(np.argmin(errors)) == 1 and errors[1] < 3  # the right reference frame (lossless but yuv420p)
    gen = luma(rgb(frame_at(case_record["inputs"]["generated"]["path"], t_gen)))
    assert np.abs(gen - ref).mean() > 30  # the noise frame
    shown = luma(rgb(frame_at(case_record["inputs"]["generated"]["path"], t_gen + 0.07)))
    errors = [np.abs(shown - frames[i]).mean() for i in (WORST, WORST + 1, WORST + 2)]
    assert int(np.argmin(errors)) == 1 and errors[1] < 5  # the frame shown at 0.87 s (from 0.867 s)


def test_page_is_self_contained_with_plots_and_thumbnails(case_record: dict) -> None:
    record = {k: v for k, v in case_record.items() if k != "frames"}
    page = render([record], {"dataset": "tiny", "convention": "ffmpeg", "gate": {"verdict": "passed"}})
    assert "<h2>Per video</h2>" in page and "<h2>Per language (mean over speakers)</h2>" in page
    assert '<span class="gate passed">gate passed</span>' in page
    assert page.count("<svg") == 2 and "PSNR per frame (dB)" in page and "SSIM per frame" in page
    assert page.count('src="data:image/png;base64,') == 6  # 2 worst frames x reference | generated | difference
    assert f"frame {WORST - 10} at {WORST / 25:.2f} s: PSNR" in page  # first compared frame is at 0.4 s
    without_svg_namespace = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(r"src=\"(?!data:)|href=\"(?!#)|url\(|https?://|<script|<link", without_svg_namespace)


def test_sync_details_identical_frames_and_missing_videos() -> None:
    record = {"case": "s-P", "speaker": "s", "pipeline": "P", "language": "en", "mode": "dubbing", "error": None,
              "offset": 0.0, "segment": {"start": 0.0, "end": None},
              "inputs": {"reference": {"path": "/nowhere/ref.mp4", "fps": 25.0},
                         "generated": {"path": "/nowhere/gen.mp4"}},
              "alignment": {"compared": 3}, "timings": {"total": 1.0}, "throughput": {"rtf": 0.1},
              "metrics": {
                  "psnr": {"value": 30.0, "unit": "dB", "per_frame": [31.0, 29.0, float("inf")], "details": {}},
                  "lse_c": {"value": 6.0, "unit": "", "per_frame": [], "details": {
                      "frame_confidence": [5.0, 6.0, 7.5, 6.5], "offsets": [2, 1, 0, -1, -2],
                      "distances": [9.0, 8.5, 6.0, 8.8, 9.1]}},
                  "ssim": {"value": None, "error": "no face found"}}}
    page = render([record], {"dataset": "tiny"})
    assert "1 identical frame (inf) not drawn" in page
    assert "lse_c: frame confidence" in page and "lse_c: mean distance by AV offset (min at 0)" in page
    assert "ssim: no face found" in page
    assert "Thumbnails unavailable: /nowhere/ref.mp4: file not found" in page
    identical = {**record, "metrics": {"psnr": {"value": float("inf"), "unit": "dB", "per_frame": [float("inf")] * 3}}}
    page = render([identical], {"dataset": "tiny"})
    assert "all 3 frames identical to the reference (inf)" in page and "every frame is identical" in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)")
def test_renders_in_headless_chromium(case_record: dict, tmp_path: Path) -> None:
    record = {k: v for k, v in case_record.items() if k != "frames"}
    write_reports(tmp_path, [record], {"dataset": "tiny"})
    shot = tmp_path / "shot.png"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshot_report.py"), str(tmp_path / "report.html"),
                    str(shot)], check=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
