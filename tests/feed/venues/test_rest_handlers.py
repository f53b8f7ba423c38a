"""The venues' REST handlers with plain data: a seeded market's batches, requests as values.

No sockets and no trio: a `Market` is stepped by hand, every batch goes into a `RestTape`, and
the handlers answer `RestRequest`s at a given event time, as the server calls them.
"""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlencode

import numpy as np
import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tickwire.feed.venues._rest_tape import TRADE_DTYPE, Ring
from tickwire.feed.venues.rest import MarketView, RestApi, RestRequest, RestResponse, RestTape
from tickwire.simulators import Market, Universe
from tickwire.simulators.ticks import TickFlag

T0 = 1_700_000_040_000_000_000  # a whole minute
S = 1_000_000_000
MIN = 60 * S


class Setup:
    def __init__(self, minutes: float = 3.5, **api: object) -> None:
        self.universe = Universe.crypto_pairs()
        self.market = Market(self.universe, seed=7, start_ns=T0, session="24h")
        self.tape = RestTape(len(self.universe))
        self.ticks = []
        for k in range(1, int(minutes * 60) + 1):
            batch = self.market.step(T0 + k * S)
            self.tape.publish(batch)
            self.ticks.append(batch)
        self.now = T0 + int(minutes * 60) * S
        api = {"coinbase_per_s": 0, "alpaca_per_min": 0, **api}  # one client, one instant
        view = MarketView(self.universe, self.market.snapshot, self.tape)
        self.api = RestApi(view, **api)  # type: ignore[arg-type]

    def get(
        self, path: str, query: str = "", peer: str = "1.2.3.4", **headers: str
    ) -> RestResponse:
        handler = self.api.route(path)
        assert handler is not None, path
        return handler(RestRequest("GET", path, query, headers, peer), self.now)

    def json(self, path: str, query: str = "") -> object:
        resp = self.get(path, query)
        assert resp.status == 200, resp.body
        return orjson.loads(resp.body)

    def trades_of(self, symbol: str) -> np.ndarray:
        sym = self.universe.index(symbol)
        ticks = np.concatenate(self.ticks)
        return ticks[(ticks["sym"] == sym) & (ticks["flags"] & int(TickFlag.TRADE) != 0)]


@pytest.fixture(scope="module")
def setup() -> Setup:
    return Setup()


B = "/binance/api/v3/"


def test_routes_are_the_rest_paths_only(setup: Setup) -> None:
    api = setup.api
    assert api.route("/binance/api/v3/ping") is not None
    assert api.route("/coinbase/products") is not None
    for ws_path in ("/binance/ws", "/binance/stream", "/coinbase", "/coinbase/", "/alpaca/v2/iex"):
        assert api.route(ws_path) is None


@pytest.mark.parametrize(
    ("path", "query", "code"),
    [
        ("depth", "symbol=NOPE", -1121),
        ("depth", "", -1102),
        ("trades", "symbol=", -1102),
        ("klines", "symbol=BTCUSD&interval=7m", -1120),
        ("klines", "symbol=BTCUSD", -1102),
        ("klines", "symbol=BTCUSD&interval=1m&limit=abc", -1100),
        ("klines", "symbol=BTCUSD&interval=1m&limit=0", -1130),
        ("ticker/price", 'symbol=BTCUSD&symbols=["ETHUSD"]', -1128),
        ("ticker/price", 'symbols=["BTCUSD","NOPE"]', -1121),
        ("ticker/price", "symbols=[oops", -1100),
        ("aggTrades", "symbol=BTCUSD&startTime=0&endTime=7200000", -1127),
    ],
)
def test_binance_errors_are_binance_error_objects(
    setup: Setup, path: str, query: str, code: int
) -> None:
    resp = setup.get(B + path, query, peer=f"errors-{path}-{code}")
    assert resp.status == 400
    body = orjson.loads(resp.body)
    assert body["code"] == code and body["msg"]
    assert ("Content-Type", "application/json;charset=UTF-8") in resp.headers


def test_binance_unknown_endpoint_is_404(setup: Setup) -> None:
    resp = setup.get(B + "historicalTradez", "")
    assert resp.status == 404 and orjson.loads(resp.body)["code"] == -1


