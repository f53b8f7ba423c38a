"""`DeliveryLag`: how far behind the server the dashboard's data is, from the records' own `ts`.

The lag of a batch is the wall clock when the dashboard takes it minus the `ts` of its newest
record, less the clock offset: the smallest such difference seen since the feed connected. For
the simulator (event time is the server's wall clock) the offset is the best delivery time, a
fraction of a millisecond; for a replay that keeps the data's historical `ts` it is the replay's
shift, so a replay at its own pace is not "behind". Only live batches count (a snapshot carries
each symbol's last update, however old). A lag is news for `FRESH_NS`: a dashboard that is behind
keeps taking late batches, while a quiet market sends none and says nothing about lag (a feed
that stops altogether is the status bar's STALE, not this). Imports nothing.
"""

from __future__ import annotations

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
