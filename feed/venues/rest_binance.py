"""Binance spot's public REST market data under `/binance/api/v3/`, sans-IO.

`ping`, `time`, `exchangeInfo` (a symbol per universe symbol, with PRICE_FILTER, LOT_SIZE and
NOTIONAL filters), `depth` (the server's order book, `lastUpdateId` its book seq as the diff
depth stream's `U`/`u`; the top of book as one level when the server keeps no books),
`ticker/bookTicker`, `ticker/price`, `ticker/24hr`, `trades`, `historicalTrades`, `aggTrades`,
`klines` / `uiKlines` and `avgPrice`, with Binance's parameters, caps, error objects
(`{"code": -1121, "msg": "Invalid symbol."}`) and request weights: every answer carries
`X-MBX-USED-WEIGHT-1M`, and past the limit per address and minute a request gets 429 with
`Retry-After`. Prices and quantities are decimal strings with 8 decimals; a trade id is its tick
record's `seq`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from tickwire.feed.venues._common import binance_name
from tickwire.feed.venues._rest_binance_objects import (
    px,
    qty,
    symbol_info,
    ticker,
    window_stats,
)
from tickwire.feed.venues._rest_common import (
    BOOKS_LOADING,
    RETRY_SOON,
    MarketView,
    RestError,
    RestRequest,
    RestResponse,
    WeightWindow,
    json_response,
    raw_json,
)
from tickwire.feed.venues._rest_depth import DepthBodies
from tickwire.feed.venues._rest_tape import NS_PER_MIN, aggregate
from tickwire.feed.venues._sizes import BINANCE_PLACES
from tickwire.feed.venues.binance_depth import RestDepth

PREFIX = "/binance/api/v3/"
NS_PER_MS = 1_000_000
DAY_NS = 1440 * NS_PER_MIN
INTERVALS: dict[str, int] = {
    "1m": NS_PER_MIN,
    "3m": 3 * NS_PER_MIN,
    "5m": 5 * NS_PER_MIN,
    "15m": 15 * NS_PER_MIN,
    "30m": 30 * NS_PER_MIN,
    "1h": 60 * NS_PER_MIN,
    "2h": 120 * NS_PER_MIN,
    "4h": 240 * NS_PER_MIN,
    "6h": 360 * NS_PER_MIN,
    "8h": 480 * NS_PER_MIN,
    "12h": 720 * NS_PER_MIN,
    "1d": DAY_NS,
    "3d": 3 * DAY_NS,
    "1w": 7 * DAY_NS,
}
WEEK_OFFSET_NS = 4 * DAY_NS  # the epoch was a Thursday; Binance's weeks start on Monday
MAX_LIMIT = 1000  # trades, aggTrades, klines


def _depth_weight(limit: int) -> int:
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def _err(code: int, msg: str, status: int = 400) -> RestError:
    return RestError(status, {"code": code, "msg": msg})


def _mandatory(name: str) -> RestError:
    return _err(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _int(params: dict[str, str], name: str, default: int | None = None) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise _err(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        )
    return int(text)


class BinanceRest:
    """The handlers, their weights and the weight window of one server."""

    def __init__(self, view: MarketView, *, weight_per_min: int = 6000) -> None:
        self.view = view
        self._qtys = view.sizes.formats(BINANCE_PLACES)  # per symbol, as the streams write them
        self.books = None if view.books is None else DepthBodies(RestDepth(view.books), self._qtys)
        universe = view.universe
        self.names = [binance_name(s) for s in universe.symbols]
        self.index: dict[str, int] = {}
        for i, n in enumerate(self.names):
            self.index.setdefault(n, i)  # on a clash the first symbol keeps the name
        self.weights = WeightWindow(weight_per_min)
        self._symbols = [
            orjson.dumps(symbol_info(view, self.names[i], i)) for i in range(len(universe))
        ]
        rate_limits = [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": weight_per_min,
            },
        ]
        self._info_head = b'{"timezone":"UTC","rateLimits":%s,"exchangeFilters":[],' % (
            orjson.dumps(rate_limits)
        )
        self._routes: dict[str, tuple[Callable[[dict[str, str], int], Any], Any]] = {
            "ping": (lambda q, now: {}, 1),
            "time": (lambda q, now: {"serverTime": now // NS_PER_MS}, 1),
            "exchangeInfo": (self.exchange_info, 20),
            "depth": (self.depth, lambda q: _depth_weight(self._limit(q))),
            "ticker/bookTicker": (self.book_ticker, self._many_weight(2, 4)),
            "ticker/price": (self.price, self._many_weight(2, 4)),
            "ticker/24hr": (self.ticker_24hr, self._many_weight(2, 80)),
            "trades": (self.trades, 25),
            "historicalTrades": (self.trades, 25),
            "aggTrades": (self.agg_trades, 4),
            "klines": (self.klines, 2),
            "uiKlines": (self.klines, 2),
            "avgPrice": (self.avg_price, 2),
        }

    # ------------------------------------------------------------------ dispatch

    def handle(self, req: RestRequest, now_ns: int) -> RestResponse:
        name = req.path[len(PREFIX) :].rstrip("/") if req.path.startswith(PREFIX) else None
        found = self._routes.get(name) if name is not None else None
        if found is None:
            return json_response(404, {"code": -1, "msg": f"Unknown endpoint {req.path}"})
        handler, weight = found
        params = req.params()
        try:
            cost = weight(params) if callable(weight) else weight
        except RestError:
            cost = 1
        used, retry_s = self.weights.charge(req.peer, cost, now_ns)
        headers = [("X-MBX-USED-WEIGHT-1M", str(used))]
        if retry_s is not None:
            limit = self.weights.limit
            msg = (
                f"Too much request weight used; current limit is {limit} request weight per "
                "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."
            )
            headers.append(("Retry-After", str(retry_s)))
            return json_response(429, {"code": -1003, "msg": msg}, headers)
        try:
            result = handler(params, now_ns)
        except RestError as exc:
            return json_response(exc.status, exc.body, [*headers, *exc.headers])
        if isinstance(result, bytes):
            return raw_json(200, result, headers)
        return json_response(200, result, headers)

    def _many_weight(self, one: int, all_: int) -> Callable[[dict[str, str]], int]:
        def weight(q: dict[str, str]) -> int:
            if q.get("symbol"):
                return one
            symbols = q.get("symbols")
            if symbols is None:
                return all_
            n = len(self._symbol_list(symbols))
            return min(all_, one * n) if all_ > 4 else all_

        return weight

    # ------------------------------------------------------------------ parameters

    def _sym(self, params: dict[str, str]) -> int:
        name = params.get("symbol")
        if not name:
            raise _mandatory("symbol")
        sym = self.index.get(name)
        if sym is None:
            raise _err(-1121, "Invalid symbol.")
        return sym

    def _symbol_list(self, text: str) -> list[int]:
        try:
            names = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise _err(-1100, "Illegal characters found in parameter 'symbols'.") from None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise _mandatory("symbols")
        out = []
        for n in names:
            sym = self.index.get(n)
            if sym is None:
                raise _err(-1121, "Invalid symbol.")
            out.append(sym)
        return out

    def _selection(self, params: dict[str, str]) -> tuple[list[int], bool]:
        """The symbols a ticker request names, and whether it named one (answer an object)."""
        if params.get("symbol") and params.get("symbols"):
            raise _err(-1128, "Combination of optional parameters invalid.")
        if params.get("symbol"):
            return [self._sym(params)], True
        if params.get("symbols"):
            return self._symbol_list(params["symbols"]), False
        return list(range(len(self.names))), False

    def _limit(self, params: dict[str, str], default: int = 100, cap: int = 5000) -> int:
        limit = _int(params, "limit", default)
        assert limit is not None
        if limit < 1:
            raise _err(-1130, "Data sent for parameter 'limit' is not valid.")
        return min(limit, cap)

    # ------------------------------------------------------------------ endpoints

    def exchange_info(self, params: dict[str, str], now_ns: int) -> bytes:
        """The universe's symbols, encoded once at start; the server time added per request."""
        if params.get("symbol") or params.get("symbols"):
            syms, _ = self._selection(params)
        else:
            syms = range(len(self.names))  # type: ignore[assignment]
        halted = self.view.halted()  # a scenario's halt: the symbol's status is HALT meanwhile
        symbols = b",".join(
            self._symbols[i].replace(b'"status":"TRADING"', b'"status":"HALT"', 1)
            if i in halted
            else self._symbols[i]
            for i in syms
        )
        return b'%s"serverTime":%d,"symbols":[%s]}' % (
            self._info_head,
            now_ns // NS_PER_MS,
            symbols,
        )

    def depth(self, params: dict[str, str], now_ns: int) -> bytes | dict[str, Any]:
        sym = self._sym(params)
        limit = self._limit(params)
        if self.books is not None:  # encoded once per book change (`_rest_depth`)
            if not self.books.current(sym, now_ns):
                raise RestError(503, {"code": -1008, "msg": BOOKS_LOADING}, RETRY_SOON)
            return self.books.body(sym, limit, now_ns)
        rec, view = self.view.latest()[sym], self.view
        bids = [[px(rec["bid"]), qty(view, sym, rec["bid_size"])]] if rec["bid_size"] else []
        asks = [[px(rec["ask"]), qty(view, sym, rec["ask_size"])]] if rec["ask_size"] else []
        return {"lastUpdateId": int(rec["seq"]), "bids": bids, "asks": asks}

    def _book(self, sym: int, rec: Any) -> dict[str, Any]:
        view = self.view
        return {
            "symbol": self.names[sym],
            "bidPrice": px(rec["bid"]),
            "bidQty": qty(view, sym, rec["bid_size"]),
            "askPrice": px(rec["ask"]),
            "askQty": qty(view, sym, rec["ask_size"]),
        }

    def book_ticker(self, params: dict[str, str], now_ns: int) -> Any:
        syms, one = self._selection(params)
        latest = self.view.latest()
        out = [self._book(s, latest[s]) for s in syms]
        return out[0] if one else out

    def price(self, params: dict[str, str], now_ns: int) -> Any:
        syms, one = self._selection(params)
        latest = self.view.latest()
        out = [{"symbol": self.names[s], "price": px(latest[s]["last"])} for s in syms]
        return out[0] if one else out

    def ticker_24hr(self, params: dict[str, str], now_ns: int) -> Any:
        syms, one = self._selection(params)
        kind = params.get("type", "FULL")
        if kind not in ("FULL", "MINI"):
            raise _err(-1100, "Illegal characters found in parameter 'type'.")
        latest, cutoff = self.view.latest(), now_ns - DAY_NS
        bars = self.view.tape.all_bars() if not one else self.view.tape.bars(syms[0])
        bars = bars[bars["start"] >= cutoff - cutoff % NS_PER_MIN]
        stats = window_stats(bars, len(self.names))
        mini = kind == "MINI"
        out = [ticker(self.view, self.names[s], s, latest[s], stats, now_ns, mini) for s in syms]
        return out[0] if one else out

    def _trades(self, params: dict[str, str]) -> tuple[int, NDArray[np.void], int]:
        sym = self._sym(params)
        limit = self._limit(params, 500, MAX_LIMIT)
        return sym, self.view.tape.recent_trades(sym), limit

    def trades(self, params: dict[str, str], now_ns: int) -> list[dict[str, Any]]:
        """`trades`, and `historicalTrades` (from `fromId` on; Binance asks for no key here)."""
        sym, t, limit = self._trades(params)
        from_id = _int(params, "fromId")
        t = t[t["id"] >= from_id][:limit] if from_id is not None else t[-limit:]
        view, unit = self.view, self.view.unit(sym)
        return [
            {
                "id": int(r["id"]),
                "price": px(r["price"]),
                "qty": qty(view, sym, r["size"]),
                "quoteQty": px(r["price"] * r["size"] * unit),
                "time": int(r["ts"]) // NS_PER_MS,
                "isBuyerMaker": not r["buy"],
                "isBestMatch": True,
            }
            for r in t
        ]

    def agg_trades(self, params: dict[str, str], now_ns: int) -> list[dict[str, Any]]:
        sym, t, limit = self._trades(params)
        from_id = _int(params, "fromId")
        start, end = _int(params, "startTime"), _int(params, "endTime")
        if from_id is not None:
            t = t[t["id"] >= from_id][:limit]
        elif start is not None or end is not None:
            ms = t["ts"] // NS_PER_MS
            lo = start if start is not None else (end or 0) - 3_600_000
            hi = end if end is not None else lo + 3_600_000
            if hi - lo > 3_600_000:
                raise _err(-1127, "More than 1 hours between startTime and endTime.")
            t = t[(ms >= lo) & (ms <= hi)][:limit]
        else:
            t = t[-limit:]
        view = self.view
        return [
            {
                "a": int(r["id"]),
                "p": px(r["price"]),
                "q": qty(view, sym, r["size"]),
                "f": int(r["id"]),
                "l": int(r["id"]),
                "T": int(r["ts"]) // NS_PER_MS,
                "m": not r["buy"],
                "M": True,
            }
            for r in t
        ]

    def klines(self, params: dict[str, str], now_ns: int) -> list[list[Any]]:
        sym = self._sym(params)
        interval = params.get("interval")
        if not interval:
            raise _mandatory("interval")
        width = INTERVALS.get(interval)
        if width is None:
            raise _err(-1120, "Invalid interval.")
        limit = self._limit(params, 500, MAX_LIMIT)
        start, end = _int(params, "startTime"), _int(params, "endTime")
        offset = WEEK_OFFSET_NS if interval == "1w" else 0
        bars = aggregate(self.view.tape.bars(sym), width, offset)
        ms = bars["start"] // NS_PER_MS
        keep = np.ones(len(bars), bool)
        if start is not None:
            keep &= ms + width // NS_PER_MS > start  # the bar holding startTime, and later
        if end is not None:
            keep &= ms <= end
        bars = bars[keep]
        bars = bars[:limit] if start is not None else bars[-limit:]
        view, unit = self.view, self.view.unit(sym)
        return [
            [
                int(b["start"]) // NS_PER_MS,
                px(b["open"]),
                px(b["high"]),
                px(b["low"]),
                px(b["close"]),
                qty(view, sym, b["volume"]),
                (int(b["start"]) + width) // NS_PER_MS - 1,
                px(b["notional"] * unit),
                int(b["count"]),
                qty(view, sym, b["buy_volume"]),
                px(b["buy_notional"] * unit),
                "0",
            ]
            for b in bars
        ]

    def avg_price(self, params: dict[str, str], now_ns: int) -> dict[str, Any]:
        sym = self._sym(params)
        bars = self.view.tape.bars(sym)
        cutoff = now_ns - 5 * NS_PER_MIN
        bars = bars[bars["start"] >= cutoff - cutoff % NS_PER_MIN]
        volume = int(bars["volume"].sum())
        last = float(self.view.latest()[sym]["last"])
        price = float(bars["notional"].sum()) / volume if volume else last
        close = int(bars["start"][-1]) + NS_PER_MIN if len(bars) else now_ns
        return {"mins": 5, "price": px(price), "closeTime": close // NS_PER_MS}
