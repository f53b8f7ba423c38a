"""A replay's order books: recorded level records released in time order, as the market's are.

`ReplayBook` holds every booked symbol's book now (`protocol`-free: price units -> size per side)
and releases the level records due by a time, in order, for the server's `Books.publish`; its
`snapshot()` is the market's `book_snapshot` (a `ladder_dtype(depth)` record per symbol). Input
rows are changes or snapshots (`bookfile`): a symbol's first snapshot is its book before the
replay starts; a later one (a recorder that resynced, a Tardis snapshot) becomes the changes that
turn the book held into it, numbered so that they end at the snapshot's seq: a client that held
every change before takes them, one that sees a jump in seq fetches a fresh snapshot. A change
of a symbol not yet booked starts an empty book. numpy only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ._model import decimals
from .book import LEVEL_DTYPE, check_depth, ladder_dtype
from .bookfile import BookRows, book_path, is_book_path, read_book_parquet
from .errors import UserError
from .universe import Universe

_RECORD = np.dtype((np.void, LEVEL_DTYPE.itemsize))


class _Book:
    __slots__ = ("levels", "seq", "ts")

    def __init__(self, seq: int = 0, ts: int = 0) -> None:
        self.levels: tuple[dict[int, int], dict[int, int]] = ({}, {})  # bids, asks: units -> size
        self.seq, self.ts = seq, ts


class ReplayBook:
    """Level records (LEVEL_DTYPE, ts order; `snapshot` marks whole-book rows), replayed."""

    def __init__(
        self,
        records: NDArray[np.void],
        snapshot: NDArray[np.bool_],
        tick_size: NDArray[np.float64],
        depth: int,
    ) -> None:
        self.depth = depth
        self._scale = 10.0 ** decimals(tick_size.astype(np.float64)).astype(np.float64)
        self._tick = np.maximum(np.round(tick_size * self._scale), 1).astype(np.int64)
        self._books: dict[int, _Book] = {}
        # A symbol whose rows start with a snapshot: that is its book before the replay starts.
        sym = records["sym"].astype(np.intp)
        ids, first = np.unique(sym, return_index=True)
        opens = np.zeros(len(tick_size), np.bool_)
        opens[ids[snapshot[first]]] = True
        start_seq = np.zeros(len(tick_size), np.uint64)
        start_seq[ids] = records["seq"][first]
        initial = snapshot & opens[sym] & (records["seq"] == start_seq[sym])
        for i in np.flatnonzero(opens).tolist():
            book = self._books[i] = _Book()
            self._load(book, i, records[initial & (sym == i)])
        self._records = records[~initial]
        self._snapshot = snapshot[~initial]
        self._ts = np.ascontiguousarray(self._records["ts"])
        self._pos = 0

    @property
    def finished(self) -> bool:
        return self._pos >= len(self._records)

    def ts_after(self, count: int) -> int:
        """The time of the `count`th record still to release (the last one's if fewer)."""
        if self._pos >= len(self._ts):
            return 2**63 - 1
        return int(self._ts[min(self._pos + count, len(self._ts)) - 1])

    def window(self, start_ns: int | None, end_ns: int | None) -> None:
        """Keep what happens from `start_ns` to `end_ns` (--start/--end): the records before
        are taken in without being released, those after dropped."""
        if end_ns is not None:
            cut = int(self._ts.searchsorted(end_ns, "right"))
            self._records, self._snapshot = self._records[:cut], self._snapshot[:cut]
            self._ts = self._ts[:cut]
        if start_ns is not None:
            self._release_to(int(self._ts.searchsorted(start_ns, "left")))

    def release(self, until_ts: int | None) -> NDArray[np.void]:
        """The level updates due by `until_ts` (None: all that are left), in order."""
        n = len(self._records)
        return self._release_to(
            n if until_ts is None else int(self._ts.searchsorted(until_ts, "right"))
        )

    def _release_to(self, cut: int) -> NDArray[np.void]:
        if cut <= self._pos:
            return np.empty(0, LEVEL_DTYPE)
        rows: NDArray[np.void] = self._records[self._pos : cut]
        snap = self._snapshot[self._pos : cut]
        self._pos = cut
        if not snap.any():
            self._apply(rows)
            return rows
        out: list[NDArray[np.void]] = []
        edges = np.flatnonzero(np.diff(snap.astype(np.int8)) != 0) + 1
        for lo, hi in zip([0, *edges.tolist()], [*edges.tolist(), len(rows)], strict=True):
            part = rows[lo:hi]
            if not snap[lo]:
                self._apply(part)
                out.append(part)
                continue
            # consecutive snapshot rows: one book per (symbol, seq) run
            key = part["sym"].astype(np.int64) * 2**40 + part["seq"].astype(np.int64) % 2**40
            cuts = np.flatnonzero(np.diff(key)) + 1
            for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), len(part)], strict=True):
                out.append(self._resnap(part[a:b]))
        joined: NDArray[np.void] = np.concatenate([o.view(_RECORD) for o in out])
        return joined.view(LEVEL_DTYPE)

    def snapshot(self) -> NDArray[np.void]:
        """Every symbol's book now (symbols without one: empty), `ladder_dtype(depth)` records,
        indexed by symbol id."""
        n = len(self._scale)
        out = np.zeros(n, ladder_dtype(self.depth))
        out["sym"] = np.arange(n)
        for sym, book in self._books.items():
            out["seq"][sym], out["ts"][sym] = book.seq, book.ts
            scale = self._scale[sym]
            for side, name in ((0, "bid"), (1, "ask")):
                levels = self._view(sym, book, side)
                if levels:
                    units, sizes = zip(*levels, strict=True)
                    out[f"{name}_price"][sym, : len(units)] = np.array(units) / scale
                    out[f"{name}_size"][sym, : len(units)] = sizes
        return out

    # ------------------------------------------------------------------ internals

    def _view(self, sym: int, book: _Book, side: int) -> list[tuple[int, int]]:
        """A side's levels within `depth` ticks of its best, best first."""
        levels = book.levels[side]
        if not levels:
            return []
        ordered = sorted(levels.items(), reverse=side == 0)
        best, reach = ordered[0][0], self.depth * int(self._tick[sym])
        return [(u, z) for u, z in ordered if abs(u - best) < reach]

    def _apply(self, rows: NDArray[np.void]) -> None:
        sym = rows["sym"].astype(np.intp)
        units = np.round(rows["price"] * self._scale[sym]).astype(np.int64)
        for s, side, u, size, seq, ts in zip(
            sym.tolist(),
            rows["side"].tolist(),
            units.tolist(),
            rows["size"].tolist(),
            rows["seq"].tolist(),
            rows["ts"].tolist(),
            strict=True,
        ):
            book = self._books.get(s)
            if book is None:
                book = self._books[s] = _Book()
            levels = book.levels[side]
            if size:
                levels[u] = size
            else:
                levels.pop(u, None)
            book.seq, book.ts = seq, ts

    def _load(self, book: _Book, s: int, rows: NDArray[np.void]) -> None:
        """`rows` (one symbol's whole book) become `book`."""
        units = np.round(rows["price"] * self._scale[s]).astype(np.int64).tolist()
        book.levels = ({}, {})
        for side, u, size in zip(rows["side"].tolist(), units, rows["size"].tolist(), strict=True):
            if size:
                book.levels[side][u] = size
        book.seq, book.ts = int(rows["seq"][0]), int(rows["ts"][0])

    def _resnap(self, rows: NDArray[np.void]) -> NDArray[np.void]:
        """A whole book for one symbol mid-replay: the changes that turn the book held into it,
        numbered to end at its seq (or after the held seq, if the data numbers too few)."""
        s = int(rows["sym"][0])
        book = self._books.setdefault(s, _Book())
        old = book.levels
        held = book.seq
        self._load(book, s, rows)
        changes = []
        for side in (0, 1):
            now = book.levels[side]
            for u in sorted(old[side].keys() - now.keys()):
                changes.append((side, u, 0))
            for u, size in sorted(now.items()):
                if old[side].get(u) != size:
                    changes.append((side, u, size))
        out = np.zeros(len(changes), LEVEL_DTYPE)
        if changes:
            side_a, units_a, size_a = (np.array(c) for c in zip(*changes, strict=True))
            out["side"], out["size"] = side_a, size_a
            out["price"] = units_a / self._scale[s]
            first = max(book.seq - len(changes) + 1, held + 1)
            out["seq"] = np.arange(first, first + len(changes))
            book.seq = first + len(changes) - 1
        out["sym"], out["ts"] = s, book.ts
        return out


