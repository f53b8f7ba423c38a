"""The venues' REST books from the server's real order books, sans-IO: Coinbase's
`products/{id}/book` (levels 1 and 2) and Alpaca crypto's `latest/orderbooks` are the market's
book now, booked by a stream or not, with exact sizes; without books, the top of the book."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import orjson
import pytest

from tickwire.feed.hub.books import Books
from tickwire.feed.venues.rest import MarketView, RestApi, RestRequest, RestTape
from tickwire.simulators import Market, Universe

MS = 1_000_000
DEPTH = 20


class Setup:
    def __init__(self, books: bool = True) -> None:
        self.universe = u = Universe.crypto_pairs()
        self.market = Market(u, seed=11, start_ns=0, session="24h", book_depth=DEPTH)
        names = np.array(u.symbols, dtype=object)
        self.books = Books(names, u.tick_size, DEPTH, self.market.book_snapshot, 10**9)
        self.tape = RestTape(len(u))
        self.now = 0
        view = MarketView(u, self.market.snapshot, self.tape, books=self.books if books else None)
        self.api = RestApi(view, coinbase_per_s=0, alpaca_per_min=0)
        self.step(500)

    def step(self, ms: int) -> None:
        for _ in range(ms // 10):
            self.now += 10 * MS
            ticks, levels = self.market.step_book(self.now)
            self.books.publish(levels)
            self.tape.publish(ticks)

    def get(self, path: str, query: str = "") -> tuple[int, object]:
        handler = self.api.route(path)
        assert handler is not None, path
        resp = handler(RestRequest("GET", path, query, {}, "1.2.3.4"), self.now)
        return resp.status, orjson.loads(resp.body)

    def market_book(self, symbol: str) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
        """The market's book of `symbol` now: (price, size units) best first, each side."""
        row = self.market.book_snapshot()[self.universe.index(symbol)]
        sides = []
        for name in ("bid", "ask"):
            prices, sizes = row[f"{name}_price"].tolist(), row[f"{name}_size"].tolist()
            sides.append([(p, s) for p, s in zip(prices, sizes, strict=True) if s])
        return sides[0], sides[1]


def _units(setup: Setup, symbol: str, qty: str | float) -> int:
    """An exact quantity back in the symbol's size units."""
    unit = Decimal(str(float(setup.universe.size_unit[setup.universe.index(symbol)])))
    n = Decimal(str(qty)) / unit
    assert n == int(n), (qty, unit)
    return int(n)


def _coinbase_levels(setup: Setup, symbol: str, side: list[list[object]]) -> list[tuple]:
    return [(float(str(p)), _units(setup, symbol, str(s))) for p, s, n in side]


@pytest.mark.parametrize("symbol", ["BTC-USD", "DOGE-USD"])
def test_coinbase_level2_is_the_markets_whole_book(symbol: str) -> None:
    setup = Setup()
    status, book = setup.get(f"/coinbase/products/{symbol}/book", "level=2")
    assert status == 200 and isinstance(book, dict)
    bids, asks = setup.market_book(symbol)
    assert len(bids) > 1 and len(asks) > 1
    decimals = len(str(book["bids"][0][0]).split(".")[1]) if "." in book["bids"][0][0] else 0
    tick = float(setup.universe.tick_size[setup.universe.index(symbol)])
    assert decimals == len(f"{tick:f}".rstrip("0").split(".")[1])  # the product's increment
    assert _coinbase_levels(setup, symbol, book["bids"]) == pytest.approx(bids)
    assert _coinbase_levels(setup, symbol, book["asks"]) == pytest.approx(asks)
    assert all(n == 1 for _, _, n in book["bids"] + book["asks"])
    row = setup.market.book_snapshot()[setup.universe.index(symbol)]
    assert book["sequence"] == int(row["seq"])  # the book's sequence, as the streams'


def test_coinbase_level1_is_the_best_bid_and_ask_and_level3_is_refused() -> None:
    setup = Setup()
    status, book = setup.get("/coinbase/products/ETH-USD/book", "level=1")
    assert status == 200 and isinstance(book, dict)
    latest = setup.market.snapshot()[setup.universe.index("ETH-USD")]
    assert [float(book["bids"][0][0]), float(book["asks"][0][0])] == [
        pytest.approx(float(latest["bid"])),
        pytest.approx(float(latest["ask"])),
    ]
    assert len(book["bids"]) == len(book["asks"]) == 1
    assert _units(setup, "ETH-USD", book["bids"][0][1]) == int(latest["bid_size"])
    status, error = setup.get("/coinbase/products/ETH-USD/book", "level=3")
    assert status == 400 and isinstance(error, dict) and set(error) == {"message"}


def test_a_booked_symbols_rest_book_follows_the_servers_book() -> None:
    """Once a stream books the symbol, the REST book is the server's copy, which keeps the
    market's book step after step."""
    setup = Setup()
    sym = setup.universe.index("BTC-USD")
    reader = setup.books.attach(lambda: None)
    setup.books.book(reader, np.array([sym]), DEPTH)
    for _ in range(5):
        setup.step(200)
        _, book = setup.get("/coinbase/products/BTC-USD/book", "level=2")
        bids, asks = setup.market_book("BTC-USD")
        assert isinstance(book, dict)
        assert _coinbase_levels(setup, "BTC-USD", book["bids"]) == pytest.approx(bids)
        assert _coinbase_levels(setup, "BTC-USD", book["asks"]) == pytest.approx(asks)


def test_alpaca_crypto_latest_orderbooks_are_the_books() -> None:
    setup = Setup()
    status, body = setup.get(
        "/alpaca/v1beta3/crypto/us/latest/orderbooks", "symbols=BTC/USD,SOL/USD,NOPE/USD"
    )
    assert status == 200 and isinstance(body, dict)
    books = body["orderbooks"]
    assert set(books) == {"BTC/USD", "SOL/USD"}  # no data for unknown pairs, as at Alpaca
    for name, symbol in (("BTC/USD", "BTC-USD"), ("SOL/USD", "SOL-USD")):
        bids, asks = setup.market_book(symbol)
        got = books[name]
        assert set(got) == {"t", "b", "a"} and got["t"].endswith("Z")
        assert [(q["p"], _units(setup, symbol, q["s"])) for q in got["b"]] == pytest.approx(bids)
        assert [(q["p"], _units(setup, symbol, q["s"])) for q in got["a"]] == pytest.approx(asks)
    status, error = setup.get("/alpaca/v1beta3/crypto/us/latest/orderbooks")
    assert status == 400 and isinstance(error, dict) and set(error) == {"code", "message"}


def test_without_books_the_rest_books_are_the_top_of_book() -> None:
    setup = Setup(books=False)
    latest = setup.market.snapshot()[setup.universe.index("BTC-USD")]
    _, book = setup.get("/coinbase/products/BTC-USD/book", "level=2")
    assert isinstance(book, dict) and len(book["bids"]) == len(book["asks"]) == 1
    assert book["sequence"] == int(latest["seq"])
    _, body = setup.get("/alpaca/v1beta3/crypto/us/latest/orderbooks", "symbols=BTC/USD")
    assert isinstance(body, dict)
    got = body["orderbooks"]["BTC/USD"]
    assert got["b"] == [{"p": float(latest["bid"]), "s": pytest.approx(got["b"][0]["s"])}]
    assert _units(setup, "BTC-USD", got["a"][0]["s"]) == int(latest["ask_size"])
