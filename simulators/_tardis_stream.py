"""The second pass of a streamed Tardis replay: a book file's level records and ticks, window by
window, the same as the whole-file reader makes them (`_tardis_books.tardis_books`).

The file is parsed again block by block and cut into windows of rows that are disjoint in time
(every row before a cut is earlier than every row after it, which the first pass's per-block
earliest times tell) and that split no whole book. Each window is numbered by
`_tardis_records.number` as the whole file would be, with what the windows before leave per
symbol carried in: its book (given first as a whole book it holds, whose records and tops are
dropped), its last book seq and tick seq, and its last top. A symbol's records depend only on
its own rows, so the records and ticks are the whole file's, in the same order. Memory holds a
window (about a block) and the books, whatever the file's size; a file whose rows never allow a
cut is one window. Files of other symbols are merged window by window (`merged`). numpy only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from . import _replay_tardis as tr
from ._tardis_books import sizes
from ._tardis_index import Index
from ._tardis_records import Rows, number
from ._tardis_tops import stable_order
from .book import LEVEL_DTYPE
from .ticks import TICK_DTYPE, TickBatch

_HELD = 2**62  # whole-book ids of the books carried in (the file's count from 0)
_END = 2**63 - 1
_LEVEL = np.dtype((np.void, LEVEL_DTYPE.itemsize))
_TICK = np.dtype((np.void, TICK_DTYPE.itemsize))
_FIELDS = ("sym", "ts", "side", "units", "size", "whole")


class Window(NamedTuple):
    """A window's level records (time order), which are first books (snapshot rows), the
    ticks of the books' tops, and the time of its last row (ns)."""

    records: NDArray[np.void]
    snapshot: NDArray[np.bool_]
    ticks: TickBatch
    end: int


def windows(ix: Index, block_bytes: int | None = None) -> Iterator[Window]:
    """The file's records and ticks, window by window, in time order."""
    reader, parts = tr.book_parts(ix.path, ix.kind, 0, block_bytes)
    state = _Carried(len(ix.universe))
    later = np.minimum.accumulate(np.append(ix.block_min, 2**63 - 1)[::-1])[::-1]
    buf: dict[str, NDArray[Any]] | None = None
    read = 0  # rows so far
    for k, part in enumerate(parts):
        got = _rows(ix, part)
        read += len(got["ts"])
        buf = got if buf is None else {f: np.concatenate((buf[f], got[f])) for f in _FIELDS}
        # runs of snapshot rows open now that go on in the blocks not read yet
        going = [w for w in reader.snap_of.values() if ix.run_end.get(w, -1) >= read]
        opened = min(going, default=2**63 - 1)
        cut = _cut(buf["ts"], buf["whole"], int(later[k + 1]), opened)
        if cut:
            yield state.number(ix, {f: v[:cut] for f, v in buf.items()})
            buf = {f: v[cut:] for f, v in buf.items()}
    if buf is not None and len(buf["ts"]):
        yield state.number(ix, buf)


def merged(ixs: list[Index], block_bytes: int | None = None) -> Iterator[Window]:
    """The windows of several files (no symbol in two), merged in time order, a file's
    before the next's at one time: the whole files' rows merged so. A window goes out once
    every file has read past its end (a file's later windows are later than its last)."""
    if len(ixs) == 1:
        yield from windows(ixs[0], block_bytes)
        return
    its = [windows(ix, block_bytes) for ix in ixs]
    pending: list[list[Window]] = [[] for _ in its]
    front = [-1] * len(its)  # the end of each file's last window (2**63 - 1: no more)
    while min(front) < _END:
        i = front.index(min(front))
        w = next(its[i], None)
        if w is None:
            front[i] = _END
        else:
            pending[i].append(w)
            front[i] = w.end
        bound = min(front)
        out = [_split(p, bound) for p in pending]
        pending = [rest for _, rest in out]
        due = [w for now, _ in out for w in now]
        if due:
            yield _join(due, bound)


def _split(ws: list[Window], bound: int) -> tuple[list[Window], list[Window]]:
    """`ws` up to `bound` (inclusive) and after it."""
    now, later = [], []
    for w in ws:
        r, t = w.records["ts"] <= bound, w.ticks["ts"] <= bound
        now.append(Window(w.records[r], w.snapshot[r], w.ticks[t], min(w.end, bound)))
        if not (r.all() and t.all()):
            later.append(Window(w.records[~r], w.snapshot[~r], w.ticks[~t], w.end))
    return now, later


def _join(ws: list[Window], bound: int) -> Window:
    """Windows of several files in one, in time order (stable: file order at one time)."""
    rec = np.concatenate([w.records.view(_LEVEL) for w in ws]).view(LEVEL_DTYPE)
    snap = np.concatenate([w.snapshot for w in ws])
    ticks = np.concatenate([w.ticks.view(_TICK) for w in ws]).view(TICK_DTYPE)
    r = np.argsort(rec["ts"], kind="stable")
    t = np.argsort(ticks["ts"], kind="stable")
    return Window(rec[r], snap[r], ticks[t], bound)


