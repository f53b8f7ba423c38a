"""Coinbase's level2 channels, sans-IO: a snapshot then `l2update`s, every change (`level2`) or
conflated per level every 50 ms of event time (`level2_batch`); a client applying them as
Coinbase documents ends with the market's book, exact decimal strings throughout."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwire.feed.hub import books as hub_books
from tickwire.feed.hub.books import Books
from tickwire.feed.server.server import ServerConfig
from tickwire.feed.venues.coinbase import CoinbaseSession
from tickwire.feed.venues.coinbase_book import (
    BATCH_NS,
    LEVEL2,
    LEVEL2_BATCH,
    CoinbaseBooks,
    price_text,
)
from tickwire.simulators import Market, Universe

from .conftest import CADENCE_MS, VenueServer, start

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


@pytest.mark.parametrize("max_take", [None, 20])
@pytest.mark.parametrize("channel", [LEVEL2, LEVEL2_BATCH])
def test_a_client_applying_snapshot_and_updates_has_the_markets_book(
    channel: str, max_take: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `max_take`, the server's reader keeps falling behind (more changes in a take than
    it keeps): the lost changes come as a fresh snapshot, which a client starts over from."""
    if max_take is not None:
        monkeypatch.setattr(hub_books, "MAX_TAKE", max_take)
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
    sent, flushes, resyncs = 0, [], 0
    for _ in range(150):
        now += 7 * MS
        _, levels = m.step_book(now)
        books.publish(levels)
        shared = coinbase.updates(books.take(reader), syms, books, now)
        for _, kind, data in shared.items:
            if kind != channel:
                continue
            update = orjson.loads(data)
            if update["type"] == "snapshot":  # start over, as Coinbase's clients do
                clients[update["product_id"]] = Client(update)
                resyncs += 1
                continue
            clients[update["product_id"]].apply(update)
            sent += 1
            if kind == LEVEL2_BATCH and (not flushes or flushes[-1] != now):
                flushes.append(now)
        flushed = any(k == LEVEL2_BATCH and b"l2update" in d for _, k, d in shared.items)
        if channel == LEVEL2 or flushed:
            for s in syms:  # after every level2 take, and at every batch
                unit = float(u.size_unit[s])
                got = clients[u.symbols[s]].book(unit)
                want = _market_book(m, s)
                assert got[0] == pytest.approx(want[0]) and got[1] == pytest.approx(want[1])
    assert sent > 20
    assert (resyncs > 0) == (max_take is not None)
    if channel == LEVEL2_BATCH:  # one update per product every 50 ms at most
        assert len(flushes) > 10
        assert all(b - a >= BATCH_NS for a, b in itertools.pairwise(flushes))


# ---------------------------------------------------------------- the session's requests

SIGNED = {"key": "k1", "signature": "c2lnbmVk", "passphrase": "p", "timestamp": "1700000000"}


