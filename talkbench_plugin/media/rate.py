"""Constant frame rate by timestamp, with the semantics of FFmpeg's ``fps`` filter."""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from typing import Generic, TypeVar

T = TypeVar("T")


class RateConverter(Generic[T]):
    """Output slot n (time n / rate) shows the latest input whose start time, rounded half up to a
    slot, is at most n; the output ends where the last input ends (FFmpeg's ``fps`` filter, round=near)."""

    def __init__(self, rate: Fraction | int, frame_time: Fraction) -> None:
        self.rate = Fraction(rate)
        self.frame_time = frame_time  # an input's duration when it does not say
        self._held: T | None = None
        self._next = 0
        self._end = 0

    def push(self, start: Fraction, duration: Fraction | None, item: T) -> Iterator[tuple[int, T]]:
        """Take the next input (presentation order); yield the (slot, input) pairs it completes."""
        slot = _round_half_up(start * self.rate)
        if self._held is None:
            self._next = slot
        yield from self._emit_until(slot)
        self._held = item
        self._end = _round_half_up((start + (duration or self.frame_time)) * self.rate)

    def finish(self) -> Iterator[tuple[int, T]]:
        """Yield the (slot, input) pairs left once the input has ended."""
        yield from self._emit_until(self._end)

    def _emit_until(self, slot: int) -> Iterator[tuple[int, T]]:
        while self._held is not None and self._next < slot:
            yield self._next, self._held
            self._next += 1


def _round_half_up(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))
