"""Timestamp alignment of generated frames onto the reference timeline."""

from pathlib import Path

import numpy as np
import pytest
from videos import moving_frames, write_video

from talkbench_plugin.manifest import Segment
from talkbench_plugin.media.align import Alignment, aligned_batches
from talkbench_plugin.media.video import iter_frames, probe
from talkbench_plugin.metrics.base import frame_planes


def numbered(n: int, size: int = 64) -> np.ndarray:
    """Frames whose brightness encodes their index (survives lossless coding exactly)."""
    return np.stack([np.full((size, size, 3), 8 * i % 256, np.uint8) for i in range(n)])


def index_of(frame) -> int:
    return int(round(float(frame_planes(frame)[0].mean())))


def align(ref: Path, gen: Path, **kw):
    ri, gi = probe(ref), probe(gen)
    alignment = Alignment()
    pairs = [p for batch in aligned_batches(iter_frames(ref, ri), iter_frames(gen, gi), ri, gi, alignment, batch_size=7, **kw)
             for p in zip(batch.times, batch.ref, batch.gen)]
    return pairs, alignment


def test_same_rate_pairs_frame_by_frame(tmp_path: Path) -> None:
    ref = write_video(tmp_path / "ref.mp4", numbered(20), 25)
    pairs, a = align(ref, ref)
    assert a.compared == 20 and a.duplicated == a.dropped == a.unmatched == 0
    assert [index_of(r) for _, r, _ in pairs] == [index_of(g) for _, _, g in pairs]
    assert pairs[3][0] == pytest.approx(3 / 25)


def test_lower_generated_rate_duplicates(tmp_path: Path) -> None:
    """30 fps reference, 25 fps generated: each reference instant gets the generated frame shown then."""
    ref = write_video(tmp_path / "ref.mp4", numbered(30, 32), 30)
    gen = write_video(tmp_path / "gen.mp4", numbered(25), 25)
    pairs, a = align(ref, gen)
    assert a.compared == 30 and a.duplicated == 5 and a.dropped == 0
    for t, _, g in pairs:
        # the luma of a flat frame is (Y from RGB) - compare with the same conversion of the expected frame
        expected = int(np.floor(t * 25 + 1e-6))
        assert abs(index_of(g) - _luma(8 * expected)) <= 1
    assert a.resized and a.size == (32, 32)
    assert any("frame rates differ" in w for w in a.warnings)


def test_higher_generated_rate_drops(tmp_path: Path) -> None:
    ref = write_video(tmp_path / "ref.mp4", numbered(25), 25)
    gen = write_video(tmp_path / "gen.mp4", numbered(30), 30)
    _, a = align(ref, gen)
    assert a.compared == 25 and a.duplicated == 0 and a.dropped == 5


def test_short_generated_video_leaves_reference_unmatched(tmp_path: Path) -> None:
    ref = write_video(tmp_path / "ref.mp4", numbered(25), 25)
    gen = write_video(tmp_path / "gen.mp4", numbered(10), 25)
    _, a = align(ref, gen)
    assert a.compared == 10 and a.unmatched == 15
    assert any("covers only 10 of 25" in w for w in a.warnings)


def test_segment_and_offset(tmp_path: Path) -> None:
    """A person-specific output starting at reference time 0.4 s, evaluated on [0.4, 0.8)."""
    ref = write_video(tmp_path / "ref.mp4", numbered(25), 25)
    gen = write_video(tmp_path / "gen.mp4", numbered(25)[10:], 25)
    pairs, a = align(ref, gen, segment=Segment(0.4, 0.8), offset=0.4)
    assert a.compared == 10 and a.unmatched == 0
    assert [index_of(r) for _, r, _ in pairs] == [index_of(g) for _, _, g in pairs]
    assert pairs[0][0] == pytest.approx(0.4)


def test_resize_uses_reference_size_and_format(tmp_path: Path) -> None:
    ref = write_video(tmp_path / "ref.mp4", moving_frames(5, 64, 48), 25)
    gen = write_video(tmp_path / "gen.mp4", moving_frames(5, 33, 25), 25, pix_fmt="yuv444p")
    pairs, a = align(ref, gen)
    assert all((g.width, g.height, g.format.name) == (64, 48, "yuv420p") for _, _, g in pairs)


def _luma(v: int) -> int:
    return int(round(16 + 219 * v / 255))
