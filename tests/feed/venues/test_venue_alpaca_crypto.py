"""Alpaca crypto (v1beta3): the stream `/alpaca/v1beta3/crypto/us` and the REST API under
`/alpaca/v1beta3/crypto/us/`. The session and encoder alone first (strings in, strings out),
then alpaca-py's CryptoDataStream and CryptoHistoricalDataClient, unmodified but for their
`url_override`, against the real server on the crypto universe over loopback."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
import trio

from tickwire.feed.server.server import ServerConfig
from tickwire.feed.venues import Upgrade, route
from tickwire.feed.venues.alpaca_crypto import AlpacaCryptoEncoder, AlpacaCryptoSession
from tickwire.simulators.ticks import TICK_DTYPE, TickBatch, TickFlag
from tickwire.simulators.universe import Universe

from .conftest import CADENCE_MS, VenueServer, start

DEADLINE_S = 30
PATH = "/alpaca/v1beta3/crypto/us"
CRYPTO = Universe.crypto_pairs()
BTC, ETH = CRYPTO.index("BTC-USD"), CRYPTO.index("ETH-USD")
T0 = 1_700_000_040 * 10**9  # 2023-11-14T22:14:00Z, a whole minute


def _session(universe: Universe = CRYPTO) -> AlpacaCryptoSession:
    factory = route(PATH)
    assert factory is not None
    session = factory(Upgrade(PATH, "", {}, universe, (), 0))
    assert isinstance(session, AlpacaCryptoSession)
    session.opened(0)
    assert session.receive('{"action":"auth","key":"k","secret":"s"}', 1).frames
    return session


def _said(reply: Any) -> list[dict[str, Any]]:
    return [m for f in reply.frames for m in orjson.loads(f.data)]


def test_subscribe_names_pairs_the_alpaca_way_and_the_book_waits():
    session = _session()
    reply = session.receive(
        '{"action":"subscribe","trades":["BTC/USD"],"quotes":["ETH/USD","BTC-USD"],'
        '"bars":["NOPE/USD"],"dailyBars":["BTC/USD"]}',
        2,
    )
    [ack] = _said(reply)
    assert ack == {
        "T": "subscription",
        "trades": ["BTC/USD"],
        "quotes": ["ETH/USD", "BTC-USD"],  # listed as named; only Alpaca's spelling has data
        "bars": ["NOPE/USD"],
        "orderbooks": [],
        "updatedBars": [],
        "dailyBars": ["BTC/USD"],
    }
    assert reply.symbols == frozenset({BTC, ETH})
    [err] = _said(session.receive('{"action":"subscribe","orderbooks":["BTC/USD"]}', 3))
    assert err["code"] == 410 and "--book-depth" in err["msg"]  # this server keeps no books
    [err] = _said(session.receive('{"action":"subscribe","statuses":["BTC/USD"]}', 4))
    assert err["code"] == 400  # a stock channel: not on the crypto feed


def test_star_in_a_mixed_universe_is_its_crypto_pairs_only():
    mixed = Universe(
        symbols=("AAPL", "BTC-USD", "SPY"),
        names=("Apple", "Bitcoin", "S&P 500"),
        sectors=("Tech", "Crypto", "ETF"),
        price=np.array([200.0, 95000.0, 600.0]),
        tick_size=np.array([0.01, 0.01, 0.01]),
        lot_size=np.array([100, 0.00001, 100]),
        activity=np.ones(3),
        kinds=("stock", "crypto", "etf"),
    )
    session = _session(mixed)
    assert session.receive('{"action":"subscribe","trades":["*"]}', 2).symbols == {1}
    assert session.receive('{"action":"subscribe","quotes":["AAPL"]}', 3).symbols == {1}


def test_unknown_crypto_feed_is_404():
    from tickwire.feed.venues import HandshakeRefused

    with pytest.raises(HandshakeRefused) as refused:
        route(PATH)(Upgrade("/alpaca/v1beta3/crypto/global", "", {}, CRYPTO, (), 0))
    assert refused.value.status == 404 and "'us'" in refused.value.reason


def _batch(*rows: tuple[int, int, float, float, float, int, int, int, int]) -> TickBatch:
    """(sym, seq, bid, ask, last, last_size, flags, bid_size, ask_size) at ts T0 + seq."""
    batch = np.zeros(len(rows), TICK_DTYPE)
    for r, (sym, seq, bid, ask, last, ls, fl, bs, asz) in zip(batch, rows, strict=True):
        r["ts"], r["seq"], r["sym"], r["flags"] = T0 + seq, seq, sym, fl
        r["bid"], r["ask"], r["last"], r["last_size"] = bid, ask, last, ls
        r["bid_size"], r["ask_size"] = bs, asz
    return batch


def test_encoder_writes_crypto_trades_and_quotes_with_the_asset_s_quantity():
    session = _session()
    session.receive('{"action":"subscribe","trades":["BTC/USD"],"quotes":["BTC/USD"]}', 2)
    sell, buy = int(TickFlag.TRADE), int(TickFlag.TRADE | TickFlag.BUY)
    batch = _batch(
        (BTC, 7, 95000.0, 95000.01, 95000.0, 210, sell, 300, 5),
        (BTC, 8, 95000.0, 95000.01, 95000.01, 3, buy, 300, 5),
        (ETH, 9, 3500.0, 3500.01, 3500.0, 1, sell, 1, 1),
    )
    shared = AlpacaCryptoEncoder(CRYPTO).encode(batch, T0 + 10)
    said = [m for f in session.deliver(shared) for m in orjson.loads(f.data)]
    trades = [m for m in said if m["T"] == "t"]
    quotes = [m for m in said if m["T"] == "q"]
    assert [(t["S"], t["p"], t["s"], t["i"], t["tks"]) for t in trades] == [
        ("BTC/USD", 95000.0, 0.0021, 7, "S"),  # 210 lots of 0.00001 BTC
        ("BTC/USD", 95000.01, 0.00003, 8, "B"),
    ]
    assert set(trades[0]) == {"T", "S", "p", "s", "t", "i", "tks"}
    assert quotes == [
        {
            "T": "q",
            "S": "BTC/USD",
            "bp": 95000.0,
            "bs": 0.003,
            "ap": 95000.01,
            "as": 0.00005,
            "t": "2023-11-14T22:14:00.000000007Z",
        }
    ]


# ---------------------------------------------------------------- real clients, real sockets


@pytest.fixture
async def crypto(nursery: trio.Nursery, caplog: pytest.LogCaptureFixture) -> VenueServer:
    config = ServerConfig(port=0, cadence_ms=CADENCE_MS, universe=CRYPTO, session="24h")
    venue = await start(nursery, caplog, config)
    with trio.fail_after(DEADLINE_S):
        while len(venue.server.rest_tape.recent_trades(BTC)) < 3:  # it steps while idle
            await trio.sleep(0.05)
    return venue


async def _in_thread(fn: Any) -> Any:
    with trio.fail_after(DEADLINE_S):
        return await trio.to_thread.run_sync(fn, abandon_on_cancel=True)


async def test_alpaca_py_crypto_stream_gets_trades_quotes_of_btc_usd(crypto: VenueServer):
    """alpaca-py's CryptoDataStream (MessagePack) parses the trades and quotes of BTC/USD."""
    live = pytest.importorskip("alpaca.data.live", reason="alpaca-py is not installed")
    from alpaca.data.models import Quote, Trade

    got: dict[str, list[Any]] = {"trades": [], "quotes": []}
    stream = live.CryptoDataStream("key", "secret", url_override=crypto.url(PATH))

    async def on(kind: str, item: Any) -> None:
        got[kind].append(item)
        if len(got["trades"]) >= 3 and got["quotes"]:
            await stream.stop_ws()

    async def on_trade(trade: Any) -> None:
        await on("trades", trade)

    async def on_quote(quote: Any) -> None:
        await on("quotes", quote)

    stream.subscribe_trades(on_trade, "BTC/USD")
    stream.subscribe_quotes(on_quote, "BTC/USD")
    try:
        await _in_thread(stream.run)
    except trio.TooSlowError:
        await trio.to_thread.run_sync(stream.stop, abandon_on_cancel=True)  # its public stop
        raise
    trades, quote = got["trades"], got["quotes"][0]
    assert all(isinstance(t, Trade) and t.symbol == "BTC/USD" for t in trades)
    assert isinstance(quote, Quote) and quote.symbol == "BTC/USD"
    assert all(t.price > 1000 and 0 < t.size < 10 for t in trades)  # BTC, not lots
    assert any(t.size != int(t.size) for t in trades)  # fractional quantities
    assert 0 < quote.bid_price < quote.ask_price and quote.bid_size > 0
    ids = [t.id for t in trades]
    assert ids == sorted(ids)
    assert PATH in crypto.handshakes


