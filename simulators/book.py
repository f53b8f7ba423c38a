"""The limit order book of every symbol: price levels stepped with the market, one market in all.

Model: the zero-intelligence order flow of Smith, Farmer, Gillemot and Krishnamurthy, "Statistical
theory of the continuous double auction", Quantitative Finance 3 (2003) 481-514: limit orders
arrive at random distances from the best price, cancellations take from the queues, market orders
consume the best level. Distances follow the power law Bouchaud, Mezard and Potters measured
("Statistical properties of stock order books", Quantitative Finance 2 (2002) 251-256), sizes a
Pareto law. The price itself stays the market's (`market.py`): its quotes and trades are the
market orders and the moves of the best price, and the flow fills in every level around them:
- between two records of a symbol, `FLOW_PER_RECORD` flow events on average (adds and cancels,
  `ADD_SHARE` adds) at distance d >= 0 ticks from the best of their side, P(d) ~ (d + D0)^-(1 + MU);
  at the best, flow leans on where the efficient price sits inside the spread (adds join the side
  the price moves away from, cancels leave the side it moves toward), which is why the best-level
  imbalance predicts the next mid move; a cancel never takes the last lot of the best;
- a move of the best that empties many levels (tens of ticks for BTC-USD) brings `REFILL` adds
  per emptied level with it, anywhere in the new window: the book refills as fast as the moves
  of the price, in ticks, empty it (`_book_events` says why, with the figures);
- a trade takes its size from the best opposite level; if the level shows less, hidden liquidity
  (an iceberg) is revealed first (reason `REVEAL`), so a trade is never larger than the book;
- when the best moves, levels it passed or that fall beyond `depth` ticks are cleared (`CLEAR`),
  and the new best gets an order if it is a new price (at least a lot in any case).
So the book is never crossed nor locked, and every tick's bid/ask/bid_size/ask_size is its top.

Vectorised without a loop over symbols or events: each level's size follows the Lindley
recursion q = max(floor, q + x) (floors: 0, a lot at the best, the trade size before a trade),
whose solution is a cumulative sum and a running maximum per level (`_levels`).

Records (designed for the wire; the wire itself comes later). `LEVEL_DTYPE`: one level update,
40 bytes, little-endian, binary-ready as `TICK_DTYPE` is (`batch.tobytes()`, `np.frombuffer`):
ts, seq (per-symbol book sequence, +1 per update, no gaps), price (float64 on the tick grid, as
in ticks), size (the level's new total, an integer count of the symbol's size_unit: shares, or
lots for crypto; 0 removes the level), sym, level (ticks from the best of its side when it
happened), side (0 bid, 1 ask), reason (`Reason`). A symbol's level updates at one ts come before
its tick of that ts. A snapshot (`Market.book_snapshot`) is a `ladder_dtype(depth)` record per
symbol: sym, seq (the last update it includes), ts, and dense ladders bid_price/bid_size,
ask_price/ask_size of `depth` ticks from the best, best first (size 0: an empty price).
How the wire parts map onto them:
- tickwire /v1: snapshot = one ladder (non-empty levels, cut to the subscribed depth), then the
  updates with seq > its seq; a gap in seq means resync. A client keeps levels within `depth`
  ticks of its best (updates further out are dropped, as the CLEAR updates show).
- Binance `@depth`: lastUpdateId = a snapshot's seq; a diff event's U/u = the first/last seq of
  the updates it carries, b/a = [price, size x size_unit] as decimal strings (sizes are exact).
- Coinbase `level2`: snapshot bids/asks from a ladder, `l2update` changes = [side, price, size].
- Kraken `book`: a snapshot then updates per level; its CRC32 checksum over the top 10 bids and
  asks (price and size strings without the point and leading zeros) is computable from a ladder,
  and from a client's book after each update.
`_book_events` lays a chunk's events out (flow, trades, clears, guarantees) and `_book_kernels`
holds exact, faster stand-ins for numpy calls and the work arrays kept from chunk to chunk.
Imports numpy, `_ahead`, `_book_events` and `_book_kernels` only.
"""

from __future__ import annotations