def test_binance_weights_add_up_per_address_and_minute(setup: Setup) -> None:
    used = []
    for path, query in [
        ("ping", ""),
        ("exchangeInfo", ""),
        ("depth", "symbol=BTCUSD&limit=1000"),
        ("ticker/24hr", ""),
        ("ticker/price", "symbol=BTCUSD"),
        ("trades", "symbol=BTCUSD"),
    ]:
        resp = setup.get(B + path, query, peer="weights")
        used.append(int(dict(resp.headers)["X-MBX-USED-WEIGHT-1M"]))
    assert used == [1, 21, 71, 151, 153, 178]
    other = setup.get(B + "ping", "", peer="someone else")
    assert dict(other.headers)["X-MBX-USED-WEIGHT-1M"] == "1"


def test_binance_429_with_retry_after_past_the_limit_then_a_new_minute() -> None:
    s = Setup(minutes=0.5, binance_weight_per_min=50)
    s.now = T0 + 90 * S  # 30 s into a minute
    codes = [s.get(B + "exchangeInfo").status for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = s.get(B + "ping")
    headers = dict(refused.headers)
    assert refused.status == 429 and headers["Retry-After"] == "30"
    assert orjson.loads(refused.body)["code"] == -1003
    assert "50 request weight per 1 MINUTE" in orjson.loads(refused.body)["msg"]
    s.now = T0 + 120 * S  # the next minute: a fresh window
    again = s.get(B + "ping")
    assert again.status == 200 and dict(again.headers)["X-MBX-USED-WEIGHT-1M"] == "1"


def test_coinbase_and_alpaca_rate_limits() -> None:
    """Coinbase: 15 requests in a second per address, then 429 until the next second. Alpaca:
    200 a minute per key, with the X-RateLimit headers and 429 past them."""
    s = Setup(minutes=0.1, coinbase_per_s=15, alpaca_per_min=200)
    s.now = T0 + 10 * S + 400_000_000  # 0.4 s into a second
    codes = [s.get(C + "time").status for _ in range(16)]
    assert codes == [200] * 15 + [429]
    assert orjson.loads(s.get(C + "time").body) == {"message": "Public rate limit exceeded"}
    assert s.get(C + "time", peer="another address").status == 200
    s.now += 600_000_000  # the next second
    assert s.get(C + "time").status == 200
    key = {"apca-api-key-id": "k1"}
    first = dict(s.get(A + "trades", "symbols=BTC-USD", **key).headers)
    assert (first["X-RateLimit-Limit"], first["X-RateLimit-Remaining"]) == ("200", "199")
    assert int(first["X-RateLimit-Reset"]) == (T0 + 60 * S) // S
    for _ in range(199):
        assert s.get(A + "trades", "symbols=BTC-USD", **key).status == 200
    refused = s.get(A + "trades", "symbols=BTC-USD", **key)
    assert refused.status == 429 and orjson.loads(refused.body)["code"] == 42910000
    assert dict(refused.headers)["X-RateLimit-Remaining"] == "0"
    other = s.get(A + "trades", "symbols=BTC-USD", **{"apca-api-key-id": "k2"})
    assert other.status == 200


def test_binance_exchange_info_filters_come_from_the_universe(setup: Setup) -> None:
    info = setup.json(B + "exchangeInfo")
    assert isinstance(info, dict)
    assert [s["symbol"] for s in info["symbols"]] == [
        "".join(s.split("-")) for s in setup.universe.symbols
    ]
    xrp = next(s for s in info["symbols"] if s["symbol"] == "XRPUSD")
    filters = {f["filterType"]: f for f in xrp["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.00010000"
    assert filters["LOT_SIZE"]["stepSize"] == filters["LOT_SIZE"]["minQty"] == "0.10000000"
    assert "NOTIONAL" in filters
    assert (xrp["baseAsset"], xrp["quoteAsset"]) == ("XRP", "USD")
    one = setup.json(B + "exchangeInfo", "symbol=XRPUSD")
    assert isinstance(one, dict) and [s["symbol"] for s in one["symbols"]] == ["XRPUSD"]


def test_binance_trades_are_the_markets_trades_with_exact_sizes(setup: Setup) -> None:
    trades = setup.json(B + "trades", "symbol=BTCUSD&limit=5000")  # capped at 1000
    assert isinstance(trades, list)
    ticks = setup.trades_of("BTC-USD")
    assert len(trades) == min(1000, len(ticks))
    last = ticks[-len(trades) :]
    assert [t["id"] for t in trades] == last["seq"].tolist()
    assert [t["price"] for t in trades] == [f"{p:.8f}" for p in last["last"]]
    # sizes in BTC: lots of 0.00001, exact decimals, in Binance's 8 (as its streams)
    assert [t["qty"] for t in trades] == [f"{n * 0.00001:.8f}" for n in last["last_size"].tolist()]
    assert [t["isBuyerMaker"] for t in trades] == (
        (last["flags"] & int(TickFlag.BUY)) == 0
    ).tolist()
    older = setup.json(B + "historicalTrades", f"symbol=BTCUSD&fromId={trades[10]['id']}&limit=2")
    assert older == trades[10:12]
    page = setup.json(B + "aggTrades", f"symbol=BTCUSD&fromId={trades[10]['id']}&limit=3")
    assert isinstance(page, list) and [a["a"] for a in page] == [t["id"] for t in trades[10:13]]


def test_binance_klines_match_the_trades(setup: Setup) -> None:
    rows = setup.json(B + "klines", "symbol=ETHUSD&interval=1m")
    assert isinstance(rows, list) and len(rows) == 4  # 3.5 minutes: three closed, one open
    ticks = setup.trades_of("ETH-USD")
    unit = 0.0001
    for row in rows:
        start_ns = row[0] * 1_000_000
        t = ticks[(ticks["ts"] >= start_ns) & (ticks["ts"] < start_ns + MIN)]
        assert row[1:5] == [
            f"{v:.8f}" for v in (t["last"][0], t["last"].max(), t["last"].min(), t["last"][-1])
        ]
        assert row[5] == f"{int(t['last_size'].sum()) * unit:.8f}"
        assert row[8] == len(t)
        assert row[6] == row[0] + 59_999
    hours = setup.json(B + "klines", "symbol=ETHUSD&interval=1h")
    assert isinstance(hours, list) and len(hours) == 1
    assert hours[0][8] == len(ticks) and hours[0][1] == rows[0][1] and hours[0][4] == rows[-1][4]
    first_two = setup.json(
        B + "klines", f"symbol=ETHUSD&interval=1m&startTime={rows[0][0]}&limit=2"
    )
    assert first_two == rows[:2]
    last_one = setup.json(B + "klines", "symbol=ETHUSD&interval=1m&limit=1")
    assert last_one == rows[-1:]


def test_binance_depth_and_book_ticker_are_the_top_of_book(setup: Setup) -> None:
    latest = setup.market.snapshot()[setup.universe.index("SOL-USD")]
    depth = setup.json(B + "depth", "symbol=SOLUSD&limit=100")
    assert depth == {
        "lastUpdateId": int(latest["seq"]),
        "bids": [[f"{latest['bid']:.8f}", f"{latest['bid_size'] * 0.001:.8f}"]],
        "asks": [[f"{latest['ask']:.8f}", f"{latest['ask_size'] * 0.001:.8f}"]],
    }
    book = setup.json(B + "ticker/bookTicker", "symbol=SOLUSD")
    assert isinstance(book, dict) and book["bidPrice"] == depth["bids"][0][0]
    everyone = setup.json(B + "ticker/bookTicker")
    assert isinstance(everyone, list) and len(everyone) == len(setup.universe)


def test_binance_24hr_ticker_sums_the_window(setup: Setup) -> None:
    ticks = setup.trades_of("BTC-USD")
    t = setup.json(B + "ticker/24hr", "symbol=BTCUSD")
    assert isinstance(t, dict)
    assert t["count"] == len(ticks) and t["lastId"] == int(ticks["seq"][-1])
    assert t["openPrice"] == f"{ticks['last'][0]:.8f}"
    assert t["highPrice"] == f"{ticks['last'].max():.8f}"
    assert t["volume"] == f"{int(ticks['last_size'].sum()) * 0.00001:.8f}"
    mini = setup.json(B + "ticker/24hr", "symbol=BTCUSD&type=MINI")
    assert isinstance(mini, dict) and "priceChange" not in mini and mini["count"] == t["count"]
    avg = setup.json(B + "avgPrice", "symbol=BTCUSD")
    assert isinstance(avg, dict) and avg["mins"] == 5
    vwap = float((ticks["last"] * ticks["last_size"]).sum() / ticks["last_size"].sum())
    assert float(avg["price"]) == pytest.approx(vwap, rel=1e-9)


C = "/coinbase/"


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("products/NOPE", "", 404),
        ("products/NOPE/ticker", "", 404),
        ("products/BTC-USD/orders", "", 404),
        ("nothing", "", 404),
        ("products/BTC-USD/candles", "granularity=61", 400),
        ("products/BTC-USD/candles", "start=yesterday", 400),
        (
            "products/BTC-USD/candles",
            "granularity=60&start=2023-11-14T00:00:00Z&end=2023-11-15T00:00:00Z",
            400,
        ),
        ("products/BTC-USD/book", "level=3", 400),
        ("products/BTC-USD/trades", "limit=-1", 400),
    ],
)
def test_coinbase_errors_are_coinbase_messages(
    setup: Setup, path: str, query: str, status: int
) -> None:
    resp = setup.get(C + path, query)
    assert resp.status == status
    body = orjson.loads(resp.body)
    assert list(body) == ["message"] and body["message"]
    if status == 404:
        assert body["message"] == "NotFound"


def test_coinbase_trades_page_with_cursors(setup: Setup) -> None:
    ticks = setup.trades_of("BTC-USD")
    newest = setup.get(C + "products/BTC-USD/trades", "limit=3")
    page = orjson.loads(newest.body)
    assert [t["trade_id"] for t in page] == ticks["seq"][::-1][:3].tolist()
    headers = dict(newest.headers)
    assert headers["CB-BEFORE"] == str(page[0]["trade_id"])
    assert headers["CB-AFTER"] == str(page[-1]["trade_id"])
    older = setup.json(C + "products/BTC-USD/trades", f"limit=3&after={headers['CB-AFTER']}")
    assert isinstance(older, list)
    assert [t["trade_id"] for t in older] == ticks["seq"][::-1][3:6].tolist()
    newer = setup.json(C + "products/BTC-USD/trades", f"limit=2&before={older[0]['trade_id']}")
    assert isinstance(newer, list)
    assert [t["trade_id"] for t in newer] == ticks["seq"][::-1][1:3].tolist()
    sides = {t["side"] for t in page}
    assert sides <= {"buy", "sell"}


def test_coinbase_candles_newest_first(setup: Setup) -> None:
    rows = setup.json(C + "products/ETH-USD/candles", "granularity=60")
    assert isinstance(rows, list) and len(rows) == 4
    assert [r[0] for r in rows] == sorted((r[0] for r in rows), reverse=True)
    binance = setup.json(B + "klines", "symbol=ETHUSD&interval=1m")
    assert isinstance(binance, list)
    for cb, bn in zip(rows[::-1], binance, strict=True):
        assert cb[0] * 1000 == bn[0]
        assert (cb[3], cb[2], cb[1], cb[4]) == tuple(float(v) for v in bn[1:5])  # o h l c
        assert cb[5] == pytest.approx(float(bn[5]))


def test_coinbase_products_book_and_stats(setup: Setup) -> None:
    products = setup.json(C + "products")
    assert isinstance(products, list)
    btc = next(p for p in products if p["id"] == "BTC-USD")
    assert (btc["quote_increment"], btc["base_increment"]) == ("0.01", "0.00001")
    assert setup.json(C + "products/BTC-USD") == btc
    book = setup.json(C + "products/BTC-USD/book", "level=2")
    latest = setup.market.snapshot()[setup.universe.index("BTC-USD")]
    assert isinstance(book, dict) and book["sequence"] == int(latest["seq"])
    assert book["bids"] == [[f"{latest['bid']:.2f}", f"{latest['bid_size'] * 0.00001:.5f}", 1]]
    stats = setup.json(C + "products/BTC-USD/stats")
    assert isinstance(stats, dict) and stats["last"] == f"{latest['last']:.2f}"


def test_tokens_are_asked_in_each_venues_way() -> None:
    s = Setup(minutes=0.1, tokens=("s3cret",))
    refused = s.get(B + "ping")
    assert refused.status == 401 and orjson.loads(refused.body)["code"] == -2015
    assert s.get(B + "ping", **{"x-mbx-apikey": "s3cret"}).status == 200
    assert s.get(B + "ping", "token=s3cret").status == 200
    assert s.get(C + "time", **{"authorization": "Bearer s3cret"}).status == 200
    assert s.get(C + "time", **{"cb-access-key": "wrong"}).status == 401
    assert s.get(C + "time", **{"cb-access-key": "s3cret"}).status == 200
    refused = s.get(A + "trades", "symbols=BTC-USD", **{"apca-api-key-id": "key"})
    assert refused.status == 401 and orjson.loads(refused.body)["code"] == 40110000
    secret = {"apca-api-key-id": "key", "apca-api-secret-key": "s3cret"}
    assert s.get(A + "trades", "symbols=BTC-USD", **secret).status == 200


def test_ring_keeps_the_newest_records_in_order() -> None:
    ring = Ring(TRADE_DTYPE, 5)
    for start in (0, 3, 6):  # wraps around twice
        t = np.zeros(3, TRADE_DTYPE)
        t["id"] = np.arange(start, start + 3)
        t["sym"] = t["id"] % 2
        ring.extend(t)
    assert ring.filled == 5
    assert ring.all()["id"].tolist() == [4, 5, 6, 7, 8]
    assert ring.of(0)["id"].tolist() == [4, 6, 8]
    assert ring.of(1)["id"].tolist() == [5, 7]
    big = np.zeros(12, TRADE_DTYPE)
    big["id"] = np.arange(100, 112)
    ring.extend(big)  # more than the ring holds: the newest five
    assert ring.all()["id"].tolist() == [107, 108, 109, 110, 111]


def test_rest_modules_import_no_trio() -> None:
    code = (
        "import sys, tickwire.feed.venues.rest; assert 'trio' not in sys.modules, 'trio imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tape_folds_the_same_whenever_it_flushes() -> None:
    """Batches folded one by one (a read after every batch) or many at once (across minute
    ends) give the same trades and bars (notionals to the last bits of a float sum)."""
    universe = Universe.crypto_pairs()
    market = Market(universe, seed=3, start_ns=T0, session="24h")
    batches = [market.step(T0 + k * 250_000_000) for k in range(1, 800)]  # 200 s
    eager, lazy = RestTape(len(universe)), RestTape(len(universe))
    for b in batches:
        eager.publish(b)
        eager.flush()
        lazy.publish(b)
    got, want = lazy.all_bars(), eager.all_bars()
    for name in got.dtype.names:  # sums of float notionals differ in their last bits only
        if "notional" in name:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-12)
        else:
            assert got[name].tolist() == want[name].tolist(), name
    assert lazy.trades.all().tobytes() == eager.trades.all().tobytes()
    assert len(eager.closed.all()) > len(universe)  # minutes did end


A = "/alpaca/v2/stocks/"


@pytest.mark.parametrize("sort", ["asc", "desc"])
@pytest.mark.parametrize("kind", ["trades", "quotes", "bars"])
def test_alpaca_pages_add_up_to_the_whole(setup: Setup, kind: str, sort: str) -> None:
    """Paging two symbols 3 records at a time gives every record once, by symbol then time."""
    base = f"symbols=ETH-USD,BTC-USD&sort={sort}&timeframe=1Min"
    if kind != "bars":  # the last 10 s (of 3.5 min): some dozens of pages of 3
        base += "&start=2023-11-14T22:17:20Z"
    whole = setup.json(A + kind, base + "&limit=10000")
    assert isinstance(whole, dict) and whole["next_page_token"] is None
    assert list(whole[kind]) == ["BTC-USD", "ETH-USD"]
    pages: dict[str, list[object]] = {}
    token, n = None, 0
    while True:
        query = base + "&limit=3" + (f"&page_token={token}" if token else "")
        page = setup.json(A + kind, query)
        assert isinstance(page, dict)
        assert sum(len(v) for v in page[kind].values()) <= 3
        for name, items in page[kind].items():
            pages.setdefault(name, []).extend(items)
        token, n = page["next_page_token"], n + 1
        if token is None:
            break
    assert pages == whole[kind] and n > 2
    times = [r["t"] for r in whole[kind]["BTC-USD"]]
    assert times == sorted(times, reverse=sort == "desc")


def test_alpaca_records_are_the_markets(setup: Setup) -> None:
    ticks = setup.trades_of("BTC-USD")
    one = setup.json(A + "BTC-USD/trades", "limit=10000")
    assert isinstance(one, dict) and one["symbol"] == "BTC-USD"
    assert [t["i"] for t in one["trades"]] == ticks["seq"].tolist()
    assert [t["s"] for t in one["trades"]] == [
        float(f"{n * 0.00001:.5f}") for n in ticks["last_size"].tolist()
    ]
    bars = setup.json(A + "ETH-USD/bars", "timeframe=1Min")
    klines = setup.json(B + "klines", "symbol=ETHUSD&interval=1m")
    assert isinstance(bars, dict) and isinstance(klines, list)
    assert [(b["o"], b["h"], b["l"], b["c"], b["n"]) for b in bars["bars"]] == [
        (float(k[1]), float(k[2]), float(k[3]), float(k[4]), k[8]) for k in klines
    ]
    latest = setup.json(A + "quotes/latest", "symbols=SOL-USD,NOPE")
    rec = setup.market.snapshot()[setup.universe.index("SOL-USD")]
    assert isinstance(latest, dict) and list(latest["quotes"]) == ["SOL-USD"]
    assert latest["quotes"]["SOL-USD"]["bp"] == float(rec["bid"])
    snap = setup.json(A + "BTC-USD/snapshot")
    assert isinstance(snap, dict) and snap["latestTrade"]["i"] == int(ticks["seq"][-1])
    assert snap["dailyBar"]["n"] == len(ticks) and snap["prevDailyBar"] is None
    empty = setup.json(A + "NOPE/trades")
    assert empty == {"trades": [], "symbol": "NOPE", "next_page_token": None}


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("bars", "symbols=BTC-USD", 422),
        ("bars", "symbols=BTC-USD&timeframe=60Min", 422),
        ("bars", "symbols=BTC-USD&timeframe=1Month", 422),
        ("trades", "symbols=BTC-USD&limit=10001", 422),
        ("trades", "symbols=BTC-USD&start=yesterday", 422),
        ("trades", "symbols=BTC-USD&page_token=%%%", 422),
        ("trades", "symbols=BTC-USD&sort=up", 422),
        ("trades", "", 400),
        ("BTC-USD/orderbooks", "", 404),
    ],
)
def test_alpaca_errors_are_alpaca_messages(
    setup: Setup, path: str, query: str, status: int
) -> None:
    resp = setup.get(A + path, query)
    assert resp.status == status
    body = orjson.loads(resp.body)
    assert set(body) == {"code", "message"} and str(body["code"]).startswith(str(status))


