"""Bounds lookup (most specific first) and their verdicts."""

import math
from pathlib import Path

import pytest

from talkbench_plugin.errors import ManifestError
from talkbench_plugin.thresholds import Thresholds

TEXT = """
["*"]
ssim = { min = 0.5, max = 1.0 }
[W2L]
psnr = { min = 28.0 }
[W2L.speakers.obama1]
psnr = { min = 30.5 }
[reference]
psnr = { min = inf }
"""


@pytest.fixture
def thresholds(tmp_path: Path) -> Thresholds:
    path = tmp_path / "t.toml"
    path.write_text(TEXT)
    return Thresholds.load(path)


def test_most_specific_bound_wins(thresholds: Thresholds) -> None:
    assert thresholds.bound("W2L", "obama1", "psnr").min == 30.5
    assert thresholds.bound("W2L", "may", "psnr").min == 28.0
    assert thresholds.bound("SadTalker", "may", "ssim").max == 1.0
    assert thresholds.bound("SadTalker", "may", "psnr") is None
    assert "W2L.speakers.obama1.psnr" in thresholds.bound("W2L", "obama1", "psnr").where


def test_violations(thresholds: Thresholds) -> None:
    bound = thresholds.bound("W2L", "obama1", "psnr")
    assert bound.violation(31.0) is None
    assert "below the minimum 30.5" in bound.violation(30.0)
    assert "NaN" in bound.violation(math.nan)
    assert "above the maximum 1" in thresholds.bound("x", "y", "ssim").violation(1.5)
    assert thresholds.bound("reference", "a", "psnr").violation(math.inf) is None
    assert thresholds.bound("reference", "a", "psnr").violation(99.0) is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [("[W2L]\npsnr = 3\n", "W2L.psnr: must be a table with min and/or max"),
     ("[W2L]\npsnr = { low = 3 }\n", "W2L.psnr: must be a table"),
     ("[W2L]\npsnr = { min = 'x' }\n", "W2L.psnr.min: must be a number"),
     ("[W2L.speakers.a]\npsnr = { min = true }\n", "W2L.speakers.a.psnr.min: must be a number"),
     ("[W2L\n", "not valid TOML")],
)
def test_bad_files_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(ManifestError, match="t.toml") as info:
        Thresholds.load(path)
    assert message in str(info.value)


def test_no_file_means_no_bounds(tmp_path: Path) -> None:
    assert Thresholds.load(None).bound("a", "b", "psnr") is None
    with pytest.raises(ManifestError, match="thresholds file not found"):
        Thresholds.load(tmp_path / "missing.toml")


def test_shipped_threshold_files_load() -> None:
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "thresholds"
    for path in folder.glob("*.toml"):
        bound = Thresholds.load(path).bound("reference", "any", "psnr")
        assert bound is not None and bound.min == math.inf, path
