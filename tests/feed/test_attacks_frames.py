"""Floods that are not requests, and request floods on the venues, against a real server on
loopback: the flooding client is closed with 1008 instead of taking the others' CPU."""

from __future__ import annotations

import contextlib
import time

import orjson
import pytest
import trio
from _rawws import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Reader,
    client_frame,
    close_code,
    handshake,
    text_frame,
    welcome,
)

from tickwire.feed.server.server import Server, ServerConfig
from tickwire.feed.ws.frames import FRAMES_BURST


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1].split("/")[0])


@pytest.fixture
async def srv(nursery: trio.Nursery) -> Server:
    server = Server(ServerConfig(port=0, heartbeat_ms=0, cadence_ms=5))
    await nursery.start(server.run)
    return server


async def _flood_until_closed(reader: Reader, frames: bytes, limit_s: float = 5) -> int | None:
    """Send `frames` as fast as the socket takes them, while reading: the close code the server
    sends (None if it closed TCP without one, or never closed within `limit_s`)."""
    code: int | None = None

    async def read() -> None:
        nonlocal code
        while True:
            try:
                op, payload = await reader.frame()
            except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if op == OP_CLOSE:
                code = close_code(payload)
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        # the server may close (even reset) while we send: the reader has the close frame
        with (
            trio.move_on_after(limit_s),
            contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
        ):
            await reader.stream.send_all(frames)
        with trio.move_on_after(limit_s):
            while code is None and not reader.eof:
                await trio.sleep(0.01)  # the reader task is reading; polling its result
        nursery.cancel_scope.cancel()
    return code


@pytest.mark.parametrize(
    ("name", "frames"),
    [
        # a message that never ends: empty continuation frames, each a frame to parse
        (
            "continuation",
            client_frame(b"[", OP_TEXT, fin=False) + client_frame(b"", OP_CONT, fin=False) * 20_000,
        ),
        ("pong", client_frame(b"", OP_PONG) * 20_000),
        ("ping", client_frame(b"x", OP_PING) * 20_000),
        ("binary", client_frame(b"", OP_BINARY) * 20_000),
    ],
    ids=["continuation", "pong", "ping", "binary"],
)
async def test_a_frame_flood_is_closed_with_1008(srv: Server, name: str, frames: bytes):
    """Before: none of these floods was ever closed (p99 of another client 2.7 -> 520 ms)."""
    port = _port(srv)
    with trio.fail_after(20):
        reader = await welcome(port)
        code = await _flood_until_closed(reader, frames)
        assert code == 1008, f"{name} flood: close code {code}"
        await reader.stream.aclose()
        other = await welcome(port)  # the server serves on
        await other.stream.aclose()


async def test_requests_below_the_frame_budget_pass(srv: Server):
    port = _port(srv)
    with trio.fail_after(20):
        reader = await welcome(port)
        pings = b"".join(text_frame({"op": "ping", "id": i}) for i in range(FRAMES_BURST // 4))
        await reader.stream.send_all(pings + client_frame(b"", OP_PONG) * 10)
        for i in range(FRAMES_BURST // 4):
            msg = await reader.message()
            assert msg["type"] == "pong" and msg["id"] == i, msg
        await reader.stream.aclose()


@pytest.mark.parametrize(
    ("path", "request_", "first"),
    [
        (
            "/coinbase",
            {"type": "subscribe", "product_ids": ["AAPL"], "channels": ["heartbeat"]},
            b"subscriptions",
        ),
        ("/alpaca/v2/iex", {"action": "subscribe", "trades": ["AAPL"]}, b"connected"),
    ],
)
async def test_venue_request_floods_are_closed(srv: Server, path: str, request_, first: bytes):
    """Before: 1,190 Coinbase or Alpaca requests a second were all answered."""
    port = _port(srv)
    with trio.fail_after(20):
        reader, status, body = await handshake(port, path)
        assert status == 101, body
        frame = text_frame(request_)
        if path.startswith("/alpaca"):
            frame = text_frame({"action": "auth", "key": "k", "secret": "s"}) + frame
        t = time.perf_counter()
        code = await _flood_until_closed(reader, frame * 2000)
        assert code == 1008, code
        print(f"{path}: closed after {(time.perf_counter() - t) * 1000:.0f} ms")
        await reader.stream.aclose()


async def test_a_coinbase_subscribe_of_thousands_of_products_is_charged(srv: Server):
    port = _port(srv)
    products = list(srv.universe_index)
    names = (products * (6000 // len(products) + 1))[:6000]
    request_ = {"type": "subscribe", "product_ids": names, "channels": ["heartbeat"]}
    with trio.fail_after(20):
        reader, status, _ = await handshake(port, "/coinbase")
        assert status == 101
        code = await _flood_until_closed(reader, text_frame(request_) * 3)
        assert code == 1008
        await reader.stream.aclose()
    assert orjson.dumps(request_).__len__() < 64 * 1024
