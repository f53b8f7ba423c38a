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
fresh snapshot of its books instead, and so does a reader whose mode changes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.protocol import book as b

Entry = dict[str, Any]


class _Flush(NamedTuple):
    gen: int
    last_ts: int
    records: NDArray[np.void]  # LEVEL_DTYPE, booked symbols only
    units: NDArray[np.int64]  # each record's price in units of 10^-decimals


class BookReader:
    """One connection's books: depth per symbol (0: none), book seq sent, what it was sent."""

    __slots__ = ("cursor", "depth", "latest", "owed", "sent", "views", "wake")

    def __init__(self, wake: Callable[[], None], n: int, gen: int) -> None:
        self.wake = wake
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
        self._ladder_memo: tuple[int, NDArray[np.void]] | None = None
        self.updates_published = 0

    # ------------------------------------------------------------------ producing

    def publish(self, levels: NDArray[np.void]) -> None:
        """A flush's level updates (event order); wakes the readers of the symbols they touch."""
        if not len(levels):
            return
        self.gen += 1
        self.updates_published += len(levels)
        self._crc.clear()
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
        for i, seq, ts in zip(ids.tolist(), last["seq"].tolist(), last["ts"].tolist(), strict=True):
            lv = books[i]
            assert lv is not None
            lv.seq, lv.ts = seq, ts
        newest = int(mine["ts"][-1])
        self.recent.append(_Flush(self.gen, newest, mine, units))
        while self.recent[0].last_ts < newest - self.keep_ns:
            self.gone_gen = self.recent.popleft().gen
        woken: set[BookReader] = set()
        for i in ids.tolist():
            woken.update(self._by_sym[i])
        for reader in woken:
            reader.wake()

    # ------------------------------------------------------------------ readers

    def attach(self, wake: Callable[[], None]) -> BookReader:
        return BookReader(wake, len(self.names), self.gen)

    def detach(self, reader: BookReader) -> None:
        self.drop(reader, reader.booked)

    def book(self, reader: BookReader, ids: NDArray[np.intp], depth: int) -> list[Entry]:
        """Book `ids` at `depth` for `reader`: their snapshot entries, to send now (asking
        again for a book is how a client fetches it afresh)."""
        for i in ids.tolist():
            if not reader.depth[i]:
                self._track(i)
                self._by_sym[i].add(reader)
            reader.depth[i] = depth
            reader.owed.discard(i)
        return [self._snapshot(reader, i) for i in ids.tolist()]

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

    def set_latest(self, reader: BookReader, latest: bool) -> None:
        """Every change (False) or conflated changes (True); either way a fresh snapshot next."""
        if latest != reader.latest:
            reader.latest = latest
            reader.owed.update(reader.booked.tolist())

    def statistics(self) -> dict[str, int]:
        return {
            "book_depth": self.depth,
            "books_tracked": int(self.tracked.sum()),
            "book_updates_published": self.updates_published,
        }

    def has_news(self, reader: BookReader) -> bool:
        return reader.cursor < self.gen or bool(reader.owed)

    def take(self, reader: BookReader) -> tuple[list[Entry], list[Entry]]:
        """What `reader` has not received: (snapshot entries, change entries)."""
        start, reader.cursor = reader.cursor, self.gen
        flushes = [f for f in self.recent if f.gen > start]
        if start < self.gone_gen:  # updates it needs are gone
            reader.owed.update(reader.booked.tolist())
        snaps = [self._snapshot(reader, i) for i in sorted(reader.owed)]
        reader.owed.clear()
        if not flushes:
            return snaps, []
        records = np.concatenate([f.records for f in flushes])
        units = np.concatenate([f.units for f in flushes])
        sym = records["sym"].astype(np.intp)
        depth = reader.depth[sym]
        exact = depth == self.depth
        if reader.latest:
            exact[:] = False
        changes = self._exact(reader, records[exact], units[exact]) if exact.any() else []
        conflated = np.unique(sym[(depth > 0) & ~exact])
        for i in conflated.tolist():
            entry = self._conflated(reader, i)
            if entry is not None:
                changes.append(entry)
        return snaps, changes

    # ------------------------------------------------------------------ internals

    def _track(self, i: int) -> None:
        self.count[i] += 1
        if self.tracked[i]:
            return
        if self._ladder_memo is None or self._ladder_memo[0] != self.gen:
            self._ladder_memo = (self.gen, self._ladders())
        row = self._ladder_memo[1][i]
        lv = b.Levels(self._decimals[i], self._tick_units[i], int(row["seq"]), int(row["ts"]))
        scale = self._scale[i]
        for side, name in ((0, "bid"), (1, "ask")):
            units = np.round(row[f"{name}_price"] * scale).astype(np.int64).tolist()
            for u, size in zip(units, row[f"{name}_size"].tolist(), strict=True):
                if size:
                    lv.set(side, u, size)
        self.levels[i] = lv
        self.tracked[i] = True

    def _crc_of(self, i: int, depth: int) -> int:
        crc = self._crc.get((i, depth))
        if crc is None:
            lv = self.levels[i]
            assert lv is not None
            crc = self._crc[(i, depth)] = b.checksum(lv.view(depth))
        return crc

    def _snapshot(self, reader: BookReader, i: int) -> Entry:
        lv = self.levels[i]
        assert lv is not None
        depth = int(reader.depth[i])
        reader.sent[i] = lv.seq
        if reader.latest or depth < self.depth:
            reader.views[i] = lv.view(depth)
        return b.snapshot_entry(self.names[i], lv, depth)

    def _exact(
        self, reader: BookReader, records: NDArray[np.void], units: NDArray[np.int64]
    ) -> list[Entry]:
        """Every change of each symbol since its last sent seq, in order."""
        sym = records["sym"].astype(np.intp)
        new = records["seq"].astype(np.int64) > reader.sent[sym]  # not in a snapshot it got
        records, units, sym = records[new], units[new], sym[new]
        if not len(records):
            return []
        order = np.argsort(sym, kind="stable")
        sym = sym[order]
        price = (units[order] / self._scale[sym]).tolist()
        side = records["side"][order].tolist()
        size = records["size"][order].tolist()
        seq = records["seq"][order].tolist()
        ts = records["ts"][order].tolist()
        cuts = np.flatnonzero(np.diff(sym)) + 1
        out = []
        for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(sym)], strict=True):
            i = int(sym[lo])
            crc = self._crc_of(i, self.depth)
            steps = zip(side[lo:hi], price[lo:hi], size[lo:hi], strict=True)
            out.append(b.change_entry(self.names[i], seq[hi - 1], steps, crc, ts[hi - 1]))
            reader.sent[i] = seq[hi - 1]
        return out

    def _conflated(self, reader: BookReader, i: int) -> Entry | None:
        """The current size of each level that differs from the book `reader` was last sent."""
        lv = self.levels[i]
        assert lv is not None
        if lv.seq <= reader.sent[i]:
            return None
        depth = int(reader.depth[i])
        new = lv.view(depth)
        old = reader.views.get(i, ((), ()))
        changes = [(side, lv.price(u), size) for side, u, size in b.diff(old, new)]
        since = int(reader.sent[i])
        reader.sent[i], reader.views[i] = lv.seq, new
        crc = self._crc_of(i, depth)
        return b.change_entry(self.names[i], lv.seq, changes, crc, lv.ts, since=since)
