"""What the venues' REST APIs remember of the market: recent trades and one-minute bars.

`RestTape.publish(batch)` sees every batch the hub publishes, in order, and only keeps a
reference to it (the market never writes a published batch again): the batches are folded in
`flush()`, every `FLUSH_RECORDS` records or before a read, with a few numpy operations for all
of them (no loop over records or symbols), so the market's step pays almost nothing per batch.
Folded, they are the trades in a ring of `TRADE_DTYPE` records, the open minute's bar of every
symbol that traded in it (`OpenBars`), and the closed bars in a ring of `BAR_DTYPE` records.
The quotes (every record's bid and ask, a ring of `QUOTE_DTYPE` records) are folded only when
a request reads them: until then the tape keeps the newest batches that ring can hold, and
drops the older ones the ring would have overwritten, so a first read answers as if every
batch had gone in. A request reads them with `recent_trades(sym)`, `recent_quotes(sym)` and
`bars(sym)` (the closed bars then the open one, oldest first), each a scan of one ring: the
work per request is bounded by the rings' capacity, whatever the market did.

A trade's id is its tick record's `seq` (unique and increasing per symbol, not consecutive), so
ids mean the same thing after a restart of any reader. Sizes stay in the universe's size units
(integers); the handlers scale them. Imports numpy only: no trio, no clock (time is the records').
"""

from __future__ import annotations

from collections import deque
from typing import Any

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
_RAW = np.dtype((np.void, TICK_DTYPE.itemsize))  # a record as 64 opaque bytes: fast to pick
_RAW_TRADE = np.dtype((np.void, TRADE_DTYPE.itemsize))
_SUMS = ("volume", "notional", "buy_volume", "buy_notional", "count")


def ring_size(n_symbols: int, most: int) -> int:
    return int(min(most, max(MIN_RING, PER_SYMBOL * n_symbols)))


class Ring:
    """A fixed-capacity ring of structured records, oldest overwritten first."""

    __slots__ = ("buf", "filled", "head", "rows")

    def __init__(self, dtype: np.dtype[np.void], capacity: int) -> None:
        self.buf = np.zeros(capacity, dtype)
        self.rows = self.buf.view(np.uint8).reshape(capacity, dtype.itemsize)  # the same bytes
        self.head = 0  # where the next record goes
        self.filled = 0

    def extend(self, records: NDArray[np.void]) -> None:
        """Append `records` (of the ring's dtype), overwriting the oldest once full."""
        cap, n = len(self.buf), len(records)
        if n >= cap:
            records, n = records[n - cap :], cap
        # As rows of plain bytes: numpy copies structured records field by field (17x slower).
        rows = np.ascontiguousarray(records).view(np.uint8).reshape(n, -1)
        end = self.head + n
        if end <= cap:
            self.rows[self.head : end] = rows
        else:
            cut = cap - self.head
            self.rows[self.head :] = rows[:cut]
            self.rows[: n - cut] = rows[cut:]
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


class OpenBars:
    """The open minute's bar of every symbol (count 0: no trade yet), a column per field: a
    fold gathers and scatters its symbols' values a dozen times, each then a plain array op."""

    __slots__ = ("cols",)

    def __init__(self, n_symbols: int) -> None:
        names = BAR_DTYPE.names or ()
        self.cols = {name: np.zeros(n_symbols, BAR_DTYPE[name]) for name in names}
        self.cols["sym"][:] = np.arange(n_symbols)

    def traded(self) -> NDArray[np.intp]:
        """The symbols whose bar has a trade, in id order."""
        return np.flatnonzero(self.cols["count"])

    def records(self, ids: NDArray[np.intp] | list[int]) -> NDArray[np.void]:
        """The bars of `ids` as `BAR_DTYPE` records (a copy)."""
        out = np.empty(len(ids), BAR_DTYPE)
        for name, col in self.cols.items():
            out[name] = col[ids]
        return out


