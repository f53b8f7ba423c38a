"""Coinbase's Advanced Trade public market data (what ccxt's `coinbase` reads) under
`/coinbase/api/v3/brokerage/` and `/coinbase/v2/`, sans-IO.

`market/products` (spot: every universe symbol; `product_type=FUTURE`: none), `market/products/
{id}`, `.../ticker` (recent trades, newest first, with the best bid and ask), `.../candles`
(`granularity` ONE_MINUTE to ONE_DAY, `start`/`end` in Unix seconds, at most 350, newest first),
`market/product_book` (the top of the book), `time`; and the v2 reference data ccxt loads with
the markets: `currencies` (the quote currencies), `currencies/crypto` (the base assets) and
`exchange-rates`. Same market view, decimals and trade ids (`seq`) as the Exchange API beside it;
errors are Advanced Trade's `{"error", "error_details", "message"}`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tickwire.feed.venues._common import NS_PER_S, Clock
from tickwire.feed.venues._rest_common import (
    MarketView,
    RestError,
    RestRequest,
    RestResponse,
    json_response,
)
from tickwire.feed.venues._rest_tape import NS_PER_MIN, aggregate

GRANULARITIES = {
    "ONE_MINUTE": 1,
    "FIVE_MINUTE": 5,
    "FIFTEEN_MINUTE": 15,
    "THIRTY_MINUTE": 30,
    "ONE_HOUR": 60,
    "TWO_HOUR": 120,
    "SIX_HOUR": 360,
    "ONE_DAY": 1440,
}
MAX_CANDLES = 350
MAX_TRADES = 1000
DAY_NS = 1440 * NS_PER_MIN


def _error(status: int, kind: str, message: str) -> RestError:
    return RestError(status, {"error": kind, "error_details": message, "message": message})


def _not_found(what: str) -> RestError:
    return _error(404, "NOT_FOUND", what)


def _bad(message: str) -> RestError:
    return _error(400, "INVALID_ARGUMENT", message)


class CoinbaseAdvancedRest:
    """The Advanced Trade public handlers of one server."""

    def __init__(self, view: MarketView) -> None:
        self.view = view
        self.ids = {s: i for i, s in enumerate(view.universe.symbols)}
        self._clock = Clock()

    def handle(self, req: RestRequest, now_ns: int) -> RestResponse:
        parts = req.path.removeprefix("/coinbase/").strip("/").split("/")
        try:
            return json_response(200, self._dispatch(parts, req.params(), now_ns))
        except RestError as exc:
            return exc.response()

    def _dispatch(self, parts: list[str], params: dict[str, str], now_ns: int) -> Any:
        if parts[:1] == ["v2"]:
            return self._v2(parts[1:], now_ns)
        if parts[:3] != ["api", "v3", "brokerage"]:
            raise _not_found("unknown endpoint")
        rest = parts[3:]
        if rest == ["time"]:
            iso = self._clock.us(now_ns)
            return {
                "iso": iso[:-4] + "Z",
                "epochSeconds": str(now_ns // NS_PER_S),
                "epochMillis": str(now_ns // 1_000_000),
            }
        if rest[:1] != ["market"]:
            raise _not_found("unknown endpoint")
        rest = rest[1:]
        if rest == ["products"]:
            if params.get("product_type", "SPOT").upper() != "SPOT":
                return {"products": [], "num_products": 0}
            products = [self._product(i, now_ns) for i in range(len(self.ids))]
            return {"products": products, "num_products": len(products)}
        if rest == ["product_book"]:
            return self._book(self._sym(params.get("product_id", "")), now_ns)
        if len(rest) >= 2 and rest[0] == "products":
            sym = self._sym(rest[1])
            if len(rest) == 2:
                return self._product(sym, now_ns)
            if rest[2:] == ["ticker"]:
                return self._ticker(sym, params)
            if rest[2:] == ["candles"]:
                return self._candles(sym, params)
        raise _not_found("unknown endpoint")

    def _sym(self, product_id: str) -> int:
        sym = self.ids.get(product_id)
        if sym is None:
            raise _not_found(f"ProductID {product_id[:40]!r} not found")
        return sym

    # ------------------------------------------------------------------ reference data

    def _v2(self, parts: list[str], now_ns: int) -> dict[str, Any]:
        u = self.view.universe
        if parts == ["currencies"]:
            quotes = dict.fromkeys(u.quotes)
            return {"data": [{"id": q, "name": q, "min_size": "0.01"} for q in quotes]}
        if parts == ["currencies", "crypto"]:
            bases = {b: i for i, b in reversed(list(enumerate(u.bases)))}
            data = [
                {
                    "asset_id": f"00000000-0000-4000-8000-{i:012x}",
                    "code": b,
                    "name": u.names[i],
                    "color": "#000000",
                    "sort_index": k,
                    "exponent": self.view.size_decimals[i],
                    "type": "crypto",
                    "address_regex": "",
                }
                for k, (b, i) in enumerate(bases.items())
                if u.kinds[i] == "crypto"
            ]
            return {"data": data}
        if parts == ["exchange-rates"]:
            latest, rates = self.view.latest(), {"USD": "1"}
            for i, (base, quote) in enumerate(zip(u.bases, u.quotes, strict=True)):
                last = float(latest[i]["last"])
                if quote == "USD" and last > 0:
                    rates.setdefault(base, f"{1 / last:.12g}")
            return {"data": {"currency": "USD", "rates": rates}}
        raise _not_found("unknown endpoint")

    def _product(self, i: int, now_ns: int) -> dict[str, Any]:
        u, view = self.view.universe, self.view
        rec = view.latest()[i]
        day = _day(view.tape.bars(i), now_ns)
        last = float(rec["last"])
        open_ = float(day["open"][0]) if len(day) else last
        volume = int(day["volume"].sum()) if len(day) else 0
        tick = view.price(i, float(u.tick_size[i]))
        return {
            "product_id": u.symbols[i],
            "price": view.price(i, last),
            "price_percentage_change_24h": f"{100 * (last - open_) / open_ if open_ else 0:.8f}",
            "volume_24h": view.size(i, volume),
            "volume_percentage_change_24h": "0",
            "base_increment": view.size(i, 1),
            "quote_increment": tick,
            "quote_min_size": "1",
            "quote_max_size": "10000000",
            "base_min_size": view.size(i, 1),
            "base_max_size": "1000000",
            "base_name": u.names[i],
            "quote_name": u.quotes[i],
            "watched": False,
            "is_disabled": False,
            "new": False,
            "status": "online",
            "cancel_only": False,
            "limit_only": False,
            "post_only": False,
            "trading_disabled": False,
            "auction_mode": False,
            "product_type": "SPOT",
            "quote_currency_id": u.quotes[i],
            "base_currency_id": u.bases[i],
            "mid_market_price": view.price(i, (float(rec["bid"]) + float(rec["ask"])) / 2),
            "alias": "",
            "alias_to": [],
            "base_display_symbol": u.bases[i],
            "quote_display_symbol": u.quotes[i],
            "view_only": False,
            "price_increment": tick,
            "display_name": u.symbols[i],
            "product_venue": "CBE",
            "approximate_quote_24h_volume": f"{float(day['notional'].sum()) * view.unit(i):.2f}",
        }

    # ------------------------------------------------------------------ market data

    def _ticker(self, sym: int, params: dict[str, str]) -> dict[str, Any]:
        limit = _number(params, "limit", 100)
        start, end = _number(params, "start", 0), _number(params, "end", 0)
        t = self.view.tape.recent_trades(sym)
        if start:
            t = t[t["ts"] >= start * NS_PER_S]
        if end:
            t = t[t["ts"] <= end * NS_PER_S]
        t = t[::-1][: min(limit, MAX_TRADES)]  # newest first
        rec, view, name = self.view.latest()[sym], self.view, self.view.universe.symbols[sym]
        trades = [
            {
                "trade_id": str(int(r["id"])),
                "product_id": name,
                "price": view.price(sym, r["price"]),
                "size": view.size(sym, r["size"]),
                "time": self._clock.us(int(r["ts"])),
                "side": "BUY" if r["buy"] else "SELL",  # the taker's
                "exchange": "tickwire",
            }
            for r in t
        ]
        return {
            "trades": trades,
            "best_bid": view.price(sym, rec["bid"]),
            "best_ask": view.price(sym, rec["ask"]),
        }

    def _candles(self, sym: int, params: dict[str, str]) -> dict[str, Any]:
        minutes = GRANULARITIES.get(params.get("granularity", ""))
        if minutes is None:
            raise _bad(f"granularity must be one of {', '.join(GRANULARITIES)}")
        width = minutes * NS_PER_MIN
        start, end = _number(params, "start", 0), _number(params, "end", 0)
        bars = aggregate(self.view.tape.bars(sym), width)
        keep = np.ones(len(bars), bool)
        if start:
            keep &= bars["start"] + width > start * NS_PER_S
        if end:
            keep &= bars["start"] <= end * NS_PER_S
        limit = min(_number(params, "limit", MAX_CANDLES), MAX_CANDLES)
        bars = bars[keep][-limit:][::-1]
        view = self.view
        candles = [
            {
                "start": str(int(b["start"]) // NS_PER_S),
                "low": view.price(sym, b["low"]),
                "high": view.price(sym, b["high"]),
                "open": view.price(sym, b["open"]),
                "close": view.price(sym, b["close"]),
                "volume": view.size(sym, b["volume"]),
            }
            for b in bars
        ]
        return {"candles": candles}

    def _book(self, sym: int, now_ns: int) -> dict[str, Any]:
        rec, view = self.view.latest()[sym], self.view
        bid, ask = float(rec["bid"]), float(rec["ask"])
        side = ("price", "size")
        bids = [
            dict(zip(side, (view.price(sym, bid), view.size(sym, rec["bid_size"])), strict=True))
        ]
        asks = [
            dict(zip(side, (view.price(sym, ask), view.size(sym, rec["ask_size"])), strict=True))
        ]
        mid = (bid + ask) / 2
        return {
            "pricebook": {
                "product_id": view.universe.symbols[sym],
                "bids": bids if rec["bid_size"] else [],
                "asks": asks if rec["ask_size"] else [],
                "time": self._clock.us(now_ns),
            },
            "last": view.price(sym, rec["last"]),
            "mid_market": f"{mid:.10g}",
            "spread_bps": f"{(ask - bid) / mid * 1e4 if mid else 0:.4f}",
            "spread_absolute": view.price(sym, ask - bid),
        }


def _day(bars: Any, now_ns: int) -> Any:
    cutoff = now_ns - DAY_NS
    return bars[bars["start"] >= cutoff - cutoff % NS_PER_MIN]


def _number(params: dict[str, str], name: str, default: int) -> int:
    text = params.get(name, "")
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise _bad(f"{name} must be a whole number, got {text[:40]!r}")
    return int(text)
