"""Order books over real loopback with the real server: a plain JSON client keeps each book from
its snapshot and changes, checks every checksum with its own CRC32, and finds the quote of every
tick at the top of its book."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import orjson
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tickwire.feed.protocol import book as b
from tickwire.feed.server.server import Server, ServerConfig
from tickwire.simulators.book import LEVEL_DTYPE


@pytest.fixture
async def server(nursery: trio.Nursery) -> Server:
    """A real server with 20-level books on 127.0.0.1, any free port."""
    srv = Server(ServerConfig(port=0, heartbeat_ms=200, book_depth=20))
    await nursery.start(srv.run)
    return srv


class PlainBook:
    """A client's book written from the protocol text alone (no tickwire code)."""

    def __init__(self, entry: dict[str, Any]) -> None:
        self.decimals, self.depth = entry["decimals"], entry["depth"]
        self.tick = entry["tick_units"] / 10**self.decimals
        self.sides: list[dict[float, int]] = [
            {p: s for p, s in entry["bids"]},
            {p: s for p, s in entry["asks"]},
        ]
        self.seq, self.ts = entry["seq"], entry["ts"]
        assert self.crc() == entry["checksum"]

    def apply(self, entry: dict[str, Any]) -> None:
        if entry.get("conflated"):
            assert entry["since"] == self.seq
        else:
            assert entry["seq"] - len(entry["changes"]) == self.seq, "book seq gap"
        for side, price, size in entry["changes"]:
            book = self.sides[0 if side == "bid" else 1]
            if size:
                book[price] = size
            else:
                book.pop(price, None)
        self.seq, self.ts = entry["seq"], entry["ts"]
        self.cut()
        assert self.crc() == entry["checksum"], f"checksum refutes the book at {self.seq}"

    def cut(self) -> None:
        span = (self.depth - 0.5) * self.tick
        bids, asks = self.sides
        if bids:
            best = max(bids)
            self.sides[0] = {p: s for p, s in bids.items() if p > best - span}
        if asks:
            best = min(asks)
            self.sides[1] = {p: s for p, s in asks.items() if p < best + span}

    def top(self) -> tuple[float, int, float, int]:
        bid, ask = max(self.sides[0]), min(self.sides[1])
        return bid, self.sides[0][bid], ask, self.sides[1][ask]

    def crc(self) -> int:
        def text(price: float, size: int) -> str:
            return f"{price:.{self.decimals}f}".replace(".", "").lstrip("0") + str(size)

        asks = sorted(self.sides[1].items())[:10]
        bids = sorted(self.sides[0].items(), reverse=True)[:10]
        return zlib.crc32("".join(text(p, s) for p, s in asks + bids).encode())


async def _next(ws: WebSocketConnection) -> dict[str, Any]:
    msg: dict[str, Any] = orjson.loads(await ws.get_message())
    return msg


async def _keep_books(
    ws: WebSocketConnection, symbols: list[str], messages: int
) -> tuple[dict[str, PlainBook], dict[str, int]]:
    """Read `messages` data messages, keeping the books; count what was checked."""
    books: dict[str, PlainBook] = {}
    counts = {"changes": 0, "entries": 0, "tops": 0, "conflated": 0}
    seq = None
    for _ in range(messages):
        msg = await _next(ws)
        if "seq" in msg:
            assert seq is None or msg["seq"] == seq + 1, "connection seq gap"
            seq = msg["seq"]
        if msg["type"] == "book_snapshot":
            for e in msg["books"]:
                books[e["symbol"]] = PlainBook(e)
        elif msg["type"] == "book":
            for e in msg["books"]:
                books[e["symbol"]].apply(e)
                counts["entries"] += 1
                counts["changes"] += len(e["changes"])
                counts["conflated"] += bool(e.get("conflated"))
        elif msg["type"] == "ticks":
            last = {t["symbol"]: t for t in msg["ticks"]}
            for sym, t in last.items():
                book = books[sym]
                if book.ts <= t["ts"]:  # no level changed after this tick: it is the top
                    assert book.top() == (t["bid"], t["bid_size"], t["ask"], t["ask_size"])
                    counts["tops"] += 1
    assert set(books) == set(symbols)
    return books, counts


async def test_json_client_keeps_books_and_every_checksum_matches(server: Server) -> None:
    with trio.fail_after(30):
        async with open_websocket_url(server.url) as ws:
            welcome = await _next(ws)
            assert welcome["book_depth"] == 20
            req = {"op": "subscribe", "symbols": ["AAPL", "MSFT"], "book": True, "id": 1}
            await ws.send_message(orjson.dumps(req).decode())
            ack = await _next(ws)
            assert ack["type"] == "ack" and ack["id"] == 1
            assert (await _next(ws))["type"] == "snapshot"  # the ticks' snapshot, then books
            _, counts = await _keep_books(ws, ["AAPL", "MSFT"], 400)
    assert counts["changes"] > 500 and counts["tops"] > 20 and counts["conflated"] == 0


