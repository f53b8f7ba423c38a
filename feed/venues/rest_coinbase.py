"""Coinbase Exchange's public REST market data under `/coinbase/`, sans-IO.

`products`, `products/{id}`, `products/{id}/ticker`, `.../trades` (newest first, `limit` up to
1000, `before`/`after` trade-id cursors with `CB-BEFORE`/`CB-AFTER` headers), `.../candles`
(`granularity` 60 to 86400 s, at most 300, newest first), `.../stats`, `.../book` (level 1 the
best bid and ask, level 2 every level of the server's book, `sequence` the book's sequence as
on the `level2` stream), `currencies` and `time`. Product ids are the
universe's symbols, as on the `/coinbase` stream. Errors are Coinbase's `{"message": ...}`
(`NotFound` with 404). Decimals are strings at the product's increments; a trade id is its tick
record's `seq`, `side` is the maker's, as Coinbase reports it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from tickwire.feed.venues._common import NS_PER_S, Clock
from tickwire.feed.venues._rest_common import (
    BOOKS_LOADING,
    RETRY_SOON,
    MarketView,
    RestError,
    RestRequest,
    RestResponse,
    json_response,
)
from tickwire.feed.venues._rest_tape import NS_PER_MIN, aggregate

PREFIX = "/coinbase/"
GRANULARITIES = (60, 300, 900, 3600, 21600, 86400)
MAX_CANDLES = 300
MAX_TRADES = 1000
DAY_NS = 86400 * NS_PER_S


def _not_found() -> RestError:
    return RestError(404, {"message": "NotFound"})


def _bad(message: str) -> RestError:
    return RestError(400, {"message": message})


class CoinbaseRest:
    """The Coinbase Exchange handlers of one server."""

    def __init__(self, view: MarketView) -> None:
        self.view = view
        universe = view.universe
        self.ids = {s: i for i, s in enumerate(universe.symbols)}
        self._clock = Clock()
        self._products = [self._product(i) for i in range(len(universe))]
        self._products_body = orjson.dumps(self._products)
        self._currencies_body = orjson.dumps(self._currencies())

    def handle(self, req: RestRequest, now_ns: int) -> RestResponse:
        parts = req.path[len(PREFIX) :].strip("/").split("/")
        params = req.params()
        headers: list[tuple[str, str]] = []
        try:
            result = self._dispatch(parts, params, now_ns, headers)
        except RestError as exc:
            return exc.response()
        if isinstance(result, bytes):
            return RestResponse(200, (("Content-Type", "application/json"),), result)
        return json_response(200, result, headers)

    def _dispatch(
        self, parts: list[str], params: dict[str, str], now_ns: int, headers: list[Any]
    ) -> Any:
        if parts == ["products"]:
            return self._products_body
        if parts == ["currencies"]:
            return self._currencies_body
        if parts == ["time"]:
            iso = self._clock.us(now_ns)
            return {"iso": iso[:-4] + "Z", "epoch": round(now_ns / NS_PER_S, 3)}
        if len(parts) < 2 or parts[0] != "products":
            raise _not_found()
        sym = self.ids.get(parts[1])
        if sym is None:
            raise _not_found()
        rest = parts[2:]
        if not rest:
            return self._products[sym]
        if len(rest) != 1:
            raise _not_found()
        what = rest[0]
        if what == "ticker":
            return self.ticker(sym, now_ns)
        if what == "trades":
            return self.trades(sym, params, headers)
        if what == "candles":
            return self.candles(sym, params, now_ns)
        if what == "stats":
            return self.stats(sym, now_ns)
        if what == "book":
            return self.book(sym, params, now_ns)
        raise _not_found()

    # ------------------------------------------------------------------ reference data

    def _product(self, i: int) -> dict[str, Any]:
        u, view = self.view.universe, self.view
        return {
            "id": u.symbols[i],
            "base_currency": u.bases[i],
            "quote_currency": u.quotes[i],
            "quote_increment": view.price(i, float(u.tick_size[i])),
            "base_increment": view.size(i, 1),
            "display_name": u.symbols[i],
            "min_market_funds": "1",
            "margin_enabled": False,
            "post_only": False,
            "limit_only": False,
            "cancel_only": False,
            "status": "online",
            "status_message": "",
            "trading_disabled": False,
            "fx_stablecoin": False,
            "max_slippage_percentage": "0.03000000",
            "auction_mode": False,
            "high_bid_limit_percentage": "",
        }

    def _currencies(self) -> list[dict[str, Any]]:
        u, view = self.view.universe, self.view
        out: dict[str, dict[str, Any]] = {}
        for i in range(len(u)):
            for code, crypto, step in (
                (u.bases[i], u.kinds[i] == "crypto", view.size(i, 1)),
                (u.quotes[i], False, "0.01"),
            ):
                if code in out:
                    continue
                kind = "crypto" if crypto else "fiat"
                name = u.names[i] if code == u.bases[i] and crypto else code
                out[code] = {
                    "id": code,
                    "name": name,
                    "min_size": step,
                    "status": "online",
                    "message": "",
                    "max_precision": step,
                    "convertible_to": [],
                    "details": {"type": kind, "symbol": "", "min_size": step},
                    "default_network": "",
                    "supported_networks": [],
                }
        return list(out.values())

    # ------------------------------------------------------------------ market data

    def ticker(self, sym: int, now_ns: int) -> dict[str, Any]:
        rec, view = self.view.latest()[sym], self.view
        volume = self._day(sym, now_ns)["volume"]
        return {
            "ask": view.price(sym, rec["ask"]),
            "bid": view.price(sym, rec["bid"]),
            "volume": view.size(sym, volume),
            "trade_id": int(rec["seq"]),
            "price": view.price(sym, rec["last"]),
            "size": view.size(sym, rec["last_size"]),
            "time": self._clock.us(int(rec["ts"])),
            "rfq_volume": "0",
        }

    def trades(self, sym: int, params: dict[str, str], headers: list[Any]) -> list[Any]:
        limit = _positive(params, "limit", 100)
        t = self.view.tape.recent_trades(sym)[::-1]  # newest first, as Coinbase pages
        after, before = _positive(params, "after", 0), _positive(params, "before", 0)
        if after:  # older than this trade id
            t = t[t["id"] < after]
        if before:  # newer than this trade id: the ones just above it
            newer = t[t["id"] > before]
            t = newer[-min(limit, MAX_TRADES) :]
        t = t[: min(limit, MAX_TRADES)]
        if len(t):
            headers += [("CB-BEFORE", str(int(t["id"][0]))), ("CB-AFTER", str(int(t["id"][-1])))]
        view, us = self.view, self._clock.us
        return [
            {
                "time": us(int(r["ts"])),
                "trade_id": int(r["id"]),
                "price": view.price(sym, r["price"]),
                "size": view.size(sym, r["size"]),
                "side": "sell" if r["buy"] else "buy",  # the maker's side
            }
            for r in t
        ]

    def candles(self, sym: int, params: dict[str, str], now_ns: int) -> list[list[Any]]:
        text = params.get("granularity", "60")
        if not (text.isascii() and text.isdigit()) or int(text) not in GRANULARITIES:
            allowed = ", ".join(map(str, GRANULARITIES))
            raise _bad(f"Unsupported granularity: use one of {allowed}")
        width = int(text) * NS_PER_S
        start, end = _time(params, "start"), _time(params, "end")
        if start is not None and end is not None and (end - start) // width > MAX_CANDLES:
            raise _bad(
                f"granularity too small for the requested time range. Count exceeds {MAX_CANDLES}"
            )
        bars = aggregate(self.view.tape.bars(sym), width)
        keep = np.ones(len(bars), bool)
        if start is not None:
            keep &= bars["start"] + width > start
        if end is not None:
            keep &= bars["start"] <= end
        bars = bars[keep][-MAX_CANDLES:][::-1]
        unit = self.view.unit(sym)
        return [
            [
                int(b["start"]) // NS_PER_S,
                float(b["low"]),
                float(b["high"]),
                float(b["open"]),
                float(b["close"]),
                round(int(b["volume"]) * unit, 10),
            ]
            for b in bars
        ]

    def _day(self, sym: int, now_ns: int) -> dict[str, Any]:
        bars = self.view.tape.bars(sym)
        cutoff = now_ns - DAY_NS
        bars = bars[bars["start"] >= cutoff - cutoff % NS_PER_MIN]
        last = float(self.view.latest()[sym]["last"])
        if not len(bars):
            return {"open": last, "high": last, "low": last, "volume": 0}
        return {
            "open": float(bars["open"][0]),
            "high": float(bars["high"].max()),
            "low": float(bars["low"].min()),
            "volume": int(bars["volume"].sum()),
        }

    def stats(self, sym: int, now_ns: int) -> dict[str, Any]:
        day, view = self._day(sym, now_ns), self.view
        rec = view.latest()[sym]
        month = self.view.tape.bars(sym)  # the tape holds at most the last ~1000 minutes
        return {
            "open": view.price(sym, day["open"]),
            "high": view.price(sym, day["high"]),
            "low": view.price(sym, day["low"]),
            "last": view.price(sym, rec["last"]),
            "volume": view.size(sym, day["volume"]),
            "volume_30day": view.size(sym, int(month["volume"].sum())),
            "rfq_volume_24hour": "0",
            "rfq_volume_30day": "0",
            "conversions_volume_24hour": "0",
            "conversions_volume_30day": "0",
        }

    def book(self, sym: int, params: dict[str, str], now_ns: int) -> dict[str, Any]:
        """Level 1 (the best bid and ask) or 2 (every level) of the product's book, each level
        `[price, size, num_orders]` (orders are not simulated: 1), `sequence` the book's. A
        server without books has the top of the book only, from the latest tick."""
        level = params.get("level", "1")
        if level not in ("1", "2"):
            raise _bad("Invalid level: this book has levels 1 and 2 (level 3 lists orders)")
        view, books = self.view, self.view.books
        if books is None:
            rec = view.latest()[sym]
            bids = [(rec["bid"], int(rec["bid_size"]))] if rec["bid_size"] else []
            asks = [(rec["ask"], int(rec["ask_size"]))] if rec["ask_size"] else []
            sequence = int(rec["seq"])
        else:
            (bid_units, ask_units), sequence, _ = books.ladder(sym, books.depth)
            if not books.ready:  # read anyway: that starts a gateway's mirror
                raise RestError(503, {"message": BOOKS_LOADING}, RETRY_SOON)
            scale = 10.0 ** view.price_decimals[sym]
            bids = [(u / scale, size) for u, size in bid_units]
            asks = [(u / scale, size) for u, size in ask_units]
        if level == "1":
            bids, asks = bids[:1], asks[:1]
        return {
            "bids": [[view.price(sym, p), view.size(sym, size), 1] for p, size in bids],
            "asks": [[view.price(sym, p), view.size(sym, size), 1] for p, size in asks],
            "sequence": sequence,
            "auction_mode": False,
            "auction": None,
            "time": self._clock.us(now_ns),
        }


def _positive(params: dict[str, str], name: str, default: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) < 1:
        raise _bad(f"Invalid {name}: a whole number from 1, got {text[:40]!r}")
    return int(text)


def _time(params: dict[str, str], name: str) -> int | None:
    """An ISO 8601 time or Unix seconds, as Coinbase takes them, in ns."""
    text = params.get(name)
    if not text:
        return None
    try:
        if len(text) > 40:  # longer than any time: a number this long is no time either
            raise ValueError(text)
        if text.isascii() and text.replace(".", "", 1).isdigit():
            return int(float(text) * NS_PER_S)
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)  # naive: UTC, as Coinbase reads it
        return int(at.timestamp() * NS_PER_S)
    except (ValueError, OverflowError):
        raise _bad(f"Invalid {name}: an ISO 8601 time or Unix seconds, got {text[:40]!r}") from None
