"""The first pass of a streamed Tardis replay: what must be known of a whole book file before its
first record goes out, kept in memory that does not grow with the file.

`index_files` reads Tardis book files block by block (`_replay_tardis.book_parts`) and keeps
per symbol only what the whole-file reader (`_tardis_books.tardis_books`) takes from all rows:
the universe it infers (the decimals prices and amounts use, the best bid and ask, the first
price), the widest side of any whole book (the depth served), and per block the earliest
timestamp (where the second pass, `_tardis_stream`, may cut the file into time windows). Every
row is parsed and checked here, so a bad row is refused before anything is served; amounts
that need float arithmetic (more than 8 decimals, or too long for integers) are checked against
the size unit they will be counted in. The universe is inferred, or given (`_tardis_given`
checks the rows against it); a symbol in two files is not streamed (rows interleave). numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _replay_tardis as tr
from ._model import decimals
from ._tardis_books import inferred_universe, price_places, sizes
from ._tardis_given import Given
from .book import MAX_DEPTH
from .errors import UserError
from .ticks import MAX_SYMBOLS
from .universe import Universe

_BIG = (2**63 - 1) // 10**8  # a mantissa this size or less counts in units of 10^-8 exactly


@dataclass
class Index:
    """A book file's first pass: its universe (symbols sorted), `lut` from the file's symbol
    ids (order of first appearance) to the universe's, the depth its whole books need, each
    symbol's price units per 1 (`scale`), tick in units (`step`) and size unit, and each
    block's earliest time (ns)."""

    path: Path
    kind: str
    universe: Universe
    lut: NDArray[np.intp]
    depth: int
    scale: NDArray[np.float64]
    step: NDArray[np.int64]
    unit: NDArray[np.float64]
    block_min: NDArray[np.int64]
    run_end: dict[int, int]  # each whole book of snapshot rows: the index of its last row


def index(path: Path, kind: str, block_bytes: int | None = None) -> Index:
    """The first pass over `path` (a Tardis book file of `kind`), in blocks of `block_bytes`."""
    got = index_files([(path, kind)], block_bytes)
    assert got is not None  # one file: no symbol in two
    return got[0]


def index_files(
    files: list[tuple[Path, str]],
    block_bytes: int | None = None,
    universe: Universe | None = None,
) -> list[Index] | None:
    """The first pass over book files (path, kind), on `universe` (None: one inferred from
    them); files without rows left out. None if a symbol is in two files (their rows
    interleave: the files are read whole)."""
    given = None if universe is None else Given(universe)
    scans = []
    for fi, (path, kind) in enumerate(files):
        reader, parts = tr.book_parts(path, kind, 0, block_bytes)
        agg = _Aggregates(kind == "incremental")
        for part in parts:
            agg.add(part, set(reader.snap_of.values()))
            if given is not None:
                given.add(fi, path, reader.names, part)
        agg.close()
        scans.append((path, kind, reader.names, agg))
    if not any(agg.block_min for *_, agg in scans):
        raise UserError(f"nothing to replay: no book rows in {', '.join(str(p) for p, _ in files)}")
    every = [name for _, _, names, _ in scans for name in names]
    if len(set(every)) < len(every):
        return None
    if given is not None:
        return _on_given(given, scans)
    names = sorted(every)
    at = {name: i for i, name in enumerate(names)}
    luts = [np.array([at[x] for x in file_names], np.intp) for _, _, file_names, _ in scans]
    n = len(names)
    places, most = np.zeros(n, np.intp), np.zeros(n, np.int64)
    bid, ask, first = np.zeros(n), np.zeros(n), np.ones(n)
    for (_, _, file_names, agg), lut in zip(scans, luts, strict=True):
        k = len(file_names)
        places[lut], most[lut] = agg.places[:k], agg.most[:k]
        bid[lut], ask[lut] = agg.bid[:k], agg.ask[:k]
        first[lut] = np.where(np.isnan(agg.first[:k]), 1.0, agg.first[:k])
    unit = np.array([10.0 ** -int(k) for k in np.minimum(most, 8)])
    universe = inferred_universe(names, places, bid, ask, first, unit)
    tick = universe.tick_size.astype(np.float64)
    scale = np.asarray(10.0 ** decimals(tick), np.float64)
    step = np.maximum(np.round(tick * scale), 1).astype(np.int64)
    for (path, _, _, agg), lut in zip(scans, luts, strict=True):
        agg.check_odd(unit[lut], path)
    depth = max(agg.depth(lut, scale, step) for (*_, agg), lut in zip(scans, luts, strict=True))
    return [
        Index(
            path,
            kind,
            universe,
            lut,
            depth,
            scale,
            step,
            unit,
            np.array(agg.block_min, np.int64),
            agg.run_end,
        )
        for (path, kind, _, agg), lut in zip(scans, luts, strict=True)
        if agg.block_min
    ]


