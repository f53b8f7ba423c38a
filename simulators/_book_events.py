"""A chunk's book events in flat arrays: limit orders, cancels, trades, clears, guarantees.

`book.Book.step` folds them into levels; this module lays them out. Each record of the chunk
(symbol order) owns a contiguous run of events: its flow first (time order), then the reveal and
the take of its trade, the clears of the bid then of the ask, the two guarantees (bid, ask),
and the refill after a large move.
The draws from the book's stream come in this order, part of what a seed reproduces: the flow
counts, the refill counts, the flow's time spacings, three uniforms a flow event (add,
distance, side: one block), the order sizes, the arrival uniforms (a thinning scenario only),
the guarantees' sizes, the refill's side and distance uniforms, its sizes.
Selections are arithmetic (`np.where` on a random mask is slow) and the per-event arrays live in
a `Scratch`: the events in `ev_*`, which `Book.step` reads to the end, temporaries in `t0`, `t1`...
(slots `Book.step` reuses once the events are made). Imports numpy, `_book_kernels` and `_ahead`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ._ahead import Slices
from ._book_kernels import DistanceLaw, Scratch, pareto_lots, take

FLOW_PER_RECORD = 16.0  # flow events (adds and cancels) per tick record, on average
ORDER_TAIL = 1.5  # Pareto exponent of limit order sizes, in lots
# Why REFILL and ROUTINE: a window of `depth` ticks a side stays full only if orders come back
# to the prices a move of the best empties. A record's move of k ticks a side empties k levels
# (passed through, or newly in reach): ~1 a record for most stocks, several for busy ones at
# the open (MSFT ~4), tens for BTC-USD (95,000 USD at 0.01: ~55, more than the window). The
# flow alone, drawn near the best and spread over the time between records, left BTC-USD's 20
# ticks ~20% filled and MSFT's ~40%. So a record whose move empties more than `ROUTINE` levels
# (both sides) brings `REFILL` adds per level beyond that, with the move, at 1 to depth - 1
# ticks behind the new best (uniform): the liquidity that follows the price, as latent orders
# become visible when the price reaches them (Toth, Lemperiere, Deremble et al., "Anomalous
# price impact and the critical nature of liquidity in financial markets", Phys. Rev. X 1
# (2011) 021006). It is set by each symbol's own moves in ticks (its price, tick and activity),
# record by record, and costs nothing where the best moves a tick at a time. The flow, 16
# events a record, brings 20-40 cancels a trade (as measured on real venues) and keeps the
# market's step with books as cheap as it was without the refill.
REFILL = 5.0  # adds per level a record's move empties beyond ROUTINE
ROUTINE = 4  # levels (both sides) a record's move empties that the flow refills alone
ADD_SHARE = 0.5  # of the flow; the rest are cancels
LEAN = 0.8  # how much flow at the best leans on the efficient price (0: not at all)
ADD, CANCEL, TRADE, REVEAL, CLEAR = 1, 2, 3, 4, 5  # book.Reason


class Events(NamedTuple):
    """Per record: its events and where they start; per event (scratch arrays): the rest."""

    per_record: NDArray[np.int64]  # events of each record
    off: NDArray[np.int64]
    guard: NDArray[np.int64]  # the bid guarantee (the ask's is the next event)
    rec: NDArray[np.int64]  # the record of each event
    ts: NDArray[np.int64]
    side: NDArray[np.uint8]  # 0 bid, 1 ask
    price: NDArray[np.int64]  # ticks
    x: NDArray[np.int64]  # size change
    floor: NDArray[np.int64]  # the level's least size after it; -1: a clear
    reason: NDArray[np.uint8]
    level: NDArray[np.uint16]  # ticks from the best of its side
    low: NDArray[np.int64]  # per record: no event of it is priced below, nor above `high`
    high: NDArray[np.int64]


def book_events(
    rng: np.random.Generator,
    law: DistanceLaw,
    lots: NDArray[np.int64],
    rec: Any,
    prev: tuple[NDArray[np.int64], NDArray[np.int64]],
    t0_ns: int,
    w: Scratch,
) -> Slices[Events]:
    """The events of `rec` (a `book.Records`); `prev`: every symbol's quote before the chunk.
    In slices (`_ahead`): the flow of orders is about half of the work."""
    depth, total, sym = law.cdf.size, len(rec.sym), rec.sym
    head = rec.seg_start[rec.per_sym > 0]  # each symbol's first record
    pb, pa, t_prev = (
        _before(rec.bid, head, prev[0][sym[head]]),
        _before(rec.ask, head, prev[1][sym[head]]),
        _before(rec.ts, head, t0_ns),
    )
    lot = lots[sym]
    is_trade = np.zeros(total, bool)
    is_trade[rec.trade] = True
    # how many events each record brings: flow, 2 per trade, clears, 2 guarantees, refill
    m = rng.poisson(FLOW_PER_RECORD, total)
    clr_b = np.minimum(np.abs(rec.bid - pb), depth)
    clr_a = np.minimum(np.abs(rec.ask - pa), depth)
    n_fill = np.zeros(total, np.int64)
    big = np.flatnonzero(clr_b + clr_a > ROUTINE) if depth > 1 else np.zeros(0, np.intp)
    if big.size:  # few records: the draws for those alone
        rate = REFILL * (clr_b[big] + clr_a[big] - ROUTINE)
        n_fill[big] = rng.poisson(rate if rec.kept is None else rate * rec.kept[big])
    count = m + 2 * is_trade + clr_b + clr_a + 2 + n_fill
    off = np.cumsum(count) - count
    n_ev = int(count.sum())
    ev_rec = w("t0", n_ev)
    ev_rec.fill(0)
    ev_rec[off[1:]] = 1  # distinct: every record has events
    np.cumsum(ev_rec, out=w("ev_rec", n_ev))
    ev_rec = w("ev_rec", n_ev)
    ev = Events(
        count,
        off,
        off + m + 2 * is_trade + clr_b + clr_a,
        ev_rec,
        take(rec.ts, ev_rec, out=w("ev_ts", n_ev)),
        w("ev_side", n_ev, np.uint8),  # each event sets all of these below
        w("ev_price", n_ev),
        w("ev_x", n_ev),
        w("ev_floor", n_ev),
        w("ev_reason", n_ev, np.uint8),
        w("ev_level", n_ev, np.uint16),
        np.minimum(pb, rec.bid) - (depth - 1),  # flow, clears and refill: within the depth
        np.maximum(pa, rec.ask) + (depth - 1),  # of the quote before or the new one
    )
    yield
    yield from _flow(ev, rng, law, (rec, m, lot, pb, pa, t_prev), w)
    yield
    # trades: reveal (floor = the trade's size), then take it, at the best opposite level
    t = rec.trade
    first = off[t] + m[t]
    for j, x, f, why in ((0, 0, rec.size, REVEAL), (1, -rec.size, 0, TRADE)):
        at = first + j
        ev.side[at] = rec.buy
        ev.price[at] = np.where(rec.buy, pa[t], pb[t])
        ev.x[at], ev.floor[at], ev.reason[at], ev.level[at] = x, f, why, 0
    start = _clears(ev, rec, off + m + 2 * is_trade, (clr_b, clr_a), (pb, pa), depth)
    # guarantees: the new best holds an order (a fresh one at a new price)
    fresh = pareto_lots(rng, ORDER_TAIL, 2 * total, w).astype(np.int64).reshape(2, total)
    fresh *= lot  # = lots[sym]
    for side, top, better in ((0, rec.bid, rec.bid > pb), (1, rec.ask, rec.ask < pa)):
        at = start + side
        ev.side[at], ev.price[at], ev.level[at] = side, top, 0
        ev.x[at] = np.where(better, fresh[side], 0)
        ev.floor[at] = np.where(better, 0, lot)
        ev.reason[at] = ADD
    if big.size:
        _refill(ev, rng, rec, (n_fill[big], big), lot, depth, w)
    if ev.low.min() < 1:  # a bid near the lowest price: some events may fall below it
        gone = np.flatnonzero(np.less(ev.price, 1, out=w("t0", n_ev, bool)))
        ev.price[gone], ev.x[gone], ev.floor[gone] = 1, 0, 0  # below the lowest price: nothing
    return ev


def _before(values: NDArray[np.int64], head: NDArray[np.int64], first: Any) -> NDArray[np.int64]:
    """Per record, the value of the record before it of its symbol; `first` at `head`."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    out[head] = first
    return out


