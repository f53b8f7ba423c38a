"""One exchange-dialect connection, sans-IO: a venue session on the shared WebSocket layer.

`VenueCore` puts a `venues` session (Alpaca, Binance, Coinbase) on `WebSocketCore`, so that a
venue connection has `/v1`'s transport, HTTP front, pings, close handshake, frame limits, stall
limit and one-place close. It is one object with one table, `TRANSITIONS`: the WebSocket phase's
transitions and the venue phase's (`VenuePhase`: connected, open, streaming, done), changed only
by `process_event`. It reads market data as `/v1` does, from the hub, through its venue's
stream (`stream.py`): each batch encoded once per venue, the frames and their WebSocket framing
shared by the connections that send them. When the connection is IDLE, `take_data` hands the
shell everything since its last take as one send. A connection that does not take (a slow reader)
has a bounded backlog (`buffer_bytes`, counting the outbox); past it, the session's `overflow()`
decides what it is told (Alpaca's 407) and the close code. No trio, no socket, no clock: `now`
comes in (monotonic seconds), and the sessions' nanosecond clock derives from it through the
context's anchor.

Binance connections are pinged as Binance does (`KeepAlive`): a ping every `binance_ping_s`
(20 s), and a close when a ping goes unanswered for three intervals (Binance: a minute). Both are
deadlines of the core, so the connection's own task does it; no extra task. Sessions share
`services` (Alpaca's per-key connection counts, Coinbase's message at subscribe from the hub's
last-value cache `latest`); `detach` gives a session's share back however the connection ended.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

from tickwire.feed.hub.books import Books
from tickwire.feed.hub.hub import Hub
from tickwire.feed.v1.core import ServerCounters
from tickwire.feed.v1.status import StatusLog
from tickwire.feed.venues import (
    Close,
    Frame,
    KeyLimit,
    Reply,
    Services,
    VenueSession,
)
from tickwire.feed.venues.stream import VenueStreams
from tickwire.feed.ws.frames import OP_BINARY, OP_TEXT, frame_header
from tickwire.feed.ws.websocket import WIRE_TRANSITIONS, State, Transitions, WebSocketCore
from tickwire.simulators.universe import Universe

VENUE_MAX_MESSAGE = 64 * 1024  # a venue request is a short JSON object; 64 KiB is generous
VENUE_BUFFER_BYTES = 4 * 1024 * 1024  # unsent data past this: a slow reader, overflow()
BINANCE_PING_S = 20.0  # Binance pings every 20 s...
PONG_WITHIN_PINGS = 3  # ...and disconnects a client that has not answered within a minute
ALPACA_CONNECTIONS_PER_KEY = 1  # Alpaca's limit on most plans (0: no limit)
_SLOW_CLOSE = (1008, "slow reader: send buffer full")


class VenuePhase(Enum):
    """Where a venue connection is in its session."""

    CONNECTED = "connected"  # the 101 went out; the session has said nothing yet
    OPEN = "open"  # the session's opening frames are queued; it wants no symbol
    STREAMING = "streaming"  # it wants some symbol: the fan-out hands it frames
    DONE = "done"  # it left the fan-out and gave its share back


class VenueEvent(Enum):
    """What moves a venue connection's phase."""

    OPENED = "opened"
    WANTS = "wants"  # a reply set the symbols it wants: some...
    WANTS_NONE = "wants_none"  # ...or none
    LEFT = "left"


_V, _VE = VenuePhase, VenueEvent
TRANSITIONS: Transitions = {
    **WIRE_TRANSITIONS,
    (_V.CONNECTED, _VE.OPENED): _V.OPEN,
    (_V.CONNECTED, _VE.LEFT): _V.DONE,  # refused at the connection cap
    (_V.OPEN, _VE.WANTS): _V.STREAMING,
    (_V.OPEN, _VE.WANTS_NONE): _V.OPEN,
    (_V.OPEN, _VE.LEFT): _V.DONE,
    (_V.STREAMING, _VE.WANTS): _V.STREAMING,
    (_V.STREAMING, _VE.WANTS_NONE): _V.OPEN,
    (_V.STREAMING, _VE.LEFT): _V.DONE,
}


