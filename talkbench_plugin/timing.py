"""Stage timers: wall time accumulated per named stage of a case's evaluation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class StageTimer:
    """Accumulates exclusive seconds per stage: time inside a nested stage is charged to it, not to
    the stage around it, so the stages add up. ``timed_iter`` charges the time spent producing items."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stack: list[str] = []
        self._since = 0.0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._switch()
        self._stack.append(name)
        try:
            yield
        finally:
            self._switch()
            self._stack.pop()

    def timed_iter(self, name: str, items: Iterator[T]) -> Iterator[T]:
        while True:
            with self.stage(name):
                item = next(items, _END)
            if item is _END:
                return
            yield item

    def _switch(self) -> None:
        """Charge the running stage up to now."""
        now = time.perf_counter()
        if self._stack:
            name = self._stack[-1]
            self.seconds[name] = self.seconds.get(name, 0.0) + now - self._since
        self._since = now


_END: object = object()
