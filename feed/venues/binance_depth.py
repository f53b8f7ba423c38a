"""Binance's depth streams from the server's order books: the `BookCodec` of the Binance encoder.

- `<s>@depth` and `<s>@depth@100ms` (diff depth): every 1000 ms / 100 ms of event time, a
  `depthUpdate` of each symbol whose book changed, every level change of the interval conflated
  per level (its absolute size; "0" removes it). `U` and `u` are the first and last book seq
  (the per-symbol sequence `/v1` uses) of the changes it carries, so each event's `U` is the
  previous event's `u` + 1, and a REST depth snapshot's `lastUpdateId` is a book seq.
- `<s>@depth5|10|20` and `...@100ms` (partial book): every 1000 ms / 100 ms, the best 5, 10 or
  20 levels a side, `{"lastUpdateId", "bids", "asks"}`.
Both read the books at the server's depth through one shared reader of the venue (`books.py`);
if that reader had to resync (a fresh snapshot instead of the changes), the next diff event
starts after it, and clients see the break in `U` and refetch the snapshot, as Binance documents.
Prices and quantities are strings with 8 decimals, exact (integers only). Sans-IO.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from tickwire.feed.hub.books import Books
from tickwire.feed.venues._common import NS_PER_MS, Entry, Frame, Shared
from tickwire.feed.venues.books import BookNews

CADENCES = {"": 1000 * NS_PER_MS, "@100ms": 100 * NS_PER_MS}  # stream suffix -> interval
PARTIAL = (5, 10, 20)  # partial book depths
DIFF_CHANNELS = tuple(f"depth{s}" for s in CADENCES)
PARTIAL_CHANNELS = tuple(f"depth{n}{s}" for n in PARTIAL for s in CADENCES)
DEPTH_CHANNELS = DIFF_CHANNELS + PARTIAL_CHANNELS
PLACES = 8

Side = Sequence[tuple[int, int]]  # (price units, size units), best first


def price_text(units: int, decimals: int) -> str:
    """A price in units of 10^-decimals as Binance writes it, exactly: 8 decimals."""
    if decimals > PLACES:
        return f"{units / 10**decimals:.8f}"
    q, r = divmod(units * 10 ** (PLACES - decimals), 10**PLACES)
    return f"-{-q - 1}.{10**PLACES - r:08d}" if q < 0 and r else f"{q}.{r:08d}"


def partial_depth(channel: str) -> int:
    """The levels a side of a partial book channel ("depth10@100ms": 10)."""
    return int(channel.removeprefix("depth").split("@")[0])


class BinanceDepth:
    """The running state of Binance's depth streams: each cadence's changes since it last spoke."""

    def __init__(self, names: list[str], qtys: list[Callable[[int], str]]) -> None:
        self._names = names
        self._qtys = qtys
        self._pending: dict[str, list[tuple[NDArray[np.void], NDArray[np.int64]]]] = {
            s: [] for s in CADENCES
        }
        self._next = dict.fromkeys(CADENCES, 0)  # the next time each cadence speaks (ns)
        self._booked: set[int] = set()  # symbols booked at the last encode
        self.breaks = 0  # diff streams broken by a resync of the venue's reader

    # ------------------------------------------------------------------ BookCodec

    def book_snapshot(self, sym: int, depth: int, books: Books, now_ns: int) -> list[Frame]:
        """Binance sends no book at subscribe: clients fetch `GET /api/v3/depth`."""
        return []

    def encode(self, news: BookNews, now_ns: int, out: Shared) -> None:
        """Append the depth events due at `now_ns` to `out` (channels: `DEPTH_CHANNELS`)."""
        books = news.books
        if news.depth != books.depth:  # Binance books at the server's depth only
            return
        take = news.take
        booked = set(news.booked.tolist())
        # A symbol booked anew starts from its snapshot: changes kept from an earlier booking
        # are not its stream's (a connection advances the stream before it books).
        anew, self._booked = booked ^ self._booked, booked
        if take.snaps:  # a resync: the changes before it are lost to the diff streams
            self.breaks += 1
        gone = np.asarray(sorted(anew | set(take.snaps)), np.intp)
        if len(gone):
            for suffix, pending in self._pending.items():
                self._pending[suffix] = [
                    (r[keep], u[keep])
                    for r, u in pending
                    if (keep := ~np.isin(r["sym"], gone)).any()
                ]
        if len(take.records):
            for pending in self._pending.values():
                pending.append((take.records, take.units))
        ms = now_ns // NS_PER_MS
        for suffix, interval in CADENCES.items():
            if now_ns < self._next[suffix]:
                continue
            self._next[suffix] = (now_ns // interval + 1) * interval
            pending, self._pending[suffix] = self._pending[suffix], []
            if pending:
                self._diffs(out, suffix, pending, books, ms)
            # The book is read when a session first wants the payload: the stream builds
            # its frames in the same advance, before the books change again.
            push = out.items.append
            for i in news.booked.tolist():
                if books.levels[i] is not None:
                    for n in PARTIAL:
                        push((i, f"depth{n}{suffix}", (i, n, books)))

    def _diffs(
        self,
        out: Shared,
        suffix: str,
        pending: list[tuple[NDArray[np.void], NDArray[np.int64]]],
        books: Books,
        ms: int,
    ) -> None:
        """One `depthUpdate` per symbol of `pending`: the last size of each level it changed."""
        records = np.concatenate([r for r, _ in pending])
        units = np.concatenate([u for _, u in pending])
        sym = records["sym"].astype(np.int64)
        side = records["side"].astype(np.int64)
        order = np.lexsort((np.arange(len(records)), units, side, sym))
        sym, side, units = sym[order], side[order], units[order]
        size, seq = records["size"][order], records["seq"][order]
        last = np.ones(len(order), bool)  # the last change of each (sym, side, price)
        last[:-1] = (sym[1:] != sym[:-1]) | (side[1:] != side[:-1]) | (units[1:] != units[:-1])
        ids, first = np.unique(sym, return_index=True)
        bounds = [*first.tolist(), len(sym)]
        channel = f"depth{suffix}"
        for k, i in enumerate(ids.tolist()):
            lo, hi = bounds[k], bounds[k + 1]
            lv = books.levels[i]
            if lv is None:
                continue
            s = seq[lo:hi]
            keep = last[lo:hi]
            sides, us, sizes = side[lo:hi][keep], units[lo:hi][keep], size[lo:hi][keep]
            bids = [(u, z) for d, u, z in zip(sides, us, sizes, strict=True) if d == 0][::-1]
            asks = [(u, z) for d, u, z in zip(sides, us, sizes, strict=True) if d == 1]
            content = (i, int(s.min()), int(s.max()), ms, lv.decimals, _ints(bids), _ints(asks))
            out.add(i, channel, content)

    # ------------------------------------------------------------------ payloads

    def payload(self, entry: Entry) -> dict[str, Any]:
        """The Binance payload of a depth entry."""
        if entry.channel in DIFF_CHANNELS:
            i, first, last, ms, decimals, bids, asks = entry.message
            return {
                "e": "depthUpdate",
                "E": ms,
                "s": self._names[i],
                "U": first,
                "u": last,
                "b": self._levels(i, decimals, bids),
                "a": self._levels(i, decimals, asks),
            }
        i, n, books = entry.message
        lv = books.levels[i]
        assert lv is not None  # booked when the entry was made, in this same advance
        bids, asks = books.view(i, books.depth)
        return {
            "lastUpdateId": lv.seq,
            "bids": self._levels(i, lv.decimals, bids[:n]),
            "asks": self._levels(i, lv.decimals, asks[:n]),
        }

    def qty(self, sym: int) -> Callable[[int], str]:
        """Symbol `sym`'s quantity format (size units -> Binance's string)."""
        return self._qtys[sym]

    def raw(self, entry: Entry) -> bytes:
        return orjson.dumps(self.payload(entry))

    def _levels(self, i: int, decimals: int, side: Side) -> list[list[str]]:
        qty = self._qtys[i]
        return [[price_text(u, decimals), qty(z)] for u, z in side]


class RestDepth:
    """`GET /api/v3/depth` from the server's books. A symbol asked for is booked by REST's own
    reader and kept while it is asked for (dropped after `KEEP_NS` of event time without a
    request): an answer then reads the book as it is, instead of booking it (a snapshot of
    every symbol's book) per request."""

    KEEP_NS = 60 * 1_000_000_000

    def __init__(self, books: Books) -> None:
        self.books = books
        # never taken from: it only keeps books tracked (so a paced replay never waits for it)
        self.reader = books.attach(_no_wake, paces=False)
        self.used: dict[int, int] = {}  # symbol id -> last request (ns)

    def answer(
        self, sym: int, limit: int, qty: Callable[[int], str], now_ns: int
    ) -> dict[str, Any]:
        """The best `limit` levels a side (all the server keeps if fewer) and `lastUpdateId`,
        the book seq they include, so that the diff stream's events follow it by Binance's
        rule (drop u <= lastUpdateId, start at U <= lastUpdateId + 1 <= u)."""
        books = self.books
        self.touch(sym, now_ns)
        lv = books.levels[sym]
        assert lv is not None
        bids, asks = books.view(sym, books.depth)

        def side(levels: Side) -> list[list[str]]:
            return [[price_text(u, lv.decimals), qty(z)] for u, z in levels[:limit]]

        return {"lastUpdateId": lv.seq, "bids": side(bids), "asks": side(asks)}

    def touch(self, sym: int, now_ns: int) -> None:
        """`sym` is asked for now: booked if it was not, and symbols idle for `KEEP_NS` dropped."""
        books = self.books
        idle = [i for i, t in self.used.items() if t < now_ns - self.KEEP_NS and i != sym]
        if idle:
            books.drop(self.reader, np.array(idle, np.intp))
            for i in idle:
                del self.used[i]
        if sym not in self.used:
            books.book(self.reader, np.array([sym], np.intp), books.depth)
        self.used[sym] = now_ns


def _no_wake() -> None:
    """REST's reader is never woken: it reads the books when asked."""


def _ints(side: list[tuple[Any, Any]]) -> list[tuple[int, int]]:
    return [(int(u), int(z)) for u, z in side]


__all__ = [
    "CADENCES",
    "DEPTH_CHANNELS",
    "DIFF_CHANNELS",
    "PARTIAL",
    "PARTIAL_CHANNELS",
    "BinanceDepth",
    "RestDepth",
    "partial_depth",
    "price_text",
]
