"""The two loops that move an open connection's bytes, and the signals between them.

`write` is the one task that waits to write to a socket: it sends what the connection's machine
queued, waits for the socket to take a backlog, and wakes at `core.next_deadline(now)` for the
machine's timers (heartbeats, throttled data, the stall limit, the close handshake). `read`
feeds what it reads to the machine and `kick`s the writer. Neither cancels a scope of the other:
they signal with events (`Signals`), and the writer's exit ends the reader's wait with
ClosedResourceError (trio's notify_closing, then the socket is closed). `send_now` is the
non-blocking send they share with the generator, which may call it while the machine is IDLE.
"""

from __future__ import annotations

import contextlib
import math

import trio

from tickwire.feed.ws.opening import shutdown_write
from tickwire.feed.ws.transport import Transport
from tickwire.feed.ws.websocket import HIGH_WATER, State, WebSocketCore


class Signals:
    """What the reader, the writer and the generator tell each other about one connection."""

    __slots__ = ("failure", "parked", "parked_until", "room", "shut", "writing")

    def __init__(self) -> None:
        self.failure: Exception | None = (
            None  # raised in the generator's task: the writer raises it
        )
        self.parked: trio.Event | None = None  # the writer waits for this (set: look again)
        self.parked_until = math.inf  # ...or until this deadline
        self.room: trio.Event | None = None  # the reader waits for the outbox to drain
        self.shut = False  # our side's FIN is out (after a protocol error's close frame)
        # The writer has bytes to push (a backlog, or a reader behind catching up): until it
        # parks again, the generator leaves the connection to it, as it did to the flusher.
        self.writing = False

    def kick(self) -> None:
        """Make the writer look at the machine again (if it waits for that)."""
        if self.parked is not None:
            self.parked.set()

    def stop(self, transport: Transport) -> None:
        """The writer is done: whatever the reader waits for ends now."""
        if self.room is not None:
            self.room.set()
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


async def read(core: WebSocketCore, transport: Transport, signals: Signals) -> None:
    """Until the machine is CLOSED or the writer is done: bytes in, the writer kicked."""
    while core.state is not State.CLOSED:
        if len(core.outbox) > HIGH_WATER:
            # Replies pile up unread: stop reading until the writer drains them.
            room = signals.room = trio.Event()
            signals.kick()
            await room.wait()
            signals.room = None
            continue
        if core.held:  # requests read but not handled until their replies had room
            await trio.lowlevel.checkpoint()  # one batch of them per scheduler turn
            core.resume(trio.current_time())
            signals.kick()
            continue
        try:
            await transport.wait_readable()
            data = transport.recv_nowait()
        except trio.ClosedResourceError:
            return
        except OSError as exc:
            core.connection_lost(f"reset: {exc.strerror or exc}")
            data = None
        if data is not None:
            core.receive_data(data, trio.current_time())
        signals.kick()


async def write(core: WebSocketCore, transport: Transport, signals: Signals) -> None:
    """Until the machine is CLOSED: send, wait for room or a kick, run the machine's timers."""
    while True:
        if signals.failure is not None:
            failure, signals.failure = signals.failure, None
            raise failure
        now = trio.current_time()
        done = send_now(core, transport, now)
        if core.state is State.CLOSED:
            return
        if signals.room is not None and len(core.outbox) <= HIGH_WATER:
            signals.room.set()
        if core.wants_eof and not signals.shut:
            signals.shut = True
            shutdown_write(transport)
        deadline = core.next_deadline(now)
        with trio.move_on_at(deadline) as scope:
            if done:
                parked = signals.parked = trio.Event()
                signals.parked_until, signals.writing = deadline, False
                await parked.wait()
            else:  # a backlog, or more data for a reader behind: one message per I/O turn
                signals.writing = True
                await transport.wait_writable()
        signals.parked, signals.parked_until = None, math.inf
        if scope.cancelled_caught:
            core.timer(trio.current_time())
