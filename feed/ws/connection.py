"""The trio shell around one accepted socket: the HTTP front, then a WebSocket core.

One task per socket (`Connection.run`): it reads the handshake (trying a read before waiting,
so that a client that sent its request with its SYN-ACK is answered in one scheduler turn),
then reads frames, lets the core handle them and sends what the core queued with non-blocking
sends, waking at `core.next_deadline(now)` for heartbeats, throttled data and the close
handshake. Only while bytes wait for a full socket, or data for a reader behind (the hub hands
out at most `max_take` records a message), does a second task exist, the flusher: it sends one
message per turn of the scheduler until the socket is full or the reader has caught up.

The generator sends a subscriber's data itself (`deliver`) while the core is IDLE: one non-blocking
`send()`, no task switch. Every way a connection ends goes through `_finish`: the socket is
released (with a reset for a stalled reader), the slot freed, the hub detached, one log line.
An exception in one connection is logged with its traceback and closes it with 1011; it never
reaches the server. Imports neither `server.py` nor any third party's private attribute.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace

import trio

from tickwire.feed import oplog
from tickwire.feed.ws import http
from tickwire.feed.ws.registry import Registry
from tickwire.feed.ws.transport import SocketTransport, TLSTransport, Transport
from tickwire.feed.ws.websocket import HIGH_WATER, State, WebSocketCore

log = logging.getLogger("tickwire.server")

# The core an accepted upgrade gets: (accept, wake, now) -> core, or a refusal (HTTP status)
# decided before the 101 is sent (a venue path that names no valid stream).
CoreFactory = Callable[[http.Accept, Callable[[], None], float], "WebSocketCore | http.Refuse"]


@dataclass(eq=False, slots=True)
class Shell:
    """What every connection of one server shares."""

    policy: http.Policy
    make_core: CoreFactory
    registry: Registry[Connection]
    nursery: trio.Nursery  # flushers run here
    woken: list[Connection]  # connections the hub woke; the generator delivers to them
    ssl_context: ssl.SSLContext | None = None
    on_refused: Callable[[], None] = lambda: None
    on_open: Callable[[], None] = lambda: None
    on_close: Callable[[Connection], None] = lambda conn: None  # after the socket's release


class Connection:
    """One accepted socket, from its first byte to its release."""

    __slots__ = (
        "_drained",
        "_failure",
        "_flushing",
        "_ip_counted",
        "_refuse",
        "_request_scope",
        "_scope",
        "_shed",
        "_shell",
        "_shut",
        "core",
        "encoding",
        "ip",
        "opened_s",
        "peer",
        "route",
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
        self._scope: trio.CancelScope | None = None
        self._flushing = False
        self._failure: Exception | None = None
        self._drained: trio.Event | None = None
        self._shut = False
        self._refuse = refuse
        self._ip_counted = refuse is None
        self._shed = False
        self._request_scope = trio.CancelScope()
        if refuse is None:
            self._request_scope.deadline = shell.registry.handshake_started(self, self.opened_s)

    def hurry(self, timeout_s: float) -> None:
        """Under pressure: the request must arrive within `timeout_s` of the accept."""
        deadline = self.opened_s + timeout_s
        if deadline < self._request_scope.deadline:
            self._request_scope.deadline = deadline

    def release_slot(self) -> None:
        """Shed (the registry made room for a newer socket): the slot is free now, the
        socket is closed by this connection's task as soon as it runs."""
        self._shed = True
        self._shell.registry.release(self.ip, per_ip=self._ip_counted)
        self._request_scope.cancel()

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
        shell, transport, registry = self._shell, self.transport, self._shell.registry
        if self._refuse is not None:
            await self._refuse_now(self._refuse, trio.current_time())
            return False
        front = http.HttpFront(shell.policy, self.ip)
        decision: http.Accept | http.Refuse | None = None
        try:
            with self._request_scope:
                while decision is None:
                    try:
                        data = transport.recv_nowait()
                    except OSError:
                        return False
                    if data is None:
                        await transport.wait_readable()
                        continue
                    decision = front.receive_data(data)
        finally:
            registry.handshake_ended(self)
        now = trio.current_time()
        if decision is None or self._shed:  # shed before its task ran: its slot is gone
            if self._shed:
                registry.note_refused("shed", self.peer, "no request yet, room for a newer", now)
            else:
                waited = now - self.opened_s
                log.debug("client %s: no request within %.1f s", self.peer, waited)
            return False
        over_ip = registry.max_per_ip and registry.per_ip[self.ip] > registry.max_per_ip
        if isinstance(decision, http.Accept) and over_ip:
            decision = http.refusal(
                429,
                f"over --max-connections-per-ip ({registry.max_per_ip})",
                f"at most {registry.max_per_ip} connections per address; retry later\n",
            )
        if isinstance(decision, http.Accept):
            decision = replace(decision, peer=self.ip)
        made = (
            decision
            if isinstance(decision, http.Refuse)
            else shell.make_core(decision, self.wake, now)
        )
        if isinstance(made, http.Refuse):
            await self._refuse_now(made, now)
            return False
        assert isinstance(decision, http.Accept)
        core = self.core = made
        self.route, self.encoding = decision.route, decision.subprotocol or ""
        if not await self._send_all(decision.response):
            core.connection_lost("gone during the handshake")
            return False
        registry.make_room()
        if registry.held - 1 >= registry.max_connections:
            shell.on_refused()
            registry.note_refused(
                "close 1013", self.peer, f"at --max-connections ({registry.max_connections})", now
            )
            core.close(
                1013,
                f"server at its connection limit ({registry.max_connections}); retry later",
                now,
            )
            self.encoding = ""
        else:
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
        if decision.trailing:
            core.receive_data(decision.trailing, now)
        return True

    async def _refuse_now(self, decision: http.Refuse, now: float) -> None:
        shell = self._shell
        if decision.upgrade:
            shell.on_refused()
            shell.registry.note_refused(f"HTTP {decision.status}", self.peer, decision.reason, now)
        elif decision.status:
            log.debug("client %s: HTTP %d, %s", self.peer, decision.status, decision.reason)
        if decision.response and await self._send_all(decision.response):
            await self._linger()

    async def _send_all(self, data: bytes) -> bool:
        """A handshake response: sent now, or within a second; False if the peer is gone."""
        view, transport = memoryview(data), self.transport
        with trio.move_on_after(1.0):
            try:
                while True:
                    if view:
                        view = view[transport.send_nowait(view) :]
                    if not view and transport.flush_nowait():
                        return True
                    await transport.wait_writable()
            except (OSError, trio.ClosedResourceError):
                return False
        return False

    async def _linger(self) -> None:
        """After a refusal: end our side (FIN), then wait a little for the peer's, so that
        closing with its unread bytes in our buffer cannot reset the answer away."""
        transport = self.transport
        _shutdown_write(transport)
        with trio.move_on_after(1.0):
            for _ in range(16):  # at most 1 MiB read and dropped
                try:
                    data = transport.recv_nowait()
                except OSError:
                    return
                if data == b"":
                    return
                if data is None:
                    await transport.wait_readable()

    async def _live(self) -> None:
        core, transport = self.core, self.transport
        assert core is not None
        self._pump(trio.current_time())
        while core.state is not State.CLOSED:
            if self._failure is not None:
                failure, self._failure = self._failure, None
                raise failure
            if self._flushing and len(core.outbox) > HIGH_WATER:
                # Replies pile up unread: stop reading until the flusher drains them.
                self._drained = trio.Event()
                await self._drained.wait()
                continue
            if core.held:  # requests read but not handled until their replies had room
                await trio.lowlevel.checkpoint()  # one batch of them per scheduler turn
                now = trio.current_time()
                core.resume(now)
                self._pump(now)
                continue
            if core.wants_eof and not self._shut:
                self._shut = True
                _shutdown_write(transport)
            with trio.CancelScope(deadline=core.next_deadline(trio.current_time())) as scope:
                self._scope = scope
                await transport.wait_readable()
            self._scope = None
            now = trio.current_time()
            if scope.cancelled_caught:
                core.timer(now)
                self._pump(now)
                continue
            try:
                data = transport.recv_nowait()
            except OSError as exc:
                core.connection_lost(f"reset: {exc.strerror or exc}")
                break
            if data is not None:
                core.receive_data(data, now)
                self._pump(now)

    async def _after_failure(self) -> None:
        core = self.core
        if core is None:
            return
        try:
            now = trio.current_time()
            core.close(1011, "internal server error", now)
            self._pump(now)
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
        """In the generator's task: send pending data now if the core is IDLE; else let the
        connection's deadline cover it (throttle). Never raises, never waits."""
        core = self.core
        if core is None or self._flushing:
            return
        if core.state is not State.IDLE:
            if core.state is State.CLOSING and core.outbox:
                self._pump(now)  # a close decided in the generator's task (a venue's overflow)
                self._poke()
            return
        try:
            self._pump(now)
            if core.state is State.IDLE and self._scope is not None:
                deadline = core.next_deadline(now)
                if deadline < self._scope.deadline:
                    self._scope.deadline = deadline  # throttled data is due before the alarm
        except Exception as exc:  # the connection's task raises it: 1011 with a traceback
            self._failure = exc
            self._poke()

    def _pump(self, now: float) -> None:
        """Send what can go without waiting; the flusher takes over the rest."""
        if self._flushing:
            return
        if not self._send_now(now):
            self._flushing = True
            self._shell.nursery.start_soon(self._flusher)
        elif self.core is not None and self.core.state is State.CLOSED:
            self._poke()

    def _send_now(self, now: float) -> bool:
        """Send the outbox, then one data message if the socket takes it; True if all went.

        False also when more data waits (a reader far behind, or resuming, catches up in
        messages of at most the hub's `max_take`): the flusher sends the rest, one message per
        turn of the scheduler, so that neither the generator nor other connections wait."""
        core, transport = self.core, self.transport
        assert core is not None
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
            self._poke()
            return True

    async def _flusher(self) -> None:
        core, transport = self.core, self.transport
        assert core is not None
        try:
            while core.state is not State.CLOSED:
                with trio.CancelScope(deadline=core.next_deadline(trio.current_time())) as scope:
                    await transport.wait_writable()
                now = trio.current_time()
                if scope.cancelled_caught:
                    core.timer(now)
                elif self._send_now(now):
                    break
                if self._drained is not None and len(core.outbox) <= HIGH_WATER:
                    self._drained.set()
        except trio.ClosedResourceError:
            pass
        except Exception as exc:
            self._failure = exc
        finally:
            self._flushing = False
            if self._drained is not None:
                self._drained.set()
                self._drained = None
            self._poke()

    def _poke(self) -> None:
        """Make the connection's task look at its core again."""
        if self._scope is not None:
            self._scope.cancel()

    # ------------------------------------------------------------------ ending

    def close(self, code: int, reason: str) -> None:
        """Start closing with `code` (server shutdown); the connection's task finishes it."""
        core = self.core
        if core is None or core.state is State.CLOSED:
            return
        now = trio.current_time()
        core.close(code, reason, now)
        if not self._flushing:
            self._pump(now)
        self._poke()

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
        if not self._shed:
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


def _shutdown_write(transport: Transport) -> None:
    """After a protocol error's close frame: FIN, so the peer sees the end without a reset."""
    if isinstance(transport, TLSTransport):
        return
    with contextlib.suppress(OSError):
        transport.sock.shutdown(socket.SHUT_WR)


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
    limit = registry.max_per_ip
    decision = http.refusal(
        429,
        f"over --max-connections-per-ip ({limit})",
        f"at most {limit} connections per address; retry later\n",
    )
    return Connection(sock, addr, shell, refuse=decision)


__all__ = ["Connection", "Registry", "Shell", "admit"]