class RestTape:
    """Recent trades and minute bars of every symbol, fed every published batch in order."""

    def __init__(self, n_symbols: int) -> None:
        self.trades = Ring(TRADE_DTYPE, ring_size(n_symbols, MAX_TRADES))
        self.quotes = Ring(QUOTE_DTYPE, ring_size(n_symbols, MAX_QUOTES))
        self.closed = Ring(BAR_DTYPE, ring_size(n_symbols, MAX_BARS))
        self.last_trades = np.zeros(n_symbols, TRADE_DTYPE)  # ts 0: none yet
        self.open_bars = OpenBars(n_symbols)
        self.minute_ns = -1  # the open minute's start
        self.last_ts = 0  # event time of the newest record seen
        self._pending: list[TickBatch] = []  # not folded into trades and bars yet
        self._pending_records = 0
        # Not folded into quotes yet, in groups of a flush: only a read of quotes folds them,
        # and only the newest groups the ring holds are kept (it would overwrite the others).
        # References: at most the ring's records (32 MiB at 2**19), which the hub's history
        # holds anyway unless its --history-mb is smaller.
        self._unquoted: deque[tuple[list[TickBatch], int]] = deque()
        self._unquoted_records = 0

    def publish(self, batch: TickBatch) -> None:
        """Take the hub's next batch (kept by reference: it must never be written again)."""
        if len(batch):
            self._pending.append(batch)
            self._pending_records += len(batch)
            if self._pending_records >= FLUSH_RECORDS:
                self.flush()

    def flush(self) -> None:
        """Fold the batches taken since the last flush into the trades and bars (readers call
        it first); they wait for the quotes until a read of quotes."""
        pending = self._pending
        if not pending:
            return
        unquoted, cap = self._unquoted, len(self.quotes.buf)
        unquoted.append((pending, self._pending_records))
        self._unquoted_records += self._pending_records
        while self._unquoted_records - unquoted[0][1] >= cap:
            self._unquoted_records -= unquoted.popleft()[1]
        batch = _joined(pending)
        self._pending, self._pending_records = [], 0
        self.last_ts = max(self.last_ts, int(batch["ts"][-1]))
        rows = batch.view(_RAW)[np.flatnonzero(batch["flags"] & _TRADE)].view(TICK_DTYPE)
        if len(rows):
            t = np.empty(len(rows), TRADE_DTYPE)
            t["ts"], t["id"], t["price"] = rows["ts"], rows["seq"], rows["last"]
            t["size"], t["sym"] = rows["last_size"], rows["sym"]
            t["buy"] = (rows["flags"] & _BUY) != 0
            self.trades.extend(t)
            # Each symbol's trades together, still in time order: radix sort of 16-bit ids.
            by_sym = _sorted(t)
            first, last = _runs(by_sym["sym"])
            self.last_trades.view(_RAW_TRADE)[by_sym["sym"][first]] = by_sym.view(_RAW_TRADE)[last]
            ts = t["ts"]
            if ts[0] // NS_PER_MIN == ts[-1] // NS_PER_MIN:  # one minute: almost always
                self._roll(int(ts[0]) // NS_PER_MIN * NS_PER_MIN)
                self._add(by_sym, first, last)
            else:
                minutes = ts - ts % NS_PER_MIN
                cuts = np.flatnonzero(np.diff(minutes)) + 1  # records are in event order
                for part in np.split(t, cuts):  # one part per minute
                    self._roll(int(part["ts"][0]) // NS_PER_MIN * NS_PER_MIN)
                    part = _sorted(part)
                    self._add(part, *_runs(part["sym"]))
        self._roll(self.last_ts // NS_PER_MIN * NS_PER_MIN)

    def _fold_quotes(self) -> None:
        """Fold the batches not yet in the quotes (readers of quotes call it first)."""
        self.flush()
        unquoted = self._unquoted
        while unquoted:
            batch = _joined(unquoted.popleft()[0])
            q = np.empty(len(batch), QUOTE_DTYPE)  # every record is the quote as of its time
            for name in QUOTE_DTYPE.names or ():
                q[name] = batch[name]
            self.quotes.extend(q)
        self._unquoted_records = 0

    def _roll(self, minute_ns: int) -> None:
        """Close the open minute's bars if `minute_ns` is a later minute."""
        if minute_ns <= self.minute_ns:
            return
        traded = self.open_bars.traded()
        if len(traded):
            self.closed.extend(self.open_bars.records(traded))
            for f in _SUMS:
                self.open_bars.cols[f][traded] = 0
        self.minute_ns = minute_ns

    def _add(self, t: NDArray[np.void], first: NDArray[np.intp], last: NDArray[np.intp]) -> None:
        """Fold one minute's trades, sorted by symbol and in time order within each, into the
        open bars: a reduction per symbol's run (`first` to `last`)."""
        c = self.open_bars.cols
        ids, price, trade_id = t["sym"][first].astype(np.intp), t["price"], t["id"]
        fresh = c["count"][ids] == 0
        new, at = ids[fresh], first[fresh]
        c["start"][new] = self.minute_ns
        c["open"][new] = c["high"][new] = c["low"][new] = price[at]
        c["first_id"][new] = trade_id[at]
        c["close"][ids], c["last_id"][ids] = price[last], trade_id[last]
        c["high"][ids] = np.maximum(c["high"][ids], np.maximum.reduceat(price, first))
        c["low"][ids] = np.minimum(c["low"][ids], np.minimum.reduceat(price, first))
        size, buy = t["size"], t["buy"]
        notional = price * size
        c["volume"][ids] += np.add.reduceat(size, first)
        c["notional"][ids] += np.add.reduceat(notional, first)
        c["buy_volume"][ids] += np.add.reduceat(size * buy, first)
        c["buy_notional"][ids] += np.add.reduceat(notional * buy, first)
        c["count"][ids] += (last - first + 1).astype(np.uint64)

    # ------------------------------------------------------------------ reading

    def recent_trades(self, sym: int) -> NDArray[np.void]:
        """The symbol's trades still in the ring, oldest first."""
        self.flush()
        return self.trades.of(sym)

    def recent_quotes(self, sym: int) -> NDArray[np.void]:
        """The symbol's quotes (every record's) still in the ring, oldest first."""
        self._fold_quotes()
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
        self._fold_quotes()
        return self.quotes.of_many(syms)

    def bars_of(self, syms: list[int]) -> dict[int, NDArray[np.void]]:
        """`bars` of many symbols, in one scan."""
        self.flush()
        closed, bars = self.closed.of_many(syms), self.open_bars
        return {
            sym: np.concatenate([c, bars.records([sym])]) if bars.cols["count"][sym] else c
            for sym, c in closed.items()
        }

    def bars(self, sym: int) -> NDArray[np.void]:
        """The symbol's minute bars, oldest first: the closed ones, then the open one if it
        has traded."""
        self.flush()
        closed = self.closed.of(sym)
        if self.open_bars.cols["count"][sym]:
            return np.concatenate([closed, self.open_bars.records([sym])])
        return closed

    def all_bars(self) -> NDArray[np.void]:
        """Every symbol's bars, the closed ones oldest first, then the open ones."""
        self.flush()
        bars = self.open_bars
        return np.concatenate([self.closed.all(), bars.records(bars.traded())])


def _joined(batches: list[TickBatch]) -> TickBatch:
    """The batches' records in one read-only array, joined as bytes: 8x faster than numpy's
    concatenate of 100 batches (which costs a view each, and copies structured records field
    by field unless viewed as plain bytes)."""
    if len(batches) == 1:
        return batches[0]
    # (arrays are buffers; numpy's stubs do not say so)
    parts: list[Any] = [b if b.flags.c_contiguous else np.ascontiguousarray(b) for b in batches]
    return np.frombuffer(b"".join(parts), TICK_DTYPE)


def _sorted(t: NDArray[np.void]) -> NDArray[np.void]:
    """Trades `t` (in time order) by symbol, each symbol's still in time order (a stable radix
    sort of 16-bit ids; the records moved as plain bytes)."""
    order = np.argsort(t["sym"], kind="stable")
    moved: NDArray[np.void] = t.view(_RAW_TRADE)[order].view(TRADE_DTYPE)
    return moved


def _runs(sym: NDArray[np.uint16]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Where each run of equal values of `sym` (sorted) starts and ends (inclusive)."""
    starts = np.empty(len(sym), np.bool_)
    starts[:1] = True
    np.not_equal(sym[1:], sym[:-1], out=starts[1:])
    first = np.flatnonzero(starts)
    last = np.append(first[1:], len(sym)) - 1
    return first, last


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
