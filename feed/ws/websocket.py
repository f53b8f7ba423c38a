"""One server-side WebSocket connection, sans-IO: bytes in, an outbox and deadlines out.

Modelled on h11's `_state.py`: the connection's states and every transition between them are the
one table `TRANSITIONS` below, and nothing changes `state` except `_to(event)`, which refuses a
transition the table does not list. The states are also the hand-off between the connection's own
task and the generator's:

- IDLE: the outbox is empty; whoever has data (the generator, for a subscriber) may frame it and
  send it right away with one non-blocking `send()`.
- BACKLOG: bytes wait in the outbox for the socket; only the connection's flusher sends, in order.
- CLOSING: our close frame is queued or sent; no more data, waiting for the peer's close frame.
- CLOSED: done; the shell releases the socket.

wsproto parses incoming frames (fragmentation, UTF-8, control frames, the close handshake) and
writes control and close frames; protocol errors answer with a close frame (1002, 1007, 1009)
before TCP closes. Every frame the client sends (data, continuation, ping, pong, empty or not)
costs one token of `FrameBudget`: a client that floods frames is closed with 1008 before it
costs the others their share of the CPU. Data frames are written here (`frame`): final,
unmasked, no extension is ever negotiated, so they are what wsproto would have written,
without its per-message cost. No trio, no socket, no clock: time comes in as `now`
(monotonic seconds).
"""

from __future__ import annotations

import math
import struct
from enum import Enum

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)

OP_TEXT = 0x1
OP_BINARY = 0x2
_H16 = struct.Struct("!BBH")
_H64 = struct.Struct("!BBQ")

# Frames a client may send: 100 a second (Coinbase's limit on client messages), in bursts of
# 200. A request is one frame; a client fragmenting a 64 KiB request into 1 KiB frames, or
# answering every ping, stays far below it.
FRAMES_PER_S = 100.0
FRAMES_BURST = 200


class FrameBudget:
    """A token bucket over the frames a client sends (monotonic seconds)."""

    __slots__ = ("_last_s", "_tokens", "burst", "rate_per_s")

    def __init__(self, now: float, rate_per_s: float = FRAMES_PER_S, burst: int = FRAMES_BURST):
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = float(burst)
        self._last_s = now

    def take(self, now: float) -> bool:
        """One frame at `now`: False once the client has spent the budget."""
        elapsed = max(0.0, now - self._last_s)
        self._last_s = now
        tokens = min(float(self.burst), self._tokens + elapsed * self.rate_per_s)
        if tokens < 1.0 - 1e-9:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        return True


# Replies waiting in the outbox past this mean a client that sends requests (or pings) and does
# not read: the shell stops reading its socket until the outbox drains (TCP backpressure).
HIGH_WATER = 256 * 1024


def frame_header(length: int, opcode: int) -> bytes:
    """The header of one final, unmasked frame carrying `length` payload bytes (RFC 6455 5.2)."""
    first = 0x80 | opcode
    if length < 126:
        return bytes((first, length))
    if length < 1 << 16:
        return _H16.pack(first, 126, length)
    return _H64.pack(first, 127, length)


def frame(payload: bytes, opcode: int) -> bytes:
    return frame_header(len(payload), opcode) + payload


class State(Enum):
    IDLE = "idle"
    BACKLOG = "backlog"
    CLOSING = "closing"
    CLOSED = "closed"


class Event(Enum):
    QUEUED = "queued"  # bytes were added to the outbox
    DRAINED = "drained"  # the outbox is empty again
    CLOSE_SENT = "close_sent"  # our close frame is in the outbox (our close, or our answer)
    CLOSE_DONE = "close_done"  # close frames crossed, or the wait for the peer's timed out
    LOST = "lost"  # TCP is gone or must go now: EOF, reset, a stalled reader


_S, _E = State, Event
TRANSITIONS: dict[State, dict[Event, State]] = {
    _S.IDLE: {_E.QUEUED: _S.BACKLOG, _E.CLOSE_SENT: _S.CLOSING, _E.LOST: _S.CLOSED},
    _S.BACKLOG: {
        _E.QUEUED: _S.BACKLOG,
        _E.DRAINED: _S.IDLE,
        _E.CLOSE_SENT: _S.CLOSING,
        _E.LOST: _S.CLOSED,
    },
    _S.CLOSING: {
        _E.QUEUED: _S.CLOSING,
        _E.DRAINED: _S.CLOSING,
        _E.CLOSE_DONE: _S.CLOSED,
        _E.LOST: _S.CLOSED,
    },
    _S.CLOSED: {_E.LOST: _S.CLOSED, _E.DRAINED: _S.CLOSED},
}


