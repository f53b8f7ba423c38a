"""Every symbol's order book as level records built it, sans-IO: what a replay or a bus gateway
holds of books it did not make.

`BookMirror` applies level records (LEVEL_DTYPE) to a book per symbol (price units -> size per
side, its seq and ts), gives every book as the market's `book_snapshot` does (`ladder_dtype`
records, the `depth` ticks a side from the best) and turns a whole book that comes later (a
recorder's resync, a Tardis snapshot, a bus producer's snapshot) into the changes from the book
it holds, numbered to end at the whole book's seq: a reader that held every change before takes
them; one that sees a jump in seq fetches a fresh snapshot. numpy only.

A recorded book (a Tardis file) holds levels beyond the `depth` ticks it is served at, which
a holder of the served book drops; when the best moves out, such a level comes within the depth
without a change of its own. A replay's releases therefore go through `bests`, `renumber` and
`reveal`: each such level gets a record of its own (reason REVEAL, its current size), numbered
on from its book's seq, and the symbol's later records are renumbered after it, so that every
holder keeps exactly the server's book (the market's books hold nothing beyond their depth).
"""

from __future__ import annotations

import heapq
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from ._model import decimals
from .book import LEVEL_DTYPE, Reason, ladder_dtype

_RECORD = np.dtype((np.void, LEVEL_DTYPE.itemsize))
_REVEAL = int(Reason.REVEAL)
_BATCH = 256  # rows (and 8 a book) from which `_apply` goes in arrays (fewer: row by row)


class Bests(NamedTuple):
    """`BookMirror.bests`' answer: best prices by (symbol, side) before a release, and the
    (symbol, side)s its rows touch."""

    best: dict[tuple[int, int], int | None]
    touched: set[tuple[int, int]]


class _Book:
    __slots__ = ("heaps", "levels", "seq", "ts")

    def __init__(self, seq: int = 0, ts: int = 0) -> None:
        self.levels: tuple[dict[int, int], dict[int, int]] = ({}, {})  # bids, asks: units -> size
        self.seq, self.ts = seq, ts
        # For `top`: each side's prices as a heap (bids negated), stale entries popped when
        # met; None until `top` is asked, and after a whole book or an `apply`.
        self.heaps: tuple[list[int], list[int]] | None = None