def test_alpaca_time_range(setup: Setup) -> None:
    ticks = setup.trades_of("BTC-USD")
    start, end = int(ticks["ts"][10]), int(ticks["ts"][20])

    def rfc3339(ns: int) -> str:
        sec, frac = divmod(ns, S)
        from datetime import UTC, datetime

        return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"

    got = setup.json(A + "BTC-USD/trades", f"start={rfc3339(start)}&end={rfc3339(end)}")
    assert isinstance(got, dict)
    assert [t["i"] for t in got["trades"]] == ticks["seq"][10:21].tolist()


def test_ring_of_many_is_of_each() -> None:
    ring = Ring(TRADE_DTYPE, 7)
    for start in (0, 5, 10):
        t = np.zeros(5, TRADE_DTYPE)
        t["id"] = np.arange(start, start + 5)
        t["sym"] = t["id"] % 3
        ring.extend(t)
    many = ring.of_many([2, 0, 1])
    assert sorted(many) == [0, 1, 2]
    for sym, records in many.items():
        assert records.tobytes() == ring.of(sym).tobytes()
    assert ring.of_many([1])[1]["id"].tolist() == [10, 13]


_BINANCE = "depth trades historicalTrades aggTrades klines avgPrice exchangeInfo nothing"
_COINBASE = "products/BTC-USD/trades products/BTC-USD/candles products/BTC-USD/book time x/y/z"
_ALPACA = "bars trades quotes BTC-USD/bars snapshots quotes/latest BTC-USD/snapshot"
_ADVANCED = "market/products/BTC-USD/ticker market/products/BTC-USD/candles market/product_book"
_PATHS = (
    [C + "api/v3/brokerage/" + p for p in _ADVANCED.split()]
    + [B + p for p in (*_BINANCE.split(), "ticker/24hr", "ticker/price", "ticker/bookTicker")]
    + [C + p for p in _COINBASE.split()]
    + [A + p for p in _ALPACA.split()]
)
_NAMES = st.sampled_from(
    [
        "symbol",
        "symbols",
        "limit",
        "interval",
        "startTime",
        "endTime",
        "fromId",
        "type",
        "granularity",
        "start",
        "end",
        "level",
        "before",
        "after",
        "timeframe",
        "page_token",
        "sort",
    ]
)


