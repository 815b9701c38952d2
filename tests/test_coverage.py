"""A generated video far shorter than the reference fails its case below the pipeline's min_coverage, and the
short-coverage note reaches the terminal (issue 16.4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from videos import moving_frames, write_video

from talkbench_plugin.cli import main
from talkbench_plugin.engine import evaluate_case
from talkbench_plugin.errors import ManifestError
from talkbench_plugin.manifest import (
    MIN_COVERAGE,
    Case,
    Pipeline,
    Segment,
    Speaker,
    load_manifest,
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("coverage")
    frames = moving_frames(25, 32, 24)
    write_video(root / "ref.mp4", frames, 25)
    write_video(root / "one.mp4", frames[:2], 25)  # 2 of 25 frames (x264 wants more than one)
    write_video(root / "most.mp4", frames[:20], 25)  # 20 of 25: passes, with the note
    return root


def evaluate(clips: Path, gen: str, min_coverage: float = MIN_COVERAGE) -> dict:
    case = Case(Speaker("s", "en", clips / "ref.mp4"), Pipeline("P", "dubbing", "x", min_coverage=min_coverage),
                clips / gen, Segment())
    return evaluate_case(case, ["psnr"], clips / "cache")


def test_a_short_output_fails_its_case(clips: Path) -> None:
    record = evaluate(clips, "one.mp4")
    assert record["error"] == (f"{clips / 'one.mp4'}: covers only 2 of 25 reference frames of the evaluated segment "
                               "(8%), below the pipeline's minimum of 50%; regenerate it for the whole segment, or "
                               "set pipelines.P.min_coverage in the manifest")


def test_min_coverage_is_per_pipeline(clips: Path) -> None:
    assert evaluate(clips, "one.mp4", min_coverage=0.0)["metrics"]["psnr"]["value"] > 30
    assert "below the pipeline's minimum of 90%" in evaluate(clips, "most.mp4", min_coverage=0.9)["error"]


def test_manifest_key(tmp_path: Path) -> None:
    (tmp_path / "r.mp4").write_bytes(b"x")
    text = '[speakers.a]\nlanguage = "en"\nreference = "r.mp4"\n[pipelines.P]\nmode = "dubbing"\noutputs = "o.mp4"\n'
    (tmp_path / "m.toml").write_text(text + "min_coverage = 0.25\n")
    assert load_manifest(tmp_path / "m.toml").pipelines["P"].min_coverage == 0.25
    (tmp_path / "m.toml").write_text(text + "min_coverage = 2\n")
    with pytest.raises(ManifestError, match=r"pipelines\.P\.min_coverage: must be a fraction from 0 to 1"):
        load_manifest(tmp_path / "m.toml")


def test_the_note_is_printed_by_the_command(clips: Path, tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("ref.mp4", "most.mp4"):
        (data / name).write_bytes((clips / name).read_bytes())
    (data / "talkbench.toml").write_text('[speakers.a]\nlanguage = "en"\nreference = "ref.mp4"\n'
                                         '[pipelines.P]\nmode = "dubbing"\noutputs = "most.mp4"\n')
    assert main(["--cache", str(tmp_path / "cache"), "evaluate", "--data", str(data), "--calibrations", "none",
                 "--metrics", "psnr"]) == 0
    assert "warning: a-P: the generated video covers only 20 of 25 reference frames" in capsys.readouterr().err
