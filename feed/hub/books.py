"""The server's order books: each booked symbol's current book, the recent level updates of each
flush, and what each `/v1` reader still needs of them. Sans-IO: never imports trio.

The market source is the only producer: every flush's level updates (`simulators.book`'s
LEVEL_DTYPE records, in event order) come in through `publish`, before the flush's ticks reach
the hub, so a reader that takes books before ticks keeps a symbol's level updates ahead of its
tick of the same ts. Only symbols someone has booked are kept (`Levels`, from the market's
snapshot when first booked); level updates never join the tick history (a resumed book is a
fresh snapshot).

A reader gets, per booked symbol, either every change in order (its depth is the server's, mode
`all`: the updates as they are, each symbol's seq +1 per change) or, conflated, the current size
of each level that differs from what it was last sent (its depth is smaller, mode `latest` or a
throttle): `since` names the book seq those changes apply to, so a client never takes a wrong
book. A reader that falls out of the recent flushes (kept for the lag bound's event time) gets a
fresh snapshot of its books instead, and so does a reader whose mode changes. A source paced by
its readers (a replay at speed 0) steps only once no reader is behind (`caught_up`), so none of
them falls that far.

Books that are not current (`ready` False: a bus gateway that mirrors the producer's books only
while a client holds one) take bookings without a snapshot: the symbols are owed, and their
snapshots go out once `set_ready` says the books are current again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.protocol import book as b
from tickwire.simulators.book import LEVEL_DTYPE

Entry = dict[str, Any]
# Level updates per take: a reader further behind gets fresh snapshots of those books instead
# (20 levels a side are at most 40 records a book, ~1.6 KiB of JSON), as the hub bounds ticks.
MAX_TAKE = 4096


Conflated = tuple[int, list[tuple[int, int, int]], int]  # symbol, (side, units, size)s, since

# A book keeps the levels within KEEP_DEPTHS depths of each side's best, cut once a side holds
# more than TRIM_LEVELS depths (+ TRIM_SLACK) of levels. What is served is within one depth:
# levels beyond it never come into view without a record of their own (a replay's REVEAL,
# `simulators.bookmirror`, carries each level its best moving out brings within the depth, at
# its size then; the market holds nothing beyond its depth; a gateway gets the producer's
# records), or a client, which keeps only its depth, could not hold the server's checksum. So
# the cut changes no served byte; the margin and the trigger only make it rare (a cut follows
# at least ~2 depths of new levels on a side: O(1) a record). Without it a replay of a real
# book (Tardis incremental_book_L2: levels left behind deep are seldom removed) kept every
# price level it ever touched.
KEEP_DEPTHS = 2
TRIM_LEVELS = 4
TRIM_SLACK = 64


class BookTake(NamedTuple):
    """What a reader is owed: fresh snapshots of `snaps` (symbol ids), every change in
    `records` (LEVEL_DTYPE, event order; `units` their prices), and conflated changes."""

    snaps: list[int]
    records: NDArray[np.void]
    units: NDArray[np.int64]
    conflated: list[Conflated]


class _Flush(NamedTuple):
    gen: int
    last_ts: int
    records: NDArray[np.void]  # LEVEL_DTYPE, booked symbols only
    units: NDArray[np.int64]  # each record's price in units of 10^-decimals


class BookReader:
    """One connection's books: depth per symbol (0: none), book seq sent, what it was sent."""

    __slots__ = ("cursor", "depth", "latest", "owed", "paces", "sent", "views", "wake")

    def __init__(self, wake: Callable[[], None], n: int, gen: int, paces: bool = True) -> None:
        self.wake = wake
        self.paces = paces  # a paced source waits for it (False: it never takes)
        self.depth = np.zeros(n, np.int64)
        self.sent = np.zeros(n, np.int64)
        self.views: dict[int, b.Ladder] = {}  # conflated symbols: the book as last sent
        self.cursor = gen
        self.latest = False
        self.owed: set[int] = set()  # symbols whose fresh snapshot is owed

    @property
    def booked(self) -> NDArray[np.intp]:
        return np.flatnonzero(self.depth)


