"""Slowloris on a real server on loopback: sockets that never send their request must not stop
the server from accepting, so /livez, /readyz and new clients are answered quickly.

The bounds are on virtual time (a MockClock jumping once every task has waited 5 ms of real
time): it stands still while bytes move on loopback, so "within 2 s" means the server did not
wait for a deadline, whatever the machine's load. A false jump (I/O slower than the threshold)
moves the clock to the next cadence step (50 ms), never to a request deadline at once.
"""

from __future__ import annotations

import socket

import pytest
import trio
from _rawws import HOST, Reader, open_socket, text_frame, welcome
from trio.testing import MockClock

from tickwire.feed import connect
from tickwire.feed.server.server import Server, ServerConfig
from tickwire.feed.ws.registry import HEADROOM


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1].split("/")[0])


async def _hold_silent(port: int, n: int) -> list[trio.SocketStream]:
    """`n` connected sockets from 127.0.0.1 that say nothing."""
    return [await open_socket(port) for _ in range(n)]


async def _get(port: int, path: str) -> int:
    stream = await open_socket(port)
    await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    status, _, _, _ = await Reader(stream).response()
    await stream.aclose()
    return status


async def _served_quickly(srv: Server, port: int) -> float:
    """/livez, /readyz and a real client's subscription, each within 2 s; the seconds taken."""
    t = trio.current_time()
    with trio.fail_after(2):
        assert await _get(port, "/livez") == 200
    with trio.fail_after(2):
        assert await _get(port, "/readyz") in (200, 503)  # answered: readiness is its own
    with trio.fail_after(2):  # a raw client: the handshake, the welcome, a subscription's ack
        reader = await welcome(port)
        await reader.stream.send_all(text_frame({"op": "subscribe", "symbols": ["AAPL"]}))
        while (await reader.message())["type"] != "ack":
            pass
        await reader.stream.aclose()
    return trio.current_time() - t


async def test_silent_sockets_past_the_cap_and_headroom_do_not_stop_accepting(
    nursery: trio.Nursery, mock_clock: MockClock
):
    """Before: past --max-connections + 64 held sockets the accept loop waited for a free
    slot, so every new client (an orchestrator's /livez too) waited for the silent ones' 10 s
    request deadline. Now the oldest silent sockets are shed for the new ones."""
    mock_clock.autojump_threshold = 0.005
    srv = Server(ServerConfig(port=0, max_connections=4, heartbeat_ms=0, cadence_ms=50))
    await nursery.start(srv.run)
    port = _port(srv)
    silent = await _hold_silent(port, 4 + HEADROOM + 100)
    took = await _served_quickly(srv, port)
    print(f"/livez, /readyz and a client served in {took * 1000:.0f} ms behind {len(silent)}")
    assert srv.registry.held <= 4 + HEADROOM
    assert srv.registry.handshakes_shed >= 100
    for s in silent:
        await s.aclose()


async def test_per_ip_cap_applies_at_accept_and_sheds_that_address_s_silent_sockets(
    nursery: trio.Nursery, mock_clock: MockClock
):
    """Before: the per-IP cap was checked after a whole request, so silent sockets from one
    address were never refused. Now that address holds at most N sockets from the accept on;
    a new socket from it replaces its oldest silent one, and one over the cap with no silent
    socket to give up gets 429 at once."""
    mock_clock.autojump_threshold = 0.005
    srv = Server(ServerConfig(port=0, max_connections_per_ip=3, heartbeat_ms=0, cadence_ms=50))
    await nursery.start(srv.run)
    port = _port(srv)
    silent = await _hold_silent(port, 50)
    with trio.fail_after(5):
        while srv.registry.held > 3:  # the shed ones' tasks close them
            await trio.sleep(0.01)
    assert srv.registry.per_ip["127.0.0.1"] == 3
    await _served_quickly(srv, port)
    async with (  # three open: no silent one is left
        connect(srv.url, reconnect=False),
        connect(srv.url, reconnect=False),
        connect(srv.url, reconnect=False),
    ):
        with trio.fail_after(2):
            assert await _get(port, "/livez") == 429
    for s in silent:
        await s.aclose()


async def test_request_deadline_shrinks_under_pressure(
    nursery: trio.Nursery, mock_clock: MockClock
):
    """Past --max-connections (or with half the headroom silent), a request must come within
    2 s instead of 10 s, as nginx and HAProxy shorten theirs under load."""
    mock_clock.autojump_threshold = 0.005
    srv = Server(ServerConfig(port=0, max_connections=2, heartbeat_ms=0, cadence_ms=50))
    await nursery.start(srv.run)
    port = _port(srv)
    first = await open_socket(port)
    t = trio.current_time()
    rest = await _hold_silent(port, 5)
    with trio.fail_after(5):
        assert await first.receive_some(100) == b""  # closed by the server
    waited = trio.current_time() - t
    assert waited == pytest.approx(2.0, abs=0.1), waited  # the shrunk deadline, not 10 s
    for s in [first, *rest]:
        await s.aclose()


async def test_one_silent_socket_keeps_its_10_s(nursery: trio.Nursery, autojump_clock):
    """No pressure, no hurry: a lone slow client still has the whole request deadline."""
    srv = Server(ServerConfig(port=0, heartbeat_ms=0))
    await nursery.start(srv.run)
    a, b = socket.socketpair()
    nursery.start_soon(srv.handle_socket, a, ("127.0.0.1", 0))
    b.sendall(b"GET /v1 HTTP/1.1\r\nHost: x\r\n")
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(b))
    t0 = trio.current_time()
    assert await stream.receive_some(100) == b""
    assert 10.0 <= trio.current_time() - t0 < 11.0
