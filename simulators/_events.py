"""A chunk's events: from arrival counts per cell and symbol to tick records, without a sort.

Made in time order: each cell's events get sorted uniform times (normalised exponential
spacings) and a shuffled list of who they are (symbol, trade or quote), which is the same law as
independent uniform times. A radix sort by symbol (stable, so time order holds inside) lays each
symbol's events out as one segment, where trade effects carry forward by cumulative sums over
the trades: the k-th trade so far gives the impact, the last print and the volume; a trade
prints at the quote of the event before it.

`Events` holds the per-symbol arrays it reads and the state it carries forward; the market owns
those arrays and shares them (updated in place). The order of the draws from the events' stream
is part of what a seed reproduces. Imports numpy and the simulator's book, scenario play and
ticks; never `market`, which calls it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from . import book as bk
from ._ahead import Slices
from ._scenario_play import Play, insert_fat_fingers
from .ticks import TICK_DTYPE, TickBatch, TickFlag

# A chunk's level updates (prices as prices) and the books before it: (sizes, bid, ask)
Held = tuple[bk.LevelBatch, tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]]
GRID_NS = 100_000_000  # arrival cell: 100 ms (the Hawkes decay is 20 of them)
PATH_CELLS = 10  # price path resolution inside an arrival cell: 10 ms
ODD_LOT_P = 0.3
SIZE_TAIL = 1.5  # Pareto exponent of trade sizes in lots
QUOTE_DEPTH = 3.5  # quoted sizes: 1 + floor(QUOTE_DEPTH x Exp(1)) lots, geometric, mean ~4 lots
MAX_SIZE = int(np.iinfo(np.uint32).max)  # a trade's shares must fit `last_size`

Moved = Callable[[NDArray[np.int64], NDArray[np.intp]], NDArray[np.float64]]
"""The log-price move since the chunk began at (10 ms step, symbol) pairs."""


@dataclass(frozen=True, slots=True, eq=False)
class Symbols:
    """Per-symbol arrays the events read; the state ones are the market's, updated in place."""

    lot: NDArray[np.int64]  # a round lot in size units
    impact: NDArray[np.float64]  # ticks of efficient price per log-lot traded
    tick: NDArray[np.float64]
    spread_k: NDArray[np.float64]  # spread ticks per tick of volatility
    sigma: NDArray[np.float64]
    units: NDArray[Any]  # prices leave as ticks * units / scale
    scale: NDArray[Any]
    # state, carried from chunk to chunk
    x: NDArray[np.float64]  # efficient log-price at the chunk's start
    bid: NDArray[np.int64]  # quote in force, in ticks
    ask: NDArray[np.int64]
    last_tk: NDArray[np.int64]  # last trade in ticks
    last_sz: NDArray[np.int64]
    volume: NDArray[np.int64]
    seq: NDArray[np.int64]
    opened: NDArray[np.bool_]  # traded or quoted in this session already
    last: TickBatch  # latest record per symbol of the released chunks


class Chunk(NamedTuple):
    """What one chunk's events are made from."""

    t0_ns: int
    n_tr: NDArray[np.int64]  # (cells, symbols) trades
    n_q: NDArray[np.int64]  # (cells, symbols) quote refreshes
    moved: Moved
    own_vol: NDArray[np.float64]  # (symbols,)
    vol_u: NDArray[np.float64]  # (cells,) intraday volatility multiplier
    vol_sym: NDArray[np.float64] | None  # (cells, symbols) a scenario's vol factor
    halted: NDArray[np.bool_]  # (cells, symbols) when a scenario plays


class _Order(NamedTuple):
    """The chunk's events in time order (`code`, `rel_ns`) and laid out by symbol."""

    code: NDArray[np.intp]  # 2 sym: trade, 2 sym + 1: quote
    rel_ns: NDArray[np.int64]  # since t0_ns
    sym: NDArray[np.intp]  # time order
    by_sym: NDArray[np.intp]  # symbol order -> time order
    per_sym: NDArray[np.intp]
    seg_start: NDArray[np.intp]
    s: NDArray[np.intp]  # symbol of each event in symbol order
    step: NDArray[np.int64]  # 10 ms path step, symbol order


