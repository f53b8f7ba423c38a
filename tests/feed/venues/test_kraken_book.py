"""Kraken's `book` channel, sans-IO: the checksum is Kraken's (its documented worked example),
and a client keeping the book by Kraken's rules alone verifies every checksum and ends with the
market's book."""

from __future__ import annotations

import json
import random
import zlib
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pytest
import trio

from tickwire.feed.hub.books import Books
from tickwire.feed.server.server import ServerConfig
from tickwire.feed.venues._sizes import Sizes
from tickwire.feed.venues.kraken import KrakenSession
from tickwire.feed.venues.kraken_book import (
    KrakenBooks,
    booking_depth,
    checksum,
    checksum_units,
)
from tickwire.simulators import Market, Universe

from ._kraken_book import ClientBook, parse
from .conftest import CADENCE_MS, VenueServer, start

MS = 1_000_000

# Kraken's worked example ("Book checksum (WebSocket v2)"): BTC/USD, price decimals 1, qty 8.
DOC_BIDS = [
    ("45283.5", "0.10000000"),
    ("45283.4", "1.54582015"),
    ("45282.1", "0.10000000"),
    ("45281.0", "0.10000000"),
    ("45280.3", "1.54592586"),
    ("45279.0", "0.07990000"),
    ("45277.6", "0.03310103"),
    ("45277.5", "0.30000000"),
    ("45277.3", "1.54602737"),
    ("45276.6", "0.15445238"),
]
DOC_ASKS = [
    ("45285.2", "0.00100000"),
    ("45286.4", "1.54571953"),
    ("45286.6", "1.54571109"),
    ("45289.6", "1.54560911"),
    ("45290.2", "0.15890660"),
    ("45291.8", "1.54553491"),
    ("45294.7", "0.04454749"),
    ("45296.1", "0.35380000"),
    ("45297.5", "0.09945542"),
    ("45299.5", "0.18772827"),
]
DOC_CHECKSUM = 3310070434


def test_checksum_is_krakens_worked_example() -> None:
    assert checksum(DOC_ASKS, DOC_BIDS) == DOC_CHECKSUM
    # the documented first step: "45285.2" + "0.00100000" -> "452852100000"
    assert checksum(DOC_ASKS[:1], []) == zlib.crc32(b"452852100000")
    # only the top 10 of each side count
    assert checksum([*DOC_ASKS, ("45300.0", "1.00000000")], DOC_BIDS) == DOC_CHECKSUM


def test_checksum_on_units_is_the_checksum_on_the_strings() -> None:
    units = (
        tuple((int(Decimal(p) * 10), int(Decimal(q) * 10**8)) for p, q in DOC_BIDS),
        tuple((int(Decimal(p) * 10), int(Decimal(q) * 10**8)) for p, q in DOC_ASKS),
    )
    assert checksum_units(units) == DOC_CHECKSUM
    rng = random.Random(5)
    for _ in range(200):
        pd, qd, scale = rng.randint(0, 5), rng.randint(0, 8), rng.choice((1, 5, 25))
        sides = [
            sorted({rng.randint(1, 10**7): rng.randint(1, 10**6) for _ in range(12)}.items())
            for _ in range(2)
        ]
        bids, asks = tuple(sides[0][::-1]), tuple(sides[1])

        def text(u: int, places: int) -> str:
            return f"{Decimal(u).scaleb(-places):.{places}f}"

        strings = [[(text(u, pd), text(s * scale, qd)) for u, s in side] for side in (asks, bids)]
        assert checksum_units((bids, asks), scale) == checksum(*strings)


@pytest.mark.parametrize(
    ("server", "depth"), [(20, 10), (20, 25), (100, 10), (100, 25), (100, 1000)]
)
def test_a_client_keeping_the_book_by_krakens_rules_verifies_every_checksum(
    server: int, depth: int
) -> None:
    u = Universe.crypto_pairs()
    m = Market(u, seed=3, start_ns=0, session="24h", book_depth=server)
    names = np.array(u.symbols, dtype=object)
    books = Books(names, u.tick_size, server, m.book_snapshot, 10**9)
    kraken = KrakenBooks(u)
    sizes = Sizes(u)
    syms = [u.index(s) for s in ("BTC-USD", "DOGE-USD", "SOL-USD", "XRP-USD")]
    d = booking_depth(depth, books.depth)
    reader = books.attach(lambda: None)
    now = 50 * MS
    m.step_book(now)
    books.book(reader, np.array(syms), d)
    clients = {}
    for sym in syms:
        [frame] = kraken.snapshot(sym, d, books, now)
        message = parse(frame.data)
        assert orjson.loads(frame.data) == json.loads(frame.data)  # valid JSON
        assert message["channel"] == "book" and message["type"] == "snapshot"
        [data] = message["data"]
        clients[data["symbol"]] = client = ClientBook(depth)
        client.apply(data)
    updates = 0
    for _ in range(300):
        now += 10 * MS
        _, levels = m.step_book(now)
        books.publish(levels)
        books.take(reader)
        shared = kraken.updates(d, syms, books, now)
        for _, channel, data in shared.items:
            assert channel == f"book:{d}"
            message = parse(data)
            assert message["type"] == "update" and message["data"][0]["timestamp"].endswith("Z")
            clients[message["data"][0]["symbol"]].apply(message["data"][0])
            updates += 1
    assert updates > 100
    snap = m.book_snapshot()
    deeper = max(int((snap[s]["ask_size"] > 0).sum()) for s in syms)
    assert deeper > depth or depth > server  # some book is deeper than the subscription
    for sym in syms:
        client = clients[kraken.names[sym]]
        bids, asks = client.sides()
        row = snap[sym]
        for got, name in ((bids, "bid"), (asks, "ask")):
            want = [
                (p, sizes.number(sym, s))
                for p, s in zip(
                    row[f"{name}_price"].tolist(), row[f"{name}_size"].tolist(), strict=True
                )
                if s
            ][:depth]
            assert [(float(p), float(q)) for p, q in got] == pytest.approx(want)


