"""Binance REST depth encoded once per book change (`_rest_depth.DepthBodies`), sans-IO: an
unchanged book's answer is the same bytes, a changed book's answer moves with it (never a stale
book), every answer is what encoding the book afresh gives, and weights and 429s still apply."""

from __future__ import annotations

import random

import numpy as np
import orjson
import pytest

from tickwire.feed.hub.books import Books
from tickwire.feed.venues._sizes import BINANCE_PLACES
from tickwire.feed.venues.binance_depth import RestDepth
from tickwire.feed.venues.rest import MarketView, RestApi, RestRequest, RestResponse, RestTape
from tickwire.simulators import Market, Universe

MS = 1_000_000
DEPTH = 20
DEPTH_PATH = "/binance/api/v3/depth"


class Setup:
    """A market with books stepped by hand, the REST API over it, and a reference `RestDepth`
    (its own reader of the same books) that encodes the book afresh on every call."""

    def __init__(self, **api: int) -> None:
        self.universe = u = Universe.crypto_pairs()
        self.market = Market(u, seed=5, start_ns=0, session="24h", book_depth=DEPTH)
        names = np.array(u.symbols, dtype=object)
        self.books = Books(names, u.tick_size, DEPTH, self.market.book_snapshot, 10**9)
        view = MarketView(u, self.market.snapshot, RestTape(len(u)), books=self.books)
        api = {"binance_weight_per_min": 10**9, **api}  # many polls in one instant
        self.api = RestApi(view, coinbase_per_s=0, alpaca_per_min=0, **api)
        self.reference = RestDepth(self.books)
        self.qtys = view.sizes.formats(BINANCE_PLACES)
        self.now = 0
        self.step(100)

    def step(self, ms: int) -> None:
        self.now += ms * MS
        _, levels = self.market.step_book(self.now)
        self.books.publish(levels)

    def depth(self, symbol: str, limit: int = 100, peer: str = "1.2.3.4") -> RestResponse:
        handler = self.api.route(DEPTH_PATH)
        assert handler is not None
        query = f"symbol={symbol}&limit={limit}"
        return handler(RestRequest("GET", DEPTH_PATH, query, {}, peer), self.now)

    def fresh(self, symbol: str, limit: int = 100) -> bytes:
        """The answer encoded from the book now, as before the bodies were kept."""
        sym = self.universe.index(symbol.replace("USD", "-USD"))
        return orjson.dumps(self.reference.answer(sym, limit, self.qtys[sym], self.now))


def test_an_unchanged_book_is_encoded_once() -> None:
    s = Setup()
    first = s.depth("BTCUSD")
    again = s.depth("BTCUSD")
    assert first.status == again.status == 200
    assert again.body is first.body  # the same bytes: a lookup, no encoding
    assert first.body == s.fresh("BTCUSD")


def test_a_changed_book_moves_lastupdateid_and_levels() -> None:
    """Never a stale book: after each change the answer is the new book, and its
    `lastUpdateId` moved with it."""
    s = Setup()
    seen = orjson.loads(s.depth("BTCUSD").body)
    moved = 0
    for _ in range(40):
        before = s.books.levels[s.universe.index("BTC-USD")]
        seq = before.seq if before is not None else -1
        s.step(20)
        body = s.depth("BTCUSD").body
        now = orjson.loads(body)
        assert body == s.fresh("BTCUSD")
        if now["lastUpdateId"] != seq:  # the book changed in those 20 ms
            moved += 1
            assert now["lastUpdateId"] > seen["lastUpdateId"]
            assert (now["bids"], now["asks"]) != (seen["bids"], seen["asks"]) or (
                now["lastUpdateId"] > seen["lastUpdateId"]
            )
        seen = now
    assert moved > 10  # the market did change the book: the test saw answers move


@pytest.mark.parametrize("seed", range(3))
def test_every_answer_is_the_book_encoded_afresh(seed: int) -> None:
    """Random polls of several symbols and limits (some above the server's depth), between
    random steps (some of 0 ms: the same book): each answer is the fresh encoding's bytes."""
    s, rng = Setup(), random.Random(seed)
    symbols = ["BTCUSD", "ETHUSD", "DOGEUSD"]
    for _ in range(300):
        if rng.random() < 0.3:
            s.step(rng.choice([0, 1, 5, 50]))
        symbol, limit = rng.choice(symbols), rng.choice([1, 5, 10, 20, 100, 5000])
        resp = s.depth(symbol, limit)
        assert resp.status == 200
        assert resp.body == s.fresh(symbol, limit), (symbol, limit)


def test_a_symbol_dropped_when_idle_is_booked_afresh() -> None:
    """REST stops tracking a symbol nobody asked for in a minute; asked again, it is booked
    from the market's book now (a new book object), never served from the old body."""
    s = Setup()
    old = s.depth("ETHUSD").body
    for _ in range(13):
        s.step(5_000)
        s.depth("BTCUSD")  # keeps BTCUSD asked for, lets ETHUSD go idle
    assert s.universe.index("ETH-USD") not in s.api.binance.books.depth.used
    again = s.depth("ETHUSD").body
    assert again == s.fresh("ETHUSD")
    assert orjson.loads(again)["lastUpdateId"] > orjson.loads(old)["lastUpdateId"]


def test_weights_and_429_apply_to_kept_answers() -> None:
    """A kept body is still charged its weight (5 for limit <= 100) and refused past the
    limit with Binance's 429, `Retry-After` and error object."""
    s = Setup(binance_weight_per_min=12)
    answers = [s.depth("BTCUSD") for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 429]
    assert [dict(a.headers)["X-MBX-USED-WEIGHT-1M"] for a in answers] == ["5", "10", "15"]
    refused = answers[2]
    assert "Retry-After" in dict(refused.headers)
    assert orjson.loads(refused.body)["code"] == -1003
    assert s.depth("BTCUSD", peer="another address").status == 200
    assert answers[1].body is answers[0].body
