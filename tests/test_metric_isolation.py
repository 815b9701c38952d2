"""One metric's failure is that metric's error: the case's other metrics keep their numbers (issue 16.9), and a
NaN is never a value (16.3); a weights file that is not plain tensors is refused naming the file (16.12)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from videos import moving_frames, write_video

from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.manifest import Case, Pipeline, Segment, Speaker
from talkbench_plugin.metrics.iqa import IqaOptions

VGG = Path("pyiqa") / "torch" / "checkpoints" / "vgg16-397923af.pth"  # torchvision's name, for pyiqa's lpips-vgg


class Payload:
    def __reduce__(self):  # what a malicious checkpoint holds: code run on unpickling
        return (print, ("code ran",))


def evaluate(tmp_path: Path, weights: Path, metrics: list[str]) -> dict:
    ref = write_video(tmp_path / "ref.mp4", moving_frames(6, 64, 48, seed=1), 25)
    gen = write_video(tmp_path / "gen.mp4", moving_frames(6, 64, 48, seed=2), 25, options={"crf": "20"})
    case = Case(Speaker("s", "en", ref), Pipeline("P", "dubbing", "x"), gen, Segment())
    return evaluate_case(case, metrics, tmp_path / "cache", options={"pyiqa": IqaOptions(weights=str(weights))})


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("content", [b"not a checkpoint at all", pickle.dumps(Payload())], ids=["broken", "pickle"])
def test_a_bad_pyiqa_weights_file_leaves_psnr_and_ssim(tmp_path: Path, content: bytes, capsys) -> None:
    weights = tmp_path / "weights"
    (weights / VGG).parent.mkdir(parents=True)
    (weights / VGG).write_bytes(content)
    record = evaluate(tmp_path, weights, ["psnr", "lpips-vgg", "ssim"])
    assert record["error"] is None
    assert list(record["metrics"]) == ["psnr", "lpips-vgg", "ssim"]
    assert record["metrics"]["psnr"]["value"] > 10 and 0 < record["metrics"]["ssim"]["value"] < 1
    error = record["metrics"]["lpips-vgg"]["error"]
    assert record["metrics"]["lpips-vgg"]["value"] is None
    assert f"{weights / VGG} refused: not a plain weights file" in error and "\n" not in error
    assert "code ran" not in capsys.readouterr().out


@pytest.mark.parametrize("size", [4, 2, 1])
@pytest.mark.parametrize("convention", ["ffmpeg", "skimage"])
def test_tiny_frames_make_ssim_an_error_never_nan_or_zero(tmp_path: Path, size: int, convention: str) -> None:
    """Two identical 4x4/2x2/1x1 videos: FFmpeg's ssim gives NaN (4x4) or 0 (1x1), skimage raises ValueError."""
    video = write_video(tmp_path / "tiny.mkv", moving_frames(3, size, size), 25, codec="ffv1", pix_fmt="yuv444p")
    case = Case(Speaker("s", "en", video), Pipeline("P", "dubbing", "x"), video, Segment())
    record = evaluate_case(case, ["psnr", "ssim"], tmp_path / "cache", convention=convention)
    assert record["error"] is None
    assert record["metrics"]["psnr"]["value"] == float("inf")  # identical: what ffmpeg's psnr says too
    assert record["metrics"]["ssim"]["value"] is None
    assert record["metrics"]["ssim"]["error"].startswith(f"SSIM {'(skimage) ' * (convention == 'skimage')}"
                                                         f"cannot be computed on {size}x{size}")


def test_the_command_goes_on_past_tiny_frames_with_skimage(tmp_path: Path, capsys) -> None:
    """A 4x4 case no longer aborts ``talkbench evaluate --convention skimage``: the other case is scored."""
    from talkbench_plugin.cli import main

    data = tmp_path / "data"
    data.mkdir()
    write_video(data / "tiny.mkv", moving_frames(3, 4, 4), 25, codec="ffv1", pix_fmt="yuv444p")
    write_video(data / "big.mp4", moving_frames(3, 32, 24), 25)
    (data / "talkbench.toml").write_text('[speakers.tiny]\nlanguage = "en"\nreference = "tiny.mkv"\n'
                                         '[speakers.big]\nlanguage = "en"\nreference = "big.mp4"\n')
    code = main(["--cache", str(tmp_path / "cache"), "evaluate", "--data", str(data), "--calibrations", "reference",
                 "--metrics", "psnr,ssim", "--convention", "skimage"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "error: tiny-reference: ssim: SSIM (skimage) cannot be computed on 4x4 frames" in err
    assert "Traceback" not in err
    assert any(line.startswith("big ") and "inf" in line and "1.0000" in line for line in out.splitlines())