def _on_given(given: Given, scans: list[tuple[Path, str, list[str], _Aggregates]]) -> list[Index]:
    """The files' indexes on a given universe (refused as the whole-file reader refuses)."""
    n = len(given.universe)
    most = np.zeros(n, np.int64)
    luts, odd = [], []
    for fi, (path, _, names, agg) in enumerate(scans):
        lut = np.maximum(given.lut(names), 0)  # every name is in it, or `finish` refuses
        luts.append(lut)
        np.maximum.at(most, lut, agg.most[: len(names)])
        for s, mant, places, amount, line in agg.odd:
            odd += [
                (fi, ln, path, int(lut[x]), m, p, a)
                for x, m, p, a, ln in zip(
                    s.tolist(),
                    mant.tolist(),
                    places.tolist(),
                    amount.tolist(),
                    line.tolist(),
                    strict=True,
                )
            ]
    universe = given.finish(most, odd)
    unit = universe.size_unit if universe.size_unit is not None else np.ones(n)
    depth = max(
        agg.depth(lut, given.scale, given.step) for (*_, agg), lut in zip(scans, luts, strict=True)
    )
    return [
        Index(
            path,
            kind,
            universe,
            lut,
            depth,
            given.scale,
            given.step,
            unit,
            np.array(agg.block_min, np.int64),
            agg.run_end,
        )
        for (path, kind, _, agg), lut in zip(scans, luts, strict=True)
        if agg.block_min
    ]