class Books:
    """Every booked symbol's book at the server's depth, and its readers."""

    def __init__(
        self,
        names: NDArray[np.object_],
        tick_size: NDArray[np.float64],
        depth: int,
        ladders: Callable[[], NDArray[np.void]],
        keep_ns: int,
    ) -> None:
        self.names = names
        self.depth = depth
        self._ladders = ladders  # the market's `book_snapshot` (every symbol's book now)
        self.keep_ns = max(keep_ns, 1)  # recent flushes kept: a reader further behind resyncs
        self._decimals = [b.decimals_of(float(t)) for t in tick_size]
        self._scale = 10.0 ** np.array(self._decimals, np.float64)
        self._tick_units = np.round(tick_size * self._scale).astype(np.int64).tolist()
        n = len(names)
        self.levels: list[b.Levels | None] = [None] * n
        self.count = np.zeros(n, np.int64)  # readers per symbol
        self.tracked = np.zeros(n, bool)
        self.recent: deque[_Flush] = deque()
        self.gen = 0
        self.gone_gen = 0  # the newest flush no longer kept: a reader at or before it resyncs
        self._by_sym: list[set[BookReader]] = [set() for _ in range(n)]
        self._crc: dict[tuple[int, int], int] = {}  # (sym, depth) -> checksum, this generation
        self._views: dict[tuple[int, int], b.Ladder] = {}  # (sym, depth) -> view, this generation
        self._ladder_memo: tuple[int, NDArray[np.void]] | None = None
        self.updates_published = 0
        self._behind: set[BookReader] = set()  # pacing readers with news not taken yet
        self.ready = True  # the books are current (see the module docstring)

    # ------------------------------------------------------------------ producing

    def publish(self, levels: NDArray[np.void]) -> None:
        """A flush's level updates (event order); wakes the readers of the symbols they touch."""
        if not len(levels):
            return
        self.gen += 1
        self.updates_published += len(levels)
        self._crc.clear()
        self._views.clear()
        mine = levels[self.tracked[levels["sym"]]]  # a copy: the market reuses its batches
        if not len(mine):
            return
        sym = mine["sym"].astype(np.intp)
        units = np.round(mine["price"] * self._scale[sym]).astype(np.int64)
        books = self.levels
        for s, side, u, size in zip(
            sym.tolist(), mine["side"].tolist(), units.tolist(), mine["size"].tolist(), strict=True
        ):
            lv = books[s]
            assert lv is not None
            lv.set(side, u, size)
        ids, rev = np.unique(sym[::-1], return_index=True)
        last = mine[len(mine) - 1 - rev]
        trim_at = TRIM_LEVELS * self.depth + TRIM_SLACK
        for i, seq, ts in zip(ids.tolist(), last["seq"].tolist(), last["ts"].tolist(), strict=True):
            lv = books[i]
            assert lv is not None
            lv.seq, lv.ts = seq, ts
            if len(lv.bids) > trim_at or len(lv.asks) > trim_at:
                _trim(lv, KEEP_DEPTHS * self.depth * lv.tick_units)
        newest = int(mine["ts"][-1])
        self.recent.append(_Flush(self.gen, newest, mine, units))
        while self.recent[0].last_ts < newest - self.keep_ns:
            self.gone_gen = self.recent.popleft().gen
        woken: set[BookReader] = set()
        for i in ids.tolist():
            woken.update(self._by_sym[i])
        for reader in woken:
            if reader.paces:
                self._behind.add(reader)
            reader.wake()

    # ------------------------------------------------------------------ readers

    def attach(self, wake: Callable[[], None], *, paces: bool = True) -> BookReader:
        """A reader woken by `wake` when its books change; `paces=False` for one that never
        takes (it only keeps books tracked), which a paced source must not wait for."""
        return BookReader(wake, len(self.names), self.gen, paces)

    def detach(self, reader: BookReader) -> None:
        self.drop(reader, reader.booked)
        self._behind.discard(reader)

    def caught_up(self) -> bool:
        """No reader is owed changes or snapshots it has not taken: what a source paced by its
        readers (a replay at speed 0) waits for, with the hub's, so that a reader of books gets
        every change rather than fresh snapshots once it falls behind."""
        return not self._behind

    def book(self, reader: BookReader, ids: NDArray[np.intp], depth: int) -> BookTake:
        """Book `ids` at `depth` for `reader`: their snapshots, to send now (asking again for
        a book is how a client fetches it afresh)."""
        for i in ids.tolist():
            if not reader.depth[i]:
                self.count[i] += 1
                if self.ready:
                    self._track(i)
                self._by_sym[i].add(reader)
            reader.depth[i] = depth
            if not self.ready:  # its snapshot waits for current books (`set_ready`)
                reader.owed.add(i)
                continue
            reader.owed.discard(i)
            self._snapshot(reader, i)
        snaps = ids.tolist() if self.ready else []
        return BookTake(snaps, np.empty(0, LEVEL_DTYPE), np.empty(0, np.int64), [])

    def set_ready(self) -> None:
        """The books are current again: track those booked meanwhile, wake their readers."""
        self.ready = True
        woken: set[BookReader] = set()
        for i in np.flatnonzero((self.count > 0) & ~self.tracked).tolist():
            self._track(i)
            woken.update(self._by_sym[i])
        for reader in woken:
            reader.wake()

    def drop(self, reader: BookReader, ids: NDArray[np.intp]) -> None:
        for i in ids.tolist():
            if reader.depth[i]:
                reader.depth[i] = 0
                reader.views.pop(i, None)
                reader.owed.discard(i)
                self._by_sym[i].discard(reader)
                self.count[i] -= 1
                if not self.count[i]:
                    self.tracked[i] = False
                    self.levels[i] = None
        if not reader.depth.any():  # no book left to take: nothing to wait for
            self._behind.discard(reader)

    def set_latest(self, reader: BookReader, latest: bool) -> None:
        """Every change (False) or conflated changes (True); either way a fresh snapshot next."""
        if latest != reader.latest:
            reader.latest = latest
            reader.owed.update(reader.booked.tolist())
            if reader.owed and reader.paces:
                self._behind.add(reader)

    def statistics(self) -> dict[str, int]:
        return {
            "book_depth": self.depth,
            "books_tracked": int(self.tracked.sum()),
            "book_updates_published": self.updates_published,
        }

    def has_news(self, reader: BookReader) -> bool:
        return self.ready and (reader.cursor < self.gen or bool(reader.owed))

    def take(self, reader: BookReader) -> BookTake:
        """What `reader` has not received (see `BookTake`); its state then counts it as sent."""
        start, reader.cursor = reader.cursor, self.gen
        self._behind.discard(reader)
        flushes = [f for f in self.recent if f.gen > start]
        if start < self.gone_gen:  # updates it needs are gone
            reader.owed.update(reader.booked.tolist())
        snaps = sorted(reader.owed)
        for i in snaps:
            self._snapshot(reader, i)
        reader.owed.clear()
        if not flushes:
            return BookTake(snaps, np.empty(0, LEVEL_DTYPE), np.empty(0, np.int64), [])
        records = np.concatenate([f.records for f in flushes])
        units = np.concatenate([f.units for f in flushes])
        sym = records["sym"].astype(np.intp)
        depth = reader.depth[sym]
        exact = (depth == self.depth) & (not reader.latest)
        # every change of each symbol since its last sent seq (not in a snapshot it got)
        exact &= records["seq"].astype(np.int64) > reader.sent[sym]
        records, units = records[exact], units[exact]
        if len(records) > MAX_TAKE:  # far behind: a fresh copy of those books is smaller
            fresh = np.unique(records["sym"]).astype(np.intp).tolist()
            for i in fresh:
                self._snapshot(reader, i)
            snaps = sorted({*snaps, *fresh})
            records, units = records[:0], units[:0]
        if len(records):
            ids, rev = np.unique(records["sym"][::-1], return_index=True)
            reader.sent[ids.astype(np.intp)] = records["seq"][len(records) - 1 - rev]
        conflated = []
        for i in np.unique(sym[(depth > 0) & ((depth < self.depth) | reader.latest)]).tolist():
            change = self._conflated(reader, i)
            if change is not None:
                conflated.append(change)
        return BookTake(snaps, records, units, conflated)

    # ------------------------------------------------------------------ internals

    def _track(self, i: int) -> None:
        if self.tracked[i]:
            return
        row = self._memo()[i]
        lv = b.Levels(self._decimals[i], self._tick_units[i], int(row["seq"]), int(row["ts"]))
        scale = self._scale[i]
        for side, name in ((0, "bid"), (1, "ask")):
            units = np.round(row[f"{name}_price"] * scale).astype(np.int64).tolist()
            for u, size in zip(units, row[f"{name}_size"].tolist(), strict=True):
                if size:
                    lv.set(side, u, size)
        self.levels[i] = lv
        self.tracked[i] = True

    def _memo(self) -> NDArray[np.void]:
        """Every book now, taken once per generation (each time while not `ready`: on a bus
        gateway, that read is what starts its mirror)."""
        if self._ladder_memo is None or self._ladder_memo[0] != self.gen or not self.ready:
            self._ladder_memo = (self.gen, self._ladders())
        return self._ladder_memo[1]

    def _snapshot(self, reader: BookReader, i: int) -> None:
        """`reader` is sent symbol `i`'s book now."""
        lv = self.levels[i]
        assert lv is not None
        depth = int(reader.depth[i])
        reader.sent[i] = lv.seq
        if reader.latest or depth < self.depth:
            reader.views[i] = self.view(i, depth)

    def _conflated(self, reader: BookReader, i: int) -> Conflated | None:
        """The current size of each level that differs from the book `reader` was last sent."""
        lv = self.levels[i]
        assert lv is not None
        if lv.seq <= reader.sent[i]:
            return None
        new = self.view(i, int(reader.depth[i]))
        changes = b.diff(reader.views.get(i, ((), ())), new)
        since = int(reader.sent[i])
        reader.sent[i], reader.views[i] = lv.seq, new
        return i, changes, since

    # ------------------------------------------------------------------ encodings

    def view(self, i: int, depth: int) -> b.Ladder:
        """Symbol `i`'s levels within `depth` now (once per generation: readers share it)."""
        view = self._views.get((i, depth))
        if view is None:
            lv = self.levels[i]
            assert lv is not None
            view = self._views[(i, depth)] = lv.view(depth)
        return view

    def ladder(self, i: int, depth: int) -> tuple[b.Ladder, int, int]:
        """Symbol `i`'s levels within `depth` now, its book seq and ts, booked or not (an
        unbooked symbol's from the market's snapshot, taken once per generation): what the
        venues' REST books read."""
        lv = self.levels[i]
        if lv is not None:
            return self.view(i, depth), lv.seq, lv.ts
        row = self._memo()[i]
        scale, span = self._scale[i], min(depth, self.depth)
        sides = []
        for name in ("bid", "ask"):
            sizes = row[f"{name}_size"][:span].tolist()
            units = np.round(row[f"{name}_price"][:span] * scale).astype(np.int64).tolist()
            sides.append(tuple((u, s) for u, s in zip(units, sizes, strict=True) if s))
        return (sides[0], sides[1]), int(row["seq"]), int(row["ts"])

    def crc(self, i: int, depth: int) -> int:
        """Symbol `i`'s checksum at `depth` now (once per generation)."""
        crc = self._crc.get((i, depth))
        if crc is None:
            lv = self.levels[i]
            assert lv is not None
            crc = self._crc[(i, depth)] = b.checksum(self.view(i, depth))
        return crc


def _trim(lv: b.Levels, span: int) -> None:
    """Drop `lv`'s levels more than `span` price units from each side's best."""
    if lv.bids:
        low = max(lv.bids) - span
        lv.bids = {u: z for u, z in lv.bids.items() if u >= low}
    if lv.asks:
        high = min(lv.asks) + span
        lv.asks = {u: z for u, z in lv.asks.items() if u <= high}
