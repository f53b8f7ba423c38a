"""Connections with injected faults: `Faulty` puts an `Injector` between a core's data and the
wire, and `FaultyFeedCore` is the `/v1` connection that has one.

A server builds a faulty core only for a connection that asked for faults (or whose path the
operator named), so a connection without faults runs the plain core: not one extra branch per
message. `Faulty` overrides only the data path (`take_data`) and time (`timer`,
`next_deadline`): replies, the welcome and errors are queued by the core itself and never
pass through the injector. A stall silences everything the core would send by its own timer
(heartbeats, pings); a disconnect resets TCP without a close frame; maintenance closes as the
connection's venue does (`maintenance`; `/v1`: 1012). Sans-IO, like the cores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tickwire.feed.faults import Injector
from tickwire.feed.v1.core import FeedContext, FeedCore
from tickwire.feed.ws.websocket import State, WebSocketCore

SERVICE_RESTART = 1012  # RFC 6455 / IANA: "Service Restart", a client should reconnect


class Faulty(WebSocketCore):
    """The fault-injecting layer over a connection core (first base of a concrete class)."""

    __slots__ = ()
    faults: Injector

    def core_take_data(self, now: float) -> bytes | None:
        """The connection core's own `take_data`: the concrete class sets it, as calling it
        directly saves a `super()` on every data message."""
        raise NotImplementedError

    def take_data(self, now: float) -> bytes | None:
        faults = self.faults
        while True:
            data = self.core_take_data(now)
            if data is None:
                if self.state is State.IDLE and faults.holding():
                    return faults.release(now)
                return None
            out = faults.outgoing(data, now)
            if out is not None or not self.data_waiting(now):
                return out

    def timer(self, now: float) -> None:
        faults = self.faults
        if faults.stalled(now):
            WebSocketCore.timer(self, now)  # the stall limit and the close wait, nothing sent
        else:
            super().timer(now)
        if self.state is not State.IDLE and self.state is not State.BACKLOG:
            return
        why = faults.close_due(now)
        if why == "disconnect":
            faults.count(why)
            self.aborted = True  # a reset, as when a network path dies
            self.connection_lost("injected fault: disconnect")
        elif why == "maintenance":
            faults.count(why)
            self.maintenance(now)
        elif (data := faults.release(now)) is not None:
            self._queue(data, now)

    def next_deadline(self, now: float) -> float:
        faults = self.faults
        if faults.stalled(now):
            deadline = min(WebSocketCore.next_deadline(self, now), faults.stall_end(now))
        else:
            deadline = super().next_deadline(now)
        if self.state is State.IDLE or self.state is State.BACKLOG:
            deadline = min(deadline, faults.due_at(now), faults.next_stall(now))
        return deadline

    def maintenance(self, now: float) -> None:
        """Close as the connection's venue does for maintenance."""
        self.close(SERVICE_RESTART, "service restart (injected maintenance)", now)


class FaultyFeedCore(Faulty, FeedCore):
    """A `/v1` connection with injected faults (its stats say which, and how many)."""

    __slots__ = ("faults",)
    core_take_data = FeedCore.take_data

    def __init__(
        self,
        ctx: FeedContext,
        wake: Callable[[], None],
        *,
        binary: bool,
        now: float,
        faults: Injector,
    ) -> None:
        super().__init__(ctx, wake, binary=binary, now=now)
        self.faults = faults

    def statistics(self, now: float) -> dict[str, Any]:
        return {**super().statistics(now), "faults": self.faults.statistics()}


__all__ = ["SERVICE_RESTART", "Faulty", "FaultyFeedCore"]
