"""The WebSocket phase of one server connection, sans-IO: bytes in, an outbox and deadlines out.

Every kind of connection (`/v1`'s `FeedCore`, a venue's `VenueCore`, the test echo server) is one
object built on `WebSocketCore`, and every state it has changes in one place: `process_event`,
which looks the (state, event) pair up in the kind's one table, `TRANSITIONS`, and raises
`TransitionError` for a pair the table does not list, as h11's `_state.py` does. A table is the
WebSocket phase's `WIRE_TRANSITIONS` below, merged with the kind's own protocol phases (the feed
protocol's welcomed, subscribed, resuming...; a venue session's open, streaming...), so one dict
holds every transition of that kind of connection. The wire states are also the hand-off between
the connection's own task and the generator's:

- IDLE: the outbox is empty; whoever has data (the generator, for a subscriber) may frame it and
  send it right away with one non-blocking `send()`.
- BACKLOG: bytes wait in the outbox for the socket; only the connection's task sends, in order.
- CLOSING: our close frame is queued or sent; no more data, waiting for the peer's close frame.
- CLOSED: done; the shell releases the socket.

wsproto parses incoming frames (fragmentation, UTF-8, control frames, the close handshake) and
writes control and close frames; protocol errors answer with a close frame (1002, 1007, 1009)
before TCP closes. Every frame the client sends (data, continuation, ping, pong, empty or not)
costs one token of `FrameBudget`: a client that floods frames is closed with 1008 before it
costs the others their share of the CPU. Data frames are written by `frames.frame`. No trio, no
socket, no clock: time comes in as `now` (monotonic seconds).
"""

from __future__ import annotations

import math
from enum import Enum
from typing import ClassVar, TypeAlias

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from tickwire.feed.ws.frames import FrameBudget, Out, short_reason, unsent

# Replies waiting in the outbox past this mean a client that sends requests (or pings) and does
# not read: the shell stops reading its socket until the outbox drains (TCP backpressure).
HIGH_WATER = 256 * 1024


class State(Enum):
    """The WebSocket phase (the wire): who may send, and whether the connection still lives."""

    IDLE = "idle"
    BACKLOG = "backlog"
    CLOSING = "closing"
    CLOSED = "closed"


# Read for every message, as a plain global: a member read through its Enum class costs ~100 ns
# on Python 3.11, a global ~10.
_CLOSING = State.CLOSING


class Event(Enum):
    """What moves the WebSocket phase."""

    QUEUED = "queued"  # bytes were added to the outbox
    DRAINED = "drained"  # the outbox is empty again
    CLOSE_SENT = "close_sent"  # our close frame is in the outbox (our close, or our answer)
    CLOSE_DONE = "close_done"  # close frames crossed, or the wait for the peer's timed out
    LOST = "lost"  # TCP is gone or must go now: EOF, reset, a stalled reader


class Phase(Enum):
    """The protocol phase of a connection whose protocol has none of its own (an echo)."""

    OPEN = "open"


# (state, event) -> new state. The states of the WebSocket phase and those of a protocol phase
# are different enums, so one dict holds both without a clash.
Transitions: TypeAlias = dict[tuple[Enum, Enum], Enum]

_S, _E = State, Event
WIRE_TRANSITIONS: Transitions = {
    (_S.IDLE, _E.QUEUED): _S.BACKLOG,
    (_S.IDLE, _E.CLOSE_SENT): _S.CLOSING,
    (_S.IDLE, _E.LOST): _S.CLOSED,
    (_S.BACKLOG, _E.QUEUED): _S.BACKLOG,
    (_S.BACKLOG, _E.DRAINED): _S.IDLE,
    (_S.BACKLOG, _E.CLOSE_SENT): _S.CLOSING,
    (_S.BACKLOG, _E.LOST): _S.CLOSED,
    (_S.CLOSING, _E.QUEUED): _S.CLOSING,
    (_S.CLOSING, _E.DRAINED): _S.CLOSING,
    (_S.CLOSING, _E.CLOSE_DONE): _S.CLOSED,
    (_S.CLOSING, _E.LOST): _S.CLOSED,
    (_S.CLOSED, _E.LOST): _S.CLOSED,
    (_S.CLOSED, _E.DRAINED): _S.CLOSED,
}