@dataclass(eq=False, slots=True)
class VenueContext:
    """What every venue connection of one server shares."""

    universe: Universe
    tokens: Sequence[str]
    stall_s: float
    close_timeout_s: float
    t0_s: float  # event time is wall0_ns at monotonic t0_s, as for `/v1`
    wall0_ns: int
    counters: ServerCounters
    hub: Hub  # what the venues read, as `/v1` does: a cursor and a take
    buffer_bytes: int = VENUE_BUFFER_BYTES
    binance_ping_s: float = BINANCE_PING_S
    alpaca_connections_per_key: int = ALPACA_CONNECTIONS_PER_KEY
    statuses: StatusLog | None = None  # a scenario's trading status changes, as `/v1` reads
    books: Books | None = None  # the order books, when the server keeps them (--book-depth)
    fanout: VenueStreams = field(init=False)  # every venue's stream and who reads it
    services: Services = field(init=False)

    def __post_init__(self) -> None:
        if not self.binance_ping_s > 0:
            raise ValueError(f"binance_ping_s must be positive, got {self.binance_ping_s}")
        self.fanout = VenueStreams(self.universe, self.hub, self)
        self.services = Services(KeyLimit(self.alpaca_connections_per_key), self._current)
        self.services.book_depth = 0 if self.books is None else self.books.depth
        self.services.banded = lambda: () if self.statuses is None else self.statuses.bands.keys()

    def _current(self, venue: str, sym: int, channel: str) -> bytes | None:
        """A venue's message for a symbol's latest state, from the hub's last-value cache (its
        trading status, from the status log, for a venue's status channel)."""
        encoder = self.fanout.encoder(venue)
        status = getattr(encoder, "current_status", None)
        band = getattr(encoder, "current_band", None)
        if channel.startswith("lulds:") and band is not None:
            now = None if self.statuses is None else self.statuses.bands.get(sym)
            return None if now is None else bytes(band(sym, now, channel[6:]))
        if channel == "status" and status is not None:
            return bytes(
                status(sym, None if self.statuses is None else self.statuses.current.get(sym))
            )
        return encoder.current(self.hub.lvc[sym], channel)

    def ping_s(self, venue: str) -> float | None:
        """How often the server pings this venue's connections (None: it does not)."""
        return self.binance_ping_s if venue == "binance" else None

    def now_ns(self, now: float) -> int:
        return self.wall0_ns + int((now - self.t0_s) * 1e9)

    def monotonic(self, ns: int) -> float:
        return self.t0_s + (ns - self.wall0_ns) / 1e9


class KeepAlive:
    """Server pings and the wait for their pongs, on one deadline (monotonic seconds).

    A ping is due every `interval_s`; its payload is its number, which the client's pong must
    echo (RFC 6455 5.5.3; Binance: "a copy of ping's payload"). An echo answers that ping and
    every older one; unsolicited pongs answer nothing. When a ping is due while one sent
    `PONG_WITHIN_PINGS` intervals before is still unanswered (Binance: a minute), the client is
    dead. Counting pings, not comparing times, keeps the verdict exact whatever the clock.
    """

    __slots__ = ("count", "interval_s", "next_ping_s", "unanswered")

    def __init__(self, interval_s: float, now: float) -> None:
        self.interval_s = interval_s
        self.next_ping_s = now + interval_s
        self.count = 0  # pings sent
        self.unanswered: dict[bytes, int] = {}  # payload -> ping number, oldest first

    def due(self, now: float) -> bytes | None:
        """At `next_ping_s`: the payload of the ping to send now, or None if the client is dead."""
        if self.unanswered:
            oldest = next(iter(self.unanswered.values()))
            if self.count + 1 - oldest >= PONG_WITHIN_PINGS:
                return None
        self.count += 1
        payload = str(self.count).encode()
        self.unanswered[payload] = self.count
        self.next_ping_s += self.interval_s
        if self.next_ping_s <= now:  # the timer ran late: keep the interval from now
            self.next_ping_s = now + self.interval_s
        return payload

    def pong(self, payload: bytes) -> None:
        if payload not in self.unanswered:
            return
        for sent in list(self.unanswered):
            del self.unanswered[sent]
            if sent == payload:
                return


