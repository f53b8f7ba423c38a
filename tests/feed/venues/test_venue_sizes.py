"""Sizes and trade ids on the venue streams are REST's: the asset's exact quantity (a crypto
lot count times its `size_unit`), and a trade's id is its record's `seq`.

Sans-IO first (a seeded crypto market's batches into the stream encoders and into the REST
handlers), then the real server on the crypto universe with raw websockets and HTTP.
"""

from __future__ import annotations

import json
import urllib.request
from decimal import Decimal
from typing import Any

import msgpack
import numpy as np
import orjson
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from websockets.sync.client import connect

from tickwire.feed.server.server import ServerConfig
from tickwire.feed.venues._sizes import Sizes
from tickwire.feed.venues.alpaca import AlpacaEncoder, AlpacaSession
from tickwire.feed.venues.binance import BinanceEncoder, BinanceSession
from tickwire.feed.venues.coinbase import CoinbaseEncoder, CoinbaseSession
from tickwire.feed.venues.rest import MarketView, RestApi, RestRequest, RestTape
from tickwire.simulators import Market, Universe
from tickwire.simulators.ticks import TickBatch, TickFlag

from ._shapes import START_NS
from .conftest import CADENCE_MS, start

CRYPTO = Universe.crypto_pairs()
_TRADE = int(TickFlag.TRADE)


def _exact(units: int, unit: float) -> Decimal:
    """What `units` size units are in the asset, in exact decimal arithmetic."""
    return Decimal(units) * Decimal(repr(unit))


# ----------------------------------------------------------------------------- the helper


@given(units=st.integers(0, 2**32 - 1), unit=st.sampled_from([1.0, 0.1, 0.001, 0.00001, 1e-8]))
def test_text_is_the_exact_decimal(units: int, unit: float) -> None:
    u = Universe.from_rows([("X-USD", "X", "Crypto", 1.0, 0.01, unit, 1.0, "crypto")])
    sizes = Sizes(u)
    assert Decimal(sizes.text(0, units)) == _exact(units, unit)
    binance = sizes.text(0, units, 8)
    assert Decimal(binance) == _exact(units, unit) and len(binance.split(".")[1]) == 8
    assert Decimal(repr(sizes.number(0, units))) == _exact(units, unit)  # JSON writes this
    assert sizes.formats(8)[0](units) == binance and sizes.formats()[0](units) == sizes.text(
        0, units
    )


def test_text_examples() -> None:
    u = Universe.from_rows(
        [
            ("BTC-USD", "Bitcoin", "Crypto", 60000.0, 0.01, 0.00001, 1.0, "crypto"),
            ("AAPL", "Apple", "Tech", 190.0, 0.01, 100, 1.0, "stock"),
        ]
    )
    sizes = Sizes(u)
    assert (sizes.text(0, 210), sizes.text(0, 210, 8), sizes.number(0, 210)) == (
        "0.00210",
        "0.00210000",
        0.0021,
    )
    assert (sizes.text(1, 210), sizes.text(1, 210, 8), sizes.number(1, 210)) == (
        "210",
        "210.00000000",
        210,
    )
    assert isinstance(sizes.number(1, 210), int)  # shares stay JSON integers
    assert [f(210) for f in sizes.formats(8)] == ["0.00210000", "210.00000000"]
    assert [f(210) for f in sizes.formats()] == ["0.00210", "210"]


# ----------------------------------------------------------------------------- sans-IO


def _batches(universe: Universe, seconds: int = 70) -> list[tuple[TickBatch, int]]:
    """A seeded market's batches, one per second of event time (a minute boundary inside)."""
    market = Market(universe, seed=7, start_ns=START_NS, session="24h")
    return [(market.step(START_NS + i * 10**9), START_NS + i * 10**9) for i in range(1, seconds)]


