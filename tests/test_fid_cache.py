"""Reference-moments cache: keyed by content, segment and protocol; corrupt or foreign files recomputed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from talkbench_plugin.fid.cache import cache_path, cached_moments, describe
from talkbench_plugin.fid.moments import Moments

REPO = Path(__file__).resolve().parents[1]
PROTOCOL = {"resize": "clean", "sampling": "every", "weights_sha256": "ab" * 32}
SEGMENT = [0.0, 180.0]


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "reference.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


class Counting:
    """A compute function that counts its calls and returns fixed moments."""

    def __init__(self, seed: int = 0) -> None:
        self.calls = 0
        self.seed = seed

    def __call__(self) -> Moments:
        self.calls += 1
        moments = Moments.zeros(8)
        moments.add(np.random.default_rng(self.seed).random((5, 8)))
        return moments


def assert_same(a: Moments, b: Moments) -> None:
    assert a.count == b.count
    assert np.array_equal(a.total, b.total) and np.array_equal(a.outer, b.outer)


def test_second_call_reuses_identical_moments(tmp_path: Path, video: Path) -> None:
    compute = Counting()
    first, hit1 = cached_moments(tmp_path / "cache", video, SEGMENT, PROTOCOL, compute)
    second, hit2 = cached_moments(tmp_path / "cache", video, SEGMENT, PROTOCOL, compute)
    assert (hit1, hit2, compute.calls) == (False, True, 1)
    assert_same(first, second)
    assert [p.name.startswith("fid-") for p in (tmp_path / "cache").glob("*.npz")] == [True]
    assert not list((tmp_path / "cache").glob(".*"))  # no temporary files left behind


@pytest.mark.parametrize("what", ["content", "segment", "sampling", "resize", "weights_sha256"])
def test_any_key_change_recomputes(tmp_path: Path, video: Path, what: str) -> None:
    compute = Counting()
    cached_moments(tmp_path, video, SEGMENT, PROTOCOL, compute)
    segment, protocol = SEGMENT, dict(PROTOCOL)
    if what == "content":
        video.write_bytes(b"other content")
    elif what == "segment":
        segment = [0.0, 60.0]
    else:
        protocol[what] = "changed"
    _, hit = cached_moments(tmp_path, video, segment, protocol, compute)
    assert (hit, compute.calls) == (False, 2)
    _, hit = cached_moments(tmp_path, video, segment, protocol, compute)
    assert (hit, compute.calls) == (True, 2)


@pytest.mark.parametrize("keep", [0, 30, 0.5, -8], ids=["empty", "header", "half", "tail-cut"])
def test_truncated_file_is_recomputed(tmp_path: Path, video: Path, keep: float) -> None:
    compute = Counting()
    good, _ = cached_moments(tmp_path, video, SEGMENT, PROTOCOL, compute)
    path = cache_path(tmp_path, describe(video, SEGMENT, PROTOCOL))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    again, hit = cached_moments(tmp_path, video, SEGMENT, PROTOCOL, compute)
    assert (hit, compute.calls) == (False, 2)
    assert_same(good, again)
    assert path.read_bytes() == data  # repaired


def test_file_written_for_another_protocol_is_not_reused(tmp_path: Path, video: Path) -> None:
    foreign = {**PROTOCOL, "weights_sha256": "cd" * 32}
    cached_moments(tmp_path, video, SEGMENT, foreign, Counting(seed=1))
    # plant the other protocol's file under this protocol's name
    cache_path(tmp_path, describe(video, SEGMENT, foreign)).replace(
        cache_path(tmp_path, describe(video, SEGMENT, PROTOCOL))
    )
    compute = Counting(seed=0)
    moments, hit = cached_moments(tmp_path, video, SEGMENT, PROTOCOL, compute)
    assert (hit, compute.calls) == (False, 1)
    assert_same(moments, Counting(seed=0)())


def test_nonfinite_cached_arrays_are_recomputed(tmp_path: Path, video: Path) -> None:
    compute = Counting()
    good, _ = cached_moments(tmp_path, video, SEGMENT, PROTOCOL, compute)
    description = describe(video, SEGMENT, PROTOCOL)
    path = cache_path(tmp_path, description)
    outer = good.outer.copy()
    outer[0, 0] = np.nan
    np.savez(path, meta=np.array(description), count=np.array(good.count), total=good.total, outer=outer)
    again, hit = cached_moments(tmp_path, video, SEGMENT, PROTOCOL, compute)
    assert (hit, compute.calls) == (False, 2)
    assert_same(good, again)


WORKER = """
import sys, time
from pathlib import Path
import numpy as np
from talkbench_plugin.fid.cache import cached_moments
from talkbench_plugin.fid.moments import Moments

cache, video, log = map(Path, sys.argv[1:4])

def compute():
    with open(log, "a") as fh:
        fh.write("computed\\n")
    time.sleep(1.0)
    moments = Moments.zeros(8)
    moments.add(np.arange(40.0).reshape(5, 8))
    return moments

moments, hit = cached_moments(cache, video, [0.0, 180.0], {"sampling": "every"}, compute)
print(hit, moments.count, float(moments.outer.sum()))
"""


def test_concurrent_workers_compute_once(tmp_path: Path, video: Path) -> None:
    log = tmp_path / "log.txt"
    args = [sys.executable, "-c", WORKER, str(tmp_path / "cache"), str(video), str(log)]
    workers = [subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [w.communicate(timeout=60)[0].split() for w in workers]
    assert all(w.returncode == 0 for w in workers)
    assert log.read_text().count("computed") == 1
    assert sorted(o[0] for o in outputs) == ["False", "True", "True", "True"]
    assert len({tuple(o[1:]) for o in outputs}) == 1
