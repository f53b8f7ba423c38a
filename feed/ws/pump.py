"""The loops that move an open connection's bytes, and the signals between them.

`read` is the connection's own task once it is open, and for an idle connection its only one:
it feeds what it reads to the machine and sends what goes without waiting. It waits for nothing
but the socket (no cancel scope): the machine's timers are rung by the server's clock
(`clock.Clock`). `write` exists only while bytes wait for a full socket (or a reader behind
catches up); while it exists it is the one task that sends, and it ends as soon as the socket
took everything.

Neither cancels a scope of the other: they signal with events and flags (`Signals`). When the
machine is CLOSED outside the reader, `stop` ends the reader's wait with ClosedResourceError
(trio's notify_closing; the socket is closed right after). `send_now` is the non-blocking send
the reader, the writer, the clock and the generator share; only one of them calls it at a time
(no await between its sends), and never anyone but the writer while the writer exists.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import trio

from tickwire.feed.ws.opening import shutdown_write
from tickwire.feed.ws.transport import Transport
from tickwire.feed.ws.websocket import HIGH_WATER, State, WebSocketCore

_CLOSED = State.CLOSED  # read for every message: one global, no Enum lookup (~100 ns)


class Signals:
    """What the reader, the writer and the generator tell each other about one connection."""

    __slots__ = ("ended", "room", "shut", "writer")

    def __init__(self) -> None:
        # A writer task exists (started or waiting for the socket): until it ends, the others
        # leave the socket to it.
        self.writer = False
        self.room: trio.Event | None = None  # the reader waits for the outbox to drain
        self.shut = False  # our side's FIN is out (after a protocol error's close frame)
        self.ended = False  # the connection's task is done: a writer left behind stops

    def stop(self, transport: Transport) -> None:
        """The connection is over (its machine CLOSED, or aborted): whatever the reader or the
        writer waits for ends now."""
        if self.room is not None:
            self.room.set()
        with contextlib.suppress(OSError, ValueError):
            trio.lowlevel.notify_closing(transport.sock)


def send_now(core: WebSocketCore, transport: Transport, now: float) -> bool:
    """Send the outbox, then one data message if the socket takes it; True if all went.

    False also when more data waits (a reader far behind, or resuming, catches up in messages
    of at most the hub's `max_take`): the writer sends the rest, one message per turn of the
    scheduler, so that neither the generator nor other connections wait. One message a turn
    also keeps a slow reader's backlog in the hub, where the lag bound sees it: sending its
    due messages together (up to 256 KiB a send, measured on the bench) cut the CPU per tick
    but moved that backlog into socket buffers, and latency p50/p99 grew 1.5-3x."""
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
                data = core.take_out(now)
                if data is None:
                    return True
                took = True
                if isinstance(data, list):
                    core.wrote(data, transport.send_parts_nowait(data), now)
                else:
                    core.wrote(data, transport.send_nowait(data), now)
    except (OSError, trio.ClosedResourceError) as exc:
        if core.state is not State.CLOSED:
            core.connection_lost(f"send failed: {getattr(exc, 'strerror', None) or exc}")
        return True


def closed(core: WebSocketCore) -> bool:
    """The machine is CLOSED."""
    return core.state is _CLOSED


def pump(core: WebSocketCore, transport: Transport, signals: Signals, now: float) -> bool:
    """Send what goes now, unless the writer is at it; True if a writer is needed. A CLOSED
    machine (here or before: the stall limit, a close handshake done) stops the tasks."""
    # A writer sends everything queued itself, in order, as the socket takes it. (`_CLOSED`
    # is typed State, not a literal: mypy does not narrow `core.state` on it.)
    done = signals.writer or core.state is _CLOSED or send_now(core, transport, now)
    if core.state is _CLOSED:
        signals.stop(transport)
        return False
    if core.wants_eof and not signals.shut:
        signals.shut = True
        shutdown_write(transport)
    return not done


async def read(
    core: WebSocketCore, transport: Transport, signals: Signals, step: Callable[[float], None]
) -> None:
    """The connection's task, until the machine is CLOSED: bytes in, and after each change
    `step(now)`: send what goes now, start a writer for the rest, set the clock's alarm."""
    while True:
        step(trio.current_time())
        if core.state is State.CLOSED:
            return
        if len(core.outbox) > HIGH_WATER:
            # Replies pile up unread: stop reading until the writer drains them.
            room = signals.room = trio.Event()
            await room.wait()
            signals.room = None
            continue
        if core.held:  # requests read but not handled until their replies had room
            await trio.lowlevel.checkpoint()  # one batch of them per scheduler turn
            core.resume(trio.current_time())
            continue
        try:
            await transport.wait_readable()
        except trio.ClosedResourceError:  # `stop`: the machine is done, or the shell is
            return
        try:
            data = transport.recv_nowait()
        except OSError as exc:
            core.connection_lost(f"reset: {exc.strerror or exc}")
            continue
        if data is not None:
            core.receive_data(data, trio.current_time())


async def write(
    core: WebSocketCore, transport: Transport, signals: Signals, alarm: Callable[[float], None]
) -> Exception | None:
    """The writer's task, while bytes wait for the socket: send as it takes them, one data
    message per turn for a reader behind (a checkpoint, not a wait, while the socket has
    room); `alarm(now)` after each send (the stall limit moves with progress). Returns a bug
    to report (the connection's edge, as in its task)."""
    try:
        while not signals.ended:
            now = trio.current_time()
            done = send_now(core, transport, now)
            if core.state is _CLOSED:
                signals.stop(transport)
                return None
            if signals.room is not None and len(core.outbox) <= HIGH_WATER:
                signals.room.set()
            if core.wants_eof and not signals.shut:
                signals.shut = True
                shutdown_write(transport)
            alarm(now)
            if done:
                return None
            if core.outbox or transport.backlog:
                await transport.wait_writable()  # the socket is full: wait for room
            else:  # data waits, not the socket: the others' turn, then the next message
                await trio.lowlevel.checkpoint()
    except trio.ClosedResourceError:  # the connection's task ended and closed the socket
        pass
    except Exception as exc:
        return exc
    finally:
        signals.writer = False
        if signals.room is not None:
            signals.room.set()  # the reader looks again (and starts a writer if need be)
    return None
