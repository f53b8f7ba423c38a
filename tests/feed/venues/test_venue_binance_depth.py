"""Binance's depth streams and REST depth from the server's order books.

Sans-IO first (a market with books, the hub's `Books`, the venue's shared reader and the Binance
encoder, no sockets): the diff stream's `U`/`u` chain, per-level conflation with absolute sizes
and "0" removals, partial books, and Binance's documented procedure (buffer the stream, fetch
the REST snapshot, drop u <= lastUpdateId, start at U <= lastUpdateId+1 <= u) from any start
time (hypothesis). Then the same procedure by hand against a real server's raw streams and REST,
and the REST endpoint's limits, weights and errors.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import orjson
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from tickwire.feed.hub.books import Books
from tickwire.feed.server.server import ServerConfig
from tickwire.feed.venues._common import Entry
from tickwire.feed.venues.binance import BinanceEncoder
from tickwire.feed.venues.binance_depth import RestDepth, price_text
from tickwire.feed.venues.books import VenueBooks
from tickwire.simulators import Market, Universe

from .conftest import CADENCE_MS, VenueServer, start

MS = 1_000_000
DEPTH = 20


class Venue:
    """A market with books, the server's `Books`, and the Binance encoder reading them through
    the venue's shared reader, stepped by hand: what the venue stream does at each advance."""

    def __init__(self, seed: int = 4) -> None:
        u = Universe.crypto_pairs()
        self.market = Market(u, seed=seed, start_ns=0, book_depth=DEPTH)
        self.market.step_book(100 * MS)
        names = np.array(u.symbols, dtype=object)
        self.books = Books(names, u.tick_size, DEPTH, self.market.book_snapshot, 10**9)
        self.encoder = BinanceEncoder(u)
        self.venue = VenueBooks(self.encoder, self.books, lambda: None)
        self.venue.set("conn", {0: DEPTH}, 100 * MS)
        self.now_ns = 100 * MS
        self.rest = RestDepth(self.books)

    def step(self, ms: int = 5) -> list[tuple[str, dict[str, Any]]]:
        """Step the market `ms` and return the depth events of symbol 0 due, with the truth
        (the server's book) checked by the caller."""
        self.now_ns += ms * MS
        _, levels = self.market.step_book(self.now_ns)
        self.books.publish(levels)
        out = []
        for shared in self.venue.encode(self.venue.take(), self.now_ns):
            for order, (sym, channel, content) in enumerate(shared.items):
                if sym == 0:
                    data = orjson.loads(self.encoder.depth.raw(Entry(order, channel, content)))
                    out.append((channel, data))
        return out

    def truth(self) -> tuple[list[list[str]], list[list[str]]]:
        got = self.rest.answer(0, 5000, self.encoder.depth.qty(0), self.now_ns)
        return got["bids"], got["asks"]


def _apply(book: dict[str, dict[str, str]], event: dict[str, Any]) -> None:
    for key, side in (("b", "bids"), ("a", "asks")):
        for price, size in event[key]:
            if float(size) == 0:
                book[side].pop(price, None)
            else:
                book[side][price] = size


def _ladder(book: dict[str, dict[str, str]]) -> tuple[list[list[str]], list[list[str]]]:
    bids = sorted(book["bids"].items(), key=lambda kv: -float(kv[0]))
    asks = sorted(book["asks"].items(), key=lambda kv: float(kv[0]))
    return [list(x) for x in bids], [list(x) for x in asks]


def test_diff_events_chain_conflate_and_partial_books_are_the_books_top() -> None:
    v = Venue()
    last_u: int | None = None
    last_e = diffs = partials = 0
    for _ in range(400):  # 2 s of event time
        for channel, data in v.step():
            if channel == "depth@100ms":
                assert data["e"] == "depthUpdate" and data["s"] == "BTCUSD"
                if last_u is not None:
                    assert data["U"] == last_u + 1
                    assert data["E"] // 100 > last_e // 100  # once per 100 ms of event time
                last_e = data["E"]
                assert data["U"] <= data["u"]
                last_u = data["u"]
                for side in (data["b"], data["a"]):  # one change per level: conflated
                    assert len({p for p, _ in side}) == len(side)
                prices = [p for p, _ in data["b"]] + [p for p, _ in data["a"]]
                assert all(len(p.split(".")[1]) == 8 for p in prices)
                diffs += 1
            elif channel == "depth5@100ms":
                bids, asks = v.truth()
                assert data == {"lastUpdateId": v.books.levels[0].seq, "bids": bids[:5],
                                "asks": asks[:5]}  # fmt: skip
                assert float(bids[0][0]) < float(asks[0][0])
                partials += 1
    assert diffs >= 15 and partials >= 15