def _clears(
    ev: Events,
    rec: Any,
    start: NDArray[np.int64],
    clr: tuple[NDArray[np.int64], NDArray[np.int64]],
    prev: tuple[NDArray[np.int64], NDArray[np.int64]],
    depth: int,
) -> NDArray[np.int64]:
    """The clears of each record from `start`: the levels its best passed, or that fall beyond
    the depth, bid then ask; returns where its guarantees start."""
    total = len(start)
    (clr_b, clr_a), (pb, pa) = clr, prev
    for side, n_clr, moved, top in ((0, clr_b, rec.bid - pb, pb), (1, clr_a, rec.ask - pa, pa)):
        r = np.repeat(np.arange(total), n_clr)
        j = np.arange(int(n_clr.sum())) - np.repeat(np.cumsum(n_clr) - n_clr, n_clr)
        at = np.repeat(start, n_clr) + j
        start = start + n_clr
        inner = moved[r] < 0 if side == 0 else moved[r] > 0  # the best receded
        step = -1 if side == 0 else 1
        far = top[r] + step * (depth - 1)
        ev.price[at] = np.where(inner, top[r] + step * j, far - step * j)
        ev.side[at], ev.reason[at], ev.x[at] = side, CLEAR, 0
        ev.floor[at] = -1  # marks a clear: the level restarts empty
        ev.level[at] = np.where(inner, j, depth - 1 - j)
    return start


