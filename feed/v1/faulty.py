"""Connections with injected faults: `Faulty` puts an `Injector` between a core's data and the
wire, and `FaultyFeedCore` is the `/v1` connection that has one.

A server builds a faulty core only for a connection that asked for faults (or whose path the
operator named), so a connection without faults runs the plain core: not one extra branch per
message. `Faulty` overrides only the data path (`take_data`) and time (`timer`,
`next_deadline`): replies, the welcome and errors are queued by the core itself and never
pass through the injector. A stall silences everything the core would send by its own timer
(heartbeats, pings); a disconnect resets TCP without a close frame; maintenance closes as the
connection's venue does (`maintenance`; `/v1`: 1012). On `/v1`, `corrupt` alters the
checksum of book update entries (JSON and binary) as they are framed. Sans-IO, like the cores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tickwire.feed.faults import Injector
from tickwire.feed.hub import bookwire
from tickwire.feed.hub.books import BookReader, Books, BookTake
from tickwire.feed.protocol import book as b
from tickwire.feed.v1.core import FeedContext, FeedCore
from tickwire.feed.ws.frames import OP_BINARY, OP_TEXT, Out, frame
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

    def take_out(self, now: float) -> Out | None:
        return self.take_data(now)  # faults act on whole frames

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

    def _book_frames(self, books: Books, reader: BookReader, taken: BookTake) -> list[bytes]:
        if not self.faults.spec.corrupt:
            return super()._book_frames(books, reader, taken)
        faults = self.faults
        if self.binary:
            payloads = bookwire.binary_frames(books, reader, taken, self.next_seq)
            return [frame(_corrupt_binary(faults, data), OP_BINARY) for data in payloads]
        snaps, changes = bookwire.json_entries(books, reader, taken)
        out = []
        if snaps:
            for entry in snaps:
                faults.book_sent(entry["symbol"])
            out.append(frame(b.book_text("book_snapshot", self.next_seq(), snaps), OP_TEXT))
        if changes:
            for entry in changes:
                if faults.corrupts(entry["symbol"]):
                    entry["checksum"] = _wrong(entry["checksum"])
            out.append(frame(b.book_text("book", self.next_seq(), changes), OP_TEXT))
        return out


def _wrong(crc: int) -> int:
    return crc ^ 0x5A5A5A5A  # a CRC32 that cannot be the right one


def _corrupt_binary(faults: Injector, payload: bytes) -> bytes:
    """A binary book frame with the checksum of some of its update entries altered."""
    frame_ = b.decode_book_binary(payload)
    if frame_.snapshot:
        for sym in frame_.checks["sym"].tolist():
            faults.book_sent(sym)
        return payload
    hit = [i for i, sym in enumerate(frame_.checks["sym"].tolist()) if faults.corrupts(sym)]
    if not hit:
        return payload
    data = bytearray(payload)
    start = len(data) - len(frame_.checks) * b.CHECK_DTYPE.itemsize
    checks = np.frombuffer(data, b.CHECK_DTYPE, count=len(frame_.checks), offset=start)
    for i in hit:
        checks["crc"][i] = _wrong(int(checks["crc"][i]))
    return bytes(data)


__all__ = ["SERVICE_RESTART", "Faulty", "FaultyFeedCore"]