def _ask(session: CoinbaseSession, msg: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    reply = session.receive(orjson.dumps(msg).decode(), 10**9)
    return [orjson.loads(f.data) for f in reply.frames], reply.books


def test_level2_needs_books_and_a_signed_subscribe_level2_batch_does_not() -> None:
    u = Universe.crypto_pairs()
    btc = u.index("BTC-USD")
    sub = {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": [LEVEL2]}
    [off], books = _ask(CoinbaseSession(u, 0), sub | SIGNED)
    assert off["type"] == "error" and "--book-depth" in off["reason"] and books is None
    session = CoinbaseSession(u, 0, book_depth=20)
    [unsigned], books = _ask(session, sub)
    assert unsigned["message"] == "Failed to subscribe" and "authentication" in unsigned["reason"]
    for bad in (
        {"signature": "not base64!"},
        {"timestamp": "soon"},
        {"timestamp": "inf"},
        {"key": ""},
    ):
        [error], _ = _ask(session, sub | SIGNED | bad)
        assert error["type"] == "error", bad
    [subscribed], books = _ask(session, sub | SIGNED)
    assert subscribed["type"] == "subscriptions" and books == {btc: 20}
    batch = {"type": "subscribe", "product_ids": ["ETH-USD"], "channels": [LEVEL2_BATCH]}
    [subscribed], books = _ask(session, batch)  # public at Coinbase
    assert subscribed["type"] == "subscriptions" and books == {btc: 20, u.index("ETH-USD"): 20}
    _, books = _ask(session, sub | {"type": "unsubscribe"})
    assert books == {u.index("ETH-USD"): 20}


def test_with_server_tokens_the_level2_key_must_be_one() -> None:
    u = Universe.crypto_pairs()
    session = CoinbaseSession(u, 0, tokens=("t0ken",), book_depth=20)
    sub = {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": [LEVEL2]}
    [refused], books = _ask(session, sub | SIGNED)
    assert refused["message"] == "Authentication Failed" and books is None
    [ok], books = _ask(session, sub | SIGNED | {"key": "t0ken"})
    assert ok["type"] == "subscriptions" and books == {u.index("BTC-USD"): 20}


# ---------------------------------------------------------------- over a real socket


@pytest.fixture
async def book_server(nursery: trio.Nursery, caplog: pytest.LogCaptureFixture) -> VenueServer:
    u = Universe.crypto_pairs()
    config = ServerConfig(port=0, cadence_ms=CADENCE_MS, universe=u, session="24h", book_depth=20)
    return await start(nursery, caplog, config)


def _check_book(book: dict[str, Any], tick: float, depth: int = 20) -> None:
    """Uncrossed, best first, and every level within the server's depth of its best (a level
    a client failed to remove ends up outside it as the market moves)."""
    bids = [(level[0], level[1]) for level in book["bids"]]
    asks = [(level[0], level[1]) for level in book["asks"]]
    assert bids and asks and bids[0][0] < asks[0][0]
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)
    assert all(p > bids[0][0] - (depth + 0.5) * tick for p, _ in bids)
    assert all(p < asks[0][0] + (depth + 0.5) * tick for p, _ in asks)
    assert all(s > 0 for _, s in bids + asks)


async def test_ccxt_pro_coinbaseexchange_watches_the_order_book(book_server: VenueServer) -> None:
    """ccxt.pro's coinbaseexchange, pointed here by its URLs and with made-up credentials (its
    level2 subscribe is signed): `fetch_order_book` over REST, then `watch_order_book` for
    many consecutive updates, the book always whole."""
    ccxtpro = pytest.importorskip("ccxt.pro", reason="ccxt is not installed")
    tick = 0.01
    ws_url = book_server.url("/coinbase")
    http = ws_url.replace("ws://", "http://", 1)

    async def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        secret = base64.b64encode(b"not a real secret").decode()
        exchange = ccxtpro.coinbaseexchange({"apiKey": "k", "secret": secret, "password": "p"})
        exchange.urls["api"]["ws"] = ws_url
        exchange.urls["api"]["public"] = http
        try:
            fetched = await exchange.fetch_order_book("BTC/USD")
            seen = []
            for _ in range(60):
                book = await exchange.watch_order_book("BTC/USD")
                seen.append({"bids": list(book["bids"]), "asks": list(book["asks"])})
            return fetched, seen
        finally:
            await exchange.close()

    def in_thread() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return asyncio.run(run())

    with trio.fail_after(60):
        fetched, seen = await trio.to_thread.run_sync(in_thread, abandon_on_cancel=True)
    assert len(fetched["bids"]) >= 1 and fetched["nonce"] > 0
    _check_book(fetched, tick)
    assert len(seen) == 60
    for book in seen:
        _check_book(book, tick)
    assert len({str(b) for b in seen}) > 10  # the book moved


async def test_level2_batch_over_websockets_keeps_the_book(book_server: VenueServer) -> None:
    """A plain websockets client on level2_batch (no credentials): the subscriptions message,
    a snapshot, then l2updates at most every 50 ms per product, the book always whole."""
    from websockets.sync.client import connect

    def client() -> tuple[list[dict[str, Any]], Client, list[int]]:
        got = []
        with connect(book_server.url("/coinbase"), open_timeout=10) as ws:
            sub = {"type": "subscribe", "product_ids": ["SOL-USD"], "channels": [LEVEL2_BATCH]}
            ws.send(json.dumps(sub))
            got.append(json.loads(ws.recv(timeout=10)))
            snapshot = json.loads(ws.recv(timeout=10))
            book, times = Client(snapshot), []
            while len(times) < 30:
                update = json.loads(ws.recv(timeout=10))
                book.apply(update)
                times.append(_us(update["time"]))
        return got, book, times

    with trio.fail_after(60):
        got, book, times = await trio.to_thread.run_sync(client, abandon_on_cancel=True)
    assert got[0] == {
        "type": "subscriptions",
        "channels": [{"name": LEVEL2_BATCH, "product_ids": ["SOL-USD"]}],
    }
    bids, asks = book.book(0.001)
    _check_book({"bids": bids, "asks": asks}, 0.01)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g >= 49_000 for g in gaps)  # µs: one batch per 50 ms window at most


def _us(text: str) -> int:
    whole = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(whole.timestamp()) * 1_000_000 + whole.microsecond


_field = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["c2lnbmVk", "k1", "1700000000", "1e999", ""]),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
_book_requests = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["subscribe", "unsubscribe"]),
        "product_ids": st.lists(st.sampled_from(["BTC-USD", "ETH-USD", "NOPE"]), max_size=3),
        "channels": st.lists(st.sampled_from([LEVEL2, LEVEL2_BATCH, "ticker"]), max_size=3),
    },
    optional={f: _field for f in ("key", "signature", "passphrase", "timestamp")},
).map(json.dumps)


@settings(deadline=None, max_examples=300)
@given(st.lists(_book_requests, max_size=5), st.booleans())
def test_any_book_request_gets_coinbase_replies_and_books_only_what_is_subscribed(
    messages: list[str], tokens: bool
) -> None:
    u = Universe.crypto_pairs()
    session = CoinbaseSession(u, 0, tokens=("k1",) if tokens else (), book_depth=20)
    books: dict[int, int] = {}
    for m in messages:
        reply = session.receive(m, 10**9)
        assert reply.close is None
        for frame in reply.frames:
            assert orjson.loads(frame.data)["type"] in ("subscriptions", "error")
        if reply.books is not None:
            books = reply.books
        wanted = {u.index(p) for c in (LEVEL2, LEVEL2_BATCH) for p in session.channels[c]}
        assert books == dict.fromkeys(wanted, 20)
