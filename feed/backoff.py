"""Exponential backoff: the one schedule of waits for everything that retries.

The client's reconnect, the dashboard's, the bus producer's and reader's reconnects (gateways
waiting for Redis among them) and the supervisor's restarts all wait `first_s`, then twice as
long after each further failure, up to `most_s`. Sans-IO: it computes waits, the caller sleeps
(and adds jitter, if it wants any). Imports nothing of ours and no trio.
"""

from __future__ import annotations

from dataclasses import dataclass

_MAX_DOUBLINGS = 1023  # 2**1023 still converts to a float; more would raise OverflowError


@dataclass(slots=True)
class Backoff:
    """Waits of `first_s`, doubling per failure, capped at `most_s`; `reset()` after a success."""

    first_s: float
    most_s: float
    failures: int = 0  # since the last reset

    def delay(self, attempt: int) -> float:
        """The wait before retry number `attempt` (1 for the first retry)."""
        doublings = min(max(attempt - 1, 0), _MAX_DOUBLINGS)
        return min(self.most_s, self.first_s * float(2**doublings))

    def next(self) -> float:
        """Count one more failure and return the wait before the next try."""
        self.failures += 1
        return self.delay(self.failures)

    def reset(self) -> None:
        """A success: the next failure waits `first_s` again."""
        self.failures = 0


__all__ = ["Backoff"]