@settings(max_examples=15, deadline=None)
@given(start_steps=st.integers(0, 60), fetch_after=st.integers(0, 40), seed=st.integers(0, 3))
def test_binance_procedure_from_any_start_builds_the_servers_book(
    start_steps: int, fetch_after: int, seed: int
) -> None:
    """Buffer the diff stream, fetch the snapshot `fetch_after` steps later, apply Binance's
    rule: the book equals the server's after every event from then on."""
    v = Venue(seed)
    for _ in range(start_steps):
        v.step()
    buffered: list[dict[str, Any]] = []
    for _ in range(fetch_after):
        buffered += [d for c, d in v.step() if c == "depth"]
    snap = v.rest.answer(0, 1000, v.encoder.depth.qty(0), v.now_ns)
    book = {"bids": dict(map(tuple, snap["bids"])), "asks": dict(map(tuple, snap["asks"]))}
    last = snap["lastUpdateId"]
    applied = 0
    for _ in range(500):
        buffered += [d for c, d in v.step() if c == "depth"]
        for event in buffered:
            if event["u"] <= last:
                continue
            if applied == 0:
                assert event["U"] <= last + 1 <= event["u"]
            else:
                assert event["U"] == last + 1
            _apply(book, event)
            last = event["u"]
            applied += 1
            assert last == v.books.levels[0].seq  # an event carries every change up to now
            assert _ladder(book) == v.truth()
        buffered = []
    assert applied >= 2


def test_price_text_is_exact() -> None:
    assert price_text(9_000_012, 2) == "90000.12000000"
    assert price_text(5, 8) == "0.00000005"
    assert price_text(12345, 0) == "12345.00000000"


# ---------------------------------------------------------------------------- a real server


async def _crypto_books(nursery: trio.Nursery, caplog: pytest.LogCaptureFixture) -> VenueServer:
    config = ServerConfig(
        port=0,
        cadence_ms=CADENCE_MS,
        universe=Universe.crypto_pairs(),
        session="24h",
        book_depth=DEPTH,
    )
    return await start(nursery, caplog, config)


