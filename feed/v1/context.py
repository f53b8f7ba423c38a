"""What every `/v1` connection of one server shares (`FeedContext`), and the server's counters.

Sans-IO: never imports trio; time comes in as monotonic seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tickwire.feed.hub.books import Books
from tickwire.feed.hub.hub import Hub
from tickwire.feed.v1 import state as st
from tickwire.feed.v1.status import StatusLog


@dataclass(slots=True)
class ServerCounters:
    messages_sent: int = 0
    ticks_sent: int = 0
    connections_total: int = 0
    connections_refused: int = 0
    cadence_overruns: int = 0
    # Of connections that ended (the open ones are added at read time): counted once per
    # connection in its one way out, never per message.
    bytes_sent: int = 0
    ticks_conflated: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # wire error code -> count
    closes: dict[str, int] = field(default_factory=dict)  # close code -> count


def _nothing() -> None:
    return None


@dataclass(eq=False, slots=True)
class FeedContext:
    """What every connection of one server shares; given to each core (never the server)."""

    hub: Hub
    index: Mapping[str, int]  # symbol -> id
    symbols_body: bytes  # the universe's reference data, encoded once
    limits: st.Limits
    server_name: str
    heartbeat_ms: int
    stall_s: float
    close_timeout_s: float
    t0_s: float  # event time is wall0_ns at monotonic t0_s, advancing with it
    wall0_ns: int
    stats: Callable[[], dict[str, Any]]  # the server's figures for the stats op
    counters: ServerCounters = field(default_factory=ServerCounters)
    # Called before anything that needs the market's state at `now` (a snapshot, stats): lets an
    # unwatched market step rarely. It may publish, which never sends to a core mid-request.
    refresh: Callable[[], None] = _nothing
    subscribers: int = 0  # connections whose subscription is not empty
    statuses: StatusLog | None = None  # halts and resumptions, when the market plays a scenario
    books: Books | None = None  # the order books, when the server serves them (--book-depth)

    def now_ns(self, now: float) -> int:
        return self.wall0_ns + int((now - self.t0_s) * 1e9)
