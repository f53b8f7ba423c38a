"""Clients that misbehave at the HTTP and TCP level, against an in-process server on loopback:
none of them stops the server, and every socket they held is released."""

from __future__ import annotations

import base64
import os
import socket
import struct

import pytest
import trio

from tickwire.feed import connect
from tickwire.feed.server.server import Server, ServerConfig


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1].split("/")[0])


def _upgrade(path: str = "/v1", *extra: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _masked(text: str) -> bytes:
    payload, mask = text.encode(), os.urandom(4)
    assert len(payload) < 126
    return (
        bytes((0x81, 0x80 | len(payload)))
        + mask
        + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    )


async def _open(server: Server) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", _port(server))


async def _response(stream: trio.SocketStream) -> bytes:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        buf += chunk
    return buf


async def _released(server: Server) -> None:
    while server.registry.held:
        await trio.sleep(0.01)  # polling a condition on the server, not a fixed delay


async def _still_serves(server: Server) -> None:
    async with connect(server.url) as feed:
        await feed.subscribe(["AAPL"])


@pytest.fixture
async def guarded(nursery: trio.Nursery) -> Server:
    srv = Server(ServerConfig(port=0, tokens=("s3cret",), max_connections_per_ip=5))
    await nursery.start(srv.run)
    return srv


async def test_early_close_after_404_and_401_and_reset_after_the_handshake(guarded: Server):
    with trio.fail_after(20):
        for request in (_upgrade("/nope"), _upgrade("/v1"), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
            for _ in range(5):
                stream = await _open(guarded)
                await stream.send_all(request)
                await stream.aclose()  # before the answer arrives
        for _ in range(5):
            stream = await _open(guarded)
            await stream.send_all(_upgrade("/v1", "Authorization: Bearer s3cret"))
            assert (await _response(stream)).startswith(b"HTTP/1.1 101")
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            stream.socket.close()  # RST right after the handshake
        await _released(guarded)
        async with connect(guarded.url, token="s3cret") as feed:
            await feed.subscribe(["AAPL"])
        await _released(guarded)
    assert guarded.counters.connections_refused >= 10


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (_upgrade("/nope"), 404),
        (_upgrade("/v1"), 401),
        (_upgrade("/v1", "Authorization: Bearer s3cret", "Origin: https://evil.example"), 403),
        (b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200),  # closed, as asked
        (b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"NONSENSE\r\n\r\n", 400),
    ],
)
async def test_refusals_answer_and_close_the_socket(guarded: Server, request_, status):
    with trio.fail_after(10):
        stream = await _open(guarded)
        await stream.send_all(request_)
        answer = await _response(stream)
        assert answer.startswith(b"HTTP/1.1 %d" % status), answer
        assert b"s3cret" not in answer
        while await stream.receive_some(65536):  # the server closes its end
            pass
        await _released(guarded)


async def test_per_ip_limit_is_429(guarded: Server):
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            held = []
            for _ in range(5):
                stream = await _open(guarded)
                await stream.send_all(_upgrade("/v1?token=s3cret"))
                assert (await _response(stream)).startswith(b"HTTP/1.1 101")
                held.append(stream)
            stream = await _open(guarded)
            await stream.send_all(_upgrade("/v1?token=s3cret"))
            assert (await _response(stream)).startswith(b"HTTP/1.1 429")
            for s in held:
                await s.aclose()
            nursery.cancel_scope.cancel()
        await _released(guarded)


async def test_a_frame_sent_with_the_handshake_is_answered(server: Server):
    with trio.fail_after(10):
        stream = await _open(server)
        await stream.send_all(_upgrade() + _masked('{"op":"ping","id":9}'))
        buf = b""
        while b'"pong"' not in buf:
            chunk = await stream.receive_some(65536)
            assert chunk, buf
            buf += chunk
        assert buf.startswith(b"HTTP/1.1 101") and b'"id":9' in buf
        await stream.aclose()


async def test_slowloris_is_cut_at_the_handshake_deadline(nursery: trio.Nursery, autojump_clock):
    srv = Server(ServerConfig(port=0, heartbeat_ms=0))
    await nursery.start(srv.run)
    a, b = socket.socketpair()
    nursery.start_soon(srv.handle_socket, a, ("127.0.0.1", 0))
    b.sendall(b"GET /v1 HTTP/1.1\r\nHost: x\r\n")  # and never the rest
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(b))
    t0 = trio.current_time()
    assert await stream.receive_some(100) == b""  # closed by the server
    assert 10.0 <= trio.current_time() - t0 < 11.0
    assert srv.registry.held == 0


async def test_over_the_cap_is_1013_after_shedding_silent_handshakes(nursery: trio.Nursery):
    srv = Server(ServerConfig(port=0, max_connections=2))
    await nursery.start(srv.run)
    with trio.fail_after(10):
        half = await _open(srv)  # a handshake in progress holds a slot...
        await half.send_all(b"GET /v1 HTTP/1.1\r\n")
        async with connect(srv.url), connect(srv.url):  # ...until a client that spoke needs it
            assert await half.receive_some(100) == b""  # shed
            stream = await _open(srv)  # two open: no silent socket is left to shed
            await stream.send_all(_upgrade())
            buf = await _response(stream)
            while b"\x88" not in buf:
                buf += await stream.receive_some(65536)
            close = buf[buf.index(b"\x88") :]
            assert struct.unpack("!H", close[2:4])[0] == 1013
            await stream.aclose()
        await half.aclose()
        await _released(srv)
    assert srv.registry.handshakes_shed == 1


async def test_log_never_holds_a_token(guarded: Server, caplog: pytest.LogCaptureFixture):
    caplog.set_level("DEBUG", logger="tickwire.server")
    with trio.fail_after(10):
        stream = await _open(guarded)
        await stream.send_all(_upgrade("/v1?token=wrongtoken"))
        assert (await _response(stream)).startswith(b"HTTP/1.1 401")
        await stream.aclose()
        async with connect(guarded.url, token="s3cret") as feed:
            await feed.subscribe(["AAPL"])
    assert "401" in caplog.text
    assert "wrongtoken" not in caplog.text and "s3cret" not in caplog.text
