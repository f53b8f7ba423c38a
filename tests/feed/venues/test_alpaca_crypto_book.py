"""Alpaca crypto's `orderbooks` messages, sans-IO: a full book with `r: true` for a symbol just
booked, then each take's changed levels (size 0 removes); a client applying them as Alpaca
documents ends with the market's book, in JSON and in MessagePack."""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np
import orjson
import pytest
import trio

from tickwire.feed.hub import books as hub_books
from tickwire.feed.hub.books import Books
from tickwire.feed.server.server import ServerConfig
from tickwire.feed.venues.alpaca_crypto import (
    ORDERBOOKS,
    AlpacaCryptoEncoder,
    AlpacaCryptoSession,
)
from tickwire.simulators import Market, Universe

from .conftest import CADENCE_MS, VenueServer, start

MS = 1_000_000


@pytest.mark.parametrize("max_take", [None, 3])
@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_orderbooks_reset_then_changes_rebuild_the_markets_book(
    codec: str, max_take: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `max_take`, the server's reader keeps falling behind: the changes it lost come as
    a full book again (`r: true`)."""
    if max_take is not None:
        monkeypatch.setattr(hub_books, "MAX_TAKE", max_take)
    u = Universe.crypto_pairs()
    m = Market(u, seed=2, start_ns=0, session="24h", book_depth=20)
    books = Books(np.array(u.symbols, dtype=object), u.tick_size, 20, m.book_snapshot, 10**9)
    encoder = AlpacaCryptoEncoder(u)
    syms = [u.index("BTC-USD"), u.index("XRP-USD")]
    reader = books.attach(lambda: None)
    now = 10 * MS
    m.step_book(now)
    books.book(reader, np.array(syms), 20)
    for s in syms:
        encoder.reset(s)
    held: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
    resets = changes = 0
    for _ in range(100):
        now += 10 * MS
        _, levels = m.step_book(now)
        books.publish(levels)
        shared = encoder.orderbooks(books.take(reader), syms, books, now)
        for entry in shared.select(None, lambda s, c: c == ORDERBOOKS):
            data = shared.encoded(entry, codec)
            msg = orjson.loads(data) if codec == "json" else msgpack.unpackb(data, timestamp=3)
            assert msg["T"] == "o" and set(msg) <= {"T", "S", "t", "b", "a", "r"}
            if msg.get("r"):
                held[msg["S"]] = ({}, {})
                resets += 1
            else:
                changes += 1
            for side, key in ((0, "b"), (1, "a")):
                for level in msg[key]:
                    if level["s"] == 0:
                        held[msg["S"]][side].pop(level["p"], None)
                    else:
                        held[msg["S"]][side][level["p"]] = level["s"]
    assert changes > 20 if max_take is None else resets > len(syms)
    assert resets == len(syms) or max_take is not None
    snap = m.book_snapshot()
    for s in syms:
        bids, asks = held[f"{u.bases[s]}/{u.quotes[s]}"]
        unit = float(u.size_unit[s])
        for got, name in (
            (sorted(bids.items(), reverse=True), "bid"),
            (sorted(asks.items()), "ask"),
        ):
            pairs = zip(
                snap[s][f"{name}_price"].tolist(), snap[s][f"{name}_size"].tolist(), strict=True
            )
            want = [(p, z * unit) for p, z in pairs if z]
            assert len(got) == len(want)
            assert [x for pair in got for x in pair] == pytest.approx(
                [x for pair in want for x in pair]
            )


# ---------------------------------------------------------------- the session's requests


def _authed(book_depth: int) -> AlpacaCryptoSession:
    session = AlpacaCryptoSession("us", {}, Universe.crypto_pairs(), (), 0, book_depth=book_depth)
    session.opened(0)
    session.receive('{"action":"auth","key":"k","secret":"s"}', 1)
    return session


def test_orderbooks_book_the_pairs_or_say_how_to_start_books() -> None:
    u = Universe.crypto_pairs()
    refused = _authed(0).receive('{"action":"subscribe","orderbooks":["BTC/USD"]}', 2)
    [off] = orjson.loads(refused.frames[0].data)
    assert off["T"] == "error" and off["code"] == 410 and "--book-depth" in off["msg"]
    session = _authed(20)
    reply = session.receive('{"action":"subscribe","orderbooks":["BTC/USD","ETH/USD"]}', 2)
    [ack] = orjson.loads(reply.frames[0].data)
    assert ack["T"] == "subscription" and ack["orderbooks"] == ["BTC/USD", "ETH/USD"]
    assert reply.books == {u.index("BTC-USD"): 20, u.index("ETH-USD"): 20}
    reply = session.receive('{"action":"subscribe","trades":["SOL/USD"]}', 3)
    assert reply.books is None  # unchanged
    reply = session.receive('{"action":"unsubscribe","orderbooks":["BTC/USD"]}', 4)
    assert reply.books == {u.index("ETH-USD"): 20}
    reply = session.receive('{"action":"subscribe","orderbooks":["*"]}', 5)
    assert reply.books == {i: 20 for i in range(len(u))}


# ---------------------------------------------------------------- over a real socket


async def test_alpaca_py_crypto_stream_receives_orderbooks(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """alpaca-py's CryptoDataStream (MessagePack), unmodified but for `url_override`, on a
    server with books: `subscribe_orderbooks` gets a full book (`reset`) then changes, and the
    book it folds stays whole."""
    live = pytest.importorskip("alpaca.data.live", reason="alpaca-py is not installed")
    from alpaca.data.models import Orderbook

    u = Universe.crypto_pairs()
    config = ServerConfig(port=0, cadence_ms=CADENCE_MS, universe=u, session="24h", book_depth=20)
    venue: VenueServer = await start(nursery, caplog, config)
    got: list[Any] = []
    stream = live.CryptoDataStream(
        "key", "secret", url_override=venue.url("/alpaca/v1beta3/crypto/us")
    )

    async def on_book(book: Any) -> None:
        got.append(book)
        if len(got) >= 40:
            await stream.stop_ws()

    stream.subscribe_orderbooks(on_book, "SOL/USD")

    def run() -> None:
        stream.run()

    try:
        with trio.fail_after(60):
            await trio.to_thread.run_sync(run, abandon_on_cancel=True)
    except trio.TooSlowError:
        await trio.to_thread.run_sync(stream.stop, abandon_on_cancel=True)
        raise
    assert all(isinstance(b, Orderbook) and b.symbol == "SOL/USD" for b in got)
    assert got[0].reset and not any(b.reset for b in got[1:])
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for b in got:
        if b.reset:
            bids.clear()
            asks.clear()
        for side, levels in ((bids, b.bids), (asks, b.asks)):
            for q in levels:
                if q.size == 0:
                    side.pop(q.price, None)
                else:
                    side[q.price] = q.size
        assert bids and asks and max(bids) < min(asks)
        tick = 0.01
        assert min(bids) > max(bids) - 20.5 * tick and max(asks) < min(asks) + 20.5 * tick
