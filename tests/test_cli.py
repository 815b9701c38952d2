"""The talkbench command: cases, evaluate (the engine without pytest), weights, errors."""

import json
from pathlib import Path

import numpy as np
import pytest
from videos import moving_frames, write_video

from talkbench_plugin.cli import main


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "ref").mkdir()
    (tmp_path / "out").mkdir()
    write_video(tmp_path / "ref" / "a.mp4", moving_frames(12, 32, 32), 25, audio=np.zeros(8000) + 0.1)
    write_video(tmp_path / "out" / "a.mp4", moving_frames(12, 32, 32, seed=4), 25)
    (tmp_path / "m.toml").write_text(
        '[speakers.a]\nlanguage = "en"\nreference = "ref/a.mp4"\n'
        '[speakers.b]\nlanguage = "zh"\nreference = "ref/a.mp4"\n'
        '[pipelines.P]\nmode = "dubbing"\noutputs = "out/{speaker}.mp4"\n'
    )
    return tmp_path


def test_cases_lists_missing_outputs(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--cache", str(data / "cache"), "cases", "--data", str(data), "--manifest", str(data / "m.toml")]) == 0
    out = capsys.readouterr().out
    assert f"a-P\tdubbing\t{data.resolve() / 'out' / 'a.mp4'}\n" in out
    assert f"b-P\tdubbing\t{data.resolve() / 'out' / 'b.mp4'}  [missing]" in out
    assert "a-static\tcalibration\t(derived from the reference)" in out


def test_evaluate_prints_tables_and_writes_reports(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--cache", str(data / "cache"), "evaluate", "--data", str(data), "--manifest",
                 str(data / "m.toml"), "--report", str(data / "rep"), "--metrics", "psnr,ssim"])  # 32x32: no CPBD
    captured = capsys.readouterr()
    assert code == 0
    assert "Per video" in captured.out and "Per language" in captured.out
    assert "skip b-P: no output at" in captured.err
    assert (data / "rep" / "results.json").is_file()


def test_calibrations_can_be_chosen(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--cache", str(data / "cache"), "cases", "--data", str(data), "--manifest", str(data / "m.toml")]
    assert main([*args, "--calibrations", "none"]) == 0
    assert capsys.readouterr().out.count("\tcalibration\t") == 0
    assert main([*args, "--calibrations", "static"]) == 0
    assert capsys.readouterr().out.count("\tcalibration\t") == 2
    assert main([*args, "--calibrations", "wobbly"]) == 2
    assert "unknown calibration pipeline 'wobbly'" in capsys.readouterr().err


def test_errors_are_one_line(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cases", "--data", str(data), "--manifest", str(data / "nope.toml")]) == 2
    assert capsys.readouterr().err == f"talkbench: {data / 'nope.toml'}: manifest not found\n"


def test_weights_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "--dir", str(tmp_path), "path", "syncnet"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "syncnet_v2.model")


def test_cache_info_and_clear_keep_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    for rel, size in (("demo/v1/a.mp4", 2048), ("calibration/v1/x/static.mp4", 1024), ("weights/s.model", 10)):
        (cache / rel).parent.mkdir(parents=True, exist_ok=True)
        (cache / rel).write_bytes(b"x" * size)
    assert main(["--cache", str(cache), "cache", "info"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "calibration" in out and "weights" in out
    assert main(["--cache", str(cache), "cache", "clear"]) == 0
    assert capsys.readouterr().out.strip() == f"removed from {cache}: calibration, demo"
    assert sorted(p.name for p in cache.iterdir()) == ["weights"]
    assert main(["--cache", str(cache), "cache", "clear", "--all"]) == 0
    assert list(cache.iterdir()) == []


def test_evaluate_takes_the_sync_options(tmp_path: Path, sync_weights: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``talkbench evaluate`` scores lip sync with the weights folder and settings given, as pytest would."""
    (tmp_path / "ref").mkdir()
    audio = np.sin(np.arange(40 * 640) / 3) * 0.3
    write_video(tmp_path / "ref" / "a.mp4", moving_frames(40, 64, 64), 25, audio=audio)
    (tmp_path / "m.toml").write_text('[speakers.a]\nlanguage = "en"\nreference = "ref/a.mp4"\n')
    args = ["--cache", str(tmp_path / "cache"), "evaluate", "--data", str(tmp_path), "--manifest",
            str(tmp_path / "m.toml"), "--calibrations", "reference", "--metrics", "psnr,lse_c,lse_d,av_offset",
            "--weights", str(sync_weights), "--sync-detector", "none", "--sync-combine", "mean"]
    assert main([*args, "--report", str(tmp_path / "rep")]) == 0
    record = json.loads((tmp_path / "rep" / "results.json").read_text())["results"][0]
    assert record["metrics"]["lse_d"]["value"] > 0 and len(record["metrics"]["lse_c"]["per_frame"]) == 40 - 5
    assert record["metrics"]["lse_c"]["protocol"]["settings"] == {"audio": "own", "detector": "none",
                                                                "detect_every": 1, "combine": "mean"}
    assert "LSE_C" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:  # refused when the options are parsed
        main([*args, "--sync-detect-every", "0"])
    assert exit_.value.code == 2
    assert "argument --sync-detect-every: '0': expected a whole number >= 1" in capsys.readouterr().err
