"""talkbench init DIR (a manifest from references/ and outputs/<pipeline>/) and evaluate --reference/--generated."""

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from videos import moving_frames, write_video

from talkbench_plugin.cli import main


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "study"
    for sub in ("references", "outputs/MyModel", "outputs/Other"):
        (root / sub).mkdir(parents=True)
    for i, speaker in enumerate(("alice", "bob")):
        write_video(root / "references" / f"{speaker}.mp4", moving_frames(8, 32, 32, seed=i), 25)
        write_video(root / "outputs" / "MyModel" / f"{speaker}.mp4", moving_frames(8, 32, 32, seed=i + 5), 25)
    write_video(root / "outputs" / "Other" / "bob_Other.mp4", moving_frames(8, 32, 32, seed=9), 25)
    write_video(root / "outputs" / "Other" / "carol.mp4", moving_frames(8, 32, 32, seed=9), 25)
    return root


def test_init_writes_a_manifest_that_loads(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(folder), "--language", "en"]) == 0
    captured = capsys.readouterr()
    manifest = tomllib.loads((folder / "talkbench.toml").read_text())
    assert manifest["speakers"]["alice"] == {"language": "en", "reference": "references/alice.mp4"}
    assert manifest["pipelines"]["MyModel"]["outputs"] == "outputs/MyModel/{speaker}.mp4"
    assert "speakers" not in manifest["pipelines"]["MyModel"]
    assert manifest["pipelines"]["Other"]["outputs"] == "outputs/Other/{speaker}_{pipeline}.mp4"
    assert manifest["pipelines"]["Other"]["speakers"] == ["bob"]
    assert "3 case(s)" in captured.out
    assert "not used:" in captured.err and "carol.mp4" in captured.err
    # the written manifest is what `talkbench cases --data DIR` reads
    assert main(["cases", "--data", str(folder), "--calibrations", "none"]) == 0
    assert capsys.readouterr().out.count("\n") == 3
    assert main(["init", str(folder), "--language", "en"]) == 2
    assert "exists; edit it, or pass --force" in capsys.readouterr().err


def test_init_asks_the_language_per_speaker_on_a_terminal(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["en", "zh"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    assert main(["init", str(folder)]) == 0
    speakers = tomllib.loads((folder / "talkbench.toml").read_text())["speakers"]
    assert (speakers["alice"]["language"], speakers["bob"]["language"]) == ("en", "zh")


def test_init_without_a_language_off_a_terminal_says_what_to_pass(folder: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["init", str(folder)]) == 2
    assert "--language: give the speakers' language" in capsys.readouterr().err
    assert main(["init", str(folder / "nothing")]) == 2
    assert "no references/ folder" in capsys.readouterr().err


def test_evaluate_scores_one_pair_without_a_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames = moving_frames(10, 32, 32)
    ref = write_video(tmp_path / "ref.mp4", frames, 25, audio=np.zeros(6400) + 0.1)
    gen = write_video(tmp_path / "gen.mp4", frames, 25)
    noisy = write_video(tmp_path / "noisy.mp4", moving_frames(10, 32, 32, seed=3), 25)
    base = ["--cache", str(tmp_path / "cache"), "evaluate", "--reference", str(ref), "--metrics", "psnr,ssim"]
    assert main([*base, "--generated", str(gen), "--report", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert "ref-generated" not in out and "ref " in out  # speaker from the reference's name, no calibrations
    [record] = json.loads((tmp_path / "rep" / "results.json").read_text())["results"]
    assert record["case"] == "ref-generated" and record["alignment"]["compared"] == 10
    assert record["metrics"]["ssim"]["value"] == pytest.approx(1.0)
    assert main([*base, "--generated", str(noisy), "--report", str(tmp_path / "rep2")]) == 0
    [record] = json.loads((tmp_path / "rep2" / "results.json").read_text())["results"]
    assert record["metrics"]["psnr"]["value"] < 30
    assert main([*base, "--generated", str(tmp_path / "missing.mp4")]) == 2
    assert f"--generated {tmp_path / 'missing.mp4'}: file not found" in capsys.readouterr().err
    assert main(base) == 2
    assert "--reference and --generated go together" in capsys.readouterr().err
