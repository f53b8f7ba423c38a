"""What the feed writes and the screen reads: the latest tick and recent history per symbol.

A struct of numpy arrays indexed by symbol id (the `sym` field of every tick). `apply()` is the
only writer on the ingest side and is vectorised over a batch; it never touches Textual. The
render timer reads it and clears `dirty`. Imports numpy and the tick type only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.quantity import Quantities
from tickwire.simulators.ticks import TICK_DTYPE

from . import fmt

SPARK_BUCKET_S = 1.0  # one sparkline sample per second: the trend of the last minute or two
SPARK_SLOTS = 120
HISTORY_SLOTS = 512  # per-update bid/ask/last for the detail chart
FLASH_S = 0.35


@dataclass(frozen=True, slots=True)
class SymbolRef:
    symbol: str
    id: int
    name: str
    sector: str
    price: float  # reference price (previous close): the base of change and change %
    tick_size: float


class MarketState:
    """Latest tick, a time-bucketed ring of mids, a per-update ring of quotes, flashes, counters."""

    def __init__(self, refs: Sequence[dict[str, Any]], now_s: float = 0.0) -> None:
        self.refs = [
            SymbolRef(
                r["symbol"],
                int(r["id"]),
                str(r.get("name", r["symbol"])),
                str(r.get("sector", "")),
                float(r.get("price", 0.0)),
                float(r.get("tick_size", 0.01)),
            )
            for r in sorted(refs, key=lambda r: int(r["id"]))
        ]
        n = max((r.id for r in self.refs), default=-1) + 1
        self.n = n
        self.index = {r.symbol: r.id for r in self.refs}
        self.symbols = np.array([""] * n, dtype=object)
        self.names = np.array([""] * n, dtype=object)
        self.ref_price = np.zeros(n)
        self.decimals = np.full(n, 2, np.int64)
        self.refs_by_id = {r.id: r for r in self.refs}
        # Sizes arrive as counts of each symbol's size unit (1 share, 0.00001 BTC): shown as the
        # asset's quantity by `fmt.size`, sorted by it through `size_unit`.
        self.qty = Quantities(refs)
        self.size_unit = np.array([self.qty.unit(i) for i in range(n)])
        self.fractional = not all(self.qty.whole(i) for i in range(n))  # e.g. crypto lots
        # What the watchlist's layout needs of the market: wide sizes, the longest symbol.
        self.layout_hints = (self.fractional, max((len(r.symbol) for r in self.refs), default=0))
        for r in self.refs:
            self.symbols[r.id], self.names[r.id], self.ref_price[r.id] = r.symbol, r.name, r.price
            self.decimals[r.id] = fmt.decimals(r.tick_size)
        self.tick = np.zeros(n, TICK_DTYPE)
        self.have = np.zeros(n, np.bool_)
        self.dirty = np.zeros(n, np.bool_)
        self.updates = np.zeros(n, np.int64)  # records received
        self.jumps = np.zeros(n, np.int64)  # updates folded into the ones received (seq jumps)
        self.rate = np.zeros(n)  # records received per second, over the last second
        self.flash_dir = np.zeros(n, np.int8)  # +1 uptick, -1 downtick (last trade price)
        self.flash_until = np.zeros(n)
        self.halted: dict[int, tuple[str, int]] = {}  # sid -> (reason, event time ns) while halted
        # Sparkline: one shared head, so rolling a bucket is one array write for every symbol.
        self.spark = np.full((n, SPARK_SLOTS), np.nan)
        self.spark_head = 0
        self._bucket = int(now_s // SPARK_BUCKET_S)
        # Detail chart: per-symbol heads (each symbol updates at its own pace).
        self.hist = np.full((n, HISTORY_SLOTS, 3), np.nan)  # bid, ask, last
        self.hist_vol = np.zeros((n, HISTORY_SLOTS))  # volume traded by that update
        self.hist_head = np.zeros(n, np.intp)
        self.hist_len = np.zeros(n, np.intp)
        self.total_updates = 0
        self._rate_mark = self.updates.copy()
        self._rate_t = now_s

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.index

    def apply(self, ticks: NDArray[np.void], now_s: float) -> None:
        """Take one batch of TICK_DTYPE records (any symbols, any order)."""
        if len(ticks) == 0:
            return
        sym = ticks["sym"].astype(np.intp)
        keep = sym < self.n
        if not keep.all():
            ticks, sym = ticks[keep], sym[keep]
        if len(np.unique(sym)) != len(sym):  # several updates of one symbol: apply in order
            for i in range(len(sym)):
                self.apply(ticks[i : i + 1], now_s)
            return
        had = self.have[sym]
        prev = self.tick[sym]
        last = ticks["last"]
        up = had & (last > prev["last"])
        down = had & (last < prev["last"])
        moved = up | down
        self.flash_dir[sym[up]] = 1
        self.flash_dir[sym[down]] = -1
        self.flash_until[sym[moved]] = now_s + FLASH_S
        seq, pseq = ticks["seq"].astype(np.int64), prev["seq"].astype(np.int64)
        self.jumps[sym] += np.where(had & (seq > pseq + 1), seq - pseq - 1, 0)
        vol = np.where(had, ticks["volume"].astype(np.float64) - prev["volume"], 0.0)
        self.tick[sym] = ticks
        self.have[sym] = True
        self.dirty[sym] = True
        self.updates[sym] += 1
        self.total_updates += len(sym)
        mid = (ticks["bid"] + ticks["ask"]) / 2
        self.spark[sym, self.spark_head] = mid
        h = self.hist_head[sym]
        self.hist[sym, h, 0] = ticks["bid"]
        self.hist[sym, h, 1] = ticks["ask"]
        self.hist[sym, h, 2] = last
        self.hist_vol[sym, h] = np.maximum(vol, 0.0)
        self.hist_head[sym] = (h + 1) % HISTORY_SLOTS
        self.hist_len[sym] = np.minimum(self.hist_len[sym] + 1, HISTORY_SLOTS)

    def advance(self, now_s: float) -> bool:
        """Roll the sparkline bucket and the per-second rates; True if every row changed."""
        rolled = False
        bucket = int(now_s // SPARK_BUCKET_S)
        if bucket > self._bucket:
            steps = min(bucket - self._bucket, SPARK_SLOTS)
            current = self.spark[:, self.spark_head].copy()
            for _ in range(steps):  # carry the last mid forward into the new buckets
                self.spark_head = (self.spark_head + 1) % SPARK_SLOTS
                self.spark[:, self.spark_head] = current
            self._bucket = bucket
            rolled = True
        dt = now_s - self._rate_t
        if dt >= 1.0:
            self.rate = (self.updates - self._rate_mark) / dt
            self._rate_mark = self.updates.copy()
            self._rate_t = now_s
            rolled = True
        if rolled:
            self.dirty[self.have] = True
        return rolled

    def take_dirty(self) -> NDArray[np.intp]:
        ids = np.flatnonzero(self.dirty)
        self.dirty[ids] = False
        return ids

    def sparkline_values(self, sid: int, width: int) -> NDArray[np.float64]:
        """The last `width` buckets of mids for `sid`, oldest first (NaN where unknown)."""
        idx = (self.spark_head - np.arange(width - 1, -1, -1)) % SPARK_SLOTS
        values: NDArray[np.float64] = self.spark[sid, idx]
        return values

    def history(self, sid: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-update (bid, ask, last) rows and traded volume for `sid`, oldest first."""
        n = int(self.hist_len[sid])
        idx = (self.hist_head[sid] - np.arange(n, 0, -1)) % HISTORY_SLOTS
        return self.hist[sid, idx], self.hist_vol[sid, idx]

    def flashing(self, sid: int, now_s: float) -> int:
        return int(self.flash_dir[sid]) if self.flash_until[sid] > now_s else 0

    def expired_flashes(self, since_s: float, now_s: float) -> NDArray[np.intp]:
        """Symbols whose flash ended in (since_s, now_s]: their rows need one more repaint."""
        return np.flatnonzero((self.flash_until > since_s) & (self.flash_until <= now_s))

    def set_trading(self, symbol: str, halted: bool, reason: str, ts: int) -> None:
        """A symbol's trading status (the feed's `TradingStatus`): halted since `ts`, or not."""
        sid = self.index.get(symbol)
        if sid is None:
            return
        if halted:
            self.halted[sid] = (reason, ts)
        else:
            self.halted.pop(sid, None)
        self.dirty[sid] = True

    def reset_symbols(self, sids: Sequence[int]) -> None:
        """Forget a symbol (it left the watchlist), so a re-add starts clean."""
        ids = np.asarray(list(sids), np.intp)
        self.have[ids] = False
        self.spark[ids] = np.nan
        self.hist[ids] = np.nan
        self.hist_len[ids] = 0
        self.updates[ids] = 0
        self.jumps[ids] = 0
        self.rate[ids] = 0
        self._rate_mark[ids] = 0
        self.flash_until[ids] = 0
        for sid in ids.tolist():
            self.halted.pop(sid, None)
