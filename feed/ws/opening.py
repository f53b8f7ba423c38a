"""The opening of one accepted socket, before any WebSocket: read its request by a deadline,
answer a refusal, and the socket-level helpers the connection's shell shares with it.

Trio shell code (it waits on the socket) with no state of its own: the connection
(`connection.Connection`) owns the socket and its deadlines; this module never imports it.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Protocol

import trio

from tickwire.feed.ws import http
from tickwire.feed.ws.transport import TLSTransport, Transport


class Waiting(Protocol):
    """What `read_request` needs of the connection that waits for its request."""

    opened_s: float  # accepted at (trio time)
    request_by: float  # the request must have arrived by then (`hurry` may bring it forward)
    shed: bool  # the registry gave its slot to a newer socket: stop now


async def read_request(
    transport: Transport, front: http.HttpFront, conn: Waiting, pressed_timeout_s: float
) -> http.Accept | http.Refuse | None:
    """Read until the HTTP front decides (None: no request in time, shed, or gone).

    Tries a read before waiting, so that a client that sent its request with its SYN-ACK is
    answered in one scheduler turn. Wakes at the pressed deadline at the latest, to see whether
    the deadline was shortened meanwhile; a shed socket's wait ends with ClosedResourceError.
    """
    check_at = conn.opened_s + pressed_timeout_s
    try:
        while not conn.shed:
            try:
                data = transport.recv_nowait()
            except OSError:
                return None
            if data is not None:
                decision = front.receive_data(data)
                if decision is not None:
                    return decision
                continue
            now = trio.current_time()
            if now >= conn.request_by:
                return None
            wake_at = conn.request_by if now >= check_at else min(conn.request_by, check_at)
            with trio.move_on_at(wake_at):
                await transport.wait_readable()
    except trio.ClosedResourceError:  # shed while waiting
        pass
    return None


def per_ip_refusal(limit: int) -> http.Refuse:
    return http.refusal(
        429,
        f"over --max-connections-per-ip ({limit})",
        f"at most {limit} connections per address; retry later\n",
    )


async def send_all(transport: Transport, data: bytes) -> bool:
    """A handshake response: sent now, or within a second; False if the peer is gone."""
    view = memoryview(data)
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


async def linger(transport: Transport) -> None:
    """After a refusal: end our side (FIN), then wait a little for the peer's, so that
    closing with its unread bytes in our buffer cannot reset the answer away."""
    shutdown_write(transport)
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


def shutdown_write(transport: Transport) -> None:
    """After a protocol error's close frame: FIN, so the peer sees the end without a reset."""
    if isinstance(transport, TLSTransport):
        return
    with contextlib.suppress(OSError):
        transport.sock.shutdown(socket.SHUT_WR)
