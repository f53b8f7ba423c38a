"""Coinbase's level2 channels, sans-IO: a snapshot then `l2update`s, every change (`level2`) or
conflated per level every 50 ms of event time (`level2_batch`); a client applying them as
Coinbase documents ends with the market's book, exact decimal strings throughout."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import orjson
import pytest

from tickwire.feed.hub.books import Books
from tickwire.feed.venues.coinbase_book import (
    BATCH_NS,
    LEVEL2,
    LEVEL2_BATCH,
    CoinbaseBooks,
    price_text,
)
from tickwire.simulators import Market, Universe

MS = 1_000_000


def test_price_text_is_exact() -> None:
    assert price_text(1234567, 2) == "12345.67"
    assert price_text(5, 5) == "0.00005"
    assert price_text(42, 0) == "42"


class Client:
    """One product's book as a Coinbase client keeps it (strings in, Decimals held)."""

    def __init__(self, snapshot: dict[str, object]) -> None:
        assert snapshot["type"] == "snapshot"
        self.sides: dict[str, dict[Decimal, Decimal]] = {
            "buy": {Decimal(p): Decimal(s) for p, s in snapshot["bids"]},  # type: ignore[attr-defined]
            "sell": {Decimal(p): Decimal(s) for p, s in snapshot["asks"]},  # type: ignore[attr-defined]
        }

    def apply(self, update: dict[str, object]) -> None:
        assert update["type"] == "l2update"
        for side, price, size in update["changes"]:  # type: ignore[attr-defined]
            assert isinstance(price, str) and isinstance(size, str)
            book = self.sides[side]
            if Decimal(size) == 0:
                book.pop(Decimal(price), None)
            else:
                book[Decimal(price)] = Decimal(size)

    def book(self, unit: float) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
        bids = sorted(self.sides["buy"].items(), reverse=True)
        asks = sorted(self.sides["sell"].items())
        u = Decimal(str(unit))
        return (
            [(float(p), int(s / u)) for p, s in bids],
            [(float(p), int(s / u)) for p, s in asks],
        )


def _market_book(m: Market, sym: int) -> tuple[list[tuple[float, int]], ...]:
    row = m.book_snapshot()[sym]
    out = []
    for name in ("bid", "ask"):
        pairs = zip(row[f"{name}_price"].tolist(), row[f"{name}_size"].tolist(), strict=True)
        out.append([(p, s) for p, s in pairs if s])
    return out[0], out[1]


@pytest.mark.parametrize("channel", [LEVEL2, LEVEL2_BATCH])
def test_a_client_applying_snapshot_and_updates_has_the_markets_book(channel: str) -> None:
    u = Universe.crypto_pairs()
    m = Market(u, seed=9, start_ns=0, session="24h", book_depth=20)
    books = Books(np.array(u.symbols, dtype=object), u.tick_size, 20, m.book_snapshot, 10**9)
    coinbase = CoinbaseBooks(u)
    syms = [u.index(s) for s in ("BTC-USD", "SOL-USD", "DOGE-USD")]
    reader = books.attach(lambda: None)
    now = 7 * MS
    m.step_book(now)
    books.book(reader, np.array(syms), books.depth)
    clients = {}
    for s in syms:
        [frame] = coinbase.snapshot(s, books, now)
        clients[u.symbols[s]] = Client(orjson.loads(frame.data))
    sent, per_window = 0, {}
    for _ in range(150):
        now += 7 * MS
        _, levels = m.step_book(now)
        books.publish(levels)
        shared = coinbase.updates(books.take(reader), syms, now)
        for _, kind, data in shared.items:
            if kind != channel:
                continue
            update = orjson.loads(data)
            clients[update["product_id"]].apply(update)
            sent += 1
            if kind == LEVEL2_BATCH:
                products = per_window.setdefault(now // BATCH_NS, [])
                products.append(update["product_id"])
        if channel == LEVEL2 or any(k == LEVEL2_BATCH for _, k, _ in shared.items):
            for s in syms:  # after every level2 take, and at every batch
                unit = float(u.size_unit[s])
                got = clients[u.symbols[s]].book(unit)
                want = _market_book(m, s)
                assert got[0] == pytest.approx(want[0]) and got[1] == pytest.approx(want[1])
    assert sent > 20
    if channel == LEVEL2_BATCH:  # one update per product per 50 ms window at most
        assert len(per_window) <= 150 * 7 * MS // BATCH_NS + 1
        assert all(len(p) == len(set(p)) for p in per_window.values())