async def test_smaller_depth_and_latest_mode_get_conflated_books(server: Server) -> None:
    with trio.fail_after(30):
        async with open_websocket_url(server.url) as ws:
            await _next(ws)
            req = {"op": "subscribe", "symbols": ["AAPL"], "book": 5, "mode": "latest"}
            await ws.send_message(orjson.dumps(req).decode())
            assert (await _next(ws))["type"] == "ack"
            assert (await _next(ws))["type"] == "snapshot"
            books, counts = await _keep_books(ws, ["AAPL"], 150)
            assert counts["conflated"] == counts["entries"] > 20
            for side in books["AAPL"].sides:  # never more than 5 ticks from the best
                assert max(side) - min(side) < 5 * books["AAPL"].tick
            await ws.send_message('{"op":"unsubscribe","symbols":["AAPL"],"id":2}')
            while (msg := await _next(ws))["type"] != "ack":
                pass
            await ws.send_message('{"op":"ping","id":3}')
            while (msg := await _next(ws))["type"] != "pong":
                assert msg["type"] not in ("book", "ticks"), "data after unsubscribe"


@pytest.mark.parametrize(
    ("book", "message"),
    [
        (21, "book must be true or a depth from 1 to 20 (this server's --book-depth), got 21"),
        (0, "book must be true (the server's depth) or a depth from 1 to 1000"),
    ],
)
async def test_bad_depth_is_one_precise_error(server: Server, book: int, message: str) -> None:
    with trio.fail_after(20):
        async with open_websocket_url(server.url) as ws:
            await _next(ws)
            req = {"op": "subscribe", "symbols": ["AAPL"], "book": book, "id": 7}
            await ws.send_message(orjson.dumps(req).decode())
            err = await _next(ws)
            assert err["type"] == "error" and err["code"] == "bad_request" and err["id"] == 7
            assert err["message"].startswith(message)
            await ws.send_message('{"op":"subscribe","symbols":["AAPL"],"id":8}')
            assert (await _next(ws))["type"] == "ack"  # still served, nothing was booked
            assert (await _next(ws))["type"] == "snapshot"


async def test_books_are_on_by_default(nursery: trio.Nursery) -> None:
    srv = Server(ServerConfig(port=0))
    await nursery.start(srv.run)
    assert srv.books is not None
    with trio.fail_after(20):
        async with open_websocket_url(srv.url) as ws:
            assert (await _next(ws))["book_depth"] == 20


async def test_books_off_refuses_book_and_serves_ticks(nursery: trio.Nursery) -> None:
    srv = Server(ServerConfig(port=0, book_depth=0))
    await nursery.start(srv.run)
    assert srv.books is None
    with trio.fail_after(20):
        async with open_websocket_url(srv.url) as ws:
            assert (await _next(ws))["book_depth"] == 0
            await ws.send_message('{"op":"subscribe","symbols":["AAPL"],"book":true}')
            err = await _next(ws)
            assert err["code"] == "bad_request" and "--book-depth" in err["message"]


async def test_binary_book_frames_decode_in_one_call(server: Server) -> None:
    with trio.fail_after(30):
        async with open_websocket_url(server.url, subprotocols=["tickwire.v1.binary"]) as ws:
            await _next(ws)
            req = {"op": "subscribe", "symbols": ["AAPL", "MSFT"], "book": True}
            await ws.send_message(orjson.dumps(req).decode())
            kinds, seqs, last = [], [], {}
            while len(kinds) < 200:
                msg = await ws.get_message()
                if isinstance(msg, str) or msg[1] not in (3, 4):
                    continue
                frame = b.decode_book_binary(msg)
                kinds.append(frame.snapshot)
                seqs.append(frame.seq)
                assert frame.records.dtype == LEVEL_DTYPE and len(frame.checks)
                for sym, flags, _ in frame.checks.tolist():
                    recs = frame.records[frame.records["sym"] == sym]
                    if frame.snapshot:
                        assert flags == 0 and np.all(recs["seq"] == recs["seq"][0])
                        last[sym] = int(recs["seq"][0])
                    else:  # every change in order: book seqs run on from the last
                        want = list(range(last[sym] + 1, last[sym] + 1 + len(recs)))
                        assert recs["seq"].tolist() == want
                        last[sym] = int(recs["seq"][-1])
            assert kinds[0] is True and kinds.count(False) > 150
            assert seqs == sorted(seqs)


async def test_a_throttle_conflates_books_at_full_depth(server: Server) -> None:
    with trio.fail_after(30):
        async with open_websocket_url(server.url) as ws:
            await _next(ws)
            await ws.send_message('{"op":"throttle","interval_ms":20}')
            assert (await _next(ws))["type"] == "ack"
            await ws.send_message('{"op":"subscribe","symbols":["AAPL"],"book":true}')
            assert (await _next(ws))["type"] == "ack"
            assert (await _next(ws))["type"] == "snapshot"
            _, counts = await _keep_books(ws, ["AAPL"], 40)
            assert counts["conflated"] == counts["entries"] > 10


async def test_an_unknown_symbol_with_book_is_refused_and_the_connection_stays(
    server: Server,
) -> None:
    with trio.fail_after(20):
        async with open_websocket_url(server.url) as ws:
            await _next(ws)
            await ws.send_message('{"op":"subscribe","symbols":["AAPL","NOPE"],"book":true}')
            err = await _next(ws)
            assert err["code"] == "unknown_symbol" and err["symbols"] == ["NOPE"]
            await ws.send_message('{"op":"ping","id":1}')
            assert (await _next(ws))["type"] == "pong"  # nothing was booked, still served