class _Aggregates:
    """Per symbol of the file (its ids), what the rows say so far."""

    def __init__(self, incremental: bool) -> None:
        self.incremental = incremental
        self.places = np.zeros(MAX_SYMBOLS, np.intp)  # decimals of prices
        self.most = np.zeros(MAX_SYMBOLS, np.int64)  # decimals of amounts (8: more or odd)
        self.bid = np.full(MAX_SYMBOLS, -np.inf)
        self.ask = np.full(MAX_SYMBOLS, np.inf)
        self.first = np.full(MAX_SYMBOLS, np.nan)
        self.span = np.full(MAX_SYMBOLS, -1.0)  # the widest side of a whole book, in price
        self.low = np.zeros(MAX_SYMBOLS)  # its lowest and highest price
        self.high = np.zeros(MAX_SYMBOLS)
        self.open: dict[int, tuple[int, float, float]] = {}  # (whole * 2 + side) -> so far
        self.block_min: list[int] = []
        self.odd: list[tuple[NDArray[Any], ...]] = []  # amounts past 10^-8 units' integers
        self.run_end: dict[int, int] = {}  # whole book (a run of snapshot rows) -> last row
        self.rows = 0

    def add(self, part: tuple[NDArray[Any], ...], still_open: set[int]) -> None:
        sym, ts, side, price, mant, places, amount, whole, line = part
        if not len(sym):
            return
        s = sym.astype(np.intp)
        self.block_min.append(int(ts.min()))
        np.maximum.at(self.places, s, price_places(price))
        np.maximum.at(self.most, s, np.where(places < 0, 8, places).astype(np.int64))
        bid, ask = side == 0, side == 1
        np.maximum.at(self.bid, s[bid], price[bid])
        np.minimum.at(self.ask, s[ask], price[ask])
        ids, at = np.unique(s[::-1], return_index=True)  # each symbol's first row here
        new = np.isnan(self.first[ids])
        self.first[ids[new]] = price[len(s) - 1 - at[new]]
        odd = (places < 0) | (places > 8) | (mant > _BIG)
        if odd.any():
            self.odd.append(tuple(c[odd] for c in (s, mant, places, amount, line)))
        self._wholes(s, side, price, amount, whole, still_open)
        if self.incremental:  # where each run of snapshot rows ends
            at = np.flatnonzero(whole >= 0)
            ids, rev = np.unique(whole[at][::-1], return_index=True)
            ends = at[len(at) - 1 - rev] + self.rows
            self.run_end.update(zip(ids.tolist(), ends.tolist(), strict=True))
        self.rows += len(s)

    def _wholes(
        self,
        s: NDArray[np.intp],
        side: NDArray[Any],
        price: NDArray[np.float64],
        amount: NDArray[np.float64],
        whole: NDArray[np.int64],
        still_open: set[int],
    ) -> None:
        """Each whole book's sides' lowest and highest price (levels of size > 0); a book
        whose run may go on in the next block is kept open."""
        given = (whole >= 0) & (amount > 0)
        key = whole[given] * 2 + side[given]
        keys, inv = np.unique(key, return_inverse=True)
        low = np.full(len(keys), np.inf)
        high = np.full(len(keys), -np.inf)
        np.minimum.at(low, inv.reshape(-1), price[given])
        np.maximum.at(high, inv.reshape(-1), price[given])
        ksym = np.zeros(len(keys), np.intp)
        ksym[inv.reshape(-1)] = s[given]
        for i, k in enumerate(keys.tolist()):
            if k in self.open:  # a run that went on from the block before
                _, lo, hi = self.open.pop(k)
                low[i], high[i] = min(lo, low[i]), max(hi, high[i])
        for k, (x, lo, hi) in list(self.open.items()):
            if k // 2 not in still_open:
                del self.open[k]
                self._widest(np.array([x]), np.array([lo]), np.array([hi]))
        keep = np.array([k // 2 in still_open for k in keys.tolist()], np.bool_)
        kept = (keys[keep], ksym[keep], low[keep], high[keep])
        for k, x, lo, hi in zip(*(c.tolist() for c in kept), strict=True):
            self.open[k] = (x, lo, hi)
        self._widest(ksym[~keep], low[~keep], high[~keep])

    def _widest(self, s: NDArray[np.intp], low: NDArray[Any], high: NDArray[Any]) -> None:
        span = high - low
        best = np.full(MAX_SYMBOLS, -1.0)
        np.maximum.at(best, s, span)
        pick = span == best[s]
        wider = np.zeros(MAX_SYMBOLS, np.bool_)
        wider[s[pick]] = span[pick] > self.span[s[pick]]
        at = pick & wider[s]
        self.span[s[at]], self.low[s[at]], self.high[s[at]] = span[at], low[at], high[at]

    def close(self) -> None:
        for x, lo, hi in self.open.values():
            self._widest(np.array([x]), np.array([lo]), np.array([hi]))
        self.open = {}

    def depth(self, lut: NDArray[np.intp], scale: NDArray[Any], step: NDArray[Any]) -> int:
        """The depth the whole-file reader takes: its widest whole book side in ticks, at
        least 20, at most MAX_DEPTH."""
        n = len(lut)
        has = np.flatnonzero(self.span[:n] >= 0)
        u = lut[has]
        wide = np.round(
            (np.round(self.high[has] * scale[u]) - np.round(self.low[has] * scale[u])) / step[u]
        )
        widest = int(wide.max()) + 1 if len(has) else 0
        return min(max(widest, 20), MAX_DEPTH)

    def check_odd(self, unit: NDArray[np.float64], path: Path) -> None:
        """The amounts integers cannot count: refused as the whole-file reader refuses them."""
        if not self.odd:
            return
        s, mant, places, amount, line = (np.concatenate(c) for c in zip(*self.odd, strict=True))
        sizes(mant, places, amount, unit, s, lambda k: f"{path} line {int(line[k])}")
