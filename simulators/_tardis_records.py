"""Tardis rows in time order as level records numbered per symbol, and their tops as ticks.

A change row is one record (book seq +1). A whole book (`whole` >= 0: a run of snapshot rows, or
a `book_snapshot_N` row) is taken where its first row falls in time: a symbol's first event is
its book before the replay (records at seq 1, marked `snapshot`); a later one becomes the changes
from the book held to it (removals, then new sizes, each side by price), numbered on. Changes
are placed with array operations; only whole books go through Python (dicts of their levels),
and a symbol's book is brought up to date only when a whole book of it comes; files of whole
books alone (`book_snapshot_N`) are diffed all at once (`_tardis_wholes`). Seqs are a
per-symbol running sum. Tops come from `_tardis_tops`; a tick is made where a symbol's top
differs from its last one, one per symbol and time (the last). numpy only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from ._tardis_tops import stable_order, tops
from ._tardis_wholes import Made, whole_records
from .book import LEVEL_DTYPE, MAX_DEPTH
from .ticks import TICK_DTYPE, TickBatch

_MAX_SIZE = 2**32 - 1  # a tick's bid_size and ask_size are u4
_Book = tuple[dict[int, int], dict[int, int]]


class Rows(NamedTuple):
    """The rows of every book file in file order: symbol, ns, side, price units, size units,
    whole book (-1: a change)."""

    sym: NDArray[np.intp]
    ts: NDArray[np.int64]
    side: NDArray[np.int8]
    units: NDArray[np.int64]
    size: NDArray[np.uint64]
    whole: NDArray[np.int64]


class Numbered(NamedTuple):
    records: NDArray[np.void]  # LEVEL_DTYPE, time order
    snapshot: NDArray[np.bool_]  # the rows of each symbol's first whole book
    widest: int  # ticks of the widest side of any whole book
    ticks: TickBatch
    units: NDArray[np.int64]  # each record's price in price units


def number(
    rows: Rows,
    order: NDArray[np.intp] | None,
    tick: NDArray[np.int64],
    scale: NDArray[np.float64],
    want_tops: bool,
    held: int = 0,
    last: NDArray[np.int64] | None = None,
) -> Numbered:
    """The records of `rows` taken in `order` (time, stable; None: as they are); `tick` each
    symbol's tick in price units, `scale` its price units per 1. `held`: the first rows are
    whole books the symbols hold already (first in time too), whose tops make no ticks; `last`:
    each symbol's top before the rows (see `tops`), updated in place."""
    n_sym = len(tick)
    s = (
        rows
        if order is None
        else Rows(
            rows.sym[order],
            rows.ts[order],
            rows.side[order],
            rows.units[order],
            rows.size[order],
            rows.whole[order],
        )
    )
    change = s.whole < 0
    at = np.flatnonzero(~change)
    ids, first = np.unique(s.whole[at], return_index=True)
    anchor = at[first]  # where each whole book is taken: its first row in time
    by_time = np.argsort(anchor, kind="stable")
    anchor, ids = anchor[by_time], ids[by_time]
    if not change.any():  # whole books only (book_snapshot_N): all at once
        by_id = np.argsort(ids)
        book_of = by_id[np.searchsorted(ids[by_id], rows.whole)]
        made = whole_records(rows.side, rows.units, rows.size, book_of, s.sym[anchor], anchor, tick)
        return _laid_out(s, change, anchor, made, scale, want_tops, held, last)
    members = np.flatnonzero(rows.whole >= 0)
    members = members[stable_order(rows.whole[members])]  # file order within a book
    bounds = np.searchsorted(rows.whole[members], np.stack((ids, ids + 1)))
    event = change.copy()
    event[anchor] = True
    first_event = np.full(n_sym, len(s.ts), np.int64)
    np.minimum.at(first_event, s.sym[event], np.flatnonzero(event))
    wholes = _Wholes(s, change, n_sym)
    for a, lo, hi in zip(anchor.tolist(), bounds[0].tolist(), bounds[1].tolist(), strict=True):
        m = members[lo:hi]
        book: _Book = ({}, {})
        for side, u, z in zip(
            rows.side[m].tolist(), rows.units[m].tolist(), rows.size[m].tolist(), strict=True
        ):
            if z:
                book[side][u] = z
        wholes.take(a, book, first_event[s.sym[a]] == a, int(tick[s.sym[a]]))
    return _laid_out(s, change, anchor, wholes, scale, want_tops, held, last)