class BookMirror:
    """Books of `len(tick_size)` symbols, `depth` ticks a side, from their level records."""

    def __init__(self, tick_size: NDArray[np.float64], depth: int) -> None:
        self.depth = depth
        tick_size = np.asarray(tick_size, np.float64)
        self._scale = 10.0 ** decimals(tick_size).astype(np.float64)
        self._tick = np.maximum(np.round(tick_size * self._scale), 1).astype(np.int64)
        self._books: dict[int, _Book] = {}
        # revealing (see the module): records revealed so far by symbol, and best prices by
        # (symbol, side) as a release left them (dropped when anything else changes a book)
        self._shift = np.zeros(len(tick_size), np.uint64)
        self._scale_list: list[float] = self._scale.tolist()
        self._revealed_any = False
        self._best: dict[tuple[int, int], int] = {}

    def load(self, rows: NDArray[np.void]) -> None:
        """One symbol's whole book (its rows, all at its seq and ts) becomes the book held."""
        s = int(rows["sym"][0])
        self._best.clear()
        self._load(self._books.setdefault(s, _Book()), s, rows, int(rows["seq"][0]))
        self._books[s].ts = int(rows["ts"][0])

    def apply(self, rows: NDArray[np.void]) -> None:
        """Changes, in order: each sets its level's size (0 removes it) and the book's seq."""
        self._apply(rows)

    def resnap(self, rows: NDArray[np.void]) -> NDArray[np.void]:
        """One symbol's whole book: the changes from the book held to it (see the module)."""
        return self._resnap(int(rows["sym"][0]), int(rows["seq"][0]), int(rows["ts"][0]), rows)

    def change(self, s: int, side: int, units: int, size: int, ts: int) -> int:
        """One change of symbol `s` in price units, numbered after its book's seq: that seq."""
        self._best.clear()
        book = self._books.get(s)
        if book is None:
            book = self._books[s] = _Book()
        levels = book.levels[side]
        if size:
            if book.heaps is not None and units not in levels:
                heapq.heappush(book.heaps[side], -units if side == 0 else units)
            levels[units] = size
        else:
            levels.pop(units, None)
        book.seq += 1
        book.ts = ts
        return book.seq

    def replace(
        self, s: int, levels: tuple[dict[int, int], dict[int, int]], ts: int, seq: int = 0
    ) -> list[tuple[int, int, int, int]]:
        """Symbol `s`'s whole book (price units -> size, bids then asks) replaces the one held:
        the changes that make it, (side, units, size, seq), numbered on from its seq (or the
        book is at `seq`, if given)."""
        self._best.clear()
        book = self._books.setdefault(s, _Book())
        out = []
        for side in (0, 1):
            old, new = book.levels[side], levels[side]
            for u in sorted(old.keys() - new.keys()):
                out.append((side, u, 0))
            for u, size in sorted(new.items()):
                if old.get(u) != size:
                    out.append((side, u, size))
        first = book.seq + 1
        book.levels, book.seq, book.ts = ({**levels[0]}, {**levels[1]}), book.seq + len(out), ts
        book.heaps = None
        book.seq = seq or book.seq
        return [(side, u, size, first + k) for k, (side, u, size) in enumerate(out)]

    def top(self, s: int) -> tuple[int, int, int, int] | None:
        """Symbol `s`'s best bid and ask (price units) and their sizes; None if a side is
        empty or the book is crossed or locked."""
        book = self._books.get(s)
        if book is None or not book.levels[0] or not book.levels[1]:
            return None
        bids, asks = book.levels
        if book.heaps is None:  # built once per whole book: a change pushes, `top` pops
            book.heaps = ([-u for u in bids], list(asks))
            heapq.heapify(book.heaps[0])
            heapq.heapify(book.heaps[1])
        high, low = book.heaps
        while -high[0] not in bids:  # a level removed since: drop it
            heapq.heappop(high)
        while low[0] not in asks:
            heapq.heappop(low)
        bid, ask = -high[0], low[0]
        return None if bid >= ask else (bid, bids[bid], ask, asks[ask])

    def tick_units(self, s: int) -> int:
        """Symbol `s`'s tick in price units."""
        return int(self._tick[s])

    def scale(self, sym: NDArray[np.intp]) -> NDArray[np.float64]:
        """Price units per 1 of each symbol in `sym`: price = units / scale."""
        out: NDArray[np.float64] = self._scale[sym]
        return out

    def ladders(self, ladders: NDArray[np.void]) -> NDArray[np.void]:
        """Every symbol's whole book (`ladder_dtype` records, as `snapshot` gives): the changes
        from the books held to them, in symbol order."""
        self._best.clear()
        return _join([self._resnap(*whole) for whole in _ladder_rows(ladders)])

    def snapshot(self) -> NDArray[np.void]:
        """Every symbol's book now as `Market.book_snapshot` gives it (by symbol id): dense
        ladders of `depth` ticks a side from the best, best first, size 0 for an empty price."""
        n = len(self._scale)
        out = np.zeros(n, ladder_dtype(self.depth))
        out["sym"] = np.arange(n)
        steps = np.arange(self.depth)
        for sym, book in self._books.items():
            out["seq"][sym], out["ts"][sym] = book.seq, book.ts
            tick, scale = int(self._tick[sym]), self._scale[sym]
            for side, name in ((0, "bid"), (1, "ask")):
                levels = book.levels[side]
                if not levels:
                    continue
                best = max(levels) if side == 0 else min(levels)
                units = best + (steps * tick if side else -steps * tick)
                out[f"{name}_price"][sym] = units / scale
                out[f"{name}_size"][sym] = [levels.get(u, 0) for u in units.tolist()]
        return out

    # ------------------------------------------------------------------ revealing

    def renumber(self, rows: NDArray[np.void]) -> NDArray[np.void]:
        """Recorded rows numbered after the records revealed so far (a copy if any moved)."""
        if not self._revealed_any or not len(rows):
            return rows
        out = rows.copy()
        out["seq"] += self._shift[rows["sym"].astype(np.intp)]
        return out

    def bests(self, rows: NDArray[np.void], whole: NDArray[np.bool_] | None = None) -> Bests:
        """Before `rows` apply: the best price (units; None: an empty side) of each symbol's
        side they remove a level from (only a removal moves a best out), and of both sides of
        the symbols of `whole` rows (whole books, which may remove any level)."""
        if len(rows) > _BATCH:  # (symbol, side) as one number, in arrays
            pair = rows["sym"].astype(np.int64) * 2 + rows["side"]
            keys = {(k >> 1, k & 1) for k in np.unique(pair[rows["size"] == 0]).tolist()}
            touched = {(k >> 1, k & 1) for k in np.unique(pair).tolist()}
        else:
            sym, side = rows["sym"].tolist(), rows["side"].tolist()
            pairs = list(zip(sym, side, strict=True))
            keys = {p for p, z in zip(pairs, rows["size"].tolist(), strict=True) if not z}
            touched = set(pairs)
        if whole is not None and whole.any():
            keys.update((s, d) for s in set(rows["sym"][whole].tolist()) for d in (0, 1))
        out: dict[tuple[int, int], int | None] = {}
        for key in keys:
            if key in self._best:
                out[key] = self._best[key]
                continue
            book = self._books.get(key[0])
            levels = book.levels[key[1]] if book is not None else {}
            out[key] = (max(levels) if key[1] == 0 else min(levels)) if levels else None
        return Bests(out, touched)

    def reveal(self, rows: NDArray[np.void], before: Bests) -> NDArray[np.void]:
        """`rows` (applied, with `bests` before them) and a REVEAL record for each level they
        brought within the depth without changing it, in time order."""
        for key in before.touched - before.best.keys():  # only levels set: the best may move in
            self._best.pop(key, None)
        extra: list[tuple[int, int, int, int]] = []  # sym, side, units, size
        for (s, side), old in before.best.items():
            levels = self._books[s].levels[side]
            if old is None or not levels or old in levels:  # the best stayed or moved in
                self._best.pop((s, side), None)
                continue
            new = self._best[(s, side)] = max(levels) if side == 0 else min(levels)
            span = self.depth * int(self._tick[s])
            if side == 0 and new < old:
                come = [u for u in levels if new - span < u <= old - span]
            elif side == 1 and new > old:
                come = [u for u in levels if old + span <= u < new + span]
            else:
                continue
            extra.extend((s, side, u, levels[u]) for u in sorted(come))
        return self._revealed(rows, extra) if extra else rows

    def _revealed(
        self, rows: NDArray[np.void], extra: list[tuple[int, int, int, int]]
    ) -> NDArray[np.void]:
        syms = {e[0] for e in extra}
        scale = self._scale_list
        changed = {
            (s, d, round(p * scale[s]))
            for s, d, p in zip(
                rows["sym"].tolist(), rows["side"].tolist(), rows["price"].tolist(), strict=True
            )
            if s in syms
        }
        extra = [e for e in extra if e[:3] not in changed]  # `rows` bring those themselves
        if not extra:
            return rows
        self._revealed_any = True
        out = np.zeros(len(extra), LEVEL_DTYPE)
        for k, (s, side, u, size) in enumerate(extra):
            book = self._books[s]
            book.seq += 1
            self._shift[s] += 1
            best = max(book.levels[0]) if side == 0 else min(book.levels[1])
            level = min(abs(u - best) // int(self._tick[s]), 65535)
            out[k] = (book.ts, book.seq, u / scale[s], size, s, level, side, _REVEAL, b"")
        joined = _join([rows, out])
        return joined[np.argsort(joined["ts"], kind="stable")]

    # ------------------------------------------------------------------ internals

    def _apply(self, rows: NDArray[np.void]) -> None:
        sym = rows["sym"].astype(np.intp)
        units = np.round(rows["price"] * self._scale[sym]).astype(np.int64)
        if len(rows) >= _BATCH:
            ids, first = np.unique(sym, return_index=True)
            if len(ids) * 8 <= len(rows):  # many rows a book: in arrays
                self._apply_batch(rows, sym, units, ids, first)
                return
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
            book.seq, book.ts, book.heaps = seq, ts, None

    def _apply_batch(
        self,
        rows: NDArray[np.void],
        sym: NDArray[np.intp],
        units: NDArray[np.int64],
        ids: NDArray[np.intp],
        first: NDArray[np.intp],
    ) -> None:
        """`_apply`'s loop in arrays, for a batch of many rows a book (`ids`: its symbols, and
        `first` their first rows): each level's last write only, a side's new sizes put in one
        dict update, its removals popped; each book's seq and ts its last row's. The same books
        as row by row (their dicts keep another insertion order, which nothing reads)."""
        n = len(rows)
        side = rows["side"].astype(np.intp)
        order = np.lexsort((units, side, sym))  # stable: a level's rows in order
        k_sym, k_side, k_units = sym[order], side[order], units[order]
        last = np.ones(n, np.bool_)
        last[:-1] = (k_sym[1:] != k_sym[:-1]) | (k_side[1:] != k_side[:-1])
        last[:-1] |= k_units[1:] != k_units[:-1]
        pick = order[last]  # by symbol, side, price
        for s in ids[np.argsort(first)].tolist():  # new books in the order the rows make them
            if s not in self._books:
                self._books[s] = _Book()
        size = rows["size"][pick]
        for put in (True, False):
            got = pick[(size > 0) == put]
            if not len(got):
                continue
            g_sym, g_side, g_units = sym[got], side[got], units[got].tolist()
            g_size = rows["size"][got].tolist()
            cut = np.flatnonzero((g_sym[1:] != g_sym[:-1]) | (g_side[1:] != g_side[:-1])) + 1
            starts = [0, *cut.tolist()]
            for a, b in zip(starts, [*starts[1:], len(got)], strict=True):
                levels = self._books[int(g_sym[a])].levels[int(g_side[a])]
                if put:
                    levels.update(zip(g_units[a:b], g_size[a:b], strict=True))
                else:
                    for u in g_units[a:b]:
                        levels.pop(u, None)
        at = n - 1 - np.unique(sym[::-1], return_index=True)[1]  # each symbol's last row
        for s, seq, ts in zip(
            ids.tolist(), rows["seq"][at].tolist(), rows["ts"][at].tolist(), strict=True
        ):
            book = self._books[s]
            book.seq, book.ts, book.heaps = seq, ts, None

    def _load(self, book: _Book, s: int, rows: NDArray[np.void], seq: int) -> None:
        """`rows` (one symbol's whole book, at `seq`) become `book`."""
        units = np.round(rows["price"] * self._scale[s]).astype(np.int64).tolist()
        book.levels, book.heaps = ({}, {}), None
        for side, u, size in zip(rows["side"].tolist(), units, rows["size"].tolist(), strict=True):
            if size:
                book.levels[side][u] = size
        book.seq = seq

    def _resnap(self, s: int, seq: int, ts: int, rows: NDArray[np.void]) -> NDArray[np.void]:
        """Symbol `s`'s whole book at `seq`: the changes that turn the book held into it,
        numbered to end at `seq` (all at `seq` if the seqs between hold fewer)."""
        book = self._books.setdefault(s, _Book())
        old = book.levels
        held = book.seq
        self._load(book, s, rows, seq)
        book.ts = ts
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
            if seq - held >= len(changes):  # room for them: the last at its seq
                out["seq"] = np.arange(seq - len(changes) + 1, seq + 1)
            else:  # fewer seqs than changes (a book from nothing): a jump, read as a resync
                out["seq"] = seq
        out["sym"], out["ts"] = s, book.ts
        return out


def _join(parts: list[NDArray[np.void]]) -> NDArray[np.void]:
    if not parts:
        return np.empty(0, LEVEL_DTYPE)
    joined: NDArray[np.void] = np.concatenate([p.view(_RECORD) for p in parts])
    return joined.view(LEVEL_DTYPE)


def _ladder_rows(ladders: NDArray[np.void]) -> list[tuple[int, int, int, NDArray[np.void]]]:
    """`ladder_dtype` records as each symbol's (sym, seq, ts, whole-book rows: LEVEL_DTYPE,
    reason 0); symbols without a book (seq 0, no levels) left out."""
    out = []
    for lad in ladders:
        bid, ask = lad["bid_size"] > 0, lad["ask_size"] > 0
        rows = np.zeros(int(bid.sum() + ask.sum()), LEVEL_DTYPE)
        nb = int(bid.sum())
        rows["price"][:nb], rows["size"][:nb] = lad["bid_price"][bid], lad["bid_size"][bid]
        rows["price"][nb:], rows["size"][nb:] = lad["ask_price"][ask], lad["ask_size"][ask]
        rows["side"][nb:] = 1
        rows["level"][:nb], rows["level"][nb:] = np.flatnonzero(bid), np.flatnonzero(ask)
        rows["sym"], rows["seq"], rows["ts"] = lad["sym"], lad["seq"], lad["ts"]
        if len(rows) or lad["seq"]:
            out.append((int(lad["sym"]), int(lad["seq"]), int(lad["ts"]), rows))
    return out
