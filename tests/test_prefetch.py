"""Background decoding: same frames in order, errors re-raised in place, early close stops the thread."""

import threading
import time

import pytest

from talkbench_plugin.errors import MediaError
from talkbench_plugin.media.video import prefetch


def test_same_items_in_order() -> None:
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))


def test_error_after_the_items_before_it() -> None:
    def frames():
        yield 1
        yield 2
        raise MediaError("gen.mp4", "decoding failed after 2 frames")

    seen = []
    with pytest.raises(MediaError, match="gen.mp4: decoding failed after 2 frames"):
        for item in prefetch(frames()):
            seen.append(item)
    assert seen == [1, 2]


def test_early_close_stops_the_producer_and_closes_its_source() -> None:
    closed = threading.Event()

    def frames():
        try:
            for i in range(10_000):
                yield i
        finally:
            closed.set()  # iter_frames closes its container here

    before = threading.active_count()
    stream = prefetch(frames(), depth=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert closed.wait(5)
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before