class _Wholes:
    """The records of each whole book, made in time order from the books held."""

    def __init__(self, s: Rows, change: NDArray[np.bool_], n_sym: int) -> None:
        self.s = s
        self.held: dict[int, _Book] = {}
        pos = np.flatnonzero(change)
        by = stable_order(s.sym[pos].astype(np.uint16))
        self.changes = pos[by]  # each symbol's change rows, in time order
        edges = np.searchsorted(s.sym[pos][by], np.arange(n_sym + 1))
        self.next = edges[:-1].copy()  # each symbol's first change not yet in `held`
        self.end = edges[1:]
        self.side: list[int] = []
        self.units: list[int] = []
        self.size: list[int] = []
        self.inc: list[int] = []
        self.snap: list[bool] = []
        self.counts: list[int] = []
        self.bumps: list[tuple[int, int]] = []  # (row, symbol): a seq 1 book without levels
        self.widest = 0

    def take(self, a: int, book: _Book, first: bool, tick: int) -> None:
        sym = int(self.s.sym[a])
        for side in (0, 1):
            if book[side]:
                wide = round((max(book[side]) - min(book[side])) / tick) + 1
                self.widest = max(self.widest, wide)
        if first:  # its book before the replay: snapshot rows at seq 1
            made = [(side, u, z) for side in (0, 1) for u, z in book[side].items()]
            self.inc += [1] + [0] * (len(made) - 1) if made else []
            self.snap += [True] * len(made)
            if not made:
                self.bumps.append((a, sym))
        else:
            old = self._held(sym, a)
            made = []
            for side in (0, 1):
                made += [(side, u, 0) for u in sorted(old[side].keys() - book[side].keys())]
                made += [
                    (side, u, z) for u, z in sorted(book[side].items()) if old[side].get(u) != z
                ]
            self.inc += [1] * len(made)
            self.snap += [False] * len(made)
        self.held[sym] = ({**book[0]}, {**book[1]})
        lo = int(self.next[sym])
        self.next[sym] = lo + self.changes[lo : self.end[sym]].searchsorted(a)
        for side, u, z in made:
            self.side.append(side)
            self.units.append(u)
            self.size.append(z)
        self.counts.append(len(made))

    def _held(self, sym: int, a: int) -> _Book:
        """Symbol `sym`'s book just before row `a`: the one held, with the changes since."""
        book = self.held.setdefault(sym, ({}, {}))
        lo, hi = int(self.next[sym]), int(self.end[sym])
        rows = self.changes[lo:hi][: self.changes[lo:hi].searchsorted(a)]
        for side in (0, 1):
            mine = rows[self.s.side[rows] == side]
            units, size = self.s.units[mine], self.s.size[mine]
            levels = book[side]
            levels.update(zip(units.tolist(), size.tolist(), strict=True))
            for u in set(units[size == 0].tolist()):
                if levels.get(u) == 0:  # its last change removed it
                    del levels[u]
        return book