class TransitionError(RuntimeError):
    """A bug: something asked for a transition the connection's table does not allow."""


class WebSocketCore:
    """One accepted connection after the HTTP handshake: its WebSocket phase, and the base of
    the object that adds its protocol's phase (the same object: one state, one table).

    Subclasses set `TRANSITIONS` (`WIRE_TRANSITIONS` merged with their own phases) and
    `FIRST_PHASE`, decide what a complete message means (`_on_message`) and may offer data
    (`take_data`). The shell sends `outbox` and reports with `sent(n, now)`, feeds what it reads
    to `receive_data(data, now)` (b"" at EOF), and calls `timer(now)` at `next_deadline(now)`.
    """

    TRANSITIONS: ClassVar[Transitions] = WIRE_TRANSITIONS
    FIRST_PHASE: ClassVar[Enum] = Phase.OPEN

    __slots__ = (
        "_close_at",
        "_discard",
        "_frames",
        "_held",
        "_msg",
        "_msg_size",
        "_stall_at",
        "_ws",
        "aborted",
        "bytes_sent",
        "close_code",
        "close_reason",
        "close_timeout_s",
        "last_send_s",
        "max_message",
        "messages_sent",
        "outbox",
        "phase",
        "stall_s",
        "state",
    )

    def __init__(
        self,
        *,
        max_message: int,
        stall_s: float,
        close_timeout_s: float,
        now: float,
        frame_budget: bool = True,
    ) -> None:
        """`frame_budget` False: no limit on the client's frames (a conformance echo server)."""
        self._ws = Connection(ConnectionType.SERVER)
        self._frames = FrameBudget(now) if frame_budget else None
        self.state = State.IDLE
        self.phase: Enum = self.FIRST_PHASE
        self.outbox = bytearray()
        self.max_message = max_message
        self.stall_s = stall_s
        self.close_timeout_s = close_timeout_s
        self.close_code: int | None = None
        self.close_reason = ""
        self.aborted = False  # CLOSED without a close handshake: reset the TCP connection
        self.last_send_s = now
        self.bytes_sent = 0
        self.messages_sent = 0
        self._msg: list[str] | list[bytes] | None = None  # fragments of the message so far
        self._msg_size = 0
        self._stall_at = math.inf
        self._close_at = math.inf
        self._discard = False  # after a protocol error, the peer's bytes mean nothing
        self._held = False  # frames read but not parsed yet: the outbox had no room for replies

    def start(self, now: float) -> None:
        """The connection is open (after the 101): queue what the server says first."""

    def detach(self) -> None:
        """The connection is over: let go of anything shared."""

    # ------------------------------------------------------------------ the table

    def process_event(self, event: Enum) -> None:
        """The one way any state of the connection changes: to what `TRANSITIONS` says for
        (the state of the event's phase, event); a pair it does not list is a bug."""
        wire = event.__class__ is Event
        current = self.state if wire else self.phase
        new = self.TRANSITIONS.get((current, event))
        if new is None:
            raise TransitionError(f"{event.value} is not allowed in state {current.value}")
        if wire:
            self.state = new  # type: ignore[assignment]
        else:
            self.phase = new

    @property
    def wants_eof(self) -> bool:
        """Our close frame is out after a protocol error: the shell may shut down writing."""
        return self._discard and self.state is _CLOSING and not self.outbox

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes read from the socket; b"" means the peer closed TCP."""
        if self.state is State.CLOSED:
            return
        if not data:
            if self.close_code is None:
                self.close_code = 1006  # RFC 6455 7.1.5: closed without a close frame
            self.process_event(Event.LOST)
            return
        if self._discard or self._ws.state is ConnectionState.CLOSED:
            return
        self._ws.receive_data(data)
        self._handle_events(now)

    @property
    def held(self) -> bool:
        """Frames already read wait to be handled (`resume`) once the outbox has drained."""
        return self._held

    def resume(self, now: float) -> None:
        """Handle the frames `receive_data` held back while the outbox was past `HIGH_WATER`."""
        self._held = False
        if self.state is not State.CLOSED and not self._discard:
            self._handle_events(now)

    def _handle_events(self, now: float) -> None:
        """Every frame wsproto has parsed, in order, until the replies they asked for fill the
        outbox past `HIGH_WATER`: the rest stays in wsproto's buffer (`held`), so a burst of
        requests in one read costs at most HIGH_WATER plus one reply of memory, not one reply
        each (100 `symbols` replies of a large universe would be hundreds of MB)."""
        frames = self._frames
        for event in self._ws.events():
            if (
                frames is not None
                and not isinstance(event, CloseConnection)
                and (not isinstance(event, (TextMessage, BytesMessage)) or event.frame_finished)
                and not frames.take(now)
            ):
                rate = f"{frames.rate_per_s:g} frames a second (bursts of {frames.burst})"
                self._fail(1008, f"more than {rate}", now)
                return  # the frames behind it are never parsed
            if isinstance(event, (TextMessage, BytesMessage)):
                if self.state is not State.CLOSING:
                    self._message_part(event, now)
            elif isinstance(event, Ping):
                if self._ws.state is ConnectionState.OPEN and self.state is not State.CLOSING:
                    self._queue(self._ws.send(event.response()), now, message=False)
            elif isinstance(event, Pong):
                self._on_pong(bytes(event.payload), now)
            elif isinstance(event, CloseConnection):
                self._peer_close(event, now)
                return
            if self._discard or self.state is State.CLOSED:
                return  # _message_part or _peer_close may have closed
            if len(self.outbox) > HIGH_WATER:
                self._held = True
                return

    def _peer_close(self, event: CloseConnection, now: float) -> None:
        ws_state = self._ws.state
        if ws_state is ConnectionState.OPEN:  # wsproto could not parse: fail the connection
            self._fail(event.code, event.reason or "", now)
        elif ws_state is ConnectionState.REMOTE_CLOSING:  # the peer closes: answer, then done
            if self.close_code is None:
                self.close_code, self.close_reason = event.code, event.reason or ""
            self.outbox += self._ws.send(event.response())
            self.process_event(Event.CLOSE_SENT)
            self._close_at = now + self.close_timeout_s
            self._maybe_done()
        elif ws_state is ConnectionState.CLOSED:  # the answer to our close frame
            self._maybe_done()
        else:  # LOCAL_CLOSING and a parse failure: stop listening
            self._discard = True

    def _message_part(self, event: TextMessage | BytesMessage, now: float) -> None:
        size = self._msg_size + len(event.data)
        if size > self.max_message:
            self._fail(1009, f"message larger than {self.max_message} bytes", now)
            return
        if event.message_finished and self._msg is None:
            data = event.data
            self._on_message(data if isinstance(data, str | bytes) else bytes(data), now)
            return
        if self._msg is None:
            self._msg = []
        self._msg.append(event.data)  # type: ignore[arg-type]
        self._msg_size = size
        if event.message_finished:
            parts, self._msg, self._msg_size = self._msg, None, 0
            if isinstance(event, TextMessage):
                self._on_message("".join(parts), now)  # type: ignore[arg-type]
            elif isinstance(event, BytesMessage):
                self._on_message(b"".join(parts), now)  # type: ignore[arg-type]

    def _on_message(self, message: str | bytes, now: float) -> None:
        """A complete message from the client."""
        raise NotImplementedError

    def _on_pong(self, payload: bytes, now: float) -> None:
        """A pong from the client (subclasses that ping use it; unsolicited pongs are fine)."""

    def ping(self, payload: bytes, now: float) -> None:
        """Queue a ping frame (RFC 6455 5.5.2), unless the close handshake has begun."""
        if self.state in (State.IDLE, State.BACKLOG) and self._ws.state is ConnectionState.OPEN:
            self._queue(self._ws.send(Ping(payload)), now, message=False)

    # ------------------------------------------------------------------ output

    def _queue(self, data: bytes, now: float, *, message: bool = True) -> None:
        """Add a frame to the outbox (nothing is sent here: the shell sends). Control frames
        are not `message`s in the counters."""
        if not self.outbox:
            self._stall_at = now + self.stall_s
        self.outbox += data
        self.process_event(Event.QUEUED)
        self.messages_sent += message

    def take_data(self, now: float) -> bytes | None:
        """A data frame to send now, if IDLE and there is one; the caller sends it whole or
        hands the rest back with `wrote`."""
        return None

    def take_out(self, now: float) -> Out | None:
        """`take_data`, or the same as buffers to send in order (`Out`): what the shell sends."""
        return self.take_data(now)

    def data_waiting(self, now: float) -> bool:
        """Whether `take_data` would return more right now (after a take that stopped short)."""
        return False

    def wrote(self, data: Out, n: int, now: float) -> None:
        """`data` from `take_out` went out up to `n` bytes; the rest waits in the outbox."""
        self.bytes_sent += n
        self.messages_sent += 1
        self.last_send_s = now
        if (isinstance(data, list) or n < len(data)) and (rest := unsent(data, n)):
            self.outbox += rest
            self._stall_at = now + self.stall_s
            self.process_event(Event.QUEUED)

    def sent(self, n: int, now: float) -> None:
        """The socket took the first `n` bytes of the outbox."""
        if n <= 0:
            return
        del self.outbox[:n]
        self.bytes_sent += n
        self.last_send_s = now
        if self.outbox:
            self._stall_at = now + self.stall_s  # progress: the reader is slow, not stalled
            return
        self._stall_at = math.inf
        self.process_event(Event.DRAINED)
        self._maybe_done()

    def _maybe_done(self) -> None:
        if (
            self.state is State.CLOSING
            and not self.outbox
            and self._ws.state is ConnectionState.CLOSED
        ):
            self.process_event(Event.CLOSE_DONE)

    # ------------------------------------------------------------------ closing

    def close(self, code: int, reason: str, now: float) -> None:
        """Start the close handshake with `code` (no-op once closing)."""
        if self.state in (State.CLOSING, State.CLOSED):
            return
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self.outbox += self._ws.send(CloseConnection(code=code, reason=short_reason(reason)))
        self._stall_at = min(self._stall_at, now + self.stall_s)
        self.process_event(Event.CLOSE_SENT)
        self._close_at = now + self.close_timeout_s

    def _fail(self, code: int, reason: str, now: float) -> None:
        """A protocol error: close frame with `code`, then ignore the peer."""
        self.close(code, reason, now)
        self._discard = True

    def connection_lost(self, reason: str = "") -> None:
        """The socket failed (reset, broken pipe): nothing more can pass."""
        if self.close_code is None:
            self.close_code, self.close_reason = 1006, reason
        self.process_event(Event.LOST)

    # ------------------------------------------------------------------ time

    def timer(self, now: float) -> None:
        """Whatever is due at `now`: the stall limit, the end of the wait for a close frame."""
        if self.state is State.CLOSED:
            return
        if self.outbox and now >= self._stall_at:
            if self.state is not State.CLOSING:
                self.close_code = 1008
                self.close_reason = f"stalled: no data accepted for {self.stall_s:g} s"
            self.aborted = True  # a close frame cannot pass a full buffer: reset TCP
            self.process_event(Event.LOST)
        elif self.state is State.CLOSING and now >= self._close_at:
            self.process_event(Event.CLOSE_DONE)

    def next_deadline(self, now: float) -> float:
        """When `timer` has something to do (math.inf: never, until something happens)."""
        deadline = self._stall_at if self.outbox else math.inf
        if self.state is _CLOSING:
            deadline = min(deadline, self._close_at)
        return deadline
