"""One exchange-dialect connection, sans-IO: a venue session on the shared WebSocket layer.

`VenueCore` puts a `venues` session (Alpaca, Binance, Coinbase) on `WebSocketCore`, so that a
venue connection has `/v1`'s transport, HTTP front, pings, close handshake, frame limits, stall
limit and one-place close. It is one object with one table, `TRANSITIONS`: the WebSocket phase's
transitions and the venue phase's (`VenuePhase`: connected, open, streaming, done), changed only
by `process_event`. `VenueFanout` is the venues' side of publishing: each batch the
market publishes is encoded once per venue that has connections (`encoder.encode`), and every
connection of that venue gets the shared output (`session.deliver`); the frames, and their
WebSocket framing, are shared by every connection that received the same frame objects.

Each connection's data waits in `pending` (bounded: `buffer_bytes`, counting the outbox) until
the connection is IDLE; then `take_data` hands it to the shell as one send. A connection whose
buffer is full is a slow reader: the session's `overflow()` decides what it is told (Alpaca's
407) and the close code. No trio, no socket, no clock: `now` comes in (monotonic seconds), and
the sessions' nanosecond clock derives from it through the context's anchor.

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

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.v1.core import ServerCounters
from tickwire.feed.venues import (
    ENCODERS,
    Close,
    Frame,
    KeyLimit,
    Reply,
    Services,
    Shared,
    VenueEncoder,
    VenueSession,
)
from tickwire.feed.ws.frames import OP_BINARY, OP_TEXT, frame_header
from tickwire.feed.ws.websocket import WIRE_TRANSITIONS, State, Transitions, WebSocketCore
from tickwire.simulators.ticks import TickBatch
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
    buffer_bytes: int = VENUE_BUFFER_BYTES
    binance_ping_s: float = BINANCE_PING_S
    alpaca_connections_per_key: int = ALPACA_CONNECTIONS_PER_KEY
    latest: Callable[[], TickBatch] | None = None  # the hub's last-value cache, one per symbol
    fanout: VenueFanout = field(init=False)
    services: Services = field(init=False)

    def __post_init__(self) -> None:
        if not self.binance_ping_s > 0:
            raise ValueError(f"binance_ping_s must be positive, got {self.binance_ping_s}")
        self.fanout = VenueFanout(self.universe)
        self.services = Services(KeyLimit(self.alpaca_connections_per_key), self._current)

    def _current(self, venue: str, sym: int, channel: str) -> bytes | None:
        if self.latest is None:
            return None
        return self.fanout.encoders[venue].current(self.latest()[sym], channel)

    def ping_s(self, venue: str) -> float | None:
        """How often the server pings this venue's connections (None: it does not)."""
        return self.binance_ping_s if venue == "binance" else None

    def now_ns(self, now: float) -> int:
        return self.wall0_ns + int((now - self.t0_s) * 1e9)

    def monotonic(self, ns: int) -> float:
        return self.t0_s + (ns - self.wall0_ns) / 1e9