import sys
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from . import _book_events as ev
from ._ahead import Slices, finish
from ._book_events import ADD_SHARE as ADD_SHARE  # the model's constants
from ._book_events import FLOW_PER_RECORD as FLOW_PER_RECORD
from ._book_events import LEAN as LEAN
from ._book_events import ORDER_TAIL as ORDER_TAIL
from ._book_events import REFILL as REFILL
from ._book_events import ROUTINE as ROUTINE
from ._book_kernels import DistanceLaw, Scratch, grouped_order, stable_order, take

MU = 0.6  # distance law of limit orders, P(d) ~ (d + D0)^-(1 + MU) (Bouchaud et al.)
D0 = 2.0  # ticks: flattens the law at the best, where the price moves keep queues young
MIN_DEPTH, MAX_DEPTH = 1, 1000
_SPARE_BATCHES = 3  # the pending chunk's, the one before, one a caller may hold a while

LEVEL_DTYPE = np.dtype(
    [
        ("ts", "<i8"),
        ("seq", "<u8"),  # per-symbol book sequence
        ("price", "<f8"),
        ("size", "<u8"),  # the level's new size in size units; 0 removes it
        ("sym", "<u2"),
        ("level", "<u2"),  # ticks from the best of its side when it happened
        ("side", "u1"),  # 0 bid, 1 ask
        ("reason", "u1"),  # Reason
        ("_pad", "V2"),
    ]
)
assert LEVEL_DTYPE.itemsize == 40

LevelBatch = NDArray[np.void]
_RECORD = np.dtype((np.void, LEVEL_DTYPE.itemsize))  # a level update as opaque bytes: fast to move


class Reason(IntEnum):
    """Why a level changed."""

    ADD = 1  # a limit order joined the level
    CANCEL = 2  # an order (or part) left it
    TRADE = 3  # a market order took from it (the tick of the same ts is the trade)
    REVEAL = 4  # hidden liquidity showed before a trade larger than the level
    CLEAR = 5  # the best moved through it, or it fell beyond the book's depth


assert tuple(Reason) == (ev.ADD, ev.CANCEL, ev.TRADE, ev.REVEAL, ev.CLEAR)


def ladder_dtype(depth: int) -> np.dtype[np.void]:
    """A snapshot record: one symbol's book, `depth` ticks a side from the best."""
    return np.dtype(
        [
            ("sym", "<u2"),
            ("seq", "<u8"),
            ("ts", "<i8"),
            ("bid_price", "<f8", (depth,)),
            ("bid_size", "<u8", (depth,)),
            ("ask_price", "<f8", (depth,)),
            ("ask_size", "<u8", (depth,)),
        ]
    )


def check_depth(depth: int) -> int:
    """`depth` if it is a whole number of levels in range, else ValueError saying what is."""
    if isinstance(depth, bool) or not isinstance(depth, int | np.integer):
        raise ValueError(f"book depth must be a whole number, got {depth!r}")
    if not MIN_DEPTH <= depth <= MAX_DEPTH:
        raise ValueError(
            f"book depth must be from {MIN_DEPTH} to {MAX_DEPTH} levels a side, got {depth}"
        )
    return int(depth)


class Records(NamedTuple):
    """A chunk's tick records in symbol order (one segment per symbol, time order inside)."""

    sym: NDArray[np.intp]
    ts: NDArray[np.int64]
    bid: NDArray[np.int64]  # ticks
    ask: NDArray[np.int64]
    frac: NDArray[np.float64]  # efficient price inside the spread: 0 at the bid, 1 at the ask
    trade: NDArray[np.intp]  # positions of the trades
    buy: NDArray[np.bool_]  # per trade
    size: NDArray[np.int64]  # per trade, size units
    seg_start: NDArray[np.int64]  # per symbol: its first record
    per_sym: NDArray[np.int64]
    kept: NDArray[np.float64] | None = None  # per record: share of new orders that arrive