class Run:
    """One market's batches through the three stream encoders and the REST tape, with one
    session per venue subscribed to everything about `symbol`."""

    def __init__(self, universe: Universe, symbol: str) -> None:
        self.universe, self.symbol, self.sym = universe, symbol, universe.index(symbol)
        batches = _batches(universe)
        name = symbol.replace("-", "").lower()
        kinds = ("trade", "aggTrade", "bookTicker", "kline_1m", "miniTicker")
        streams = "/".join(f"{name}@{k}" for k in kinds)
        bin_s = BinanceSession("/binance/stream", {"streams": [streams]}, universe, START_NS)
        cb_s = CoinbaseSession(universe, START_NS)
        sub = {"type": "subscribe", "product_ids": [symbol], "channels": ["ticker", "matches"]}
        cb_s.receive(orjson.dumps(sub), START_NS)
        al_s = AlpacaSession("iex", {}, universe, (), START_NS)
        al_s.receive(orjson.dumps({"action": "auth", "key": "k", "secret": "s"}), START_NS)
        channels = {"action": "subscribe", "trades": [symbol], "quotes": [symbol]}
        al_s.receive(orjson.dumps({**channels, "bars": [symbol]}), START_NS)
        encoders = (BinanceEncoder(universe), CoinbaseEncoder(universe), AlpacaEncoder(universe))
        sessions = (bin_s, cb_s, al_s)
        self.binance: dict[str, list[Any]] = {k: [] for k in kinds}
        self.coinbase: dict[str, list[Any]] = {"ticker": [], "match": []}
        self.alpaca: dict[str, list[Any]] = {"t": [], "q": [], "b": []}
        self.tape = RestTape(len(universe))
        for batch, now in batches:
            self.tape.publish(batch)
            for enc, s in zip(encoders, sessions, strict=True):
                for frame in s.deliver(enc.encode(batch, now)):
                    self._take(s.venue, frame.data)
        ticks = np.concatenate([b for b, _ in batches])
        self.records = ticks[ticks["sym"] == self.sym]
        self.trades = self.records[(self.records["flags"] & _TRADE) != 0]
        self.now = batches[-1][1]
        self.view = MarketView(universe, Market(universe).snapshot, self.tape)
        self.api = RestApi(self.view, coinbase_per_s=0, alpaca_per_min=0)
        self.unit = float(universe.size_unit[self.sym])  # type: ignore[index]

    def _take(self, venue: str, data: bytes) -> None:
        if venue == "binance":
            m = orjson.loads(data)
            self.binance[m["stream"].split("@")[1]].append(m["data"])
        elif venue == "coinbase":
            m = orjson.loads(data)
            self.coinbase[m["type"]].append(m)
        else:
            for m in orjson.loads(data):
                self.alpaca[m["T"]].append(m)

    def rest(self, path: str, query: str) -> Any:
        handler = self.api.route(path)
        assert handler is not None, path
        resp = handler(RestRequest("GET", path, query, {}, "1.2.3.4"), self.now)
        assert resp.status == 200, resp.body
        return orjson.loads(resp.body)

    def exact(self, units: Any) -> list[Decimal]:
        return [_exact(int(n), self.unit) for n in units]


@pytest.fixture(scope="module")
def btc() -> Run:
    return Run(CRYPTO, "BTC-USD")


def test_crypto_trade_sizes_are_the_asset_quantity(btc: Run) -> None:
    """Every trade of BTC-USD (lots of 0.00001 BTC) on every stream is its record's lot count
    times 0.00001, exactly, in each venue's format; Binance with its 8 decimals."""
    want = btc.exact(btc.trades["last_size"])
    assert len(want) > 20
    for kind in ("trade", "aggTrade"):
        q = [t["q"] for t in btc.binance[kind]]
        assert [Decimal(x) for x in q] == want and all(len(x.split(".")[1]) == 8 for x in q)
    assert [Decimal(m["size"]) for m in btc.coinbase["match"]] == want
    assert [Decimal(t["last_size"]) for t in btc.coinbase["ticker"]] == want
    assert [Decimal(repr(t["s"])) for t in btc.alpaca["t"]] == want
    assert btc.binance["trade"][0]["q"] == f"{want[0]:.8f}"  # "0.00210000" for 210 lots