def _flow(
    ev: Events, rng: np.random.Generator, law: DistanceLaw, per: Any, w: Scratch
) -> Slices[None]:
    """Limit orders and cancels: times in (t_prev, t], distance, side, size; into `ev`.
    In two slices: the times, the rest."""
    rec, m, lot, pb, pa, t_prev = per
    total, n = len(m), int(m.sum())
    m_start = np.cumsum(m) - m
    fl_rec = w("t0", n + 1)  # the record of each flow event
    fl_rec.fill(0)
    np.add.at(fl_rec, m_start[1:], 1)  # a record without flow starts where the next does
    fl_rec = np.cumsum(fl_rec[:n], out=w("t1", n))
    at = w.arange(n)
    fl = np.add(take(ev.off - m_start, fl_rec, out=w("t2", n)), at, out=w("t2", n))  # flow first
    i1, i2, f1 = w("t3", n), w("t4", n), w("t5", n, np.float64)

    def each(values: NDArray[Any], out: NDArray[Any]) -> NDArray[Any]:
        """A per-record value for each flow event, into `out`."""
        return take(values.astype(out.dtype, copy=False), fl_rec, out=out)

    # times: sorted inside (t_prev, t] by normalised exponential spacings, m + 1 a record
    gaps = np.cumsum(
        rng.standard_exponential(out=w("t0", n + total, np.float64)),
        out=w("t6", n + total, np.float64),
    )
    base = np.cumsum(m + 1) - (m + 1)  # each record's first spacing
    before = np.zeros(total)
    before[1:] = gaps[base[1:] - 1]
    u = take(gaps, np.add(at, fl_rec, out=i1), out=w("t7", n, np.float64))
    u -= each(before, f1)
    u /= each(gaps[base + m] - before, f1)
    dt = rec.ts - t_prev
    late = each(np.maximum(dt - 1, 0), f1)
    late *= u
    np.floor(late, out=late)
    i1[...] = late
    i1 += 1
    np.minimum(i1, each(dt, i2), out=i1)
    i1 += each(t_prev, i2)
    ev.ts[fl] = i1
    yield
    draws = rng.random(out=w("t8", 3 * n, np.float64))  # = add, distance, side draws
    add = np.less(draws[:n], ADD_SHARE, out=w("t9", n, bool))
    d = law(draws[n : 2 * n], w)
    best = np.equal(d, 0, out=w("t10", n, bool))
    lean = 0.5 + LEAN * (np.clip(rec.frac, 0, 1) - 0.5)  # at the best: P(bid) of adds
    p_bid = np.concatenate((np.full(total, 0.5), lean, 1 - lean))  # away, add, cancel
    pick = np.subtract(2, add, out=i1)
    pick *= best
    pick *= total
    pick += fl_rec
    ask = np.less(draws[2 * n :], take(p_bid, pick, out=f1), out=w("t11", n, bool))
    np.logical_not(ask, out=ask)
    lots = pareto_lots(rng, ORDER_TAIL, n, w)
    np.minimum(lots, 1e9, out=lots)
    size = w("t6", n)
    size[...] = lots
    size *= each(lot, i2)
    ev.side[fl] = ask.view(np.uint8)  # as bytes: a write without a cast
    price = each(pa - pb, i1)  # pb - d at the bid, pa + d at the ask
    price += d
    price += d
    price *= ask
    price -= d
    price += each(pb, i2)
    ev.price[fl] = price
    add_x = size
    if rec.kept is not None:  # a thinning book: new orders fail to arrive, cancels go on
        add_x = np.where(rng.random(n) < each(rec.kept, f1), size, 0)
    x = np.add(add_x, size, out=i1)
    x *= add
    x -= size
    ev.x[fl] = x
    floor = each(lot, i1)  # a cancel at the best leaves a lot
    floor *= np.logical_and(best, np.logical_not(add, out=ask), out=ask)
    ev.floor[fl] = floor
    ev.reason[fl] = np.subtract(CANCEL, add.view(np.uint8), out=w("t7", n, np.uint8))
    level = w("t12", n, np.uint16)
    level[...] = d
    ev.level[fl] = level  # the same type: a write without a cast


