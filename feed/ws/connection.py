"""The trio shell around one accepted socket: the HTTP front, then the connection's machine.

One task per socket (`Connection.run`) reads and answers the handshake (`opening`), or plain
requests one after another while the client keeps the connection alive. Once open,
the socket has two tasks in the connection's own nursery (`pump`), and neither cancels the
other's scopes: the writer (the connection's task itself) owns the socket's writes, waits for
the socket to take a backlog and wakes at `core.next_deadline(now)`; the reader feeds what it
reads to the machine and kicks the writer with an event.

The generator may send a subscriber's data itself (`deliver`) while the machine is IDLE: one
non-blocking `send()` and no task switch, never concurrent with the writer's sends (there is no
await between them); whatever has to wait goes to the writer. Every way a connection ends goes
through `_finish`: the socket is released (with a reset for a stalled reader), the slot freed,
the machine detached, one log line. An exception in one connection is logged with its traceback
and closes it with 1011; it never reaches the server. Imports neither `server.py` nor any third
party's private attribute.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace

import trio

from tickwire.feed import oplog
from tickwire.feed.ws import http, opening, pump
from tickwire.feed.ws.registry import Registry
from tickwire.feed.ws.transport import SocketTransport, TLSTransport, Transport
from tickwire.feed.ws.websocket import State, WebSocketCore

log = logging.getLogger("tickwire.server")
# A kept-alive connection's next request must arrive within this (browsers and HTTP clients
# reuse within seconds; Apache's KeepAliveTimeout), or the request deadline if shorter.
KEEP_ALIVE_S = 5.0

# The core an accepted upgrade gets: (accept, wake, now) -> core, or a refusal (HTTP status)
# decided before the 101 is sent (a venue path that names no valid stream).
CoreFactory = Callable[[http.Accept, Callable[[], None], float], "WebSocketCore | http.Refuse"]


@dataclass(eq=False, slots=True)
class Shell:
    """What every connection of one server shares."""

    policy: http.Policy
    make_core: CoreFactory
    registry: Registry[Connection]
    nursery: trio.Nursery  # the server's: each connection's task runs here
    woken: list[Connection]  # connections the hub woke; the generator delivers to them
    ssl_context: ssl.SSLContext | None = None
    on_refused: Callable[[], None] = lambda: None
    on_open: Callable[[], None] = lambda: None
    on_close: Callable[[Connection], None] = lambda conn: None  # after the socket's release


class Connection:
    """One accepted socket, from its first byte to its release."""

    __slots__ = (
        "_ip_counted",
        "_refuse",
        "_shell",
        "_signals",
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
        made = (
            decision
            if isinstance(decision, http.Refuse)
            else shell.make_core(replace(decision, peer=self.ip), self.wake, now)
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

    async def _live(self) -> None:
        """The open connection: the reader in a child task, the writer in this one."""
        core, transport, signals = self.core, self.transport, self._signals
        assert core is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump.read, core, transport, signals)
            await pump.write(core, transport, signals)  # if it raises, the reader is cancelled
            signals.stop(transport)  # CLOSED: `_finish` closes the socket right after

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

    def wake(self) -> None:
        """The hub has news for this connection (called in the generator's task)."""
        self._shell.woken.append(self)

    def deliver(self, now: float) -> None:
        """In the generator's task: send pending data now if the machine is IDLE; hand
        anything that must wait to the writer. Never raises, never waits."""
        core, signals = self.core, self._signals
        if core is None or signals.writing or core.state is State.CLOSED:
            return
        if core.state is not State.IDLE:
            if core.outbox:
                signals.kick()  # e.g. a close decided in the generator's task (venue overflow)
            return
        try:
            if not pump.send_now(core, self.transport, now) or core.state is not State.IDLE:
                signals.kick()
            elif core.next_deadline(now) < signals.parked_until:
                signals.kick()  # throttled data is due before the writer's alarm
        except Exception as exc:  # the writer raises it: 1011 with a traceback
            signals.failure = exc
            signals.kick()

    # ------------------------------------------------------------------ ending

    def close(self, code: int, reason: str) -> None:
        """Start closing with `code` (server shutdown); the writer finishes it."""
        core = self.core
        if core is None or core.state is State.CLOSED:
            return
        core.close(code, reason, trio.current_time())
        self._signals.kick()

    def _finish(self) -> None:
        """The one way out: release the socket and the slot, leave the hub, one log line."""
        shell, core = self._shell, self.core
        was_open = self in shell.registry.open
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
        if core is not None:
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
