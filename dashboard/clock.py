"""The dashboard's clocks: monotonic seconds for intervals, epoch nanoseconds for tick ages.

Injected into the app so tests and snapshots run on a frozen or stepped clock. Imports nothing.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall_ns(self) -> int: ...


class SystemClock:
    """The real clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall_ns(self) -> int:
        return time.time_ns()


class FrozenClock:
    """A clock that moves only when told to (`advance`): deterministic ages and rates."""

    def __init__(self, monotonic_s: float = 1000.0, wall_ns: int = 1_763_800_000_000_000_000):
        self._mono = monotonic_s
        self._wall = wall_ns

    def monotonic(self) -> float:
        return self._mono

    def wall_ns(self) -> int:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._wall += int(seconds * 1e9)
