"""Binance's larger REST objects, built from the market view: a symbol of `exchangeInfo` and the
24 h ticker with the per-symbol statistics it reads (`window_stats`). Sans-IO, numpy only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.venues._rest_common import MarketView
from tickwire.feed.venues._sizes import BINANCE_PLACES

NS_PER_MS = 1_000_000
DAY_NS = 86_400_000_000_000


def px(value: float) -> str:
    """A price or a quote amount as Binance writes them: 8 decimals."""
    return f"{value:.8f}"


def qty(view: MarketView, sym: int, units: int) -> str:
    """A size as Binance writes it: the asset's quantity with 8 decimals, as its streams."""
    return view.size(sym, units, BINANCE_PLACES)


def symbol_info(view: MarketView, name: str, i: int) -> dict[str, Any]:
    """One symbol of `exchangeInfo`: its assets and filters from the universe."""
    u = view.universe
    tick, unit = float(u.tick_size[i]), view.unit(i)
    step = px(unit)  # a size is a whole number of the universe's size units
    return {
        "symbol": name,
        "status": "TRADING",
        "baseAsset": u.bases[i],
        "baseAssetPrecision": 8,
        "quoteAsset": u.quotes[i],
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": px(tick),
                "maxPrice": "1000000.00000000",
                "tickSize": px(tick),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": step,
                "maxQty": "9000000.00000000",
                "stepSize": step,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": "1.00000000",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE"],
    }


def ticker(
    view: MarketView,
    name: str,
    sym: int,
    rec: Any,
    stats: NDArray[np.void],
    now_ns: int,
    mini: bool,
) -> dict[str, Any]:
    st, last = stats[sym], float(rec["last"])
    traded = int(st["count"]) > 0
    open_ = float(st["open"]) if traded else last
    high = float(st["high"]) if traded else last
    low = float(st["low"]) if traded else last
    volume, notional = int(st["volume"]), float(st["notional"]) * view.unit(sym)
    out: dict[str, Any] = {
        "symbol": name,
        "openPrice": px(open_),
        "highPrice": px(high),
        "lowPrice": px(low),
        "lastPrice": px(last),
        "volume": qty(view, sym, volume),
        "quoteVolume": px(notional),
        "openTime": (now_ns - DAY_NS) // NS_PER_MS,
        "closeTime": now_ns // NS_PER_MS,
        "firstId": int(st["first_id"]) if traded else -1,
        "lastId": int(st["last_id"]) if traded else -1,
        "count": int(st["count"]),
    }
    if mini:
        return out
    change = last - open_
    vwap = notional / (volume * view.unit(sym)) if volume else last
    return {
        "symbol": out.pop("symbol"),
        "priceChange": px(change),
        "priceChangePercent": f"{100 * change / open_ if open_ else 0.0:.3f}",
        "weightedAvgPrice": px(vwap),
        "prevClosePrice": px(open_),
        "lastPrice": out.pop("lastPrice"),
        "lastQty": qty(view, sym, rec["last_size"]),
        "bidPrice": px(rec["bid"]),
        "bidQty": qty(view, sym, rec["bid_size"]),
        "askPrice": px(rec["ask"]),
        "askQty": qty(view, sym, rec["ask_size"]),
        **out,
    }


def window_stats(bars: NDArray[np.void], n: int) -> NDArray[np.void]:
    """Per symbol, the bars (oldest first) merged into one: open, high, low, sums, ids."""
    out = np.zeros(n, bars.dtype)
    if not len(bars):
        return out
    sym = bars["sym"].astype(np.intp)
    ids, first = np.unique(sym, return_index=True)
    _, rev = np.unique(sym[::-1], return_index=True)
    last = len(bars) - 1 - rev
    out["open"][ids], out["first_id"][ids] = bars["open"][first], bars["first_id"][first]
    out["close"][ids], out["last_id"][ids] = bars["close"][last], bars["last_id"][last]
    out["high"][:] = -math.inf
    out["low"][:] = math.inf
    np.maximum.at(out["high"], sym, bars["high"])
    np.minimum.at(out["low"], sym, bars["low"])
    for f in ("volume", "notional", "buy_volume", "buy_notional", "count"):
        np.add.at(out[f], sym, bars[f])
    return out