def _laid_out(
    s: Rows,
    change: NDArray[np.bool_],
    anchor: NDArray[np.int64],
    wholes: _Wholes | Made,
    scale: NDArray[np.float64],
    want_tops: bool,
    held: int,
    last: NDArray[np.int64] | None,
) -> Numbered:
    """Changes and whole books' records in one stream, in time order, with their seqs."""
    k = np.array(wholes.counts, np.int64)
    counts = change.astype(np.int64)
    counts[anchor] = k
    offs = np.cumsum(counts) - counts
    total = int(counts.sum())
    out = np.zeros(total, LEVEL_DTYPE)  # written field by field: no copy of each column
    sym, ts, side, size = out["sym"], out["ts"], out["side"], out["size"]
    units = np.empty(total, np.int64)
    inc = np.ones(total, np.int8)
    snap = np.zeros(total, np.bool_)
    asked = np.zeros(total, np.bool_)  # where a tick may come: after a change or a whole book
    c = offs[change]
    sym[c], ts[c], side[c] = s.sym[change], s.ts[change], s.side[change]
    units[c], size[c], asked[c] = s.units[change], s.size[change], True
    dest = np.repeat(offs[anchor], k) + np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
    sym[dest], ts[dest] = np.repeat(s.sym[anchor], k), np.repeat(s.ts[anchor], k)
    side[dest] = np.array(wholes.side, np.int8)
    units[dest] = np.array(wholes.units, np.int64)
    size[dest] = np.array(wholes.size, np.uint64)
    inc[dest] = np.array(wholes.inc, np.int8)
    snap[dest] = np.array(wholes.snap, np.bool_)
    asked[(offs[anchor] + k - 1)[(k > 0) & (anchor >= held)]] = True
    for a, x in wholes.bumps:  # a book at seq 1 without levels: the symbol's next record is 2
        later = np.flatnonzero(sym[offs[a] :] == x)
        if len(later):
            inc[offs[a] + later[0]] += 1
    out["seq"] = _running(sym, inc)
    out["price"] = units / scale[sym]
    ticks = np.zeros(0, TICK_DTYPE)
    if want_tops:
        ticks = _ticks(sym, ts, side, units, size, asked, scale, last)
    return Numbered(out, snap, min(max(wholes.widest, 20), MAX_DEPTH), ticks, units)


def _running(sym: NDArray[np.integer], inc: NDArray[np.integer]) -> NDArray[np.int64]:
    """Per symbol, the running sum of `inc` in order."""
    by = stable_order(sym.astype(np.uint16))
    total = np.cumsum(inc[by])
    head = np.ones(len(by), np.bool_)
    head[1:] = sym[by][1:] != sym[by][:-1]
    start = np.maximum.accumulate(np.where(head, np.arange(len(by)), 0)) if len(by) else by
    out = np.empty(len(by), np.int64)
    out[by] = total - total[start] + inc[by][start]
    return out


def _ticks(
    sym: NDArray[np.int64],
    ts: NDArray[np.int64],
    side: NDArray[np.int8],
    units: NDArray[np.int64],
    size: NDArray[np.uint64],
    asked: NDArray[np.bool_],
    scale: NDArray[np.float64],
    before: NDArray[np.int64] | None,
) -> TickBatch:
    """A tick where a symbol's top (both sides, not crossed) differs from its last one; of
    those in a row for one symbol and time, the last."""
    t = tops(sym, side, units, size, asked, before)  # where a symbol's top changed
    at, s = t.at, sym[t.at]
    last = np.ones(len(at), np.bool_)  # the next tick is of another symbol or time
    last[:-1] = (s[1:] != s[:-1]) | (ts[at][1:] != ts[at][:-1])
    pick = np.flatnonzero(last)
    out = np.zeros(len(pick), TICK_DTYPE)
    sym_t = sym[t.at[pick]]
    scale_t = scale[sym_t]
    out["ts"], out["sym"] = ts[t.at[pick]], sym_t
    out["bid"], out["ask"] = t.bid[pick] / scale_t, t.ask[pick] / scale_t
    out["bid_size"] = np.minimum(t.bid_size[pick], _MAX_SIZE)
    out["ask_size"] = np.minimum(t.ask_size[pick], _MAX_SIZE)
    out["seq"] = _running(sym_t, np.ones(len(pick), np.int64))
    return out
