"""Stage timers: wall time accumulated per named stage of a case's evaluation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class StageTimer:
    """Accumulates seconds per stage; ``timed_iter`` charges the time spent producing items."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def timed_iter(self, name: str, items: Iterator[T]) -> Iterator[T]:
        while True:
            with self.stage(name):
                item = next(items, _END)
            if item is _END:
                return
            yield item


_END: object = object()