def _refill(
    ev: Events,
    rng: np.random.Generator,
    rec: Any,
    fill: tuple[NDArray[np.int64], NDArray[np.intp]],
    lot: NDArray[np.int64],
    depth: int,
    w: Scratch,
) -> None:
    """The refill after the moves of records `big` (k adds each): at the record's time, after
    its guarantees, 1 to depth - 1 ticks behind the new best (uniform), either side alike."""
    k, big = fill
    n = int(k.sum())
    r = np.repeat(big, k)
    at = np.repeat(ev.guard[big] + 2 - np.cumsum(k) + k, k)
    at += w.arange(n)
    u = rng.random(out=w("t0", 2 * n, np.float64))  # = rng.random((2, n)): side, distance
    ask = np.less(u[:n], 0.5, out=w("t1", n, bool))
    far = np.multiply(u[n:], depth - 1, out=u[n:])
    np.minimum(far, depth - 2, out=far)
    d = w("t2", n)
    d[...] = far  # truncation, as astype
    d += 1
    ev.side[at] = ask.view(np.uint8)
    bid = take(rec.bid, r, out=w("t3", n))
    price = take(rec.ask, r, out=w("t4", n))  # bid - d, or ask + d: bid - d + ask (ask - bid + 2d)
    price -= bid
    price += d
    price += d
    price *= ask
    price -= d
    price += bid
    ev.price[at] = price
    x = w("t3", n)
    x[...] = pareto_lots(rng, ORDER_TAIL, n, w)
    x *= take(lot, r, out=w("t4", n))
    ev.x[at] = x
    ev.floor[at], ev.reason[at], ev.level[at] = 0, ADD, d
