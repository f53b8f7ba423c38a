"""The watchlist's columns: what each shows (`row_cells`), how wide (`layout`), the row order.

Plain data and numpy over `MarketState`, shared by the table (`table`), the app's sort and filter
and the palette's sort commands. Imports numpy and Rich styles; never Textual, trio or the feed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.style import Style

from . import fmt
from .state import MarketState


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    width: int
    right: bool = True


COLUMNS: tuple[Column, ...] = (
    Column("symbol", "Symbol", 6, right=False),
    Column("name", "Name", 0, right=False),  # takes what is left (dropped when too narrow)
    Column("last", "Last", 9),
    Column("chg", "Chg", 7),
    Column("chg_pct", "Chg%", 7),
    Column("bid", "Bid", 9),
    Column("ask", "Ask", 9),
    Column("spread", "Sprd", 5),
    Column("imb", "Imb", 4),  # optional: bid size / (bid + ask size) at the best level, in %
    Column("size", "Size", 5),  # 7 with fractional sizes (`layout`): 0.00210 BTC
    Column("volume", "Volume", 7),
    Column("rate", "Upd/s", 5),
    Column("age", "Age", 6),
    Column("trend", "Trend", 16, right=False),
)
OPTIONAL = frozenset({"imb"})
"""Columns shown only when asked for (`layout(width, shown)`): Imb, with order books on."""
SORT_KEYS: tuple[str, ...] = tuple(c.key for c in COLUMNS)
TITLES = {c.key: c.title for c in COLUMNS}
_NAME_MIN, _NAME_MAX, _TREND_MAX = 8, 22, 40


def sort_values(state: MarketState, ids: NDArray[np.intp], key: str) -> NDArray[Any]:
    """The value each row sorts by (rows without data sort last separately)."""
    t = state.tick[ids]
    ref = state.ref_price[ids]
    values: Any
    if key == "symbol":
        values = state.symbols[ids]
    elif key == "name":
        values = np.array([s.lower() for s in state.names[ids]], dtype=object)
    elif key in ("chg", "chg_pct", "trend"):
        values = t["last"] - ref
        if key != "chg":
            with np.errstate(divide="ignore", invalid="ignore"):
                values = np.where(ref > 0, values / ref, 0.0)
    elif key == "spread":
        values = t["ask"] - t["bid"]
    elif key == "imb":
        values = imbalance(t["bid_size"], t["ask_size"])
    elif key == "rate":
        values = state.rate[ids]
    elif key == "age":
        values = -t["ts"].astype(np.float64)  # youngest first
    else:
        field = {"size": "last_size"}.get(key, key)
        values = t[field].astype(np.float64)
        if key in ("size", "volume"):  # as quantities of the asset, not counts of lots
            values = values * state.size_unit[ids]
    return np.asarray(values)


def ordered(
    state: MarketState, ids: Sequence[int], key: str, reverse: bool, query: str = ""
) -> list[int]:
    """Watchlist ids filtered by `query` (symbol or name, case-insensitive) and sorted by `key`."""
    ids_arr = np.asarray(list(ids), np.intp)
    if query:
        q = query.lower()
        ids_arr = np.array(
            [i for i in ids_arr if q in state.symbols[i].lower() or q in state.names[i].lower()],
            np.intp,
        )
    if ids_arr.size == 0:
        return []
    values = sort_values(state, ids_arr, key)
    order = np.argsort(values, kind="stable")
    if reverse:
        order = order[::-1]
    out = ids_arr[order]
    if key not in ("symbol", "name"):  # rows with no data yet go to the bottom either way
        have = state.have[out]
        out = np.concatenate([out[have], out[~have]])
    return [int(i) for i in out]


def imbalance(bid_size: NDArray[Any], ask_size: NDArray[Any]) -> NDArray[np.float64]:
    """Bid size / (bid + ask size) at the best level, 0 to 1 (0.5 where both are 0)."""
    bid, ask = bid_size.astype(np.float64), ask_size.astype(np.float64)
    total = bid + ask
    out: NDArray[np.float64] = np.divide(bid, total, out=np.full(bid.shape, 0.5), where=total > 0)
    return out


@functools.lru_cache(maxsize=64)  # per frame and per row: computed once per width and market
def layout(
    width: int,
    fractional: bool = False,
    symbol_w: int = 6,
    shown: frozenset[str] = frozenset(),
) -> list[tuple[Column, int, int]]:
    """(column, x, width) for this width: Name and Trend share the room that is left; optional
    columns only if in `shown`. Cached: callers read the list, never change it. With
    `fractional` sizes (crypto lots), Size is as wide as Volume: 0.00210 (BTC) in full; Symbol
    is `symbol_w` wide (at least 6, at most 10: BTC-USD in full)."""
    avail = width - 1  # the scrollbar
    columns = [c for c in COLUMNS if c.key not in OPTIONAL or c.key in shown]
    widths = {c.key: c.width for c in columns}
    widths["symbol"] = max(widths["symbol"], min(10, symbol_w))
    if fractional:
        widths["size"] = widths["volume"]
    used = sum(w + 1 for k, w in widths.items() if k != "name")
    spare = avail - used - 1
    if spare >= _NAME_MIN:
        widths["name"] = min(_NAME_MAX, spare)
        spare -= widths["name"] + 1
    else:
        widths["name"] = 0
    if spare > 0:
        widths["trend"] = min(_TREND_MAX, widths["trend"] + spare)
    elif spare < 0:  # narrow terminal: the sparkline shrinks first, then columns go
        widths["trend"] = max(0, widths["trend"] + spare)
    out: list[tuple[Column, int, int]] = []
    x = 0
    for col in columns:
        w = widths[col.key]
        if w <= 0 or x + w > avail:
            continue
        out.append((col, x, w))
        x += w + 1
    return out


def row_cells(
    state: MarketState,
    sid: int,
    have: bool,
    names: tuple[str, str],
    styles: dict[str | None, Style],
    flash: int,
    age: str,
) -> dict[str, tuple[str, Style]]:
    """Each column's text and style for one row; the trend column is the table's (sparklines)."""
    muted = styles["watch-table--muted"]
    # One conversion to Python numbers (numpy scalar field access costs ~1 us each).
    _ts, _seq, bid, ask, last, volume, _sym, _flags, bs, as_, last_size = state.tick[sid].item()
    ref = float(state.ref_price[sid])
    dec = int(state.decimals[sid])
    cells: dict[str, tuple[str, Style]] = {
        "symbol": (names[0], styles["watch-table--symbol"]),
        "name": (names[1], muted),
    }
    if have:
        chg = last - ref if ref else math.nan
        up_down = (
            styles["watch-table--up"]
            if chg > 0
            else styles["watch-table--down"]
            if chg < 0
            else muted
        )
        last_style = (
            styles["watch-table--flash-up"]
            if flash > 0
            else styles["watch-table--flash-down"]
            if flash < 0
            else up_down
        )
        plain = styles[None]
        cells.update(
            last=(fmt.price(last, dec), last_style),
            chg=(fmt.signed(chg, dec), up_down),
            chg_pct=(fmt.pct(chg / ref * 100 if ref else math.nan), up_down),
            bid=(fmt.price(bid, dec), plain),
            ask=(fmt.price(ask, dec), plain),
            spread=(f"{ask - bid:.{dec}f}", muted),
            imb=(f"{bs / (bs + as_) * 100:.0f}%" if bs + as_ else "-", muted),
            size=(fmt.size(state.qty, sid, last_size, 7), plain),
            volume=(fmt.size(state.qty, sid, volume, 7), plain),
            rate=(fmt.rate(float(state.rate[sid])), muted),
            age=(age, muted),
        )
    else:
        cells["last"] = ("waiting", muted)
    return cells
