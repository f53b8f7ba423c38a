"""`FeedGauge`: the status bar's live figures from the feed's counters: state, rates and lag.

At each status refresh the app hands it the feed and the clocks; it fills a `StatusInfo` with
LIVE, BEHIND (the delivery lag, plus how long the screen has not drawn data it holds, is past
`lag.BEHIND_AFTER_NS`) or STALE (no message for 3
heartbeats), and messages, ticks and frames a second over the last second. Plain state: no
Textual, and the app decides when to call it. Imports `lag` and `status` only.
"""

from __future__ import annotations

from typing import Any

from .lag import BEHIND_AFTER_NS, DeliveryLag
from .status import StatusInfo

STALE_AFTER_HEARTBEATS = 3


class FeedGauge:
    """Counters seen at the last refresh, the rates' last mark, and the feed's delivery lag."""

    def __init__(self, now_s: float) -> None:
        self.lag = DeliveryLag()
        self._rate_mark: tuple[float, int, int, int] | None = None  # (t, msgs, ticks, frames)
        self._last_msgs = 0
        self._last_msg_s = now_s

    def fill(
        self,
        info: StatusInfo,
        feed: Any,
        frames: int,
        now_s: float,
        wall_ns: int,
        shown_lag_ns: int = 0,
    ) -> None:
        """Update `info`'s state, lag and rates from `feed` (None before the first connection).

        `shown_lag_ns` is how long data held has waited to be drawn (`lag.ShownLag`): the screen
        is as far behind as the feed's delivery lag plus that."""
        msgs = ticks = 0
        if feed is not None:
            msgs, ticks = feed.messages_received, feed.ticks_received
            if msgs != self._last_msgs:
                self._last_msgs, self._last_msg_s = msgs, now_s
            heartbeat_s = float(feed.welcome.get("heartbeat_ms", 1000) or 1000) / 1000
            if feed.state == "live":
                stale = now_s - self._last_msg_s > STALE_AFTER_HEARTBEATS * heartbeat_s
                delivered = self.lag.current(wall_ns)
                info.lag_ns = (
                    (delivered or 0) + shown_lag_ns if delivered or shown_lag_ns else delivered
                )
                behind = info.lag_ns is not None and info.lag_ns > BEHIND_AFTER_NS
                info.state = "stale" if stale else "behind" if behind else "live"
                info.error = None
            info.scenarios = tuple(getattr(feed, "scenarios", ()))  # a scripted feed has none
        mark = self._rate_mark
        if mark is None:
            self._rate_mark = (now_s, msgs, ticks, frames)
        elif now_s - mark[0] >= 1.0:
            dt = now_s - mark[0]
            info.msgs_per_s = (msgs - mark[1]) / dt
            info.ticks_per_s = (ticks - mark[2]) / dt
            info.fps = (frames - mark[3]) / dt
            self._rate_mark = (now_s, msgs, ticks, frames)
