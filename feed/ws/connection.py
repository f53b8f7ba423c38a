"""The trio shell around one accepted socket: the HTTP front, then the connection's machine.

One task per socket (`Connection.run`) reads and answers the handshake (`opening`), or plain
requests one after another while the client keeps the connection alive, then reads the open
connection (`pump.read`), waiting for nothing but its socket: an idle connection, however many
there are, costs one task, no nursery and no cancel scope. Its machine's timers are rung by the
server's one clock (`clock.Clock`, `on_timer`). Only while bytes wait for a full socket does a
second task exist, the writer (`pump.write`, in the server's nursery, started by `_step`): it is
then the one task that sends, and it ends when the socket took everything. No task cancels
another's scopes: they signal with events and flags.

The generator sends a subscriber's data itself (`deliver`) while the machine is IDLE and no
writer exists: one non-blocking `send()`, no task switch, as the clock does for heartbeats (no
await between anyone's sends). Every way a connection ends goes through `_finish`: the socket
released (reset for a stalled reader), the slot freed, a writer left behind stopped, the
machine detached, one log line. An exception in one connection is logged with its traceback
and closes it with 1011; it never reaches the server. Imports neither `server.py` nor any
third party's private attribute.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import socket
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

import trio

from tickwire.feed import oplog
from tickwire.feed.ws import http, opening, pump
from tickwire.feed.ws.clock import Clock
from tickwire.feed.ws.registry import Registry
from tickwire.feed.ws.transport import SocketTransport, TLSTransport, Transport
from tickwire.feed.ws.websocket import State, WebSocketCore

log = logging.getLogger("tickwire.server")
# A kept-alive connection's next request must arrive within this (browsers and HTTP clients
# reuse within seconds; Apache's KeepAliveTimeout), or the request deadline if shorter.
KEEP_ALIVE_S = 5.0
# Read for every message and timer: globals, no Enum lookups (~100 ns each on Python 3.11).
_IDLE, _CLOSED = State.IDLE, State.CLOSED

# The core an accepted upgrade gets: (accept, wake, now) -> core, or a refusal (HTTP status)
# decided before the 101 is sent (a venue path that names no valid stream).
CoreFactory = Callable[[http.Accept, Callable[[], None], float], "WebSocketCore | http.Refuse"]


@dataclass(eq=False, slots=True)
class Shell:
    """What every connection of one server shares."""

    policy: http.Policy
    make_core: CoreFactory
    registry: Registry[Connection]
    nursery: trio.Nursery  # the server's: each connection's task, its writer, the clock
    woken: list[Connection]  # connections the hub woke; the generator delivers to them
    ssl_context: ssl.SSLContext | None = None
    on_refused: Callable[[], None] = lambda: None
    on_open: Callable[[], None] = lambda: None
    on_close: Callable[[Connection], None] = lambda conn: None  # after the socket's release
    clock: Clock = field(init=False)  # rings every open connection's timers

    def __post_init__(self) -> None:
        self.clock = Clock(self.nursery)


class Connection:
    """One accepted socket, from its first byte to its release."""

    __slots__ = (
        "_ip_counted",
        "_refuse",
        "_shell",
        "_signals",
        "alarm",
        "core",
        "encoding",
        "ip",
        "opened_s",
        "peer",
        "request_by",
        "route",
        "shed",
        "transport",
    )

    def __init__(
        self,
        sock: socket.socket,
        addr: tuple[str, int],
        shell: Shell,
        *,
        refuse: http.Refuse | None = None,
    ) -> None:
        """`refuse`: answer this at once, without reading a request (over the per-IP cap);
        such a socket does not count against its address."""
        self._shell = shell
        self.ip = addr[0]
        self.peer = f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"
        self.transport: Transport = (
            SocketTransport(sock)
            if shell.ssl_context is None
            else TLSTransport(sock, shell.ssl_context)
        )
        self.core: WebSocketCore | None = None
        self.route = ""
        self.encoding = ""
        self.opened_s = trio.current_time()
        self._signals = pump.Signals()
        self.alarm = math.inf  # when the clock calls `on_timer`
        self._refuse = refuse
        self._ip_counted = refuse is None
        self.shed = False
        self.request_by = math.inf  # the request must have arrived by then
        if refuse is None:
            self.request_by = shell.registry.handshake_started(self, self.opened_s)

    def hurry(self, timeout_s: float) -> None:
        """Under pressure: the request must arrive within `timeout_s` of the accept (the
        handshake looks at this deadline when it wakes, at the latest `timeout_s` in)."""
        self.request_by = min(self.request_by, self.opened_s + timeout_s)

    def release_slot(self) -> None:
        """Shed (the registry made room for a newer socket): the slot is free now, the
        socket is closed by this connection's task as soon as it runs."""
        self.shed = True
        self._shell.registry.release(self.ip, per_ip=self._ip_counted)
        # Wakes the handshake's wait with ClosedResourceError; it waits no more: `_finish`
        # closes the socket next (trio: notify_closing, then close).
        with contextlib.suppress(OSError, ValueError):
            trio.lowlevel.notify_closing(self.transport.sock)

    # ------------------------------------------------------------------ the task

    async def run(self) -> None:
        """The socket's whole life; never raises anything but Cancelled."""
        try:
            if await self._handshake():
                await self._live()
        except Exception:  # the connection's edge: one bug never reaches the server
            log.exception("client %s: internal error, closing with 1011", self.peer)
            await self._after_failure()
        finally:
            self._finish()

    async def _handshake(self) -> bool:
        """Read the request and answer it; True once the connection is open (or closing)."""
        shell, registry = self._shell, self._shell.registry
        if self._refuse is not None:
            await self._refuse_now(self._refuse, trio.current_time())
            return False
        front = http.HttpFront(shell.policy, self.ip)
        decision = await self._read_request(front)
        while isinstance(decision, http.Refuse) and decision.keep_alive and not self.shed:
            if not await opening.send_all(self.transport, decision.response):
                return False  # a plain answer: nothing to close but the socket
            log.debug("client %s: HTTP %d, %s", self.peer, decision.status, decision.reason)
            await trio.lowlevel.checkpoint()  # one answer a turn: pipelining cannot hog trio
            decision = front.next_request()  # pipelined: already here, answered in order
            if decision is None:  # idle: the next request by the same deadlines, sheddable
                now = self.opened_s = trio.current_time()
                self.request_by = min(registry.handshake_started(self, now), now + KEEP_ALIVE_S)
                decision = await self._read_request(front)
        now = trio.current_time()
        if decision is None or self.shed:  # shed before its task ran: its slot is gone
            if self.shed:
                registry.note_refused("shed", self.peer, "no request yet, room for a newer", now)
            else:
                waited = now - self.opened_s
                log.debug("client %s: no request within %.1f s", self.peer, waited)
            return False
        over_ip = registry.max_per_ip and registry.per_ip[self.ip] > registry.max_per_ip
        if isinstance(decision, http.Accept) and over_ip:
            decision = opening.per_ip_refusal(registry.max_per_ip)
        # The hub's news for it (every batch, in the generator's task): the list's own append,
        # bound to it, costs no Python frame (100 readers of a 1 ms market: 100k a second).
        wake = functools.partial(shell.woken.append, self)
        made = (
            decision
            if isinstance(decision, http.Refuse)
            else shell.make_core(replace(decision, peer=self.ip), wake, now)
        )
        if isinstance(made, http.Refuse):
            await self._refuse_now(made, now)
            return False
        assert isinstance(decision, http.Accept)
        self.core = made
        self.route, self.encoding = decision.route, decision.subprotocol or ""
        if not await opening.send_all(self.transport, decision.response):
            made.connection_lost("gone during the handshake")
            return False
        self._open(made, now)
        if decision.trailing:
            made.receive_data(decision.trailing, now)
        return True

    async def _read_request(self, front: http.HttpFront) -> http.Accept | http.Refuse | None:
        registry = self._shell.registry
        try:
            return await opening.read_request(
                self.transport, front, self, registry.pressed_timeout_s
            )
        finally:
            registry.handshake_ended(self)

    def _open(self, core: WebSocketCore, now: float) -> None:
        """The 101 is out: start the machine, or close it with 1013 at the connection cap."""
        shell, registry = self._shell, self._shell.registry
        registry.make_room()
        if registry.held - 1 >= registry.max_connections:
            shell.on_refused()
            cap = registry.max_connections
            registry.note_refused("close 1013", self.peer, f"at --max-connections ({cap})", now)
            core.close(1013, f"server at its connection limit ({cap}); retry later", now)
            self.encoding = ""
            return
        registry.open.add(self)
        shell.on_open()
        core.start(now)
        log.info(
            "client %s connected to %s (%s, %s, handshake %.1f ms)",
            self.peer,
            self.route,
            self.encoding or "no subprotocol",
            oplog.counted(len(registry.open), "client"),
            (now - self.opened_s) * 1000,
        )

    async def _refuse_now(self, decision: http.Refuse, now: float) -> None:
        shell = self._shell
        if decision.upgrade:
            shell.on_refused()
            shell.registry.note_refused(f"HTTP {decision.status}", self.peer, decision.reason, now)
        elif decision.status:
            log.debug("client %s: HTTP %d, %s", self.peer, decision.status, decision.reason)
        if decision.response and await opening.send_all(self.transport, decision.response):
            await opening.linger(self.transport)

    def _live(self) -> Coroutine[Any, Any, None]:
        """The open connection: this task reads (the reader's coroutine itself, not one
        awaiting it: a frame less per idle connection); a writer comes and goes as needed."""
        assert self.core is not None
        return pump.read(self.core, self.transport, self._signals, self._step)

    async def _after_failure(self) -> None:
        core = self.core
        if core is None:
            return
        try:
            core.close(1011, "internal server error", trio.current_time())
            with trio.move_on_after(core.close_timeout_s):
                await self._live()
        except Exception:
            log.exception("client %s: internal error while closing", self.peer)
            core.aborted = True

    # ------------------------------------------------------------------ sending

    def _step(self, now: float) -> None:
        """After any change to the machine: send what goes now, start a writer for what must
        wait for the socket, and set the clock's alarm to the machine's next deadline."""
        core, signals = self.core, self._signals
        assert core is not None
        if pump.pump(core, self.transport, signals, now) and not signals.ended:
            signals.writer = True  # (`pump` asks for one only when there is none)
            self._shell.nursery.start_soon(self._write)
        if core.state is not _CLOSED:
            self._alarm(now)

    def _alarm(self, now: float) -> None:  # (and after each of the writer's sends)
        assert self.core is not None
        self._shell.clock.at(self, self.core.next_deadline(now))

    def on_timer(self, now: float) -> None:
        """In the clock's task: the machine's deadline came (a heartbeat, throttled data, the
        stall limit, the end of the close handshake). Never raises, never waits."""
        core, signals = self.core, self._signals
        if core is None or signals.ended or core.state is _CLOSED:
            return
        try:
            core.timer(now)  # may close it: stalled, or no close frame in time
            self._step(now)
        except Exception as exc:  # logged with its traceback: 1011
            self._failed(exc)

    async def _write(self) -> None:
        """The writer's task; a bug in it closes the connection with 1011, as in `run`."""
        assert self.core is not None
        failure = await pump.write(self.core, self.transport, self._signals, self._alarm)
        if failure is not None:
            self._failed(failure)

    def _failed(self, exc: Exception) -> None:
        """A bug in the writer, the clock's or the generator's call: logged with its traceback,
        the connection closes with 1011 (or is reset, if it was closing)."""
        log.error("client %s: internal error, closing with 1011", self.peer, exc_info=exc)
        core = self.core
        assert core is not None
        if core.state in (State.IDLE, State.BACKLOG):
            try:
                core.close(1011, "internal server error", trio.current_time())
                self._step(trio.current_time())
                return
            except Exception:
                log.exception("client %s: internal error while closing", self.peer)
        core.aborted = True
        self._signals.stop(self.transport)  # the reader ends; `_finish` resets the socket

    def deliver(self, now: float) -> None:
        """In the generator's task: send pending data now if the machine is IDLE; hand the
        rest of a message to the writer, and throttled data (or a close decided here: a
        venue's overflow) to the clock. Never raises, never waits."""
        core, signals = self.core, self._signals
        if core is None or signals.writer or core.state is _CLOSED:
            return
        if core.state is not _IDLE and not core.outbox:
            return
        try:
            self._step(now)
        except Exception as exc:  # logged with its traceback: 1011
            self._failed(exc)

    # ------------------------------------------------------------------ ending

    def close(self, code: int, reason: str) -> None:
        """Start closing with `code` (server shutdown); the reader and the clock finish it."""
        core = self.core
        if core is None or core.state is State.CLOSED:
            return
        now = trio.current_time()
        core.close(code, reason, now)
        self._step(now)  # the close frame, and the alarm for the end of the wait for the peer's

    def _finish(self) -> None:
        """The one way out: release the socket and the slot, leave the hub, one log line."""
        shell, core = self._shell, self.core
        was_open = self in shell.registry.open
        self._signals.ended = True  # a writer left behind stops (waiting: at the close below)
        if core is not None and core.state is not State.CLOSED:
            # Cancelled (the server stops) or failed while closing: a last close frame, if the
            # socket takes it now.
            try:
                core.close(1001, "server shutting down", trio.current_time())
                self.transport.send_nowait(core.outbox)
                self.transport.flush_nowait()
            except Exception:
                pass
        aborted = core is not None and core.aborted
        if aborted:
            self.transport.abort()
        else:
            self.transport.close()
        shell.registry.open.discard(self)
        shell.registry.handshake_ended(self)  # cancelled before its request came
        if not self.shed:
            shell.registry.release(self.ip, per_ip=self._ip_counted)
        if core is not None:
            try:
                core.detach()
            except Exception:  # a bug in leaving the hub is this connection's, not the server's
                log.exception("client %s: internal error while detaching", self.peer)
            shell.on_close(self)
        if was_open and core is not None:
            log.info(
                "client %s disconnected: code %s%s after %.1f s, %d messages (%s, %s)",
                self.peer,
                core.close_code if core.close_code is not None else 1006,
                f" ({core.close_reason})" if core.close_reason else "",
                trio.current_time() - self.opened_s,
                core.messages_sent,
                self.route,
                self.encoding or "no subprotocol",
            )


def admit(sock: socket.socket, addr: tuple[str, int], shell: Shell) -> Connection:
    """A socket just accepted: make room for it (shed the oldest handshakes that have not sent
    their request, from its address over the per-IP cap, from anyone past the connection cap
    and its headroom), hold its slot, and return its connection (`run` it in a task). Over the
    per-IP cap with no handshake of its address to shed, it is answered 429 without a read."""
    registry = shell.registry
    ip = addr[0]
    _, refuse = registry.to_shed(ip)
    registry.hold(ip, per_ip=not refuse)
    if not refuse:
        return Connection(sock, addr, shell)
    decision = opening.per_ip_refusal(registry.max_per_ip)
    return Connection(sock, addr, shell, refuse=decision)


__all__ = ["Connection", "Registry", "Shell", "admit"]