def test_crypto_quote_sizes_and_volumes_are_the_asset_quantity(btc: Run) -> None:
    """Book sizes (Binance bookTicker, Coinbase ticker, Alpaca quotes) and volumes (Coinbase
    ticker, Binance kline and miniTicker, Alpaca bars) scale by the size unit too."""
    by_seq = {int(r["seq"]): r for r in btc.records}
    for b in btc.binance["bookTicker"]:
        r = by_seq[b["u"]]
        assert (Decimal(b["B"]), Decimal(b["A"])) == tuple(
            btc.exact([r["bid_size"], r["ask_size"]])
        )
    for t in btc.coinbase["ticker"]:
        r = by_seq[t["sequence"]]
        sizes = [r["bid_size"], r["ask_size"], r["volume"]]
        got = (t["best_bid_size"], t["best_ask_size"], t["volume_30d"])
        assert tuple(Decimal(x) for x in got) == tuple(btc.exact(sizes))
    quotes = btc.alpaca["q"]
    assert quotes and all(Decimal(repr(q["bs"])) < 1 for q in quotes)  # lots: under one BTC
    closed = [k["k"] for k in btc.binance["kline_1m"] if k["k"]["x"]]
    assert len(closed) == 2  # the run crosses two minute boundaries: one minute is whole
    k = closed[-1]
    in_minute = btc.trades[
        (btc.trades["ts"] // 10**6 >= k["t"]) & (btc.trades["ts"] // 10**6 <= k["T"])
    ]
    volume = _exact(int(in_minute["last_size"].sum()), btc.unit)
    assert Decimal(k["v"]) == volume
    notional = float((in_minute["last"] * in_minute["last_size"]).sum()) * btc.unit
    assert float(k["q"]) == pytest.approx(notional, rel=1e-9)  # USD, not USD per lot
    assert len(btc.alpaca["b"]) == 2
    assert Decimal(repr(btc.alpaca["b"][-1]["v"])) == volume
    mini = btc.binance["miniTicker"][-1]
    assert Decimal(mini["v"]) < 10_000 and float(mini["q"]) < 10**9  # BTC, USD: not lots


def test_crypto_stream_sizes_equal_rest(btc: Run) -> None:
    """The same trades through REST: the same quantities as the streams."""
    trades = btc.rest("/binance/api/v3/trades", "symbol=BTCUSD&limit=1000")
    stream = btc.binance["trade"][-len(trades) :]
    assert [t["qty"] for t in trades] == [t["q"] for t in stream]  # both in Binance's 8 decimals
    matches = btc.rest("/coinbase/products/BTC-USD/trades", "limit=1000")[::-1]
    assert [m["size"] for m in matches] == [m["size"] for m in btc.coinbase["match"]][
        -len(matches) :
    ]
    alpaca = btc.rest("/alpaca/v2/stocks/BTC-USD/trades", "limit=10000")["trades"]
    assert [t["s"] for t in alpaca] == [t["s"] for t in btc.alpaca["t"]][-len(alpaca) :]


def test_alpaca_msgpack_sizes_are_the_asset_quantity(btc: Run) -> None:
    """The MessagePack codec carries the same numbers as JSON (floats for crypto)."""
    enc, u = AlpacaEncoder(CRYPTO), CRYPTO
    s = AlpacaSession("iex", {"Content-Type": "application/msgpack"}, u, (), START_NS)
    s.receive(msgpack.packb({"action": "auth", "key": "k", "secret": "s"}), START_NS)
    s.receive(msgpack.packb({"action": "subscribe", "trades": ["BTC-USD"]}), START_NS)
    got = []
    for batch, now in _batches(u, 10):
        for frame in s.deliver(enc.encode(batch, now)):
            got += [m["s"] for m in msgpack.unpackb(frame.data) if m["T"] == "t"]
    assert got and all(isinstance(x, float) and 0 < x < 100 for x in got)


def test_stock_sizes_are_unchanged() -> None:
    """Shares (size unit 1) keep their bytes: Binance "210.00000000", Coinbase "210", Alpaca
    the integer 210."""
    aapl = Run(Universe.default(), "AAPL")
    sizes = aapl.trades["last_size"].tolist()
    assert [t["q"] for t in aapl.binance["trade"]] == [f"{n}.00000000" for n in sizes]
    assert [m["size"] for m in aapl.coinbase["match"]] == [str(n) for n in sizes]
    assert [t["s"] for t in aapl.alpaca["t"]] == sizes
    assert all(type(t["s"]) is int for t in aapl.alpaca["t"])
    assert all(type(q["bs"]) is int for q in aapl.alpaca["q"])
    vols = [t["volume_30d"] for t in aapl.coinbase["ticker"]]
    assert vols == [str(int(r["volume"])) for r in aapl.trades]


# ----------------------------------------------------------------------------- trade ids


def test_stream_trade_ids_are_the_records_seq_and_rests(btc: Run) -> None:
    """A trade's id on every stream is its record's `seq`, the id REST gives the same trade."""
    seqs = [int(s) for s in btc.trades["seq"]]
    assert [t["t"] for t in btc.binance["trade"]] == seqs
    assert [t["a"] for t in btc.binance["aggTrade"]] == seqs
    assert [m["trade_id"] for m in btc.coinbase["match"]] == seqs
    assert [t["trade_id"] for t in btc.coinbase["ticker"]] == seqs
    assert [t["i"] for t in btc.alpaca["t"]] == seqs
    rest = btc.rest("/binance/api/v3/trades", "symbol=BTCUSD&limit=1000")
    assert [t["id"] for t in rest] == seqs[-len(rest) :]
    matches = btc.rest("/coinbase/products/BTC-USD/trades", "limit=1000")
    assert [m["trade_id"] for m in matches][::-1] == seqs[-len(matches) :]
    alpaca = btc.rest("/alpaca/v2/stocks/BTC-USD/trades", "limit=10000")["trades"]
    assert [t["i"] for t in alpaca] == seqs[-len(alpaca) :]
    k = [k["k"] for k in btc.binance["kline_1m"] if k["k"]["x"]][-1]
    [bar] = [
        b for b in btc.rest("/binance/api/v3/klines", "symbol=BTCUSD&interval=1m") if b[0] == k["t"]
    ]
    in_minute = [t["t"] for t in btc.binance["trade"] if k["t"] <= t["T"] <= k["T"]]
    assert (k["f"], k["L"], k["n"]) == (in_minute[0], in_minute[-1], bar[8])


def test_trade_ids_do_not_depend_on_when_the_encoder_started() -> None:
    """An encoder started late (the venue's first connection came later, or the server
    restarted on the same seed) names the same trades with the same ids."""
    u = CRYPTO
    batches = _batches(u, 20)
    name = "btcusd@trade"

    def ids(part: list[tuple[TickBatch, int]]) -> dict[int, int]:
        enc, s = BinanceEncoder(u), BinanceSession(f"/binance/ws/{name}", {}, u, START_NS)
        out = {}
        for batch, now in part:
            for frame in s.deliver(enc.encode(batch, now)):
                t = orjson.loads(frame.data)
                out[t["T"]] = t["t"]
        return out

    whole, late = ids(batches), ids(batches[10:])
    assert late and all(whole[ms] == tid for ms, tid in late.items())
    again = ids(_batches(u, 20)[10:])  # the same seed, another run
    assert again == late


# ----------------------------------------------------------------------------- the real server

DEADLINE_S = 60  # generous for a shared 2-core machine; a pass takes a second or two


async def _in_thread(fn: Any) -> Any:
    with trio.fail_after(DEADLINE_S):
        return await trio.to_thread.run_sync(fn, abandon_on_cancel=True)


async def test_server_streams_and_rest_agree_on_crypto_trades(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """`tickwire serve --universe crypto`'s server, raw websockets and plain HTTP: a BTC-USD
    trade on the Binance, Coinbase and Alpaca streams has REST's id and REST's size, and that
    size is the record's lot count times 0.00001 BTC."""
    universe = Universe.crypto_pairs()
    config = ServerConfig(port=0, cadence_ms=CADENCE_MS, universe=universe, session="24h")
    srv = await start(nursery, caplog, config)
    base = srv.url("")

    def binance() -> dict[str, Any]:
        with connect(f"{base}/binance/ws/btcusd@trade", open_timeout=10) as ws:
            return dict(json.loads(ws.recv(timeout=10)))

    def coinbase() -> dict[str, Any]:
        sub = {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["matches"]}
        with connect(f"{base}/coinbase", open_timeout=10) as ws:
            ws.send(json.dumps(sub))
            while (m := json.loads(ws.recv(timeout=10)))["type"] != "match":
                pass
            return dict(m)

    def alpaca() -> dict[str, Any]:
        with connect(f"{base}/alpaca/v2/iex", open_timeout=10) as ws:
            ws.recv(timeout=10)  # connected
            ws.send(json.dumps({"action": "auth", "key": "k", "secret": "s"}))
            ws.recv(timeout=10)  # authenticated
            ws.send(json.dumps({"action": "subscribe", "trades": ["BTC-USD"]}))
            while True:
                for m in json.loads(ws.recv(timeout=10)):
                    if m["T"] == "t":
                        return dict(m)

    def rest(path: str) -> Any:
        url = base.replace("ws://", "http://", 1) + path
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())

    b, c, a = await _in_thread(binance), await _in_thread(coinbase), await _in_thread(alpaca)
    btc = universe.index("BTC-USD")
    records = {int(t["id"]): int(t["size"]) for t in srv.server.rest_tape.recent_trades(btc)}
    assert {b["t"], c["trade_id"], a["i"]} <= set(records)  # REST's tape has these ids

    rest_binance = {
        t["id"]: t
        for t in await _in_thread(lambda: rest("/binance/api/v3/trades?symbol=BTCUSD&limit=1000"))
    }
    assert rest_binance[b["t"]]["qty"] == b["q"]  # the same string: 8 decimals on both
    assert Decimal(b["q"]) == _exact(records[b["t"]], 1e-5)
    assert b["q"] == f"{_exact(records[b['t']], 1e-5):.8f}"
    rest_coinbase = {
        t["trade_id"]: t
        for t in await _in_thread(lambda: rest("/coinbase/products/BTC-USD/trades?limit=1000"))
    }
    assert rest_coinbase[c["trade_id"]]["size"] == c["size"]
    assert Decimal(c["size"]) == _exact(records[c["trade_id"]], 1e-5)
    got = await _in_thread(lambda: rest("/alpaca/v2/stocks/BTC-USD/trades?limit=10000"))
    rest_alpaca = {t["i"]: t for t in got["trades"]}
    assert rest_alpaca[a["i"]]["s"] == a["s"]
    assert Decimal(repr(a["s"])) == _exact(records[a["i"]], 1e-5)