class VenueCore(WebSocketCore):
    """A venue connection: the client's messages to its session, the session's frames out."""

    TRANSITIONS: ClassVar[Transitions] = TRANSITIONS
    FIRST_PHASE: ClassVar[Enum] = VenuePhase.CONNECTED

    __slots__ = (
        "_wake",
        "ctx",
        "frames_sent",
        "keepalive",
        "session",
    )

    def __init__(
        self, ctx: VenueContext, session: VenueSession, wake: Callable[[], None], now: float
    ) -> None:
        super().__init__(
            max_message=VENUE_MAX_MESSAGE,
            stall_s=ctx.stall_s,
            close_timeout_s=ctx.close_timeout_s,
            now=now,
        )
        self.ctx = ctx
        self.session = session
        self._wake = wake
        self.frames_sent = 0
        interval = ctx.ping_s(session.venue)
        self.keepalive = None if interval is None else KeepAlive(interval, now)

    def start(self, now: float) -> None:
        self.ctx.fanout.seen(now, self.ctx.now_ns(now))
        self.ctx.fanout.join(self)
        self.process_event(VenueEvent.OPENED)
        self._apply(self.session.opened(self.ctx.now_ns(now)), now)

    def detach(self) -> None:
        """However the connection ended (even refused before `start`): leave its venue's stream
        and give the session's share of the server back."""
        self.ctx.fanout.leave(self)
        self.session.closed()
        self.process_event(VenueEvent.LEFT)

    def wake(self) -> None:
        """Its venue has news (called in the generator's task)."""
        self._wake()

    def _on_pong(self, payload: bytes, now: float) -> None:
        if self.keepalive is not None:
            self.keepalive.pong(payload)

    # ------------------------------------------------------------------ the session's replies

    def _on_message(self, message: str | bytes, now: float) -> None:
        # What the market published before this message goes out first, for the subscription
        # it was published under.
        self._catch_up(now)
        self._apply(self.session.receive(message, self.ctx.now_ns(now)), now)

    def _apply(self, reply: Reply, now: float) -> None:
        """Send a reply's frames after the data already published, then maybe close."""
        if self.state in (State.CLOSING, State.CLOSED):
            return
        if reply.frames:
            self._catch_up(now)
        self._send_reply(reply, now)

    def _send_reply(self, reply: Reply, now: float) -> None:
        for f in reply.frames:
            self._queue(frame_header(len(f.data), OP_BINARY if f.binary else OP_TEXT) + f.data, now)
        self.frames_sent += len(reply.frames)
        if reply.symbols is not None:
            self.process_event(VenueEvent.WANTS if reply.symbols else VenueEvent.WANTS_NONE)
            self.ctx.fanout.symbols_changed(self, reply.symbols)
        if reply.books is not None:
            self._set_books(reply.books, now)
        if reply.close is not None:
            self.close(reply.close.code, reply.close.reason, now)

    def _set_books(self, wanted: dict[int, int], now: float) -> None:
        """Book `wanted` from now on: what was published before goes out first, then the
        snapshots (the venue's stream is advanced to now, so they follow it exactly)."""
        stream = self.ctx.fanout.stream(self.session.venue)
        stream.wake()
        self._catch_up(now)
        self._queue_books(stream.set_books(self, wanted, self.ctx.now_ns(now)), now)

    def _queue_books(self, frames: list[Frame], now: float) -> None:
        """Queue the snapshots of symbols just booked."""
        for f in frames:
            self._queue(frame_header(len(f.data), OP_BINARY if f.binary else OP_TEXT) + f.data, now)
        self.frames_sent += len(frames)

    def _take(self, now: float) -> bytes | None:
        """Everything its venue's stream has for it since its last take, framed; counted."""
        frames = self.take_frames(now)
        if frames is None:
            return None
        return frames[0] if len(frames) == 1 else b"".join(frames)

    def take_frames(self, now: float) -> list[bytes] | None:
        """`_take`'s frames, one message each (injected faults handle them one by one)."""
        ctx = self.ctx
        frames = ctx.fanout.take(self)
        if not frames or self.state in (State.CLOSING, State.CLOSED):
            return None
        ctx.fanout.seen(now, ctx.now_ns(now))
        n = len(frames)
        self.frames_sent += n
        self.messages_sent += n - 1  # `wrote` or `_queue` counts one
        ctx.counters.messages_sent += n
        ctx.fanout.frames_delivered += n
        return frames

    def _catch_up(self, now: float) -> None:
        data = self._take(now)
        if data is not None:
            self._queue(data, now)

    # ------------------------------------------------------------------ market data

    def overflow(self, now: float) -> None:
        """Its backlog passed `buffer_bytes` (its venue's stream left it): the session's
        `overflow()` reply, then a close (in the generator's task)."""
        if self.state in (State.CLOSING, State.CLOSED):
            return
        reply = self.session.overflow()
        if reply.close is None:
            reply.close = Close(*_SLOW_CLOSE)
        self._send_reply(reply, now)
        self._wake()

    def take_data(self, now: float) -> bytes | None:
        if self.state is not State.IDLE:
            return None
        return self._take(now)

    # ------------------------------------------------------------------ time

    def _session_due(self) -> float:
        ns = self.session.next_deadline()
        return math.inf if ns is None else self.ctx.monotonic(ns)

    def sent(self, n: int, now: float) -> None:
        self.ctx.fanout.seen(now, self.ctx.now_ns(now))
        super().sent(n, now)

    def timer(self, now: float) -> None:
        self.ctx.fanout.seen(now, self.ctx.now_ns(now))
        super().timer(now)
        if self.state in (State.CLOSING, State.CLOSED):
            return
        keepalive = self.keepalive
        if keepalive is not None and now >= keepalive.next_ping_s:
            payload = keepalive.due(now)
            if payload is None:
                wait = PONG_WITHIN_PINGS * keepalive.interval_s
                self.close(1008, f"no pong within {wait:g} s", now)
                return
            self.ping(payload, now)
        ns = self.session.next_deadline()
        if ns is not None and now >= self.ctx.monotonic(ns):
            # `now` in ns may round to just before the deadline: it has passed.
            self._apply(self.session.timeout(max(ns, self.ctx.now_ns(now))), now)

    def next_deadline(self, now: float) -> float:
        deadline = super().next_deadline(now)
        if self.state in (State.IDLE, State.BACKLOG):
            deadline = min(deadline, self._session_due())
            if self.keepalive is not None:
                deadline = min(deadline, self.keepalive.next_ping_s)
        return deadline


__all__ = [
    "ALPACA_CONNECTIONS_PER_KEY",
    "BINANCE_PING_S",
    "TRANSITIONS",
    "VENUE_BUFFER_BYTES",
    "KeepAlive",
    "VenueContext",
    "VenueCore",
    "VenueEvent",
    "VenuePhase",
]
