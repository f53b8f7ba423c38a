"""The loops that move an open connection's bytes, and the signals between them.

`read` is the connection's own task once it is open, and for an idle connection its only one: it
feeds what it reads to the machine, wakes at `core.next_deadline(now)` for the machine's timers
(heartbeats, the close handshake) and sends what goes without waiting. `write` exists only while
there is something to wait for that the reader's wait does not cover: bytes for a socket that is
full, a reader behind catching up, or a deadline before the reader's alarm (throttled data, the
wait for a close frame after a shutdown). While it exists it is the one task that sends; it ends
as soon as the socket took everything and the reader's alarm covers the machine's next deadline.

Neither cancels a scope of the other: they signal with events and flags (`Signals`). When the
machine is CLOSED outside the reader, `stop` ends the reader's wait with ClosedResourceError
(trio's notify_closing; the socket is closed right after). `send_now` is the non-blocking send
the reader, the writer and the generator share; only one of them calls it at a time (no await
between its sends), and never anyone but the writer while the writer waits for the socket.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import trio

from tickwire.feed.ws.opening import shutdown_write
from tickwire.feed.ws.transport import Transport
from tickwire.feed.ws.websocket import HIGH_WATER, State, WebSocketCore


class Signals:
    """What the reader, the writer and the generator tell each other about one connection."""

    __slots__ = ("ended", "parked", "parked_until", "reader_until", "room", "shut", "writer")

    def __init__(self) -> None:
        self.writer = False  # a writer task exists (started, running or parked)
        self.parked: trio.Event | None = None  # the writer waits for this (set: look again)...
        self.parked_until = math.inf  # ...or until this deadline
        # The reader looks at the machine again by then by itself (its alarm); -inf: at once.
        self.reader_until = -math.inf
        self.room: trio.Event | None = None  # the reader waits for the outbox to drain
        self.shut = False  # our side's FIN is out (after a protocol error's close frame)
        self.ended = False  # the connection's task is done: a writer left behind stops

    @property
    def writing(self) -> bool:
        """The writer exists and is not parked: it waits for the socket, or is about to run.
        Until it parks again, the generator leaves the connection to it."""
        return self.writer and self.parked is None

    def looks_by(self) -> float:
        """When the reader or the writer looks at the machine by itself next."""
        if not self.writer:
            return self.reader_until
        writer_until = self.parked_until if self.parked is not None else -math.inf
        return min(self.reader_until, writer_until)

    def kick(self) -> None:
        """Make a parked writer look at the machine again."""
        if self.parked is not None:
            self.parked.set()

    def stop(self, transport: Transport) -> None:
        """The connection is over (its machine CLOSED, or aborted): whatever the reader or a
        parked writer waits for ends now."""
        if self.room is not None:
            self.room.set()
        self.kick()
        with contextlib.suppress(OSError, ValueError):
            trio.lowlevel.notify_closing(transport.sock)


def send_now(core: WebSocketCore, transport: Transport, now: float) -> bool:
    """Send the outbox, then one data message if the socket takes it; True if all went.

    False also when more data waits (a reader far behind, or resuming, catches up in messages
    of at most the hub's `max_take`): the writer sends the rest, one message per turn of the
    scheduler, so that neither the generator nor other connections wait."""
    took = False
    try:
        while True:
            if core.outbox:
                core.sent(transport.send_nowait(core.outbox), now)
                if core.outbox:
                    return False
            elif not transport.flush_nowait():
                return False
            elif took:
                return not core.data_waiting(now)
            else:
                data = core.take_data(now)
                if data is None:
                    return True
                took = True
                core.wrote(data, transport.send_nowait(data), now)
    except (OSError, trio.ClosedResourceError) as exc:
        if core.state is not State.CLOSED:
            core.connection_lost(f"send failed: {getattr(exc, 'strerror', None) or exc}")
        return True


def pump(core: WebSocketCore, transport: Transport, signals: Signals, now: float) -> bool:
    """Send what goes now, unless the writer is at it; True if a writer is needed (bytes wait
    for the socket, or the machine's next deadline comes before anyone looks)."""
    if signals.writing or core.state is State.CLOSED:
        return False  # the writer sends everything queued, in order, as the socket takes it
    done = send_now(core, transport, now)
    if core.state is State.CLOSED:
        signals.stop(transport)
        return False
    if core.wants_eof and not signals.shut:
        signals.shut = True
        shutdown_write(transport)
    return not done or core.next_deadline(now) < signals.looks_by()


async def read(
    core: WebSocketCore, transport: Transport, signals: Signals, need_writer: Callable[[], None]
) -> None:
    """The connection's task, until the machine is CLOSED: bytes in, timers run, what goes now
    sent; `need_writer` starts the writer (or kicks it) for whatever must wait."""
    while True:
        signals.reader_until = -math.inf  # it looks at the machine now
        now = trio.current_time()
        if pump(core, transport, signals, now):
            need_writer()
        if core.state is State.CLOSED:
            return
        if len(core.outbox) > HIGH_WATER:
            # Replies pile up unread: stop reading until the writer drains them.
            room = signals.room = trio.Event()
            signals.reader_until = math.inf
            await room.wait()
            signals.room = None
            continue
        if core.held:  # requests read but not handled until their replies had room
            await trio.lowlevel.checkpoint()  # one batch of them per scheduler turn
            core.resume(trio.current_time())
            continue
        deadline = signals.reader_until = core.next_deadline(now)
        with trio.move_on_at(deadline) as scope:
            try:
                await transport.wait_readable()
            except trio.ClosedResourceError:  # `stop`: the machine is done, or the shell is
                return
        if scope.cancelled_caught:
            core.timer(trio.current_time())
            continue
        try:
            data = transport.recv_nowait()
        except OSError as exc:
            core.connection_lost(f"reset: {exc.strerror or exc}")
            continue
        if data is not None:
            core.receive_data(data, trio.current_time())


async def write(core: WebSocketCore, transport: Transport, signals: Signals) -> None:
    """While bytes wait for the socket, or the machine's next deadline comes before the
    reader's alarm: send, wait for room or a kick, run the machine's timers."""
    while not signals.ended:
        now = trio.current_time()
        done = send_now(core, transport, now)
        if core.state is State.CLOSED:
            signals.stop(transport)
            return
        if signals.room is not None and len(core.outbox) <= HIGH_WATER:
            signals.room.set()
            signals.reader_until = -math.inf  # it looks at the machine next
        if core.wants_eof and not signals.shut:
            signals.shut = True
            shutdown_write(transport)
        deadline = core.next_deadline(now)
        if done and deadline >= signals.reader_until:
            return  # the reader's own alarm covers the rest
        with trio.move_on_at(deadline) as scope:
            if done:
                parked = signals.parked = trio.Event()
                signals.parked_until = deadline
                await parked.wait()
            else:  # a backlog, or more data for a reader behind: one message per I/O turn
                await transport.wait_writable()
        signals.parked, signals.parked_until = None, math.inf
        if scope.cancelled_caught:
            core.timer(trio.current_time())
