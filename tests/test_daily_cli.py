"""The talkbench command's small ones (issue 13): --version, evaluate's default metrics, weights names,
a data folder without talkbench.toml, and shards balanced by expected cost."""

from pathlib import Path

import numpy as np
import pytest
from videos import moving_frames, write_video

from talkbench_plugin import __version__
from talkbench_plugin.cli import main
from talkbench_plugin.datasets import load_dataset
from talkbench_plugin.sharding import expected_frames, shard_cases


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("daily-cli")
    (root / "ref").mkdir()
    (root / "out").mkdir()
    for speaker, frames in (("a", 60), ("b", 10), ("c", 10), ("d", 10)):
        write_video(root / "ref" / f"{speaker}.mp4", moving_frames(frames, 64, 64), 25, audio=np.zeros(8000) + 0.1)
    write_video(root / "out" / "a.mp4", moving_frames(60, 64, 64, seed=4), 25)
    speakers = "".join(f'[speakers.{s}]\nlanguage = "en"\nreference = "ref/{s}.mp4"\n' for s in "abcd")
    (root / "mine.toml").write_text(f'{speakers}[pipelines.P]\nmode = "dubbing"\noutputs = "out/{{speaker}}.mp4"\n')
    return root


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"talkbench {__version__}\n"


def test_weights_fetch_help_lists_the_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["weights", "fetch", "--help"])
    from talkbench_plugin.weights import REGISTRY

    out = " ".join(capsys.readouterr().out.split())
    assert f"weights to fetch: {', '.join(sorted(REGISTRY))} (default: all)" in out and "syncnet" in out


def test_data_without_talkbench_toml_says_so(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--cache", str(data / "cache"), "cases", "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"talkbench: {data}: no talkbench.toml in this folder (it has mine.toml): save the dataset's "
                          f"manifest as {data / 'talkbench.toml'}, or name it with --talkbench-manifest FILE")
    assert "obama1" not in err and err.count("\n") == 1


def test_evaluate_defaults_to_pytests_metrics_and_skips_those_without_weights(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from talkbench_plugin.metrics import DEFAULT
    from talkbench_plugin.run_options import DEFAULT_METRICS

    assert DEFAULT_METRICS == ",".join(DEFAULT) and {"fid", "lse_c"} <= set(DEFAULT)
    code = main(["--cache", str(data / "cache"), "evaluate", "--data", str(data), "--manifest", str(data / "mine.toml"),
                 "--calibrations", "none", "--weights", str(tmp_path / "none"), "--report", str(tmp_path / "rep")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (f"fid, lse_c, lse_d, av_offset skipped: no inception / syncnet / s3fd weights in {tmp_path / 'none'}; "
            "run `talkbench weights fetch inception syncnet s3fd`") in captured.err
    header = next(line for line in captured.out.splitlines() if line.startswith("speaker"))
    assert "PSNR" in header and "SSIM" in header and "LSE_C" not in header


def test_shards_balance_expected_frames(data: Path) -> None:
    dataset = load_dataset(data, str(data / "mine.toml"), data / "cache", data, calibrations=[])
    cases = dataset.cases()
    assert [round(expected_frames(c)) for c in cases] == [60, 10, 10, 10]
    shards = [shard_cases(cases, i, 2, metrics=2) for i in (1, 2)]
    assert [[c.id for c in s] for s in shards] == [["a-P"], ["b-P", "c-P", "d-P"]]  # round-robin: 70 vs 20 frames
    thirds = [shard_cases(cases, i, 3, metrics=2) for i in (1, 2, 3)]
    assert sorted(c.id for s in thirds for c in s) == sorted(c.id for c in cases)
