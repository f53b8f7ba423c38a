"""What a replay file reads into: a tickwire file's records (`Own`), a quotes/trades CSV's rows
(`Raw`), and the column names real data goes by. Plain data, numpy only; shared by the readers
(`_replay_files`, `_replay_csv`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .ticks import TICK_DTYPE, TickBatch
from .universe import Universe

# The canonical column of real data, and the names it goes by in common formats.
ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("ts", "timestamp", "time", "ts_event", "sip_timestamp", "datetime", "t"),
    "symbol": ("symbol", "sym", "ticker", "instrument"),
    "bid": ("bid", "bid_price", "bp", "bid_px"),
    "ask": ("ask", "ask_price", "ap", "ask_px"),
    "bid_size": ("bid_size", "bid_amount", "bs", "bid_sz", "bid_qty"),
    "ask_size": ("ask_size", "ask_amount", "as", "ask_sz", "ask_qty"),
    "price": ("price", "trade_price", "px"),
    "size": ("size", "amount", "qty", "quantity", "trade_size", "sz"),
    "side": ("side", "aggressor_side", "taker_side"),
}
OWN_CSV = ["symbol", *(TICK_DTYPE.names or ())]  # the header of our own .csv


@dataclass
class Own:
    """Records of a tickwire file; `sym` indexes `names`."""

    names: list[str]
    records: TickBatch
    universe: Universe | None
    # What one size unit is worth, by `names` index, when the file says so without a universe
    # (our CSV with decimal quantities); None: the universe's, or whole units.
    size_unit: NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return len(self.records)


@dataclass
class Raw:
    """Rows of a quotes/trades CSV, absent values NaN; `sym` indexes `names`."""

    names: list[str]
    sym: NDArray[np.intp]
    ts: NDArray[np.int64]
    cols: dict[str, NDArray[np.float64]]  # bid, ask, bid_size, ask_size, price, size
    side: NDArray[np.int8]  # +1 buy, -1 sell, 0 unknown

    def __len__(self) -> int:
        return len(self.ts)
