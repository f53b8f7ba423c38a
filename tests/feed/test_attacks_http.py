"""HTTP-front attacks on a real server on loopback: oversized or ambiguous requests are refused
before they cost CPU, and the server keeps serving."""

from __future__ import annotations

import time

import pytest
import trio
from _rawws import Reader, open_socket, serving, upgrade_request

from tickwire.feed.server.server import Server, ServerConfig
from tickwire.feed.ws import http as _http


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1].split("/")[0])


async def _ask(port: int, request: bytes) -> tuple[int, dict[str, str], bytes, bytes]:
    """Send `request` in one write; (status, headers, body, anything after the body)."""
    stream = await open_socket(port)
    await stream.send_all(request)
    reader = Reader(stream)
    status, _, headers, body = await reader.response()
    await reader.until_eof()  # the server closes
    rest = bytes(reader.buf)
    await stream.aclose()
    return status, headers, body, rest


@pytest.fixture
async def front(nursery: trio.Nursery) -> Server:
    srv = Server(ServerConfig(port=0, heartbeat_ms=0))
    await nursery.start(srv.run)
    return srv


@pytest.mark.parametrize(
    ("count", "line", "why"), [(15_000, "X{}: a", b"bytes"), (2_000, "a:b", b"lines")]
)
async def test_thousands_of_tiny_headers_in_one_read_are_431(
    front: Server, count: int, line: str, why: bytes
):
    port = _port(front)
    pad = "".join(line.format(i) + "\r\n" for i in range(count))
    request = upgrade_request("/v1", port=port).replace(
        b"\r\n\r\n", b"\r\n" + pad.encode() + b"\r\n"
    )
    with trio.fail_after(10):
        t = time.perf_counter()
        status, _, body, _ = await _ask(port, request)
        took_ms = (time.perf_counter() - t) * 1000
        assert status == 431, body
        assert why in body
        await serving(port)
    print(f"{count} headers ({len(request)} bytes) answered in {took_ms:.1f} ms")


async def test_a_20_kib_head_in_one_read_is_431(front: Server):
    port = _port(front)
    request = upgrade_request("/v1", {"X-Pad": "a" * 20_000}, port)
    assert len(request) > _http.MAX_HEADER_BYTES
    with trio.fail_after(10):
        status, _, body, _ = await _ask(port, request)
        assert status == 431, body
        await serving(port)


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        # an evil Origin hidden in front of a good one
        (b"Origin: https://evil.example\r\nOrigin: http://127.0.0.1\r\n", 400),
        (b"Sec-WebSocket-Key: ZmVkY2JhOTg3NjU0MzIxMA==\r\n", 400),
        (b"Host: other.example\r\n", 400),
    ],
)
async def test_repeated_headers_are_400(front: Server, request_: bytes, status: int):
    port = _port(front)
    request = upgrade_request("/v1", port=port).replace(b"\r\n\r\n", b"\r\n" + request_ + b"\r\n")
    with trio.fail_after(10):
        got, _, body, _ = await _ask(port, request)
        assert got == status, body


async def test_http_1_0_upgrade_is_400(front: Server):
    port = _port(front)
    request = upgrade_request("/v1", port=port).replace(b"HTTP/1.1", b"HTTP/1.0")
    with trio.fail_after(10):
        status, _, body, _ = await _ask(port, request)
        assert status == 400 and b"HTTP/1.1" in body


async def test_head_on_a_404_sends_no_body(front: Server):
    port = _port(front)
    with trio.fail_after(10):
        status, headers, _, rest = await _ask(port, b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 404 and int(headers["content-length"]) > 0
        assert rest == b""  # Reader took Content-Length bytes as the body: there must be none