def _get(url: str) -> tuple[int, dict[str, str], Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


async def test_the_documented_procedure_by_hand_against_streams_and_rest(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """Raw WebSocket + REST, as Binance's "How to manage a local order book correctly": the
    local book equals the server's top 20 (its depth20@100ms stream, same lastUpdateId) after
    every event, from a seeded random start."""
    venue = await _crypto_books(nursery, caplog)
    ws_url = venue.url("/binance/stream?streams=btcusd@depth@100ms/btcusd@depth20@100ms")
    rest = venue.url("/binance/api/v3/depth?symbol=BTCUSD&limit=1000").replace("ws:", "http:")
    rng = random.Random(22)

    def run() -> tuple[int, int]:
        buffered: list[dict[str, Any]] = []
        partial: dict[int, dict[str, Any]] = {}
        with connect(ws_url, open_timeout=10) as ws:
            for _ in range(rng.randrange(1, 12)):  # buffer some events first
                msg = json.loads(ws.recv(timeout=10))
                if msg["stream"].endswith("@depth@100ms"):
                    buffered.append(msg["data"])
            status, headers, snap = _get(rest)
            assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == "50"
            book = {"bids": dict(map(tuple, snap["bids"])), "asks": dict(map(tuple, snap["asks"]))}
            last, applied, checked = snap["lastUpdateId"], 0, 0
            while applied < 25:
                msg = json.loads(ws.recv(timeout=10))
                data = msg["data"]
                if msg["stream"].endswith("depth20@100ms"):
                    partial[data["lastUpdateId"]] = data
                    continue
                buffered.append(data)
                for event in buffered:
                    if event["u"] <= last:
                        continue
                    if applied == 0:
                        assert event["U"] <= last + 1 <= event["u"]
                    else:
                        assert event["U"] == last + 1, (event["U"], last)
                    _apply(book, event)
                    last, applied = event["u"], applied + 1
                buffered = []
                # the partial of the same interval comes right after its diff event
                msg = json.loads(ws.recv(timeout=10))
                assert msg["stream"] == "btcusd@depth20@100ms"
                data = msg["data"]
                if data["lastUpdateId"] == last:
                    bids, asks = _ladder(book)
                    assert (bids[:20], asks[:20]) == (data["bids"], data["asks"])
                    checked += 1
            return applied, checked

    with trio.fail_after(60):
        applied, checked = await trio.to_thread.run_sync(run, abandon_on_cancel=True)
    assert applied >= 25 and checked >= 20


async def test_rest_depth_limits_weights_and_errors(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    venue = await _crypto_books(nursery, caplog)
    base = venue.url("/binance/api/v3/depth").replace("ws:", "http:")

    def run() -> dict[str, Any]:
        return {
            "1": _get(base + "?symbol=BTCUSD&limit=1"),
            "5": _get(base + "?symbol=BTCUSD&limit=5"),
            "default": _get(base + "?symbol=BTCUSD"),
            "5000": _get(base + "?symbol=BTCUSD&limit=5000"),
            "bad": _get(base + "?symbol=BTCUSD&limit=abc"),
            "zero": _get(base + "?symbol=BTCUSD&limit=0"),
            "nosym": _get(base + "?symbol=NOPE"),
        }

    with trio.fail_after(30):
        got = await trio.to_thread.run_sync(run, abandon_on_cancel=True)
    status, headers, one = got["1"]
    assert status == 200 and len(one["bids"]) == len(one["asks"]) == 1
    assert headers["X-MBX-USED-WEIGHT-1M"] == "5"
    assert float(one["bids"][0][0]) < float(one["asks"][0][0])
    five = got["5"][2]
    assert 1 <= len(five["bids"]) <= 5 and 1 <= len(five["asks"]) <= 5
    assert all(len(p.split(".")[1]) == len(q.split(".")[1]) == 8 for p, q in five["bids"])
    # the levels within the server's depth (ticks from the best), best first
    bids = [float(p) for p, _ in got["default"][2]["bids"]]
    assert bids == sorted(bids, reverse=True) and bids[0] - bids[-1] < DEPTH * 0.01 + 1e-6
    status, headers, _ = got["5000"]
    assert status == 200 and int(headers["X-MBX-USED-WEIGHT-1M"]) == 5 + 5 + 5 + 250
    assert got["bad"][0] == 400 and got["bad"][2]["code"] == -1100
    assert got["zero"][0] == 400 and got["zero"][2]["code"] == -1130
    assert got["nosym"][2] == {"code": -1121, "msg": "Invalid symbol."}
    assert venue.server.books is not None
    assert venue.server.books.statistics()["books_tracked"] == 1  # kept while it is asked for


async def test_depth_streams_without_server_books_say_how_to_turn_them_on(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    config = ServerConfig(port=0, cadence_ms=CADENCE_MS, book_depth=0)
    venue_server = await start(nursery, caplog, config)
    url = venue_server.url("/binance/ws")

    def run() -> dict[str, Any]:
        with connect(url, open_timeout=10) as ws:
            ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["aapl@depth"], "id": 3}))
            return json.loads(ws.recv(timeout=10))

    with trio.fail_after(30):
        reply = await trio.to_thread.run_sync(run, abandon_on_cancel=True)
    assert reply["id"] == 3 and "--book-depth N" in reply["error"]["msg"]
    rest = venue_server.url("/binance/api/v3/depth?symbol=AAPL").replace("ws:", "http:")
    with trio.fail_after(30):
        status, _, top = await trio.to_thread.run_sync(_get, rest, abandon_on_cancel=True)
    assert status == 200 and len(top["bids"]) == len(top["asks"]) == 1  # the top of book


def test_rest_keeps_a_symbol_booked_while_it_is_asked_for() -> None:
    v = Venue()
    qty = v.encoder.depth.qty(1)
    tracked = v.books.statistics
    v.rest.answer(1, 5, qty, 0)
    assert tracked()["books_tracked"] == 2  # symbol 0 (the venue's) and 1 (REST's)
    v.rest.answer(1, 5, qty, 59 * 10**9)
    v.rest.answer(2, 5, qty, 100 * 10**9)  # symbol 1 was last asked for 41 s ago: kept
    assert tracked()["books_tracked"] == 3
    v.rest.answer(2, 5, qty, 120 * 10**9)  # 61 s: dropped
    assert tracked()["books_tracked"] == 2