# ---------------------------------------------------------------- over a real socket


async def test_a_websockets_client_rebuilds_krakens_book_and_checks_every_checksum(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """`tickwire serve --book-depth 20` on the crypto universe, a plain websockets client: the
    book channel at depth 10 for two pairs (acks echo the depth, then a snapshot each), many
    updates, each checksum verified on the client's own book; a bad depth is Kraken's error."""
    from websockets.sync.client import connect

    u = Universe.crypto_pairs()
    config = ServerConfig(port=0, cadence_ms=CADENCE_MS, universe=u, session="24h", book_depth=20)
    venue: VenueServer = await start(nursery, caplog, config)

    def client() -> tuple[list[dict[str, Any]], dict[str, ClientBook], dict[str, Any]]:
        books: dict[str, ClientBook] = {}
        acks = []
        with connect(venue.url("/kraken/v2"), open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["channel"] == "status"
            bad = {"channel": "book", "symbol": ["BTC/USD"], "depth": 7}
            ws.send(json.dumps({"method": "subscribe", "params": bad, "req_id": 1}))
            error = json.loads(ws.recv(timeout=10))
            params = {"channel": "book", "symbol": ["SOL/USD", "XRP/USD"], "depth": 10}
            ws.send(json.dumps({"method": "subscribe", "params": params, "req_id": 2}))
            updates = 0
            while updates < 200:
                msg = parse(ws.recv(timeout=10))
                if msg.get("method") == "subscribe":
                    acks.append(msg)
                    continue
                if msg.get("channel") != "book":
                    continue
                [data] = msg["data"]
                if msg["type"] == "snapshot":
                    books[data["symbol"]] = ClientBook(10)
                else:
                    updates += 1
                books[data["symbol"]].apply(data)  # raises if the checksum is wrong
        return acks, books, error

    with trio.fail_after(60):
        acks, books, error = await trio.to_thread.run_sync(client, abandon_on_cancel=True)
    assert error["success"] is False and error["req_id"] == 1 and "depth" in error["error"]
    assert [a["result"] for a in acks] == [
        {"channel": "book", "symbol": s, "depth": 10, "snapshot": True}
        for s in ("SOL/USD", "XRP/USD")
    ]
    assert set(books) == {"SOL/USD", "XRP/USD"}
    assert sum(b.checked for b in books.values()) >= 202
    for b in books.values():
        bids, asks = b.sides()
        assert 0 < len(bids) <= 10 and 0 < len(asks) <= 10 and bids[0][0] < asks[0][0]


# ---------------------------------------------------------------- the session's requests


def _ask(session: KrakenSession, params: dict[str, Any], method: str = "subscribe") -> Any:
    reply = session.receive(json.dumps({"method": method, "params": params}), 10**9)
    return [orjson.loads(f.data) for f in reply.frames], reply.books


def test_book_subscriptions_book_their_depth_and_errors_are_krakens() -> None:
    u = Universe.crypto_pairs()
    btc, eth = u.index("BTC-USD"), u.index("ETH-USD")
    book = {"channel": "book", "symbol": ["BTC/USD"]}
    [off], books = _ask(KrakenSession(u, 0), book)
    assert off["success"] is False and "--book-depth" in off["error"] and books is None
    session = KrakenSession(u, 0, book_depth=20)
    for bad in (7, 10.0, "10", True):
        [error], books = _ask(session, book | {"depth": bad})
        assert error["success"] is False and "depth" in error["error"] and books is None, bad
    [error], _ = _ask(session, book | {"snapshot": False})
    assert error["success"] is False and "snapshot" in error["error"]
    [ack], books = _ask(session, book)  # depth 10 by default
    assert ack["result"] == {"channel": "book", "symbol": "BTC/USD", "depth": 10, "snapshot": True}
    assert books == {btc: 10}
    [ack], books = _ask(session, {"channel": "book", "symbol": ["ETH/USD"], "depth": 100})
    assert ack["result"]["depth"] == 100 and books == {btc: 10, eth: 20}  # the whole book
    [again], books = _ask(session, book)
    assert again["error"] == "Already subscribed" and books == {btc: 10, eth: 20}
    [done], books = _ask(session, book, "unsubscribe")
    assert done["success"] and books == {eth: 20}
    assert session.symbols == {eth}