class TransitionError(RuntimeError):
    """A bug: something asked for a transition `TRANSITIONS` does not allow."""


class WebSocketCore:
    """The WebSocket layer of one accepted connection, after the HTTP handshake.

    Subclasses decide what a complete message means (`_on_message`) and may offer data
    (`take_data`). The shell sends `outbox` and reports with `sent(n, now)`, feeds what it reads
    to `receive_data(data, now)` (b"" at EOF), and calls `timer(now)` at `next_deadline(now)`.
    """

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

    def _to(self, event: Event) -> None:
        new = TRANSITIONS[self.state].get(event)
        if new is None:
            raise TransitionError(f"{event.value} is not allowed in state {self.state.value}")
        self.state = new

    @property
    def wants_eof(self) -> bool:
        """Our close frame is out after a protocol error: the shell may shut down writing."""
        return self._discard and self.state is State.CLOSING and not self.outbox

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes read from the socket; b"" means the peer closed TCP."""
        if self.state is State.CLOSED:
            return
        if not data:
            if self.close_code is None:
                self.close_code = 1006  # RFC 6455 7.1.5: closed without a close frame
            self._to(Event.LOST)
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
            self._to(Event.CLOSE_SENT)
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
        self._to(Event.QUEUED)
        self.messages_sent += message

    def take_data(self, now: float) -> bytes | None:
        """A data frame to send now, if IDLE and there is one; the caller sends it whole or
        hands the rest back with `wrote`."""
        return None

    def data_waiting(self, now: float) -> bool:
        """Whether `take_data` would return more right now (after a take that stopped short)."""
        return False

    def wrote(self, data: bytes, n: int, now: float) -> None:
        """`data` from `take_data` went out up to `n` bytes; the rest waits in the outbox."""
        self.bytes_sent += n
        self.messages_sent += 1
        self.last_send_s = now
        if n < len(data):
            self.outbox += memoryview(data)[n:]
            self._stall_at = now + self.stall_s
            self._to(Event.QUEUED)

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
        self._to(Event.DRAINED)
        self._maybe_done()

    def _maybe_done(self) -> None:
        if (
            self.state is State.CLOSING
            and not self.outbox
            and self._ws.state is ConnectionState.CLOSED
        ):
            self._to(Event.CLOSE_DONE)

    # ------------------------------------------------------------------ closing

    def close(self, code: int, reason: str, now: float) -> None:
        """Start the close handshake with `code` (no-op once closing)."""
        if self.state in (State.CLOSING, State.CLOSED):
            return
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self.outbox += self._ws.send(CloseConnection(code=code, reason=_short(reason)))
        self._stall_at = min(self._stall_at, now + self.stall_s)
        self._to(Event.CLOSE_SENT)
        self._close_at = now + self.close_timeout_s

    def _fail(self, code: int, reason: str, now: float) -> None:
        """A protocol error: close frame with `code`, then ignore the peer."""
        self.close(code, reason, now)
        self._discard = True

    def connection_lost(self, reason: str = "") -> None:
        """The socket failed (reset, broken pipe): nothing more can pass."""
        if self.close_code is None:
            self.close_code, self.close_reason = 1006, reason
        self._to(Event.LOST)

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
            self._to(Event.LOST)
        elif self.state is State.CLOSING and now >= self._close_at:
            self._to(Event.CLOSE_DONE)

    def next_deadline(self, now: float) -> float:
        """When `timer` has something to do (math.inf: never, until something happens)."""
        deadline = self._stall_at if self.outbox else math.inf
        if self.state is State.CLOSING:
            deadline = min(deadline, self._close_at)
        return deadline


def _short(reason: str) -> str:
    """A close reason fits the 123 bytes a close frame allows."""
    data = reason.encode()
    return reason if len(data) <= 123 else data[:120].decode(errors="ignore") + "..."