@settings(max_examples=300, deadline=None)
@example(path=B + "klines", params=[("symbol", "BTCUSD"), ("interval", "1m"), ("limit", "²")])
@example(path=C + "products/BTC-USD/candles", params=[("granularity", "\u0666\u0660")])
@example(path=C + "products/BTC-USD/trades", params=[("limit", "\u0661")])
@example(path=C + "products/BTC-USD/candles", params=[("start", "\u0661\u0662.\u0663")])
@example(path=A + "trades", params=[("symbols", "BTC-USD"), ("limit", "³")])
@example(path=C + "products/BTC-USD/candles", params=[("start", "9" * 400)])
@given(
    path=st.sampled_from(_PATHS),
    params=st.lists(st.tuples(_NAMES, st.text(max_size=30)), max_size=4),
)
def test_any_query_gets_an_answer_never_an_exception(
    setup: Setup, path: str, params: list[tuple[str, str]]
) -> None:
    query = urlencode(params)
    resp = setup.get(path, query, peer="fuzz")
    assert resp.status in (200, 400, 404, 422, 429), (resp.status, resp.body)
    orjson.loads(resp.body)


@pytest.mark.parametrize("sort", ["asc", "desc"])
def test_alpaca_page_token_survives_new_records(sort: str) -> None:
    """Records that reach the tape between two pages do not shift the next page (newest
    first, a position would: the new records come before it)."""
    s = Setup(minutes=0.5)
    whole = s.json(A + "BTC-USD/trades", f"limit=10&sort={sort}")
    first = s.json(A + "BTC-USD/trades", f"limit=5&sort={sort}")
    assert isinstance(first, dict) and first["next_page_token"]
    for k in range(31, 41):  # ten more seconds of market
        s.tape.publish(s.market.step(T0 + k * S))
    s.now = T0 + 40 * S
    token = first["next_page_token"]
    second = s.json(A + "BTC-USD/trades", f"limit=5&sort={sort}&page_token={token}")
    assert isinstance(second, dict) and isinstance(whole, dict)
    assert first["trades"] + second["trades"] == whole["trades"]