class _Trades(NamedTuple):
    """The trades (positions `tr` in symbol order): side, size, and carried sums."""

    tr: NDArray[np.intp]
    s_tr: NDArray[np.intp]
    buy: NDArray[np.bool_]
    size: NDArray[np.int64]
    g: NDArray[np.intp]  # trades so far (symbol order); index 0 = no trade
    g0: NDArray[np.intp]  # trades in earlier segments
    cum_impact: NDArray[np.float64]
    cum_size: NDArray[np.int64]


class _Quotes(NamedTuple):
    price_ticks: NDArray[np.float64]
    bid: NDArray[np.int64]
    ask: NDArray[np.int64]
    spread: NDArray[np.int64]
    thin: NDArray[np.float64] | None  # a scenario's thinning of new orders
    thin_sizes: bool  # quoted sizes thin too (a liquidity event plays)


class _Carried(NamedTuple):
    last_tk: NDArray[np.int64]
    last_sz: NDArray[np.int64]
    volume: NDArray[np.int64]
    seq: NDArray[np.int64]
    flags: NDArray[np.uint16]


class Events:
    """Makes a market's chunks of records; see the module docstring."""

    def __init__(
        self,
        sy: Symbols,
        rng: np.random.Generator,
        cells: int,
        book: bk.Book | None,
        play: Play | None,
    ) -> None:
        self.sy, self._rng, self._cells = sy, rng, cells
        self._book, self.play = book, play
        # ticks * units / scale with every units 1 and one scale is ticks / scale, exactly
        one_scale = bool((sy.units == 1).all() and (sy.scale == sy.scale[0]).all())
        self._scale: float | None = float(sy.scale[0]) if one_scale and len(sy.scale) else None

    def make(self, ch: Chunk) -> Slices[tuple[TickBatch, NDArray[np.intp], Held | None]]:
        """All events of a chunk, in slices (`_ahead`): the records, each symbol's last record
        in it (or -1), and with books the level updates and the books before (`Held`)."""
        sy, rng, n = self.sy, self._rng, len(self.sy.lot)
        order = _layout(rng, ch.n_tr, ch.n_q, self._cells)
        if order is None:
            return np.empty(0, TICK_DTYPE), np.full(n, -1, np.intp), None
        trades = _trades(rng, sy, order)
        q = self._quotes(ch, order, trades)
        carried = _carry(sy, order, trades, q)
        yield
        held: Held | None = None
        quoted: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None
        if self._book is not None:
            held, quoted = yield from self._book_step(ch.t0_ns, order, trades, q)
            yield
        last = _commit(sy, order, trades, q, carried)
        out = _records(rng, sy, ch.t0_ns, order, q, carried, quoted, self._scale)
        play = self.play
        if play is not None and play.fat:
            state = {"seq": sy.seq, "volume": sy.volume, "last_tk": sy.last_tk}
            state |= {"last_sz": sy.last_sz, "lot": sy.lot}
            span = (ch.t0_ns, ch.t0_ns + self._cells * GRID_NS, ch.halted)
            price = (sy.tick, sy.units, sy.scale)
            out = insert_fat_fingers(play, out, last, state, sy.last, span, price)
        return out, last, held

    def _quotes(self, ch: Chunk, o: _Order, t: _Trades) -> _Quotes:
        """Every event requotes from the efficient price; the spread grows with volatility."""
        sy = self.sy
        x_now = ch.moved(o.step, o.s)
        x_now += t.cum_impact.take(t.g)
        x_now += (sy.x - t.cum_impact[t.g0]).take(o.s)
        play, widen, thin = self.play, None, None
        if play is not None and (play.has_moves or play.has_liquidity):
            moved_by, widen, thin = play.effects(o.rel_ns[o.by_sym] + ch.t0_ns, o.s)
            x_now += moved_by
        price_ticks = np.exp(x_now, out=x_now)
        price_ticks *= (1.0 / sy.tick).take(o.s)
        vol_ticks = (sy.spread_k * sy.sigma * ch.own_vol).take(o.s)
        per_step = np.repeat(ch.vol_u, PATH_CELLS).take(o.step)
        per_step *= price_ticks
        vol_ticks *= per_step
        if ch.vol_sym is not None:
            vol_ticks *= ch.vol_sym[o.step // PATH_CELLS, o.s]
        extra = self._rng.standard_exponential(len(o.code))
        extra *= vol_ticks
        np.minimum(np.floor(extra, out=extra), 20, out=extra)
        spread = extra.astype(np.int64)
        spread += 1
        if widen is not None and play is not None and play.has_liquidity:
            spread = np.maximum(1, np.round(spread * widen)).astype(np.int64)
        half = spread / 2
        np.subtract(price_ticks, half, out=half)
        bid = np.maximum(np.round(half, out=half), 1, out=half).astype(np.int64)
        thin_sizes = thin is not None and play is not None and play.has_liquidity
        return _Quotes(price_ticks, bid, bid + spread, spread, thin, thin_sizes)

    def _book_step(
        self, t0_ns: int, o: _Order, t: _Trades, q: _Quotes
    ) -> Slices[tuple[Held, tuple[NDArray[np.int64], NDArray[np.int64]]]]:
        """The book around these quotes and trades (its top is the quote): its level updates,
        the books before, and its best sizes."""
        assert self._book is not None
        sy, thin = self.sy, q.thin
        frac = (q.price_ticks - q.bid) / q.spread
        ts_sym = o.rel_ns[o.by_sym] + t0_ns
        kept = thin if thin is not None and (thin < 1).any() else None  # else no draws
        rec = bk.Records(
            o.s, ts_sym, q.bid, q.ask, frac, t.tr, t.buy, t.size, o.seg_start, o.per_sym, kept
        )
        before = (self._book.sizes.copy(), sy.bid.copy(), sy.ask.copy())
        levels, bid_sz, ask_sz = yield from self._book.steps(rec, sy.bid, sy.ask, t0_ns)
        return (levels, before), (np.minimum(bid_sz, MAX_SIZE), np.minimum(ask_sz, MAX_SIZE))


def _layout(
    rng: np.random.Generator, n_tr: NDArray[np.int64], n_q: NDArray[np.int64], cells: int
) -> _Order | None:
    """Each cell's events at sorted uniform times, shuffled among who they are; None if none."""
    n = n_tr.shape[1]
    counts = np.stack((n_tr, n_q), axis=2).reshape(cells, 2 * n)  # code 2s: trade, 2s+1: quote
    per_cell = counts.sum(axis=1)
    total = int(per_cell.sum())
    if total == 0:
        return None
    code = np.empty(total, np.intp)
    rel_ns = np.empty(total, np.int64)  # since t0_ns
    codes, end = np.arange(2 * n), 0
    for c in range(cells):
        k, start = int(per_cell[c]), end
        end += k
        if not k:
            continue
        who = code[start:end]
        who[:] = np.repeat(codes, counts[c])
        rng.shuffle(who)
        spacing = rng.standard_exponential(k + 1)
        np.cumsum(spacing, out=spacing)
        at = spacing[:-1]
        at *= GRID_NS / spacing[-1]
        rel_ns[start:end] = at
        if c:
            rel_ns[start:end] += c * GRID_NS
    sym = code >> 1
    # symbol order: one segment per symbol, in time order (radix sort on 16 bits is linear)
    by_sym = np.argsort(sym.astype(np.uint16), kind="stable")
    per_sym = n_tr.sum(axis=0) + n_q.sum(axis=0)  # np.bincount(sym), from the counts
    seg_start = np.cumsum(per_sym) - per_sym
    s = np.repeat(np.arange(n), per_sym)
    step = rel_ns[by_sym] // (GRID_NS // PATH_CELLS)
    return _Order(code, rel_ns, sym, by_sym, per_sym, seg_start, s, step)


def _trades(rng: np.random.Generator, sy: Symbols, o: _Order) -> _Trades:
    """Side, size (round lots with a Pareto tail, or an odd lot) and impact of each trade."""
    n = len(sy.lot)
    is_trade = ((o.code & 1) == 0)[o.by_sym]  # a gather of bytes, not of codes
    tr = np.flatnonzero(is_trade)
    m, s_tr = tr.size, o.s[tr]
    lot_tr = sy.lot[s_tr]
    buy = rng.random(m) < 0.5
    odd = rng.random(m) < ODD_LOT_P
    lots = trade_lots(rng.standard_exponential(m))  # rng.pareto(SIZE_TAIL, m)'s draws
    size = np.where(odd, rng.integers(1, np.maximum(lot_tr, 2)), lots * lot_tr)
    size = np.minimum(size, MAX_SIZE)
    impact = (sy.impact * sy.tick / np.exp(sy.x))[s_tr] * np.log1p(size / lot_tr)
    impact = np.where(buy, impact, -impact)  # buys lift the price, sells press it
    g = np.cumsum(is_trade)
    tr_per_sym = np.bincount(s_tr, minlength=n)
    g0 = np.cumsum(tr_per_sym) - tr_per_sym
    cum_impact = np.concatenate(([0.0], np.cumsum(impact)))
    cum_size = np.concatenate(([0], np.cumsum(size)))
    return _Trades(tr, s_tr, buy, size, g, g0, cum_impact, cum_size)


def trade_lots(e: NDArray[np.float64]) -> NDArray[np.int64]:
    """ceil(1 + Pareto(SIZE_TAIL)) lots, at most MAX_SIZE, from standard exponentials `e`
    (overwritten): what `rng.pareto` makes of the same draws, expm1(e / SIZE_TAIL); the
    ceil twin of `_book_kernels.pareto_lots`.

    numpy's vector expm1 is ~4x faster than the libm one `pareto` calls and within a few ulp
    of it, so only a value that close to a whole number can round up differently: those few
    are made again with libm's, which keeps every seed's sizes as they were."""
    e /= SIZE_TAIL
    p = np.expm1(e)
    p += 1.0
    lots = np.ceil(p)
    gap = lots - p  # to the whole number above: near 0 or near 1 is near a whole number
    near = np.flatnonzero((gap <= 1e-12 * lots) | (gap >= 1 - 1e-12 * lots))
    for i in near.tolist():  # about one draw in 10^11
        lots[i] = math.ceil(math.expm1(float(e[i])) + 1.0)
    return np.minimum(lots, MAX_SIZE, out=lots).astype(np.int64)


def _carry(sy: Symbols, o: _Order, t: _Trades, q: _Quotes) -> _Carried:
    """Last print, last size, volume, seq and flags of every event (symbol order)."""
    per_sym, total = o.per_sym, len(o.code)
    # a trade prints at the quote in force before it: its segment's previous event, or state
    before = t.tr - 1  # -1 (the first event) is a segment's head, fixed below
    printed = np.where(t.buy, q.ask.take(before), q.bid.take(before))
    head = np.flatnonzero(t.tr == o.seg_start[t.s_tr])
    s_head = t.s_tr[head]
    printed[head] = np.where(t.buy[head], sy.ask[s_head], sy.bid[s_head])
    # Each symbol's state, then its trades, in one array: an event's print, size and volume
    # are at `g + s` (its symbol's slot plus its trades so far), so no select per event.
    n, m = len(sy.lot), len(t.tr)
    slot, at_tr = t.g0 + np.arange(n), np.arange(1, m + 1) + t.s_tr
    ext = np.empty((3, n + m), np.int64)
    ext_tk, ext_sz, ext_vol = ext  # rows: 1-d fancy assignment is the fast one
    ext_tk[slot], ext_sz[slot], ext_vol[slot] = sy.last_tk, sy.last_sz, sy.volume
    ext_tk[at_tr], ext_sz[at_tr] = printed, t.size
    ext_vol[at_tr] = t.cum_size[1:] + (sy.volume - t.cum_size[t.g0])[t.s_tr]
    at = t.g + o.s
    last_tk, last_sz, volume = ext_tk.take(at), ext_sz.take(at), ext_vol.take(at)
    seq = np.arange(total) + (sy.seq + 1 - o.seg_start).take(o.s)
    flags = np.zeros(total, np.uint16)
    flags[t.tr] = np.where(t.buy, np.uint16(_TRADE | _BUY), np.uint16(_TRADE | _SELL))
    opening = np.flatnonzero((per_sym > 0) & ~sy.opened)
    flags[o.seg_start[opening]] |= _OPEN
    return _Carried(last_tk, last_sz, volume, seq, flags)


def _commit(sy: Symbols, o: _Order, t: _Trades, q: _Quotes, c: _Carried) -> NDArray[np.intp]:
    """Leave the state of each symbol's last event; return where that event is (or -1)."""
    active = np.flatnonzero(o.per_sym)
    tail = o.seg_start[active] + o.per_sym[active] - 1
    sy.x[active] += t.cum_impact[t.g[tail]] - t.cum_impact[t.g0[active]]
    sy.bid[active], sy.ask[active] = q.bid[tail], q.ask[tail]
    sy.last_tk[active], sy.last_sz[active] = c.last_tk[tail], c.last_sz[tail]
    sy.volume[active], sy.seq[active] = c.volume[tail], c.seq[tail]
    sy.opened[active] = True
    last = np.full(len(sy.lot), -1, np.intp)
    last[active] = o.by_sym[tail]
    return last


def _records(
    rng: np.random.Generator,
    sy: Symbols,
    t0_ns: int,
    o: _Order,
    q: _Quotes,
    c: _Carried,
    quoted: tuple[NDArray[np.int64], NDArray[np.int64]] | None,
    one_scale: float | None,
) -> TickBatch:
    """Records in time order: what was computed in symbol order is laid out as records in that
    order, then gathered into time order at once (whole records, not field by field)."""
    total, by_sym, thin = len(o.code), o.by_sym, q.thin
    sym_order = np.empty(total, TICK_DTYPE)
    if one_scale is not None:  # every symbol's prices are ticks / one_scale
        sym_order["bid"] = q.bid / one_scale
        sym_order["ask"] = q.ask / one_scale
        sym_order["last"] = c.last_tk / one_scale
    else:
        units, scale = sy.units.take(o.s), sy.scale.take(o.s)
        sym_order["bid"] = q.bid * units / scale
        sym_order["ask"] = q.ask * units / scale
        sym_order["last"] = c.last_tk * units / scale
    sym_order["seq"] = c.seq
    sym_order["volume"] = c.volume
    sym_order["flags"] = c.flags
    sym_order["last_size"] = c.last_sz
    bid_e = rng.standard_exponential(total)  # drawn all the same: books on or off, one stream
    ask_e = rng.standard_exponential(total)
    if quoted is not None:
        sym_order["bid_size"], sym_order["ask_size"] = quoted
    at = np.empty(total, np.intp)  # time order -> symbol order
    at[by_sym] = np.arange(total)
    out = sym_order.take(at)  # a gather is cheaper than a scatter through by_sym
    out["ts"] = o.rel_ns + t0_ns
    out["sym"] = o.sym
    if quoted is None:
        lot = sy.lot[o.sym]
        thin_t = None
        if thin is not None and q.thin_sizes:  # fewer orders queue
            thin_t = thin.take(at)
        for f, e in (("bid_size", bid_e), ("ask_size", ask_e)):
            e *= QUOTE_DEPTH
            np.floor(e, out=e)
            e += 1
            e *= lot
            if thin_t is not None:
                out[f] = e
                out[f] = lot * (1 + np.floor((out[f] // lot - 1) * thin_t))
            else:
                out[f] = e
    return out


_TRADE, _BUY, _SELL, _OPEN = (
    int(f) for f in (TickFlag.TRADE, TickFlag.BUY, TickFlag.SELL, TickFlag.OPEN)
)
