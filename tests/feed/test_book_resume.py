"""Resuming a subscription with books over the real server: the missed ticks come back from the
history, and each book comes afresh as a `book_snapshot` (level updates never join the history),
then its changes follow on from that snapshot's book seq, checksum for checksum."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.feed.test_book_e2e import PlainBook
from tickwire.feed.server.server import Server, ServerConfig


@pytest.fixture
async def server(nursery: trio.Nursery) -> Server:
    srv = Server(ServerConfig(port=0, heartbeat_ms=200, book_depth=20))
    await nursery.start(srv.run)
    return srv


async def _next(ws: WebSocketConnection) -> dict[str, Any]:
    msg: dict[str, Any] = orjson.loads(await ws.get_message())
    return msg


async def _send(ws: WebSocketConnection, **req: Any) -> None:
    await ws.send_message(orjson.dumps(req).decode())


async def test_a_resumed_book_subscription_gets_a_fresh_snapshot(server: Server) -> None:
    with trio.fail_after(30):
        async with open_websocket_url(server.url) as ws:
            epoch = (await _next(ws))["epoch"]
            await _send(ws, op="subscribe", symbols=["AAPL"], book=True, resume=True)
            assert (await _next(ws))["type"] == "ack"
            offset, book = None, None
            while offset is None or book is None or book.seq < 50:
                msg = await _next(ws)
                offset = msg.get("offset", offset)
                if msg["type"] == "book_snapshot":
                    book = PlainBook(msg["books"][0])
                elif msg["type"] == "book":
                    assert book is not None
                    book.apply(msg["books"][0])
            held = book.seq
            while book.seq < held + 50:  # what comes after `offset` is what a resume misses
                msg = await _next(ws)
                if msg["type"] == "book":
                    book.apply(msg["books"][0])
        async with open_websocket_url(server.url) as ws:
            await _next(ws)
            resume = {"epoch": epoch, "offset": offset}
            await _send(ws, op="subscribe", symbols=["AAPL"], book=True, resume=resume, id=2)
            ack = await _next(ws)
            assert ack["type"] == "ack" and ack["recovered"] is True and ack["missed"] > 0
            kinds, fresh, changes = [], None, 0
            while changes < 20:
                msg = await _next(ws)
                kinds.append(msg["type"])
                if msg["type"] == "book_snapshot":
                    fresh = PlainBook(msg["books"][0])  # its checksum checked as it loads
                elif msg["type"] == "book":
                    assert fresh is not None, "a change before the fresh book"
                    fresh.apply(msg["books"][0])  # on from the snapshot's seq, checksum held
                    changes += 1
    assert "snapshot" not in kinds  # the ticks are recovered, not a snapshot
    assert kinds.count("book_snapshot") == 1 and kinds.index("book_snapshot") < kinds.index("book")
    assert fresh is not None and fresh.seq > held + 20  # the book as it is now, not replayed