def split_books(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Tick files and book files of `paths`; a tick file's book file beside it joins in."""
    ticks = [p for p in paths if not is_book_path(p)]
    books = [p for p in paths if is_book_path(p)]
    for p in ticks:
        beside = book_path(p) if p.suffix.lower() == ".parquet" else None
        if beside is not None and beside.exists() and beside not in books:
            books.append(beside)
    return ticks, books


def load_books(paths: list[Path], universe: Universe, depth: int | None) -> ReplayBook:
    """The books of `paths` on `universe` (its symbol ids and size units), merged in time order."""
    parts = [read_book_parquet(p) for p in paths]
    chunks, snaps = [], []
    index = {s: i for i, s in enumerate(universe.symbols)}
    depths = [p.depth for p in parts if p.depth is not None]
    for path, part in zip(paths, parts, strict=True):
        unknown = [s for s in part.names if s not in index]
        if unknown:
            raise UserError(f"{path}: symbol {unknown[0]!r} is not among the replay's ticks")
        lut = np.array([index[s] for s in part.names] or [0], np.intp)
        recs = part.records.copy()
        recs["sym"] = lut[recs["sym"].astype(np.intp)]
        by = _unit_ratio(part, universe, lut)
        if by is not None:
            recs["size"] = recs["size"] * by[part.records["sym"].astype(np.intp)]
        chunks.append(recs.view(_RECORD))
        snaps.append(part.snapshot)
    records = np.concatenate(chunks).view(LEVEL_DTYPE)
    snapshot = np.concatenate(snaps)
    order = np.argsort(records["ts"], kind="stable")
    try:
        depth = check_depth(max(depths) if depths else depth or 20)
    except ValueError as exc:
        raise UserError(f"{paths[0]}: {exc}") from None
    tick = universe.tick_size.astype(np.float64)
    return ReplayBook(records[order], snapshot[order], tick, depth)


def _unit_ratio(
    part: BookRows, universe: Universe, lut: NDArray[np.intp]
) -> NDArray[np.uint64] | None:
    """By how much `part`'s sizes grow in the replay's size units (None: the same)."""
    mine, theirs = part.universe, universe.size_unit
    if mine is None or mine.size_unit is None or theirs is None:
        return None
    unit = np.array([mine.size_unit[mine.index(s)] for s in part.names] or [1.0])
    return np.maximum(np.round(unit / theirs[lut]), 1).astype(np.uint64)