async def test_alpaca_py_crypto_historical_client(crypto: VenueServer):
    """CryptoHistoricalDataClient with `url_override`: bars of two pairs, trades, the latest
    quote, trade and bar, and a snapshot are the simulated market's, by Alpaca's names."""
    historical = pytest.importorskip("alpaca.data.historical", reason="alpaca-py is not installed")
    from alpaca.data import requests as rq
    from alpaca.data.timeframe import TimeFrame

    client = historical.CryptoHistoricalDataClient(
        url_override=crypto.url("/alpaca").replace("ws://", "http://", 1)
    )
    both = ["BTC/USD", "ETH/USD"]

    def run() -> dict[str, Any]:
        return {
            "bars": client.get_crypto_bars(
                rq.CryptoBarsRequest(symbol_or_symbols=both, timeframe=TimeFrame.Minute)
            ),
            "trades": client.get_crypto_trades(
                rq.CryptoTradesRequest(symbol_or_symbols="BTC/USD", limit=5)
            ),
            "quote": client.get_crypto_latest_quote(
                rq.CryptoLatestQuoteRequest(symbol_or_symbols="BTC/USD")
            ),
            "trade": client.get_crypto_latest_trade(
                rq.CryptoLatestTradeRequest(symbol_or_symbols=both)
            ),
            "bar": client.get_crypto_latest_bar(
                rq.CryptoLatestBarRequest(symbol_or_symbols="ETH/USD")
            ),
            "snapshot": client.get_crypto_snapshot(
                rq.CryptoSnapshotRequest(symbol_or_symbols="BTC/USD")
            ),
        }

    got = await _in_thread(run)
    bars = got["bars"].data
    assert set(bars) == set(both)
    assert all(b.low <= b.open <= b.high and b.volume > 0 for b in bars["BTC/USD"])
    trades = got["trades"].data["BTC/USD"]
    recent = {int(r["id"]) for r in crypto.server.rest_tape.recent_trades(BTC)}
    assert 1 <= len(trades) <= 5 and {int(t.id) for t in trades} <= recent
    assert all(0 < t.size < 10 for t in trades)
    assert 0 < got["quote"]["BTC/USD"].bid_price < got["quote"]["BTC/USD"].ask_price
    assert set(got["trade"]) == set(both) and got["bar"]["ETH/USD"].close > 0
    snapshot = got["snapshot"]["BTC/USD"]
    assert snapshot.latest_trade is not None and snapshot.minute_bar is not None
    assert snapshot.daily_bar is not None and snapshot.latest_quote.ask_price > 0


