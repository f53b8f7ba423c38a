"""What the venues' REST APIs remember of the market: recent trades and one-minute bars.

`RestTape.publish(batch)` sees every batch the hub publishes, in order, and only keeps a
reference to it (the market never writes a published batch again): the batches are folded in
`flush()`, every `FLUSH_RECORDS` records or before a read, with a few numpy operations for all
of them (no loop over records or symbols), so the market's step pays almost nothing per batch.
Folded, they are the quotes (every record's bid and ask) in a ring of `QUOTE_DTYPE` records,
the trades in a ring of `TRADE_DTYPE` records, the open minute's bar of every
symbol that traded in it, and the closed bars in a ring of `BAR_DTYPE` records. A request reads
them with `recent_trades(sym)` and `bars(sym)` (the closed bars then the open one, oldest
first), each a scan of one ring: the work per request is bounded by the rings' capacity,
whatever the market did.

A trade's id is its tick record's `seq` (unique and increasing per symbol, not consecutive), so
ids mean the same thing after a restart of any reader. Sizes stay in the universe's size units
(integers); the handlers scale them. Imports numpy only: no trio, no clock (time is the records').
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tickwire.simulators.ticks import TICK_DTYPE, TickBatch, TickFlag

NS_PER_MIN = 60_000_000_000
# Ring sizes: about 1000 trades, quotes and minutes a symbol (what the venues' limits ask for at
# most), at least 2**16 records and at most 2**20 trades (33 MB), 2**19 quotes (18 MB) and
# 2**18 bars (25 MB), whatever the universe.
PER_SYMBOL = 1000
MIN_RING = 1 << 16
MAX_TRADES, MAX_QUOTES, MAX_BARS = 1 << 20, 1 << 19, 1 << 18
# Records held before they are folded in one go: 8192 ticks are 512 KiB, folded in well under a
# millisecond; per batch (1 ms, a few dozen ticks) the fold cost 2-3x the hub's own publish.
FLUSH_RECORDS = 8192

TRADE_DTYPE = np.dtype(
    [("ts", "<i8"), ("id", "<u8"), ("price", "<f8"), ("size", "<u8"), ("sym", "<u2"), ("buy", "?")]
)
QUOTE_DTYPE = np.dtype(
    [
        ("ts", "<i8"),
        ("bid", "<f8"),
        ("ask", "<f8"),
        ("bid_size", "<u4"),
        ("ask_size", "<u4"),
        ("sym", "<u2"),
    ]
)
BAR_DTYPE = np.dtype(
    [
        ("start", "<i8"),  # ns, a whole minute
        ("open", "<f8"),
        ("high", "<f8"),
        ("low", "<f8"),
        ("close", "<f8"),
        ("volume", "<u8"),  # size units
        ("notional", "<f8"),  # sum of price * size units
        ("buy_volume", "<u8"),  # taker buys
        ("buy_notional", "<f8"),
        ("count", "<u8"),
        ("first_id", "<u8"),
        ("last_id", "<u8"),
        ("sym", "<u2"),
    ]
)
_TRADE, _BUY = int(TickFlag.TRADE), int(TickFlag.BUY)
_RAW = np.dtype((np.void, TICK_DTYPE.itemsize))
_SUMS = ("volume", "notional", "buy_volume", "buy_notional", "count")


def ring_size(n_symbols: int, most: int) -> int:
    return int(min(most, max(MIN_RING, PER_SYMBOL * n_symbols)))


class Ring:
    """A fixed-capacity ring of structured records, oldest overwritten first."""

    __slots__ = ("buf", "filled", "head")

    def __init__(self, dtype: np.dtype[np.void], capacity: int) -> None:
        self.buf = np.zeros(capacity, dtype)
        self.head = 0  # where the next record goes
        self.filled = 0

    def extend(self, records: NDArray[np.void]) -> None:
        cap, n = len(self.buf), len(records)
        if n >= cap:
            records, n = records[n - cap :], cap
        end = self.head + n
        if end <= cap:
            self.buf[self.head : end] = records
        else:
            cut = cap - self.head
            self.buf[self.head :] = records[:cut]
            self.buf[: n - cut] = records[cut:]
        self.head = end % cap
        self.filled = min(cap, self.filled + n)

    def of(self, sym: int) -> NDArray[np.void]:
        """Every record of symbol `sym`, oldest first (a copy)."""
        cap = len(self.buf)
        idx = np.flatnonzero(self.buf["sym"][: self.filled] == sym)
        if self.filled == cap and self.head:  # wrapped: positions from head on are older
            idx = np.concatenate([idx[idx >= self.head], idx[idx < self.head]])
        return self.buf[idx]

    def of_many(self, syms: list[int]) -> dict[int, NDArray[np.void]]:
        """Every record of each symbol in `syms`, oldest first, in one pass over the ring
        (a request for many symbols costs one scan, not one per symbol)."""
        if len(syms) == 1:
            return {syms[0]: self.of(syms[0])}
        wanted = np.unique(np.asarray(syms, np.intp))
        cap = len(self.buf)
        idx = np.flatnonzero(np.isin(self.buf["sym"][: self.filled], wanted))
        if self.filled == cap and self.head:
            idx = np.concatenate([idx[idx >= self.head], idx[idx < self.head]])
        records = self.buf[idx]
        records = records[np.argsort(records["sym"], kind="stable")]  # time order kept
        bounds = np.searchsorted(records["sym"], np.append(wanted, wanted[-1] + 1))
        return {
            int(sym): records[bounds[i] : bounds[i + 1]] for i, sym in enumerate(wanted.tolist())
        }

    def all(self) -> NDArray[np.void]:
        """Every record, oldest first (a copy)."""
        if self.filled < len(self.buf):
            return self.buf[: self.filled].copy()
        return np.concatenate([self.buf[self.head :], self.buf[: self.head]])


class RestTape:
    """Recent trades and minute bars of every symbol, fed every published batch in order."""

    def __init__(self, n_symbols: int) -> None:
        self.trades = Ring(TRADE_DTYPE, ring_size(n_symbols, MAX_TRADES))
        self.quotes = Ring(QUOTE_DTYPE, ring_size(n_symbols, MAX_QUOTES))
        self.closed = Ring(BAR_DTYPE, ring_size(n_symbols, MAX_BARS))
        self.last_trades = np.zeros(n_symbols, TRADE_DTYPE)  # ts 0: none yet
        self.open_bars = np.zeros(n_symbols, BAR_DTYPE)  # count 0: no trade this minute
        self.open_bars["sym"] = np.arange(n_symbols)
        self.minute_ns = -1  # the open minute's start
        self.last_ts = 0  # event time of the newest record seen
        self._pending: list[TickBatch] = []
        self._pending_records = 0

    def publish(self, batch: TickBatch) -> None:
        """Take the hub's next batch (kept by reference: it must never be written again)."""
        if len(batch):
            self._pending.append(batch)
            self._pending_records += len(batch)
            if self._pending_records >= FLUSH_RECORDS:
                self.flush()

    def flush(self) -> None:
        """Fold the batches taken since the last flush (readers call it first)."""
        pending = self._pending
        if not pending:
            return
        if len(pending) == 1:
            batch = pending[0]
        else:  # as plain 64-byte records: numpy compares structured fields array by array
            batch = np.concatenate([np.ascontiguousarray(b).view(_RAW) for b in pending])
            batch = batch.view(TICK_DTYPE)
        self._pending, self._pending_records = [], 0
        self.last_ts = max(self.last_ts, int(batch["ts"][-1]))
        q = np.empty(len(batch), QUOTE_DTYPE)  # every record is the quote as of its time
        for name in QUOTE_DTYPE.names or ():
            q[name] = batch[name]
        self.quotes.extend(q)
        rows = batch[(batch["flags"] & _TRADE) != 0]
        if len(rows):
            t = np.empty(len(rows), TRADE_DTYPE)
            t["ts"], t["id"], t["price"] = rows["ts"], rows["seq"], rows["last"]
            t["size"], t["sym"] = rows["last_size"], rows["sym"]
            t["buy"] = (rows["flags"] & _BUY) != 0
            self.trades.extend(t)
            ids, rev = np.unique(t["sym"][::-1], return_index=True)
            self.last_trades[ids] = t[len(t) - 1 - rev]
            minutes = t["ts"] - t["ts"] % NS_PER_MIN
            cuts = np.flatnonzero(np.diff(minutes)) + 1  # records are in event order
            for part in np.split(t, cuts):  # one part per minute: one part almost always
                self._roll(int(part["ts"][0]) // NS_PER_MIN * NS_PER_MIN)
                self._add(part)
        self._roll(self.last_ts // NS_PER_MIN * NS_PER_MIN)

    def _roll(self, minute_ns: int) -> None:
        """Close the open minute's bars if `minute_ns` is a later minute."""
        if minute_ns <= self.minute_ns:
            return
        bars = self.open_bars
        traded = bars["count"] > 0
        if traded.any():
            self.closed.extend(bars[traded])
            for f in _SUMS:
                bars[f][traded] = 0
        self.minute_ns = minute_ns

    def _add(self, t: NDArray[np.void]) -> None:
        """Fold one minute's trades (event order) into the open bars: one stable sort by
        symbol, then a reduction per symbol's run."""
        bars = self.open_bars
        t = t[np.argsort(t["sym"], kind="stable")]  # each symbol's trades, still in time order
        sym = t["sym"].astype(np.intp)
        first = np.flatnonzero(np.diff(sym, prepend=-1))
        last = np.append(first[1:], len(t)) - 1
        ids, price = sym[first], t["price"]
        fresh = bars["count"][ids] == 0
        new, at = ids[fresh], first[fresh]
        bars["start"][new] = self.minute_ns
        bars["open"][new] = bars["high"][new] = bars["low"][new] = price[at]
        bars["first_id"][new] = t["id"][at]
        bars["close"][ids], bars["last_id"][ids] = price[last], t["id"][last]
        bars["high"][ids] = np.maximum(bars["high"][ids], np.maximum.reduceat(price, first))
        bars["low"][ids] = np.minimum(bars["low"][ids], np.minimum.reduceat(price, first))
        size, buy = t["size"], t["buy"]
        notional = price * size
        zero = np.zeros(len(t), np.uint64)
        for field, values in (
            ("volume", size),
            ("notional", notional),
            ("buy_volume", np.where(buy, size, zero)),
            ("buy_notional", np.where(buy, notional, 0.0)),
            ("count", np.ones(len(t), np.uint64)),
        ):
            bars[field][ids] += np.add.reduceat(values, first)

    # ------------------------------------------------------------------ reading

    def recent_trades(self, sym: int) -> NDArray[np.void]:
        """The symbol's trades still in the ring, oldest first."""
        self.flush()
        return self.trades.of(sym)

    def recent_quotes(self, sym: int) -> NDArray[np.void]:
        """The symbol's quotes (every record's) still in the ring, oldest first."""
        self.flush()
        return self.quotes.of(sym)

    def last_trade(self, sym: int) -> np.void | None:
        """The symbol's latest trade (kept when the ring has lost it), or None before its first."""
        self.flush()
        trade = self.last_trades[sym]
        return trade if trade["ts"] else None

    def trades_of(self, syms: list[int]) -> dict[int, NDArray[np.void]]:
        """`recent_trades` of many symbols, in one scan."""
        self.flush()
        return self.trades.of_many(syms)

    def quotes_of(self, syms: list[int]) -> dict[int, NDArray[np.void]]:
        """`recent_quotes` of many symbols, in one scan."""
        self.flush()
        return self.quotes.of_many(syms)

    def bars_of(self, syms: list[int]) -> dict[int, NDArray[np.void]]:
        """`bars` of many symbols, in one scan."""
        self.flush()
        closed, bars = self.closed.of_many(syms), self.open_bars
        return {
            sym: np.concatenate([c, bars[sym : sym + 1]]) if bars["count"][sym] > 0 else c
            for sym, c in closed.items()
        }

    def bars(self, sym: int) -> NDArray[np.void]:
        """The symbol's minute bars, oldest first: the closed ones, then the open one if it
        has traded."""
        self.flush()
        closed = self.closed.of(sym)
        if self.open_bars["count"][sym] > 0:
            return np.concatenate([closed, self.open_bars[sym : sym + 1]])
        return closed

    def all_bars(self) -> NDArray[np.void]:
        """Every symbol's bars, the closed ones oldest first, then the open ones."""
        self.flush()
        bars = self.open_bars
        return np.concatenate([self.closed.all(), bars[bars["count"] > 0]])


def aggregate(bars: NDArray[np.void], width_ns: int, offset_ns: int = 0) -> NDArray[np.void]:
    """One symbol's minute bars (oldest first) merged into bars `width_ns` wide, each starting
    at a multiple of `width_ns` after `offset_ns` (a week starts on Monday: offset 4 days)."""
    if width_ns == NS_PER_MIN or not len(bars):
        return bars
    start = bars["start"] - (bars["start"] - offset_ns) % width_ns
    cut = np.flatnonzero(np.diff(start)) + 1
    first = np.concatenate([[0], cut])
    last = np.concatenate([cut - 1, [len(bars) - 1]])
    out = np.zeros(len(first), BAR_DTYPE)
    out["start"], out["sym"] = start[first], bars["sym"][first]
    out["open"], out["first_id"] = bars["open"][first], bars["first_id"][first]
    out["close"], out["last_id"] = bars["close"][last], bars["last_id"][last]
    out["high"] = np.maximum.reduceat(bars["high"], first)
    out["low"] = np.minimum.reduceat(bars["low"], first)
    for f in _SUMS:
        out[f] = np.add.reduceat(bars[f], first)
    return out
