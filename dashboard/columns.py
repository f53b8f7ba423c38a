"""The watchlist's columns and row order: `COLUMNS`, `sort_values` and `ordered`.

Plain data and numpy over `MarketState`, shared by the table (`table`), the app's sort and filter
and the palette's sort commands. Imports numpy only; never Textual, trio or the feed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

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
    Column("size", "Size", 5),
    Column("volume", "Volume", 7),
    Column("rate", "Upd/s", 5),
    Column("age", "Age", 6),
    Column("trend", "Trend", 16, right=False),
)
SORT_KEYS: tuple[str, ...] = tuple(c.key for c in COLUMNS)
TITLES = {c.key: c.title for c in COLUMNS}


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
    elif key == "rate":
        values = state.rate[ids]
    elif key == "age":
        values = -t["ts"].astype(np.float64)  # youngest first
    else:
        field = {"size": "last_size"}.get(key, key)
        values = t[field].astype(np.float64)
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
