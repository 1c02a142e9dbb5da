"""Time as a parameter: every component takes a ``Clock`` instead of calling ``time.time``."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch (wall clock; used for token and session times)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic clock (used for staleness and throttling intervals)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class FrozenClock:
    """A clock that moves only when told to; for tests."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = float(start)
        self._mono = 1_000.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a FrozenClock only moves forward")
        self._now += seconds
        self._mono += seconds

    def set(self, now: float) -> None:
        self._now = float(now)
