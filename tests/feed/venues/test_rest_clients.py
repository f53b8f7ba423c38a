"""The venues' REST APIs through clients we did not write, unmodified, over real loopback sockets.

ccxt (`binance`, and `coinbaseexchange`, ccxt's client of the Coinbase Exchange API) and
python-binance's `AsyncClient` are pointed at the in-process server by their URLs alone, on the
built-in crypto universe. ccxt is synchronous here (it runs in a worker thread), python-binance
runs its own asyncio loop in one. A test skips, saying why, when its client is not installed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trio

from tickwire.feed.server.server import ServerConfig
from tickwire.simulators import Universe

from .conftest import CADENCE_MS, VenueServer, start

DEADLINE_S = 60  # generous for a shared 2-core machine; a pass takes a second or two


async def _in_thread(fn: Any) -> Any:
    with trio.fail_after(DEADLINE_S):
        return await trio.to_thread.run_sync(fn, abandon_on_cancel=True)


async def _some_trades(venue: VenueServer, symbol: str) -> int:
    """`symbol`'s index, once the market has printed a few of its trades (it steps on its own
    while idle: polled, there is no event for it)."""
    server = venue.server
    index = server.universe_index[symbol]
    with trio.fail_after(DEADLINE_S):
        while len(server.rest_tape.recent_trades(index)) < 3:
            await trio.sleep(0.05)
    return index


@pytest.fixture
async def crypto_server(nursery: trio.Nursery, caplog: pytest.LogCaptureFixture) -> VenueServer:
    """The server on the crypto universe, once it has printed a few trades of BTC-USD."""
    universe = Universe.crypto_pairs()
    config = ServerConfig(port=0, cadence_ms=CADENCE_MS, universe=universe, session="24h")
    venue = await start(nursery, caplog, config)
    await _some_trades(venue, "BTC-USD")
    return venue


def _http(venue: VenueServer, path: str) -> str:
    return venue.url(path).replace("ws://", "http://", 1)


def _ccxt(name: str, urls: dict[str, str], **options: Any) -> Any:
    ccxt = pytest.importorskip("ccxt", reason="ccxt is not installed")
    exchange = getattr(ccxt, name)({"timeout": 20_000})
    exchange.urls["api"].update(urls)
    exchange.options.update(options)
    return exchange


async def _ccxt_reads(
    exchange: Any, book_limit: int | None = None, *, time: bool = False
) -> dict[str, Any]:
    """What each ccxt test reads of BTC/USD through `exchange` (in a worker thread: ccxt is
    synchronous): markets, currencies, ticker, trades, candles, book (and the server's time)."""

    def run() -> dict[str, Any]:
        markets = exchange.load_markets()
        return {
            "markets": markets,
            "currencies": exchange.currencies,
            "ticker": exchange.fetch_ticker("BTC/USD"),
            "trades": exchange.fetch_trades("BTC/USD", limit=20),
            "ohlcv": exchange.fetch_ohlcv("BTC/USD", "1m", limit=5),
            "book": exchange.fetch_order_book("BTC/USD", limit=book_limit),
            "time": exchange.fetch_time() if time else None,
        }

    return await _in_thread(run)


def _check_btc(got: dict[str, Any], venue: VenueServer) -> None:
    """What every ccxt client must read of the simulated BTC-USD: its precision, a quote, its
    own trades, minute candles and an uncrossed book."""
    market = got["markets"]["BTC/USD"]
    assert market["precision"]["price"] == 0.01 and market["precision"]["amount"] == 0.00001
    ticker = got["ticker"]
    assert 0 < ticker["bid"] < ticker["ask"] and ticker["last"] > 0
    trades = got["trades"]
    assert trades and all(t["symbol"] == "BTC/USD" and t["amount"] > 0 for t in trades)
    btc = venue.server.universe_index["BTC-USD"]
    recent = {int(r["id"]) for r in venue.server.rest_tape.recent_trades(btc)}
    assert {int(t["id"]) for t in trades} <= recent  # the market's own trades
    assert got["ohlcv"] and all(row[0] % 60_000 == 0 for row in got["ohlcv"])
    book = got["book"]
    assert book["bids"][0][0] < book["asks"][0][0]


async def test_ccxt_binance_reads_the_simulated_market(crypto_server: VenueServer) -> None:
    """ccxt's binance, with only `urls['api']` pointed here (and spot markets only: the server
    has no futures API): markets with their filters, ticker, trades, klines and the book
    are the simulated BTC-USD's."""
    base = _http(crypto_server, "/binance/api")
    exchange = _ccxt(
        "binance", {"public": f"{base}/v3", "v1": f"{base}/v1"}, fetchMarkets={"types": ["spot"]}
    )
    got = await _ccxt_reads(exchange, book_limit=5)
    _check_btc(got, crypto_server)
    market = got["markets"]["BTC/USD"]
    assert market["id"] == "BTCUSD" and market["base"] == "BTC" and market["quote"] == "USD"
    assert len(got["markets"]) == len(Universe.crypto_pairs())
    server = crypto_server.server
    last = float(server.hub.lvc[server.universe_index["BTC-USD"]]["last"])
    assert abs(got["ticker"]["last"] - last) / last < 0.01  # moved since
    trades = got["trades"]
    assert [t["timestamp"] for t in trades] == sorted(t["timestamp"] for t in trades)
    ohlcv = got["ohlcv"]
    assert all(low <= o <= high and low <= c <= high for _, o, high, low, c, _ in ohlcv)
    book = got["book"]
    assert 1 <= len(book["bids"]) <= 5 and 1 <= len(book["asks"]) <= 5 and book["nonce"] > 0
    assert [p for p, _ in book["bids"]] == sorted((p for p, _ in book["bids"]), reverse=True)
    assert [p for p, _ in book["asks"]] == sorted(p for p, _ in book["asks"])


async def test_ccxt_coinbase_exchange_reads_the_simulated_market(
    crypto_server: VenueServer,
) -> None:
    """ccxt's coinbaseexchange with `urls['api']['public']` pointed here: products and
    currencies, ticker, trades, candles and the book are the simulated market's."""
    exchange = _ccxt("coinbaseexchange", {"public": _http(crypto_server, "/coinbase")})
    got = await _ccxt_reads(exchange, time=True)
    _check_btc(got, crypto_server)
    market = got["markets"]["BTC/USD"]
    assert market["id"] == "BTC-USD" and market["active"]
    assert {"BTC", "ETH", "USD"} <= set(got["currencies"])
    assert all(t["price"] > 0 for t in got["trades"]) and got["book"]["nonce"] > 0
    assert abs(got["time"] - crypto_server.server.now_ns() // 1_000_000) < 60_000


async def test_python_binance_async_client(crypto_server: VenueServer) -> None:
    """python-binance's AsyncClient with its public `API_URL` set (a subclass, so nothing of
    the library changes): `create()` pings and reads the server time, then the symbol ticker,
    klines, symbol info, order book and recent trades are the simulated market's."""
    client_module = pytest.importorskip("binance", reason="python-binance is not installed")
    api_url = _http(crypto_server, "/binance/api")

    class Local(client_module.AsyncClient):  # type: ignore[misc, name-defined]
        API_URL = api_url

    async def run() -> dict[str, Any]:
        client = await Local.create()
        try:
            return {
                "ping": await client.ping(),
                "ticker": await client.get_symbol_ticker(symbol="BTCUSD"),
                "klines": await client.get_klines(symbol="BTCUSD", interval="1m", limit=3),
                "info": await client.get_symbol_info("ETHUSD"),
                "book": await client.get_order_book(symbol="BTCUSD", limit=5),
                "trades": await client.get_recent_trades(symbol="BTCUSD", limit=3),
                "offset": client.timestamp_offset,
            }
        finally:
            await client.close_connection()

    got = await _in_thread(lambda: asyncio.run(run()))
    assert got["ping"] == {}
    assert got["ticker"]["symbol"] == "BTCUSD" and float(got["ticker"]["price"]) > 0
    klines = got["klines"]
    assert 1 <= len(klines) <= 3 and all(k[6] - k[0] == 59_999 for k in klines)
    assert got["info"]["baseAsset"] == "ETH"
    filters = {f["filterType"]: f for f in got["info"]["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00010000"
    assert abs(got["offset"]) < 60_000  # the server's clock is the wall clock at start
    book = got["book"]
    assert float(book["bids"][0][0]) < float(book["asks"][0][0]) and book["lastUpdateId"] > 0
    assert len(got["trades"]) == 3 and all(float(t["qty"]) > 0 for t in got["trades"])


async def test_alpaca_py_historical_client(venue_server: VenueServer) -> None:
    """alpaca-py's StockHistoricalDataClient with `url_override` pointed here: bars of two
    symbols, trades, the latest quote and a snapshot are the simulated market's models."""
    historical = pytest.importorskip("alpaca.data.historical", reason="alpaca-py is not installed")
    from alpaca.data.requests import (
        StockBarsRequest,
        StockLatestQuoteRequest,
        StockSnapshotRequest,
        StockTradesRequest,
    )
    from alpaca.data.timeframe import TimeFrame

    server, aapl = venue_server.server, await _some_trades(venue_server, "AAPL")
    client = historical.StockHistoricalDataClient(
        "key", "secret", url_override=_http(venue_server, "/alpaca")
    )

    def run() -> dict[str, Any]:
        both = ["AAPL", "MSFT"]
        return {
            "bars": client.get_stock_bars(
                StockBarsRequest(symbol_or_symbols=both, timeframe=TimeFrame.Minute)
            ),
            "trades": client.get_stock_trades(
                StockTradesRequest(symbol_or_symbols="AAPL", limit=5)
            ),
            "quote": client.get_stock_latest_quote(
                StockLatestQuoteRequest(symbol_or_symbols="AAPL")
            ),
            "snapshot": client.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols="AAPL")),
        }

    got = await _in_thread(run)
    bars = got["bars"].data
    assert set(bars) == {"AAPL", "MSFT"}
    assert all(b.low <= b.open <= b.high and b.volume > 0 for b in bars["AAPL"])
    trades = got["trades"].data["AAPL"]
    assert 1 <= len(trades) <= 5 and all(t.price > 0 and t.size > 0 for t in trades)
    recent = {int(r["id"]) for r in server.rest_tape.recent_trades(aapl)}
    assert {int(t.id) for t in trades} <= recent
    quote = got["quote"]["AAPL"]
    assert 0 < quote.bid_price < quote.ask_price
    snapshot = got["snapshot"]["AAPL"]
    assert snapshot.latest_trade is not None and snapshot.minute_bar is not None
    assert 0 < snapshot.latest_quote.bid_price < snapshot.latest_quote.ask_price


async def test_ccxt_coinbase_advanced_trade_reads_the_simulated_market(
    crypto_server: VenueServer,
) -> None:
    """ccxt's coinbase (Coinbase's Advanced Trade API) with `urls['api']['rest']` pointed here:
    markets and currencies, ticker, trades, candles and the book are the simulated market's."""
    exchange = _ccxt("coinbase", {"rest": _http(crypto_server, "/coinbase")})
    got = await _ccxt_reads(exchange)
    _check_btc(got, crypto_server)
    market = got["markets"]["BTC/USD"]
    assert market["id"] == "BTC-USD" and market["spot"] and market["active"]
    assert {"BTC", "USD"} <= set(got["currencies"])
    assert all(t["price"] > 0 for t in got["trades"])
