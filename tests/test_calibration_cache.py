"""A calibration video in the cache is reused only when it is the file talkbench wrote (its content hash is
recorded beside it): a truncated or foreign file there is rebuilt (issue 16.12)."""

from __future__ import annotations

from pathlib import Path

import pytest
from videos import moving_frames, write_video

from talkbench_plugin.datasets import materialize
from talkbench_plugin.manifest import CALIBRATION, Case, Pipeline, Segment, Speaker


@pytest.mark.parametrize("damage", ["truncated", "foreign"])
def test_a_damaged_cache_entry_is_rebuilt(tmp_path: Path, damage: str) -> None:
    reference = write_video(tmp_path / "ref.mp4", moving_frames(10, 32, 24), 25)
    case = Case(Speaker("s", "en", reference), Pipeline("static", CALIBRATION), None, Segment())
    built, _ = materialize(case, tmp_path / "cache")
    original = built.generated.read_bytes()
    if damage == "truncated":
        built.generated.write_bytes(original[: len(original) // 2])
    else:  # a valid video that is not this reference's calibration
        built.generated.write_bytes(write_video(tmp_path / "other.mp4", moving_frames(10, 32, 24, seed=9), 25)
                                    .read_bytes())
    again, _ = materialize(case, tmp_path / "cache")
    assert again.generated == built.generated
    assert again.generated.read_bytes() == original


def test_an_entry_without_its_recorded_hash_is_rebuilt(tmp_path: Path) -> None:
    """E.g. one left by an older talkbench or by a run killed between the two writes."""
    reference = write_video(tmp_path / "ref.mp4", moving_frames(10, 32, 24), 25)
    case = Case(Speaker("s", "en", reference), Pipeline("static", CALIBRATION), None, Segment())
    built, _ = materialize(case, tmp_path / "cache")
    original = built.generated.read_bytes()
    built.generated.with_name("static.mp4.sha256").unlink()
    built.generated.write_bytes(b"junk")
    again, _ = materialize(case, tmp_path / "cache")
    assert again.generated.read_bytes() == original
