"""Key guessing on /alpaca against a real server on loopback: a connection is closed after a
few failed auths, the failures are counted in /metrics and logged within bounds, and an
address that keeps failing waits before its next answer."""

from __future__ import annotations

import time

import orjson
import pytest
import trio
from _rawws import OP_CLOSE, OP_TEXT, Reader, close_code, handshake, open_socket, text_frame

from tickwire.feed.server.server import Server, ServerConfig
from tickwire.feed.venues import _authguard as ag
from tickwire.feed.venues.alpaca import MAX_AUTH_FAILURES

PATH = "/alpaca/v2/iex"


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1].split("/")[0])


@pytest.fixture
async def srv(nursery: trio.Nursery) -> Server:
    server = Server(ServerConfig(port=0, tokens=("s3cret",), heartbeat_ms=0, cadence_ms=20))
    await nursery.start(server.run)
    return server


async def _connected(port: int) -> Reader:
    reader, status, body = await handshake(port, PATH)
    assert status == 101, body
    op, payload = await reader.frame()
    assert op == OP_TEXT and b"connected" in payload
    return reader


async def _answers(reader: Reader) -> tuple[list[int], int | None]:
    """The error codes (0: success) the server answers until it closes, and its close code."""
    codes: list[int] = []
    while True:
        try:
            op, payload = await reader.frame()
        except EOFError:
            return codes, None
        if op == OP_CLOSE:
            return codes, close_code(payload)
        codes += [m.get("code", 0) for m in orjson.loads(payload)]


def _guesses(n: int) -> bytes:
    return b"".join(
        text_frame({"action": "auth", "key": f"k{i}", "secret": f"s{i}"}) for i in range(n)
    )


async def test_a_guessing_connection_is_closed_counted_and_logged(
    srv: Server, caplog: pytest.LogCaptureFixture
):
    """Before: 1000 guesses on one socket got 1000 answers, no close, no log, no metric."""
    caplog.set_level("WARNING", logger="tickwire.server")
    port = _port(srv)
    with trio.fail_after(10):
        reader = await _connected(port)
        await reader.stream.send_all(_guesses(1000))
        codes, close = await _answers(reader)
        await reader.stream.aclose()
    assert codes == [402] * MAX_AUTH_FAILURES and close == 1008
    assert srv.statistics()["alpaca_auth_failures"] == MAX_AUTH_FAILURES
    lines = [r for r in caplog.records if "failed auth" in r.getMessage()]
    assert len(lines) == 1 and "127.0.0.1" in lines[0].getMessage()
    assert "s3cret" not in caplog.text and "k0" not in caplog.text  # never a key
    with trio.fail_after(10):
        stream = await open_socket(port)
        await stream.send_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        _, _, _, body = await Reader(stream).response()
        await stream.aclose()
    assert b"tickwire_alpaca_auth_failures_total 3.0" in body


async def test_an_address_that_keeps_failing_is_slowed_down(srv: Server):
    port = _port(srv)
    with trio.fail_after(20):
        for _ in range(ag.FREE_FAILURES // MAX_AUTH_FAILURES + 1):  # 12 failures
            reader = await _connected(port)
            await reader.stream.send_all(_guesses(MAX_AUTH_FAILURES))
            _, close = await _answers(reader)
            assert close == 1008
            await reader.stream.aclose()
        reader = await _connected(port)
        t = time.perf_counter()
        await reader.stream.send_all(text_frame({"action": "auth", "key": "s3cret", "secret": "x"}))
        _, payload = await reader.frame()
        waited = time.perf_counter() - t
        await reader.stream.aclose()
    assert b"authenticated" in payload  # the right key still gets in, later
    print(f"answered after {waited * 1000:.0f} ms")
    assert waited >= 0.3, waited  # 0.1 s doubled per failure past 10: 0.4 s here
