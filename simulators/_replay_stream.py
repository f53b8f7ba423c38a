"""A replay of Tardis book files streamed from disk: the same ticks and level updates as the
whole-file replay (`replay.open_replay` with the files loaded), in memory that stays flat in the
files' size.

The files are read two or three times, each in bounded blocks: the first pass (`_tardis_index`)
infers the universe and the depth; a head run of the second pass's windows (`_tardis_stream`)
finds what the replay shows before anything is released (each symbol's first book, loaded into
the books, and its first tick within --start/--end, the state `snapshot()` gives before its
first release); it stops as soon as every symbol has both (a symbol that never ticks makes it
run to the end). Then the windows go on from there (or, after more than a few, again from the
start) as the replay releases them: `StreamReplay` holds the ticks not yet released,
`StreamBook` the level updates, each fed from the same windows (`_Feed`), a few windows ahead at
most. Not for --loop (the whole-file replay refuses books with loops). numpy only.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ._replay_book import _RECORD
from ._replay_source import BATCH_MAX, Replay, _initial, _join, parse_time
from ._tardis_index import Index, index_files
from ._tardis_stream import Window, merged
from .book import LEVEL_DTYPE, check_depth
from .bookmirror import BookMirror
from .errors import UserError
from .ticks import TICK_DTYPE, TickBatch
from .universe import Universe

_END = 2**63 - 1
_KEEP = 4  # windows the head run keeps for the replay (more: they are made again)


class _Feed:
    """The windows in [lo, hi], their ticks and level updates (first books dropped: the books
    hold them from the start) queued for the two readers."""

    def __init__(self, it: Iterator[Window], lo: int | None, hi: int | None) -> None:
        self._it, self.lo, self.hi = it, lo, hi
        self.done = False
        self.ticks: list[TickBatch] = []
        self.levels: list[NDArray[np.void]] = []

    def pull(self) -> bool:
        """The next window queued (False: there is none)."""
        w = None if self.done else next(self._it, None)
        if w is None:
            self.done = True
            return False
        ticks, rec = w.ticks, w.records[~w.snapshot]
        hi = _END if self.hi is None else self.hi
        if self.lo is not None:
            ticks = ticks[ticks["ts"] >= self.lo]
        ticks, rec = ticks[ticks["ts"] <= hi], rec[rec["ts"] <= hi]
        if len(ticks):
            self.ticks.append(ticks)
        if len(rec):
            self.levels.append(rec)
        if len(w.records) and int(w.records["ts"][0]) > hi:  # nothing later is served
            self.done = True
        return True


class StreamBook:
    """`ReplayBook`'s interface over a `_Feed`'s level updates."""

    def __init__(
        self, feed: _Feed, books: NDArray[np.void], tick_size: NDArray[np.float64], depth: int
    ) -> None:
        self.depth = depth
        self.mirror = BookMirror(tick_size, depth)
        sym = books["sym"].astype(np.intp)
        by = np.argsort(sym, kind="stable")
        cuts = np.flatnonzero(np.diff(sym[by])) + 1
        for part in np.split(by, cuts) if len(by) else []:
            self.mirror.load(books[part])
        self._feed = feed
        self._rec: NDArray[np.void] = np.empty(0, LEVEL_DTYPE)
        self._ts = np.empty(0, np.int64)
        self._pos = 0
        if feed.lo is not None:  # taken in without being released
            lo = feed.lo
            while True:
                self._fill(1, lo - 1)
                cut = int(self._ts.searchsorted(lo, "left"))
                self._release_to(cut)
                if cut < len(self._ts) or not self._more():
                    break

    @property
    def finished(self) -> bool:
        self._fill(1, None)
        return self._pos >= len(self._rec)

    def ts_after(self, count: int) -> int:
        """The time of the `count`th record still to release (the last one's if fewer)."""
        self._fill(count, None)
        if self._pos >= len(self._ts):
            return _END
        return int(self._ts[min(self._pos + count, len(self._ts)) - 1])

    def release(self, until_ts: int | None) -> NDArray[np.void]:
        """The level updates due by `until_ts` (None: all that are left), in order."""
        if until_ts is None:
            self._fill(_END, None)
            return self._release_to(len(self._rec))
        self._fill(0, until_ts)
        return self._release_to(int(self._ts.searchsorted(until_ts, "right")))

    def snapshot(self) -> NDArray[np.void]:
        return self.mirror.snapshot()

    def _release_to(self, cut: int) -> NDArray[np.void]:
        if cut <= self._pos:
            return np.empty(0, LEVEL_DTYPE)
        rows = self.mirror.renumber(self._rec[self._pos : cut])
        self._pos = cut
        before = self.mirror.bests(rows)  # levels brought within the depth: revealed
        self.mirror.apply(rows)
        return self.mirror.reveal(rows, before)

    def _more(self) -> bool:
        return bool(self._feed.levels) or not self._feed.done

    def _fill(self, count: int, until: int | None) -> None:
        """Take windows until `count` records wait, and (`until`) one later than it."""
        while True:
            left = len(self._rec) - self._pos
            later = until is None or (left > 0 and int(self._ts[-1]) > until)
            if left >= count and later:
                return
            if not self._feed.levels and not self._feed.pull():
                return
            if self._feed.levels:
                parts = [self._rec[self._pos :], *self._feed.levels]
                self._feed.levels.clear()
                self._rec = np.concatenate([p.view(_RECORD) for p in parts]).view(LEVEL_DTYPE)
                self._ts = np.ascontiguousarray(self._rec["ts"])
                self._pos = 0


class StreamReplay(Replay):
    """`Replay` over a `_Feed`'s ticks (no loop): the ticks not yet released are held, not the
    file's."""

    def __init__(
        self, feed: _Feed, heads: TickBatch, ix: Index, book: StreamBook, speed: float
    ) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0, got {speed}")
        self.universe = ix.universe
        self.book = book  # type: ignore[assignment]  # ReplayBook's interface
        self._limit: int | None = None
        self.speed = speed
        self.loop = False
        self.paced_by_readers = speed == 0
        self.batch_max = BATCH_MAX
        self._feed = feed
        self._records = np.empty(0, TICK_DTYPE)
        self._ts = np.empty(0, np.int64)
        self._t0 = int(heads["ts"][0])
        self._pass = self._pos = 0
        self._wall0: int | None = None
        self._last = _initial(heads, ix.universe)
        self.now_ns = self._t0
        self.released = 0

    @property
    def finished(self) -> bool:
        self._fill(1, None)
        return self._pos >= len(self._records)

    def step_book(self, until_ns: int) -> tuple[TickBatch, NDArray[np.void]]:
        if self.speed == 0:
            self._fill(self.batch_max, None)
        return super().step_book(until_ns)

    def _release(self, virtual_ns: int | None, budget: int | None) -> TickBatch:
        if virtual_ns is not None:
            limit = self._t0 + virtual_ns
            self._limit = limit
            self._fill(0, limit)
            cut = int(self._ts.searchsorted(limit, "right"))
        else:
            assert budget is not None
            self._fill(budget, None)
            cut = min(len(self._records), self._pos + budget)
        if cut <= self._pos:
            return np.empty(0, TICK_DTYPE)
        batch = self._records[self._pos : cut]
        self._pos = cut
        return self._released(batch)

    def _fill(self, count: int, until: int | None) -> None:
        """Take windows until `count` ticks wait, and (`until`) one later than it."""
        while True:
            left = len(self._records) - self._pos
            later = until is None or (left > 0 and int(self._ts[-1]) > until)
            if left >= count and later:
                return
            if not self._feed.ticks and not self._feed.pull():
                return
            if self._feed.ticks:
                self._records = _join([self._records[self._pos :], *self._feed.ticks])
                self._feed.ticks.clear()
                self._ts = np.ascontiguousarray(self._records["ts"])
                self._pos = 0


def open_stream(
    files: list[tuple[Path, str]],
    *,
    speed: float = 1.0,
    start: str | None = None,
    end: str | None = None,
    book_depth: int | None = None,
    block_bytes: int | None = None,
    universe: Universe | None = None,
) -> StreamReplay | None:
    """A replay of Tardis book files (path, kind) alone, on `universe` if given, streamed in
    blocks of `block_bytes` (default `_tardis_parse.BLOCK_BYTES`); None if a symbol is in two
    of them (they are read whole then: their books interleave)."""
    ixs = index_files(files, block_bytes, universe)
    if ixs is None:
        return None
    try:
        depth = check_depth(book_depth or ixs[0].depth)
    except ValueError as exc:
        raise UserError(f"{files[0][0]}: {exc}") from None
    lo, hi, heads, books, rest = _heads(ixs, block_bytes, start, end)
    if not len(heads):
        raise UserError("nothing to replay: the files (within --start/--end) hold no ticks")
    feed = _Feed(rest, lo, hi)
    tick = ixs[0].universe.tick_size.astype(np.float64)
    book = StreamBook(feed, books, tick, depth)
    return StreamReplay(feed, heads, ixs[0], book, speed)


def _heads(
    ixs: list[Index], block_bytes: int | None, start: str | None, end: str | None
) -> tuple[int | None, int | None, TickBatch, NDArray[np.void], Iterator[Window]]:
    """--start and --end in ns, each symbol's first tick within them (in the order they come),
    every symbol's first book (snapshot records), and the windows to replay: those taken here
    and the rest if they are few (`_KEEP`), else all of them again."""
    n = len(ixs[0].universe)
    t0: int | None = None
    lo = hi = None
    headed = np.zeros(n, np.bool_)
    booked = np.zeros(n, np.bool_)
    heads: list[TickBatch] = []
    books: list[NDArray[np.void]] = []
    it = merged(ixs, block_bytes)
    kept: list[Window] | None = []
    for w in it:
        if kept is not None:
            kept.append(w)
            kept = kept if len(kept) <= _KEEP else None
        rec = w.records
        books.append(rec[w.snapshot])
        booked[rec["sym"].astype(np.intp)] = True
        ticks = w.ticks
        if t0 is None and len(ticks):
            t0 = int(ticks["ts"][0])
            lo, hi = parse_time(start, t0), parse_time(end, t0)
        if lo is not None:
            ticks = ticks[ticks["ts"] >= lo]
        if hi is not None:
            ticks = ticks[ticks["ts"] <= hi]
        sym = ticks["sym"].astype(np.intp)
        ids, at = np.unique(sym, return_index=True)
        new = ~headed[ids]
        heads.append(ticks[np.sort(at[new])])
        headed[ids] = True
        past = hi is not None and len(rec) and int(rec["ts"][0]) > hi
        if booked.all() and (headed.all() or past):
            break
    head = _join(heads) if heads else np.empty(0, TICK_DTYPE)
    book = np.concatenate([b.view(_RECORD) for b in books]) if books else np.empty(0, _RECORD)
    rest = itertools.chain(kept, it) if kept is not None else merged(ixs, block_bytes)
    return lo, hi, head, book.view(LEVEL_DTYPE), rest