async def test_json_stream_and_rest_of_the_same_market(crypto: VenueServer):
    """A plain websockets client on the crypto stream (JSON framing, "*"), and a REST path:
    the quotes stream and the latest trade answers, all in Alpaca's BASE/QUOTE names."""
    import urllib.request

    from websockets.sync.client import connect

    def client() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        with connect(crypto.url(PATH), open_timeout=10) as ws:
            assert orjson.loads(ws.recv(timeout=10))[0]["msg"] == "connected"
            ws.send('{"action":"auth","key":"k","secret":"s"}')
            assert orjson.loads(ws.recv(timeout=10))[0]["msg"] == "authenticated"
            ws.send('{"action":"subscribe","quotes":["*"]}')
            assert orjson.loads(ws.recv(timeout=10))[0]["T"] == "subscription"
            quotes = orjson.loads(ws.recv(timeout=10))
        http = crypto.url(PATH).replace("ws://", "http://", 1)
        with urllib.request.urlopen(f"{http}/latest/trades?symbols=SOL/USD", timeout=10) as r:
            return quotes, orjson.loads(r.read())

    quotes, latest = await _in_thread(client)
    assert quotes and all(q["T"] == "q" and q["S"].endswith("/USD") for q in quotes)
    assert set(latest["trades"]) == {"SOL/USD"} and latest["trades"]["SOL/USD"]["p"] > 0


def test_bars_carry_the_pair_s_name_and_the_coin_s_volume():
    session = _session()
    session.receive('{"action":"subscribe","bars":["BTC/USD"]}', 2)
    encoder = AlpacaCryptoEncoder(CRYPTO)
    trade = _batch((BTC, 7, 95000.0, 95000.01, 95000.0, 210, int(TickFlag.TRADE), 1, 1))
    assert session.deliver(encoder.encode(trade, T0 + 10)) == []  # the minute is open
    later = encoder.encode(_batch(), T0 + 60 * 10**9)  # event time leaves the minute: its bar
    [bar] = [m for f in session.deliver(later) for m in orjson.loads(f.data)]
    assert (bar["T"], bar["S"], bar["v"], bar["n"], bar["t"]) == (
        "b",
        "BTC/USD",
        0.0021,
        1,
        "2023-11-14T22:14:00Z",
    )


async def test_rest_errors_and_unknown_pairs(crypto: VenueServer):
    import urllib.error
    import urllib.request

    base = crypto.url(PATH).replace("ws://", "http://", 1)

    def get(path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(base + path, timeout=10) as r:
                return r.status, orjson.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, orjson.loads(exc.read())

    def run() -> dict[str, tuple[int, Any]]:
        return {
            "book": get("/latest/orderbooks?symbols=BTC/USD"),
            "nowhere": get("/nowhere"),
            "unknown": get("/latest/trades?symbols=NOPE/USD,BTC-USD"),
            "missing": get("/trades"),
            "timeframe": get("/bars?symbols=BTC/USD&timeframe=7Sec"),
            "page": get("/trades?symbols=BTC/USD,ETH/USD&limit=2"),
        }

    got = await _in_thread(run)
    assert got["nowhere"][0] == 404
    status, book = got["book"]  # the server's book (test_rest_books.py: a server without one)
    assert status == 200 and len(book["orderbooks"]["BTC/USD"]["b"]) >= 1
    assert got["unknown"] == (200, {"trades": {}})  # no data, as at Alpaca: not an error
    assert got["missing"][0] == 400 and got["timeframe"][0] == 422
    status, page = got["page"]
    assert status == 200 and list(page["trades"]) == ["BTC/USD"]
    assert len(page["trades"]["BTC/USD"]) == 2 and page["next_page_token"]
