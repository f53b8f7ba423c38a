"""Alpaca crypto's `orderbooks` messages, sans-IO: a full book with `r: true` for a symbol just
booked, then each take's changed levels (size 0 removes); a client applying them as Alpaca
documents ends with the market's book, in JSON and in MessagePack."""

from __future__ import annotations

import msgpack
import numpy as np
import orjson
import pytest

from tickwire.feed.hub.books import Books
from tickwire.feed.venues.alpaca_crypto import ORDERBOOKS, AlpacaCryptoEncoder
from tickwire.simulators import Market, Universe

MS = 1_000_000


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_orderbooks_reset_then_changes_rebuild_the_markets_book(codec: str) -> None:
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
    assert resets == len(syms) and changes > 20
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