class _Frame(NamedTuple):
    """A chunk's segments: per active symbol, `width` prices from `lo`, bid side then ask side,
    starting at `sym_off`; `n_seg` in all; `d` the window's level offsets."""

    lo: NDArray[np.int64]
    width: NDArray[np.int64]
    sym_off: NDArray[np.int64]
    n_seg: int
    d: NDArray[np.int64]

    def window(self, b: NDArray[np.int64], s: NDArray[np.int64]) -> NDArray[np.int64]:
        """Segments of each active symbol's window: (symbols, 2, depth), bid then ask; -1 for
        bid levels below price 1 (they do not exist)."""
        d, base = self.d, self.sym_off - self.lo
        out = np.empty((b.size, 2, d.size), np.int64)
        bid, ask = out[:, 0], out[:, 1]
        np.subtract((b + base)[:, None], d, out=bid)
        np.add((s + base + self.width)[:, None], d, out=ask)  # always >= lo: above the bid
        bid[bid < self.sym_off[:, None]] = -1
        return out


class Book:
    """Every symbol's book as levels relative to its best: sizes[sym, side, d] (d ticks away)."""

    def __init__(
        self,
        lot: NDArray[np.int64],
        depth: int,
        rng: np.random.Generator,
        prices: tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]] | None = None,
    ) -> None:
        """`prices`: (units, scale) per symbol, for level prices of ticks * units / scale, as
        ticks make theirs (None: prices in ticks)."""
        self.depth = check_depth(depth)
        self.lot = lot
        self.rng = rng
        self.prices = prices
        self._whole_units = prices is not None and bool(np.all(prices[0] == 1))
        n = len(lot)
        d = np.arange(depth)
        hump = np.minimum(d + 1, 4) / 4  # a starting profile; the flow takes over in seconds
        self.sizes = lot[:, None, None] * (1 + np.floor(4 * hump * rng.random((n, 2, depth))))
        self.sizes = self.sizes.astype(np.int64)
        self.seq = np.zeros(n, np.int64)
        w = (d + D0) ** -(1 + MU)
        self._cdf = np.cumsum(w / w.sum())
        self._law = DistanceLaw(self._cdf)  # searchsorted on the law, by table
        self._work = Scratch()  # the per-event arrays, kept from chunk to chunk
        self._batches: list[LevelBatch] = []  # batches made before, to reuse once let go
        self._probe = [np.empty(0, LEVEL_DTYPE)]  # held by its list alone

    def step(
        self, rec: Records, prev_bid: NDArray[np.int64], prev_ask: NDArray[np.int64], t0_ns: int
    ) -> tuple[LevelBatch, NDArray[np.int64], NDArray[np.int64]]:
        """A chunk's level updates (time order) and each record's best sizes (symbol order).

        `prev_bid`/`prev_ask`: every symbol's quote before the chunk (what `sizes` hangs from).
        Work is per event, in flat arrays; selections are arithmetic (a random mask makes
        `np.where` slow), and the draws are those of the plain numpy calls (`_book_kernels`).
        """
        return finish(self.steps(rec, prev_bid, prev_ask, t0_ns))

    def steps(
        self, rec: Records, prev_bid: NDArray[np.int64], prev_ask: NDArray[np.int64], t0_ns: int
    ) -> Slices[tuple[LevelBatch, NDArray[np.int64], NDArray[np.int64]]]:
        """`step` in slices of about a millisecond (see `_ahead.Slices`): the same work and
        draws in the same order, whoever runs them and whenever."""
        w, prev = self._work, (prev_bid, prev_ask)
        e = yield from ev.book_events(self.rng, self._law, self.lot, rec, prev, t0_ns, w)
        yield
        active = np.flatnonzero(rec.per_sym)
        tail = rec.seg_start[active] + rec.per_sym[active] - 1
        ends = (prev_bid[active], prev_ask[active], rec.bid[tail], rec.ask[tail])
        q, keep = yield from self._levels(active, e, rec.seg_start[active], ends)
        yield
        bid_size, ask_size = q[e.guard], q[e.guard + 1]
        k = keep.size  # slots t0, t1... are free again: only q and keep are left of _levels
        # events are in symbol order: each active symbol's kept ones are a run of `keep`
        bounds = np.append(e.off[rec.seg_start[active]], e.rec.size)
        per_active = np.diff(np.searchsorted(keep, bounds))
        ev_sym = np.repeat(active, per_active)
        per = np.zeros(len(self.seq), np.int64)
        per[active] = per_active
        # per-symbol book sequence: the symbol's last, then +1 an update
        seq = take(self.seq - (np.cumsum(per) - per) + 1, ev_sym, out=w("t2", k))
        seq += w.arange(k)
        self.seq += per
        ts = take(e.ts, keep, out=w("t4", k))
        rel = np.subtract(ts, t0_ns, out=w("t5", k))  # >= 0: no event before the chunk
        order = stable_order(rel, int(rel.max()) + 1 if k else 1, w)  # time order, stable
        yield
        # the records in symbol order (gathers that stream), then moved whole into time order
        stage = w("out_stage", k, LEVEL_DTYPE)  # `_pad` stays as made: zero
        stage["ts"], stage["seq"], stage["sym"] = ts, seq, ev_sym
        g = w("t6", k)
        stage["price"] = self._prices(take(e.price, keep, out=g), ev_sym)
        stage["size"] = take(q, keep, out=g)
        stage["level"] = take(e.level, keep, out=w("t7", k, np.uint16))
        stage["side"] = take(e.side, keep, out=w("t8", k, np.uint8))
        stage["reason"] = take(e.reason, keep, out=w("t8", k, np.uint8))
        out = self._batch(k)
        take(stage.view(_RECORD), order, out=out.view(_RECORD))
        return out, bid_size, ask_size

    def _prices(self, ticks: NDArray[np.int64], sym: NDArray[np.intp]) -> NDArray[Any]:
        """Prices of `ticks` of symbols `sym` (in symbol order: each a run of one symbol)."""
        if self.prices is None:
            return ticks
        w, k = self._work, ticks.size
        units, scale = self.prices
        price = w("t9", k, np.float64)
        price[...] = ticks
        if not self._whole_units:  # ticks * 1.0 is ticks: the product is skipped, not changed
            price *= take(units, sym, out=w("t10", k, np.float64))
        price /= take(scale, sym, out=w("t10", k, np.float64))
        return price

    def _batch(self, k: int) -> LevelBatch:
        """Room for k level updates: a batch made before if nothing refers to it any more.

        New memory costs a page fault a page when first written (~700 a chunk of 90,000
        updates); a batch the market or a caller still holds (a view keeps its base alive)
        is never written again, which the reference count tells, as `ndarray.resize` checks.
        """
        # a batch only the list refers to counts as the probe does (read the same way, as
        # interpreters differ in what they count), so it is let go by everyone else
        free = sys.getrefcount(self._probe[0])
        for i in range(len(self._batches)):
            if sys.getrefcount(self._batches[i]) == free and self._batches[i].size >= k:
                batch = self._batches.pop(i)
                break
        else:
            batch = np.zeros(2 * k + 1024, LEVEL_DTYPE)  # pages untouched cost nothing
            if len(self._batches) >= _SPARE_BATCHES:
                self._batches.pop(0)
        self._batches.append(batch)
        return batch[:k]  # every field is written but `_pad`, zero from the start

    def _segments(
        self,
        active: NDArray[np.intp],
        e: ev.Events,
        seg_start: NDArray[np.int64],
        ends: tuple[NDArray[np.int64], ...],
    ) -> tuple[NDArray[np.int64], _Frame]:
        """Each event's segment (its symbol, side and price level) and the chunk's frame of
        segments: per active symbol, a price range wide enough for its events and both windows."""
        w, n = self._work, e.rec.size
        depth = self.depth
        b0, a0, b1, a1 = ends
        lo = np.minimum(np.minimum.reduceat(e.low, seg_start), np.minimum(b0, b1) - depth + 1)
        hi = np.maximum(np.maximum.reduceat(e.high, seg_start), np.maximum(a0, a1) + depth - 1)
        lo = np.maximum(lo, 1)
        width = hi - lo + 1
        sym_off = np.cumsum(2 * width) - 2 * width
        records = np.diff(np.append(seg_start, len(e.per_record)))
        act = np.repeat(np.arange(active.size), records)  # each record's active symbol
        seg = take((sym_off - lo)[act], e.rec, out=w("t0", n))
        seg += e.price
        seg += np.multiply(take(width[act], e.rec, out=w("t1", n)), e.side, out=w("t1", n))
        return seg, _Frame(lo, width, sym_off, int(2 * width.sum()), np.arange(depth))

    def _levels(
        self,
        active: NDArray[np.intp],
        e: ev.Events,
        seg_start: NDArray[np.int64],
        ends: tuple[NDArray[np.int64], ...],
    ) -> Slices[tuple[NDArray[np.int64], NDArray[np.intp]]]:
        """Each event's new size, and the events that change their level; folds into `sizes`.
        In two slices (`_ahead`): the segments and their order, the sizes.

        Events are in symbol order (time order inside); `seg_start`: each active symbol's first
        record. One segment per (symbol, side, price) level, cut again at each clear. In one,
        q_n = max(f_n, q_(n-1) + x_n) solves to q_n = S_n + max(q_0, max_(k<=n) (f_k - S_k)),
        S the cumulative sum of x: a cumsum and a running maximum (segments kept apart by an
        offset that grows with the segment). Segments are ordered by a radix sort.
        """
        w, n = self._work, e.rec.size  # slots t0, t1...: free once the events are made
        b0, a0, b1, a1 = ends
        ev_start = e.off[seg_start]
        seg, frame = self._segments(active, e, seg_start, ends)
        q0_seg = np.zeros(frame.n_seg, np.int64)
        w0 = frame.window(b0, a0)
        ok = w0 >= 0
        q0_seg[w0[ok]] = self.sizes[active][ok]
        order = grouped_order(seg, frame.sym_off, frame.sym_off + 2 * frame.width, ev_start, w)
        yield
        seg_s = take(seg, order, out=w("t2", n))
        x_s = take(e.x, order, out=w("t3", n))
        f_s = take(e.floor, order, out=w("t4", n))
        clear = np.less(f_s, 0, out=w("t5", n, bool))
        np.maximum(f_s, 0, out=f_s)  # a clear's floor is -1, every other one >= 0
        new_seg = w("t6", n, bool)
        new_seg[:1] = True
        np.not_equal(seg_s[1:], seg_s[:-1], out=new_seg[1:])
        starts = np.logical_or(new_seg, clear, out=w("t7", n, bool))
        first = np.flatnonzero(starts)
        is_new = new_seg[first]
        q0_first = q0_seg[seg_s[first]]
        q0_sub = np.where(is_new & ~clear[first], q0_first, 0)
        # one cumsum S over all; each sub-segment's start takes q_0 against the sum before it
        s_run = np.cumsum(x_s, out=w("t8", n))
        before = s_run[first - 1]  # first[0] is 0: its sum before is none
        before[:1] = 0
        m_run = np.subtract(f_s, s_run, out=f_s)
        m_run[first] = np.maximum(m_run[first], q0_sub - before)  # max(q_0, ...) at the start
        low = int(m_run.min()) if n else 0
        spread = (int(m_run.max()) - low + 1) if n else 1
        if spread * (len(q0_sub) + 1) >= 1 << 62:
            raise OverflowError("book level sizes too large for one chunk")
        # each sub-segment lifted above the ones before it: a running maximum keeps them apart
        lift = w("t9", n)
        lift.fill(0)
        lift[first[1:]] = spread
        np.cumsum(lift, out=lift)
        lift -= low
        m_run += lift
        q_s = np.maximum.accumulate(m_run, out=x_s)  # x_s is spent
        q_s -= lift
        q_s += s_run
        q = w("lv_q", n)
        q[order] = q_s
        # a change against the size before: the event before in its segment, or the start
        changed_s = clear  # read above, free now
        np.not_equal(q_s[1:], q_s[:-1], out=changed_s[1:])
        seg_first = first[is_new]  # the first event of each segment (the first of all too)
        changed_s[seg_first] = q_s[seg_first] != q0_first[is_new]
        changed = w("t11", n, bool)
        changed[order] = changed_s
        # the chunk's end: each level's last size, gathered into the window of the final best
        last = np.append(seg_first[1:] - 1, n - 1)
        q0_seg[seg_s[last]] = q_s[last]
        w1 = frame.window(b1, a1)
        sizes = np.where(w1 >= 0, q0_seg[np.maximum(w1, 0)], 0)
        self.sizes[active] = sizes
        return q, np.flatnonzero(changed)
