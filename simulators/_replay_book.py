"""A replay's order books: recorded level records released in time order, as the market's are.

`ReplayBook` holds every booked symbol's book now (a `BookMirror`) and releases the level
records due by a time, in order, for the server's `Books.publish`; its `snapshot()` is the
market's `book_snapshot`. Input rows are changes or snapshots (`bookfile`): a symbol's first
snapshot is its book before the replay starts; a later one (a recorder that resynced, a Tardis
snapshot) becomes the changes that turn the book held into it (`BookMirror.resnap`). A change of
a symbol not yet booked starts an empty book. numpy only.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from ._replay_tardis import book_kind
from ._tardis_books import tardis_books
from .book import LEVEL_DTYPE, check_depth
from .bookfile import BookRows, book_path, is_book_path, read_book_parquet
from .bookmirror import BookMirror
from .errors import UserError
from .ticks import TICK_DTYPE, TickBatch
from .universe import Universe

_RECORD = np.dtype((np.void, LEVEL_DTYPE.itemsize))


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
        self.mirror = BookMirror(tick_size, depth)
        # A symbol whose rows start with a snapshot: that is its book before the replay starts.
        sym = records["sym"].astype(np.intp)
        ids, first = np.unique(sym, return_index=True)
        opens = np.zeros(len(tick_size), np.bool_)
        opens[ids[snapshot[first]]] = True
        start_seq = np.zeros(len(tick_size), np.uint64)
        start_seq[ids] = records["seq"][first]
        initial = snapshot & opens[sym] & (records["seq"] == start_seq[sym])
        at = np.flatnonzero(initial)
        by = at[np.argsort(sym[at], kind="stable")]
        cuts = np.flatnonzero(np.diff(sym[by])) + 1
        for part in np.split(by, cuts) if len(by) else []:
            self.mirror.load(records[part])
        if len(at) and at[-1] == len(at) - 1:  # they come first (a file's opening books)
            self._records, self._snapshot = records[len(at) :], snapshot[len(at) :]
        else:
            self._records, self._snapshot = records[~initial], snapshot[~initial]
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
        rows = self.mirror.renumber(self._records[self._pos : cut])
        snap = self._snapshot[self._pos : cut]
        before = self.mirror.bests(rows, snap)  # levels brought within the depth: revealed
        return self.mirror.reveal(self._applied(rows, snap), before)

    def _applied(self, rows: NDArray[np.void], snap: NDArray[np.bool_]) -> NDArray[np.void]:
        """`rows` applied to the books held (`snap`: their whole-book rows), as changes."""
        self._pos += len(rows)
        if not snap.any():
            self.mirror.apply(rows)
            return rows
        out: list[NDArray[np.void]] = []
        edges = np.flatnonzero(np.diff(snap.astype(np.int8)) != 0) + 1
        for lo, hi in zip([0, *edges.tolist()], [*edges.tolist(), len(rows)], strict=True):
            part = rows[lo:hi]
            if not snap[lo]:
                self.mirror.apply(part)
                out.append(part)
                continue
            # consecutive snapshot rows: one book per (symbol, seq) run
            key = part["sym"].astype(np.int64) * 2**40 + part["seq"].astype(np.int64) % 2**40
            cuts = np.flatnonzero(np.diff(key)) + 1
            for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), len(part)], strict=True):
                out.append(self.mirror.resnap(part[a:b]))
        joined: NDArray[np.void] = np.concatenate([o.view(_RECORD) for o in out])
        return joined.view(LEVEL_DTYPE)

    def snapshot(self) -> NDArray[np.void]:
        """Every symbol's book now, as `Market.book_snapshot` gives it (by symbol id)."""
        return self.mirror.snapshot()


def split_books(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Tick files and book files (ours, Tardis's) of `paths`; a tick file's book file beside it
    joins in."""
    books = [p for p in paths if is_book_path(p) or book_kind(p) is not None]
    ticks = [p for p in paths if p not in books]
    for p in ticks:
        beside = book_path(p) if p.suffix.lower() == ".parquet" else None
        if beside is not None and beside.exists() and beside not in books:
            books.append(beside)
    return ticks, books


class Loaded(NamedTuple):
    """`load_books`' answer: the books, the universe, the books' tops as ticks (Tardis books;
    else empty) and by how much the ticks' sizes grow for a finer size unit (None: they
    do not)."""

    book: ReplayBook
    universe: Universe
    tops: TickBatch
    finer: NDArray[np.uint64] | None


def load_books(
    paths: list[Path], universe: Universe | None, depth: int | None, *, ticks: bool = False
) -> Loaded:
    """The books of `paths` merged in time order, on `universe` (the ticks': their symbol ids
    and size units, made finer if Tardis amounts need it), or on one inferred from Tardis
    books; `ticks`: there are tick files (else the books' tops are the ticks)."""
    ours = [p for p in paths if is_book_path(p)]
    theirs = [(p, k) for p in paths if (k := book_kind(p)) is not None]
    if universe is None and (ours or not theirs):
        raise UserError(
            f"{(ours or paths)[0]}: a tickwire book file replays with its ticks: name the tick"
            " file (FILE.parquet) too"
        )
    tops, finer = np.empty(0, TICK_DTYPE), None
    chunks: list[NDArray[np.void]] = []
    snaps: list[NDArray[np.bool_]] = []
    depths: list[int] = []
    if theirs:
        kinds = [k for _, k in theirs]
        got = tardis_books([p for p, _ in theirs], kinds, universe, depth, tops=not ticks)
        universe, tops, finer = got.universe, got.ticks, got.finer
        chunks.append(got.records.view(_RECORD))
        snaps.append(got.snapshot)
        depths.append(got.depth)
    assert universe is not None
    index = {s: i for i, s in enumerate(universe.symbols)}
    for path in ours:
        part = read_book_parquet(path)
        if part.depth is not None:
            depths.append(part.depth)
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
    # one part (a Tardis day alone) is taken as it is: no copy, and no sort if in time order
    records = (chunks[0] if len(chunks) == 1 else np.concatenate(chunks)).view(LEVEL_DTYPE)
    snapshot = snaps[0] if len(snaps) == 1 else np.concatenate(snaps)
    ts = records["ts"]
    if not bool((ts[1:] >= ts[:-1]).all()):
        order = np.argsort(ts, kind="stable")
        records, snapshot = records[order], snapshot[order]
    if ours:  # a recording's books hold its depth: serve it, or less
        depth = min([depth or 1000, *(d for d in depths if d)])
    try:
        depth = check_depth(depth or (max(depths) if depths else 20))
    except ValueError as exc:
        raise UserError(f"{paths[0]}: {exc}") from None
    tick = universe.tick_size.astype(np.float64)
    return Loaded(ReplayBook(records, snapshot, tick, depth), universe, tops, finer)


def _unit_ratio(
    part: BookRows, universe: Universe, lut: NDArray[np.intp]
) -> NDArray[np.uint64] | None:
    """By how much `part`'s sizes grow in the replay's size units (None: the same)."""
    mine, theirs = part.universe, universe.size_unit
    if mine is None or mine.size_unit is None or theirs is None:
        return None
    unit = np.array([mine.size_unit[mine.index(s)] for s in part.names] or [1.0])
    return np.maximum(np.round(unit / theirs[lut]), 1).astype(np.uint64)