def _rows(ix: Index, part: tuple[NDArray[Any], ...]) -> dict[str, NDArray[Any]]:
    """A block's rows on the universe: symbol, ns, side, price units, size units, whole."""
    fsym, ts, side, price, mant, places, amount, whole, line = part
    sym = ix.lut[fsym.astype(np.intp)]
    units = np.round(price * ix.scale[sym]).astype(np.int64)
    size = sizes(mant, places, amount, ix.unit, sym, lambda k: f"line {int(line[k])}")
    return {"sym": sym, "ts": ts, "side": side, "units": units, "size": size, "whole": whole}


def _cut(ts: NDArray[np.int64], whole: NDArray[np.int64], later: int, opened: int) -> int:
    """The last place that may end a window: every row before it earlier than every one
    after it (`later`: the earliest of the blocks not read yet), and no whole book on both
    sides of it (`opened`: the first whole book that may go on in the blocks not read yet)."""
    n = len(ts)
    before = np.maximum.accumulate(ts)  # latest up to and including i
    after = np.minimum.accumulate(np.append(ts, later)[::-1])[::-1][1:]  # earliest from i + 1
    w_before = np.maximum.accumulate(whole)
    w = np.where(whole >= 0, whole, 2**63 - 1)
    w_after = np.minimum.accumulate(np.append(w, opened)[::-1])[::-1][1:]
    ok = (before < after) & (w_before < np.minimum(w_after, opened))
    at = np.flatnonzero(ok)
    return int(at[-1]) + 1 if len(at) and n else 0


class _Carried:
    """Per symbol, what the windows so far leave: seen, book seq, tick count, top, book."""

    def __init__(self, n: int) -> None:
        self.seen = np.zeros(n, np.bool_)
        self.seq = np.zeros(n, np.uint64)
        self.ticks = np.zeros(n, np.uint64)
        self.last = np.full((n, 4), -1, np.int64)
        empty = np.empty(0, np.int64)
        self.book = (empty, empty, empty, np.empty(0, np.uint64))  # sym, side, units, size

    def number(self, ix: Index, w: dict[str, NDArray[Any]]) -> Window:
        held = self._held(w)
        rows = Rows(*(np.concatenate((h, w[f])) for h, f in zip(held, _FIELDS, strict=True)))
        ts = rows.ts
        order = None if bool((ts[1:] >= ts[:-1]).all()) else stable_order(ts)
        got = number(rows, order, ix.step, ix.scale, True, len(held[0]), self.last)
        rec, snap = got.records, got.snapshot
        sym = rec["sym"].astype(np.intp)
        self._keep_books(sym, rec["side"], got.units, rec["size"])
        carried = self.seen[sym]
        rec["seq"] += np.where(carried, self.seq[sym] - np.uint64(1), np.uint64(0))
        drop = snap & carried
        rec, snap = rec[~drop], snap[~drop]
        touched = np.unique(w["sym"])
        self.seq[touched[~self.seen[touched]]] = 1  # a first book without levels is seq 1
        self.seen[touched] = True
        sym = rec["sym"].astype(np.intp)
        ids, at = np.unique(sym[::-1], return_index=True)
        self.seq[ids] = rec["seq"][len(sym) - 1 - at]
        ticks = got.ticks
        tsym = ticks["sym"].astype(np.intp)
        ticks["seq"] += self.ticks[tsym]
        self.ticks += np.bincount(tsym, minlength=len(self.seen)).astype(np.uint64)
        return Window(rec, snap, ticks, int(w["ts"].max()))

    def _held(self, w: dict[str, NDArray[Any]]) -> tuple[NDArray[Any], ...]:
        """The books of the window's symbols seen before, as whole-book rows at its start (a
        book without levels: one row of size 0)."""
        syms = np.unique(w["sym"])
        syms = syms[self.seen[syms]]
        b_sym, b_side, b_units, b_size = self.book
        mine = np.isin(b_sym, syms)
        empty = syms[~np.isin(syms, b_sym[mine])]
        by = np.argsort(w["sym"], kind="stable")
        any_units = w["units"][by[np.searchsorted(w["sym"][by], empty)]]  # a price it has
        sym = np.concatenate((b_sym[mine], empty))
        n = len(sym)
        return (
            sym.astype(np.intp),
            np.full(n, int(w["ts"].min()), np.int64),
            np.concatenate((b_side[mine], np.zeros(len(empty), np.int64))).astype(np.int8),
            np.concatenate((b_units[mine], any_units)).astype(np.int64),
            np.concatenate((b_size[mine], np.zeros(len(empty), np.uint64))),
            (_HELD + sym).astype(np.int64),
        )

    def _keep_books(
        self, sym: NDArray[np.intp], side: NDArray[Any], units: NDArray[Any], size: NDArray[Any]
    ) -> None:
        """The books after the window: each level's last write, if it holds a size."""
        b_sym, b_side, b_units, b_size = self.book
        keep = ~np.isin(b_sym, np.unique(sym))
        key = np.stack((units, side.astype(np.int64), sym.astype(np.int64)))
        order = np.lexsort(key)
        k = key[:, order]
        last = np.ones(len(order), np.bool_)
        last[:-1] = (k[:, 1:] != k[:, :-1]).any(axis=0)
        at = order[last]
        at = at[size[at] > 0]
        self.book = (
            np.concatenate((b_sym[keep], sym[at])).astype(np.int64),
            np.concatenate((b_side[keep], side[at])).astype(np.int64),
            np.concatenate((b_units[keep], units[at])).astype(np.int64),
            np.concatenate((b_size[keep], size[at])).astype(np.uint64),
        )
