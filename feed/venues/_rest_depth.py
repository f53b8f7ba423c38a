"""Binance's REST depth bodies (`GET /api/v3/depth`), encoded once per book change. Sans-IO.

A bot polling depth asks for the same book again and again; between two changes of a book the
answer is the same bytes. So each (symbol, limit) keeps its encoded body with the book it was
made from: the `Levels` object and its `seq`. `seq` moves with every change applied to a book
(`Books.publish` sets it from the level updates' own seqs, the same number the diff stream's
`U`/`u` and `lastUpdateId` are), and a book dropped and booked again is a new `Levels`; a body
whose book is the same object at the same seq is the book as it is now. A changed book is
encoded again with one join over memoised texts of its prices and sizes (most levels of a book
were there at its last change).

Booking (which symbols REST keeps tracked, and for how long) stays `RestDepth`'s: a miss asks it
for the book; a hit only marks the symbol as still asked for. Imports neither trio nor sockets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tickwire.feed.protocol.book import Levels
from tickwire.feed.venues.binance_depth import RestDepth, price_text

# Limits kept per symbol: a bot polls one or two; more distinct limits between two changes of
# a book (a client walking every limit) each cost an encoding, never memory.
LIMITS_KEPT = 4
# Texts memoised per symbol (prices near the touch, sizes in use): a book of depth N has at most
# 2N of each at once; past this the memo restarts, so a wandering price never grows it unbounded.
TEXTS_KEPT = 4096


class _Entry:
    """One symbol's bodies, valid for one book (`levels` at `seq`)."""

    __slots__ = ("bodies", "levels", "seq")

    def __init__(self, levels: Levels, seq: int) -> None:
        self.levels = levels
        self.seq = seq
        self.bodies: dict[int, bytes] = {}  # limit (capped at the server's depth) -> body


class DepthBodies:
    """`depth` answers from the server's books through `RestDepth`, each encoded once per
    (symbol, limit) and book change; `qtys[sym]` writes a size as Binance writes quantities."""

    __slots__ = ("_entries", "_prices", "_sizes", "depth", "qtys")

    def __init__(self, depth: RestDepth, qtys: Sequence[Callable[[int], str]]) -> None:
        self.depth = depth
        self.qtys = qtys
        self._entries: dict[int, _Entry] = {}
        self._prices: dict[int, dict[int, str]] = {}  # sym -> price units -> '"189.52000000"'
        self._sizes: dict[int, dict[int, str]] = {}  # sym -> size units -> '"200.00000000"'

    def current(self, sym: int, now_ns: int) -> bool:
        """Book `sym` for REST if it is not, and say whether the books are current (False on a
        bus gateway still fetching them, `Books.ready`)."""
        self.depth.touch(sym, now_ns)
        return self.depth.books.ready

    def body(self, sym: int, limit: int, now_ns: int) -> bytes:
        """`{"lastUpdateId", "bids", "asks"}` of symbol `sym`, the best `limit` levels a side."""
        rest = self.depth
        books = rest.books
        limit = min(limit, books.depth)  # the server keeps no more: larger limits read the same
        levels = books.levels[sym]
        entry = self._entries.get(sym)
        if (
            entry is not None
            and sym in rest.used  # booked by REST all along: `levels` is the live book
            and entry.levels is levels
            and levels is not None
            and entry.seq == levels.seq
        ):
            body = entry.bodies.get(limit)
            if body is not None:
                rest.used[sym] = now_ns
                return body
        rest.touch(sym, now_ns)  # books it if needed, drops idle symbols
        levels = books.levels[sym]
        assert levels is not None
        if entry is None or entry.levels is not levels or entry.seq != levels.seq:
            for gone in [s for s in self._entries if s not in rest.used]:
                self._forget(gone)
            entry = self._entries[sym] = _Entry(levels, levels.seq)
        elif len(entry.bodies) >= LIMITS_KEPT:
            entry.bodies.clear()
        bids, asks = books.view(sym, books.depth)
        body = entry.bodies[limit] = b'{"lastUpdateId":%d,"bids":[%s],"asks":[%s]}' % (
            levels.seq,
            self._side(sym, levels.decimals, bids[:limit]),
            self._side(sym, levels.decimals, asks[:limit]),
        )
        return body

    def _side(self, sym: int, decimals: int, levels: Sequence[tuple[int, int]]) -> bytes:
        prices = self._prices.setdefault(sym, {})
        sizes = self._sizes.setdefault(sym, {})
        if len(prices) > TEXTS_KEPT:
            prices.clear()
        if len(sizes) > TEXTS_KEPT:
            sizes.clear()
        qty = self.qtys[sym]
        out = []
        for units, size in levels:
            p = prices.get(units)
            if p is None:
                p = prices[units] = f'"{price_text(units, decimals)}"'
            z = sizes.get(size)
            if z is None:
                z = sizes[size] = f'"{qty(size)}"'
            out.append(f"[{p},{z}]")
        return ",".join(out).encode()

    def _forget(self, sym: int) -> None:
        """A symbol REST no longer books: its bodies and texts go too."""
        self._entries.pop(sym, None)
        self._prices.pop(sym, None)
        self._sizes.pop(sym, None)