V3 = C + "api/v3/brokerage/"


def test_coinbase_advanced_trade(setup: Setup) -> None:
    ticks = setup.trades_of("BTC-USD")
    spot = setup.json(V3 + "market/products")
    futures = setup.json(V3 + "market/products", "product_type=FUTURE")
    assert isinstance(spot, dict) and spot["num_products"] == len(setup.universe)
    assert futures == {"products": [], "num_products": 0}
    btc = next(p for p in spot["products"] if p["product_id"] == "BTC-USD")
    assert (btc["base_increment"], btc["price_increment"]) == ("0.00001", "0.01")
    ticker = setup.json(V3 + "market/products/BTC-USD/ticker", "limit=3")
    assert isinstance(ticker, dict)
    assert [int(t["trade_id"]) for t in ticker["trades"]] == ticks["seq"][::-1][:3].tolist()
    candles = setup.json(V3 + "market/products/ETH-USD/candles", "granularity=ONE_MINUTE")
    klines = setup.json(B + "klines", "symbol=ETHUSD&interval=1m")
    assert isinstance(candles, dict) and isinstance(klines, list)
    assert [int(c["start"]) * 1000 for c in candles["candles"]] == [k[0] for k in klines][::-1]
    book = setup.json(V3 + "market/product_book", "product_id=BTC-USD")
    assert (
        isinstance(book, dict)
        and book["pricebook"]["bids"][0]["price"] < book["pricebook"]["asks"][0]["price"]
    )
    rates = setup.json(C + "v2/exchange-rates")
    assert isinstance(rates, dict) and float(rates["data"]["rates"]["BTC"]) > 0
    crypto = setup.json(C + "v2/currencies/crypto")
    assert isinstance(crypto, dict) and {c["code"] for c in crypto["data"]} >= {"BTC", "ETH"}
    for path, query, status in [
        (V3 + "market/products/NOPE", "", 404),
        (V3 + "market/product_book", "product_id=NOPE", 404),
        (V3 + "market/products/BTC-USD/candles", "granularity=ONE_WEEK", 400),
        (V3 + "market/products/BTC-USD/ticker", "limit=x", 400),
        (C + "v2/nothing", "", 404),
    ]:
        resp = setup.get(path, query)
        assert resp.status == status
        assert set(orjson.loads(resp.body)) == {"error", "error_details", "message"}
