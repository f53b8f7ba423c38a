"""The client's order books, sans-IO: a local book per symbol from `book_snapshot` and `book`.

Owns what the client library holds of the server's books: each symbol's book cut to the depth
it asked for (from binary frames a row of `dense.DenseBooks`, which applies a whole frame at
once; otherwise a `Levels`, the one book implementation of `protocol.book`), the depths asked
for (restored after a reconnect), and the symbols whose book must be fetched again. Every
update is checked before it is taken: its book seq must follow the one held (a conflated one
names its base in `since`) and its CRC32 must match the book it makes; on any mismatch the book
is dropped, a `Gap` with reason "book" reports it, and the symbol waits for a fresh snapshot
(`resync` lists the symbols to ask for). So a wrong book is never shown. No trio, no sockets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.client import denseread
from tickwire.feed.client.dense import DenseBooks
from tickwire.feed.client.events import BookUpdate, Event, Gap
from tickwire.feed.protocol import book as b

# Books held from binary frames before they become rows of `DenseBooks`: a frame costs the rows
# ~70 array operations whatever its size, and a `Levels` book ~12 us a symbol it touches; the
# rows win from about 8 books (measured, the default universe's first N symbols at 20 levels,
# level updates applied per CPU second as `Levels` and as rows: 4 books 351k and 275k, 8 books
# 320k and 356k, 20 books 264k and 498k, all 53 214k and 798k).
DENSE_MIN = 8


@dataclass(frozen=True, slots=True)
class Book:
    """A symbol's order book: `bids` and `asks` are numpy arrays of (`price` f8, `size` u8),
    best first (sizes in the symbol's `size_unit`s); `seq` is the book sequence of the last
    change it includes, `ts` its event time (ns), `depth` the ticks a side it keeps."""

    symbol: str
    bids: NDArray[np.void]
    asks: NDArray[np.void]
    seq: int
    ts: int
    depth: int


class ClientBooks:
    """One feed's books, kept across reconnects (a new connection fetches them afresh)."""

    def __init__(self) -> None:
        self.held: dict[str, tuple[b.Levels, int]] = {}  # symbol -> (book, depth)
        self.wanted: dict[str, int | bool] = {}  # symbol (or "*") -> the depth asked for
        self.resync: list[str] = []  # symbols whose book is to be fetched again
        self.resyncs = 0
        self.server_depth = 0  # the welcome's `book_depth`: what `True` asks for
        self.names: list[str] = []  # by symbol id, for binary frames
        self._ids: dict[str, int] = {}
        self.ticks: list[tuple[int, int]] = []  # (decimals, tick_units) by symbol id
        self._scale = np.ones(0)  # 10^decimals by symbol id
        self._dense: DenseBooks | None = None  # the books from binary frames, by symbol id
        self.dense_min = DENSE_MIN

    def learn(self, refs: Sequence[Mapping[str, Any]]) -> None:
        """The universe (the `symbols` reply): what binary frames' symbol ids and prices mean."""
        if self._dense is not None:  # rows are by symbol id: the books held go on as `Levels`
            for i in np.flatnonzero(self._dense.slot >= 0).tolist():
                depth = int(self._dense.depth[self._dense.slot[i]])
                self.held[self.names[i]] = (denseread.levels(self._dense, i), depth)
        self.names = [r["symbol"] for r in refs]
        self._ids = {name: i for i, name in enumerate(self.names)}
        ticks = [b.Levels.for_tick(float(r.get("tick_size", 0.01))) for r in refs]
        self.ticks = [(t.decimals, t.tick_units) for t in ticks]
        self._scale = 10.0 ** np.array([t.decimals for t in ticks], np.float64)
        self._dense = None  # symbol ids may mean other symbols now

    def depth_of(self, symbol: str) -> int:
        depth = self.wanted.get(symbol, self.wanted.get("*", True))
        return self.server_depth if depth is True else int(depth)

    def want(self, symbols: Sequence[str], depth: int | bool) -> None:
        if "*" in symbols:
            self.wanted = {}
        for s in symbols:
            self.wanted[s] = depth

    def forget(self, symbols: Sequence[str]) -> None:
        """Unsubscribed: their books go (all of them for "*")."""
        if "*" not in symbols and "*" in self.wanted:  # "*" less some: each of the rest
            depth = self.wanted.pop("*")
            for name in self.names:
                self.wanted.setdefault(name, depth)
        gone = set(self.held) | set(self.wanted) if "*" in symbols else set(symbols)
        for s in gone:
            self._drop(s)
            self.wanted.pop(s, None)

    def reconnected(self) -> None:
        """A new connection: the books come again with the resubscription's snapshots."""
        self.held.clear()
        if self._dense is not None:
            self._dense.clear()
        self.resync.clear()

    def _drop(self, symbol: str) -> None:
        self.held.pop(symbol, None)
        if self._dense is not None and symbol in self._ids:
            self._dense.drop(self._ids[symbol])

    def book(self, symbol: str) -> Book | None:
        held = self.held.get(symbol)
        dense, i = self._dense, self._ids.get(symbol, -1)
        if held is None and dense is not None and i >= 0 and dense.held(i):
            row = dense.slot[i]
            bids, asks = denseread.rows(dense, i)
            depth = int(dense.depth[row])
            return Book(symbol, bids, asks, int(dense.seq[row]), int(dense.ts[row]), depth)
        if held is None:
            return None
        levels, depth = held
        bids, asks = levels.rows(depth)
        return Book(symbol, bids, asks, levels.seq, levels.ts, depth)

    def take_resync(self) -> dict[int | bool, list[str]]:
        """The books to ask for again, grouped by the depth wanted."""
        out: dict[int | bool, list[str]] = {}
        for s in self.resync:
            depth = self.wanted.get(s, self.wanted.get("*"))
            if depth is not None:
                out.setdefault(depth, []).append(s)
        self.resync.clear()
        return out

    def receive_binary(self, payload: bytes | bytearray | memoryview) -> list[Event]:
        """A binary `book_snapshot` (type 4) or `book` (type 3) frame: the events it makes."""
        frame = b.decode_book_binary(payload)
        if frame.snapshot:
            return self._binary_snapshot(frame)
        good: list[str] = []
        bad: list[str] = []
        slow: list[int] = []
        if self._dense is not None:  # the books held as rows: the whole frame at once
            applied = self._dense.apply(frame.records, frame.checks)
            good = list(map(self.names.__getitem__, applied.good))
            for i in applied.bad:
                self._broken(self.names[i], bad)
            slow = applied.slow
            for i in slow:  # a change beyond the row: this frame as `Levels`
                row = self._dense.slot[i]
                self.held[self.names[i]] = (
                    denseread.levels(self._dense, i),
                    int(self._dense.depth[row]),
                )
                self._dense.drop(i)
        if self.held:
            good.extend(self._apply_levels(frame, bad))
        return self._events("book", frame.seq, good, bad, 0)

    def _apply_levels(self, frame: b.BookFrame, bad: list[str]) -> list[str]:
        """The frame's changes for the books held as `Levels`, one symbol at a time; a book
        that takes them goes (back) to a row if it fits one."""
        records = frame.records
        order = np.argsort(records["sym"], kind="stable")  # by symbol, in order within each
        recs = records[order]
        sym = recs["sym"].astype(np.intp)
        seqs = recs["seq"].astype(np.int64).tolist()
        sides, sizes = recs["side"].tolist(), recs["size"].tolist()
        units = np.round(recs["price"] * self._scale[sym]).astype(np.int64).tolist()
        good: list[str] = []
        for sym_id, _, crc in frame.checks.tolist():
            name = self.names[sym_id] if sym_id < len(self.names) else None
            if name is None or name not in self.held:
                continue  # not ours, or waiting for its snapshot
            lo, hi = np.searchsorted(sym, [sym_id, sym_id + 1]).tolist()
            levels, depth = self.held[name]
            # its changes must run on from the book's seq, one by one
            if hi == lo or seqs[lo:hi] != list(range(levels.seq + 1, levels.seq + 1 + hi - lo)):
                self._broken(name, bad)
                continue
            changes = zip(sides[lo:hi], units[lo:hi], sizes[lo:hi], strict=True)
            try:
                levels.apply(changes, depth, crc, seqs[hi - 1], int(recs["ts"][hi - 1]))
            except b.BookError:
                self._broken(name, bad)
                continue
            good.append(name)
            self._densify(sym_id, name)
        return good

    def _densify(self, sym_id: int, name: str) -> None:
        """Move a `Levels` book to a row of the dense books, if it fits one and enough books
        are held for rows to be worth it."""
        rows = self._dense.count() if self._dense is not None else 0
        if rows + len(self.held) < self.dense_min:
            return
        if self._dense is None:
            decimals, tick_units = zip(*self.ticks, strict=True) if self.ticks else ((), ())
            self._dense = DenseBooks(list(decimals), list(tick_units), self.server_depth)
        levels, depth = self.held[name]
        if self._dense.load(sym_id, levels, depth):
            del self.held[name]

    def _binary_snapshot(self, frame: b.BookFrame) -> list[Event]:
        records, sym = frame.records, frame.records["sym"]
        good: list[str] = []
        bad: list[str] = []
        conflated = 0
        for sym_id, flags, crc in frame.checks.tolist():
            if sym_id >= len(self.names):
                continue
            name, mine = self.names[sym_id], records[sym == sym_id]
            d, tick_units = self.ticks[sym_id]
            depth = self.depth_of(name)
            self._drop(name)
            try:  # fresh, or conflated to the current book (flags say)
                self.held[name] = (b.load_records(mine, d, tick_units, crc, depth), depth)
            except b.BookError:
                self._broken(name, bad)
                continue
            conflated += bool(flags & b.CONFLATED)
            good.append(name)
        for name in list(self.held):  # now rows, if enough are held
            self._densify(self._ids[name], name)
        kind = "book" if conflated else "book_snapshot"
        return self._events(kind, frame.seq, good, bad, conflated)

    def _broken(self, symbol: str, bad: list[str]) -> None:
        self._drop(symbol)
        if symbol not in self.resync:
            self.resync.append(symbol)
        bad.append(symbol)

    def _events(
        self, kind: str, seq: int, good: list[str], bad: list[str], conflated: int
    ) -> list[Event]:
        events: list[Event] = []
        if bad:
            self.resyncs += len(bad)
            events.append(Gap("book", None, tuple(bad)))
        if good:
            names = tuple(good)
            events.append(
                BookUpdate("book_snapshot", seq, names)
                if kind == "book_snapshot"
                else BookUpdate("book", seq, names, conflated)
            )
        return events

    def receive(self, msg: Mapping[str, Any]) -> list[Event]:
        """A `book_snapshot` or `book` message: the events it makes."""
        snapshot = msg["type"] == "book_snapshot"
        good: list[str] = []
        bad: list[str] = []
        conflated = 0
        for entry in msg.get("books", ()):
            symbol = entry.get("symbol")
            if not isinstance(symbol, str):
                continue
            try:
                if snapshot:
                    self._drop(symbol)
                    self.held[symbol] = b.load_snapshot(entry)
                elif symbol in self.held:
                    levels, depth = self.held[symbol]
                    b.apply_entry(levels, entry, depth)
                    conflated += bool(entry.get("conflated"))
                else:
                    continue  # waiting for its snapshot
                good.append(symbol)
            except b.BookError:
                self._broken(symbol, bad)
        kind = "book_snapshot" if snapshot else "book"
        return self._events(kind, int(msg.get("seq", 0)), good, bad, conflated)
