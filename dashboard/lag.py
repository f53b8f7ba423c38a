"""`DeliveryLag`: how far behind the server the dashboard's data is, from the records' own `ts`.

The lag of a batch is the wall clock when the dashboard takes it minus the `ts` of its newest
record, less the clock offset: the smallest such difference seen since the feed connected. For
the simulator (event time is the server's wall clock) the offset is the best delivery time, a
fraction of a millisecond; for a replay that keeps the data's historical `ts` it is the replay's
shift, so a replay at its own pace is not "behind". Only live batches count (a snapshot carries
each symbol's last update, however old). A lag is news for `FRESH_NS`: a dashboard that is behind
keeps taking late batches, while a quiet market sends none and says nothing about lag (a feed
that stops altogether is the status bar's STALE, not this). `ShownLag` is the other half: how
long data the dashboard holds has waited to be drawn (a screen that falls behind its feed).
Imports nothing.
"""

from __future__ import annotations

from collections import deque

BEHIND_AFTER_NS = 250_000_000
"""Lag past which the status bar says BEHIND instead of LIVE: a quarter of a second is a lag a
person sees on a screen that repaints 20 times a second, and ten frames of slack under load."""
FRESH_NS = 1_000_000_000


class DeliveryLag:
    """The lag of the newest live batch; `reset()` on every (re)connection and source gap."""

    __slots__ = ("at_ns", "lag_ns", "offset_ns")

    def __init__(self) -> None:
        self.offset_ns: int | None = None
        self.lag_ns: int | None = None
        self.at_ns = 0

    def reset(self) -> None:
        """A new connection: maybe another server and clock, so measure the offset afresh."""
        self.offset_ns = self.lag_ns = None

    def observe(self, newest_ts_ns: int, wall_ns: int) -> None:
        """A live batch whose newest record has `newest_ts_ns` arrived at `wall_ns`."""
        late = wall_ns - newest_ts_ns
        if self.offset_ns is None or late < self.offset_ns:
            self.offset_ns = late
        self.lag_ns = late - self.offset_ns
        self.at_ns = wall_ns

    def current(self, wall_ns: int) -> int | None:
        """The lag if a live batch came in the last `FRESH_NS`, else None (nothing known)."""
        if self.lag_ns is None or wall_ns - self.at_ns > FRESH_NS:
            return None
        return self.lag_ns


class ShownLag:
    """How long the oldest data not yet drawn has waited: one per thing a screen draws.

    Each frame the app notes the version of the data it holds (`seen`: a count of updates, a
    book's seq) with the frame's time; what the widget drew last is `shown`. The lag is the time
    since the first frame that held a version newer than the one drawn: about a frame while the
    screen keeps up, and growing, however busy or quiet the market, while it does not.
    """

    __slots__ = ("_seen",)

    def __init__(self, frames: int = 4096) -> None:
        # Frames noted while nothing newer was drawn; a screen stuck for longer than `frames`
        # frames (minutes) reports the oldest kept, still far past BEHIND_AFTER_NS.
        self._seen: deque[tuple[int, float]] = deque(maxlen=frames)

    def seen(self, version: int, now_s: float) -> None:
        """The data held at the frame at `now_s` has `version` (it only grows, but for a reset)."""
        if self._seen and version < self._seen[-1][0]:  # a new book or a symbol re-added
            self._seen.clear()
        if not self._seen or version != self._seen[-1][0]:
            self._seen.append((version, now_s))

    def lag_s(self, shown: int | None, now_s: float) -> float:
        """Seconds the oldest version newer than `shown` (None: nothing drawn yet) has waited."""
        seen = self._seen
        while seen and shown is not None and seen[0][0] <= shown:
            seen.popleft()
        return now_s - seen[0][1] if seen else 0.0