class VenueFanout:
    """Each venue's encoder and open connections; `publish` runs for every batch, in order."""

    __slots__ = ("cores", "encoders", "frames_delivered", "subscribed")

    def __init__(self, universe: Universe) -> None:
        self.encoders: dict[str, VenueEncoder] = {n: make(universe) for n, make in ENCODERS.items()}
        self.cores: dict[str, set[VenueCore]] = {name: set() for name in ENCODERS}
        self.subscribed: set[VenueCore] = set()  # connections that want some symbol
        self.frames_delivered = 0

    def __len__(self) -> int:
        return sum(len(cores) for cores in self.cores.values())

    def publish(self, batch: TickBatch, now_ns: int, now: float) -> None:
        """Encode `batch` once per venue with connections; hand each connection its frames."""
        for venue, cores in self.cores.items():
            if not cores:
                continue
            shared = self.encoders[venue].encode(batch, now_ns)
            # Frame objects are shared by sessions with the same subscription: frame them once.
            # The Frame is kept with its bytes so that its id cannot be reused within the batch.
            framed: dict[int, tuple[Frame, bytes]] = {}
            for core in list(cores):
                core.push(shared, framed, now)

    def publish_statuses(self, records: NDArray[np.void], now_ns: int, now: float) -> None:
        """Trading status changes (a scenario's halts) to the venues that carry them (Alpaca's
        `statuses`), in order with the batches published before and after."""
        for venue, cores in self.cores.items():
            encode = getattr(self.encoders[venue], "encode_statuses", None)
            if not cores or encode is None:
                continue
            shared = encode(records, now_ns)
            framed: dict[int, tuple[Frame, bytes]] = {}
            for core in list(cores):
                core.push(shared, framed, now)

    def add(self, core: VenueCore) -> None:
        self.cores[core.session.venue].add(core)

    def discard(self, core: VenueCore) -> None:
        self.cores[core.session.venue].discard(core)
        self.subscribed.discard(core)

    def symbols_changed(self, core: VenueCore, symbols: frozenset[int]) -> None:
        if symbols:
            self.subscribed.add(core)
        else:
            self.subscribed.discard(core)


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
        "pending",
        "pending_bytes",
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
        self.pending: list[bytes] = []  # framed data not yet handed to the shell
        self.pending_bytes = 0
        self.frames_sent = 0
        interval = ctx.ping_s(session.venue)
        self.keepalive = None if interval is None else KeepAlive(interval, now)

    def start(self, now: float) -> None:
        self.ctx.fanout.add(self)
        self.process_event(VenueEvent.OPENED)
        self._apply(self.session.opened(self.ctx.now_ns(now)), now)

    def detach(self) -> None:
        """However the connection ended (even refused before `start`): leave the fan-out and
        give the session's share of the server back."""
        self.ctx.fanout.discard(self)
        self.pending.clear()
        self.session.closed()
        self.process_event(VenueEvent.LEFT)

    def _on_pong(self, payload: bytes, now: float) -> None:
        if self.keepalive is not None:
            self.keepalive.pong(payload)

    # ------------------------------------------------------------------ the session's replies

    def _on_message(self, message: str | bytes, now: float) -> None:
        self._apply(self.session.receive(message, self.ctx.now_ns(now)), now)

    def _apply(self, reply: Reply, now: float) -> None:
        """Send a reply's frames after the data already delivered, then maybe close."""
        if self.state in (State.CLOSING, State.CLOSED):
            return
        if reply.frames and self.pending:
            self._queue_pending(now)
        for f in reply.frames:
            self._queue(frame_header(len(f.data), OP_BINARY if f.binary else OP_TEXT) + f.data, now)
        self.frames_sent += len(reply.frames)
        if reply.symbols is not None:
            self.process_event(VenueEvent.WANTS if reply.symbols else VenueEvent.WANTS_NONE)
            self.ctx.fanout.symbols_changed(self, reply.symbols)
        if reply.close is not None:
            self.close(reply.close.code, reply.close.reason, now)

    def _queue_pending(self, now: float) -> None:
        self._queue(b"".join(self.pending), now, message=False)
        self.messages_sent += len(self.pending)
        self.frames_sent += len(self.pending)
        self.pending.clear()
        self.pending_bytes = 0

    # ------------------------------------------------------------------ market data

    def push(self, shared: Shared, framed: dict[int, tuple[Frame, bytes]], now: float) -> None:
        """One batch's output for this connection (in the generator's task): buffered, then
        sent by the shell when IDLE; a full buffer is the session's `overflow()`."""
        if self.state in (State.CLOSING, State.CLOSED):
            return
        frames = self.session.deliver(shared)
        if not frames:
            return
        was_empty = not self.pending
        for f in frames:
            done = framed.get(id(f))
            if done is None:
                data = f.data
                done = framed[id(f)] = (
                    f,
                    frame_header(len(data), OP_BINARY if f.binary else OP_TEXT) + data,
                )
            self.pending.append(done[1])
            self.pending_bytes += len(done[1])
        if self.pending_bytes + len(self.outbox) > self.ctx.buffer_bytes:
            self.pending.clear()
            self.pending_bytes = 0
            reply = self.session.overflow()
            if reply.close is None:
                reply.close = Close(*_SLOW_CLOSE)
            self._apply(reply, now)
            self._wake()
        elif was_empty:
            self._wake()

    def take_data(self, now: float) -> bytes | None:
        if self.state is not State.IDLE or not self.pending:
            return None
        pending = self.pending
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        n = len(pending)
        self.frames_sent += n
        self.messages_sent += n - 1  # `wrote` counts one
        self.ctx.counters.messages_sent += n
        self.ctx.fanout.frames_delivered += n
        pending.clear()
        self.pending_bytes = 0
        return data

    # ------------------------------------------------------------------ time

    def _session_due(self) -> float:
        ns = self.session.next_deadline()
        return math.inf if ns is None else self.ctx.monotonic(ns)

    def timer(self, now: float) -> None:
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
    "VenueFanout",
    "VenuePhase",
]
