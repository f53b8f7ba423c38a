"""The client's books as dense numpy ladders: a whole binary `book` frame applied at once.

Owns the fast path of `book.ClientBooks`: every book it holds from binary frames is a row of
sizes by price, one plane a side, each best first (asks up from the plane's `base` tick, bids
down from it) and `width` ticks wide, so a frame's level updates of every symbol apply with a
few dozen array operations in all instead of a Python step per update. Beside each level sits
its checksum text ("{units}{size}" as `protocol.book.checksum` formats it, NUL-padded words):
prices are formatted when a row is loaded and a size when it changes, so a frame's CRC32s are
one gather of the top 10 asks then bids of every symbol it changes (each symbol's text ended by
its bids plane's last tick, which holds "|" and never a level), one `bytes.translate` that drops
the padding and one `zlib.crc32` a symbol. Same rules as `protocol.book.Levels.apply`: every
change in order, then levels beyond the depth from each side's best dropped, then the checksum;
a symbol whose seq does not follow or whose checksum does not match is dropped from here and
reported. A price or size longer than the text holds widens every row's text. A change outside
a row's window (or off the tick grid, or a size over 2^63 - 1) is not guessed at: the caller
takes the symbol to `Levels` for that frame and may load it again, re-centred. No trio, no
sockets.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.client.digits import (
    END,
    END_WORD,
    LIMITS,
    SMALL,
    WORDS,
    number_words,
    small_words,
)
from tickwire.feed.protocol import book as b

_IDS = 1 << 16  # symbol ids are u2 on the wire
_MARKS = 1 << 16  # level changes marked before the marks start again
_SIGN = np.array([1, -1])  # plane 0 asks (up from the base), plane 1 bids (down from it)
# by the wire's side byte (0 bid, any other ask): its sign in a plane, and its plane
_SIDE_SIGN = np.ones(256)
_SIDE_SIGN[0] = -1.0
_SIDE_PLANE = np.zeros(256, np.intp)
_SIDE_PLANE[0] = 1


class Applied(NamedTuple):
    """A frame's outcome by symbol id: applied and checked, refused, or to take slowly."""

    good: list[int]
    bad: list[int]
    slow: list[int]


class DenseBooks:
    """Books by symbol id; row `slot[sym]` (-1: not held here) holds `sizes[row, plane, i]`, the
    size at tick `base[row, plane] + _SIGN[plane] * i` (plane 0 asks, 1 bids), and its text in
    `text[row, plane, i]`; `depth`, `seq` and `ts` by row as a `Levels` has them. A side's best
    starts `margin` ticks into its plane."""

    def __init__(self, decimals: list[int], tick_units: list[int], depth: int) -> None:
        self.margin = max(32, depth // 2)  # ticks a best may move either way before re-centring
        self.width = depth + 2 * self.margin
        self.max_depth = depth  # a row's depth is at most the server's
        # a plane is `width` ticks and then one always empty, whose text ends a bids plane's
        self.span = span = self.width + 1
        self._unit_ticks = bool((np.array(tick_units) <= 1).all())  # units are ticks
        self.decimals = np.array(decimals, np.int64)
        self.tick_units = np.maximum(np.array(tick_units, np.int64), 1)
        self.scale = 10.0**self.decimals
        one = len(set(decimals)) == 1
        self._scale: float | None = float(self.scale[0]) if one else None  # the one 10^decimals
        self._side_scale = _SIDE_SIGN * (self._scale or 1.0)  # by side: a price to signed units
        self.slot = np.full(_IDS, -1, np.intp)
        self.sym = np.zeros(0, np.intp)  # by row: its symbol id
        self.sizes = np.zeros((0, 2, span), np.int64)
        # a level's text: its price's units in `words` words, then its size in as many; more
        # words when a number needs them (two hold the default universe's)
        self.words = 2
        self._limit = LIMITS[self.words]
        self.text = np.zeros((0, 2, span, 2 * self.words), np.uint32)
        self._size_text = self._sizes_words()
        self.base = np.zeros((0, 2), np.int64)
        self.signed_base = np.zeros((0, 2), np.int64)  # _SIGN * base: i = _SIGN * tick - this
        self.depth = np.zeros(0, np.int64)
        self.seq = np.zeros(0, np.int64)
        self.ts = np.zeros(0, np.int64)
        self._free: list[int] = []
        self._ticks = np.arange(span)
        self._count = np.arange(0)  # 0, 1, ... as long as a frame needs
        self._last = np.zeros(0, np.int64)  # by place in `sizes`: the mark of its last change
        self._stamp = 0  # marks handed out since `_last` was cleared
        self._marks = np.arange(_MARKS)  # marks to hand out, in order
        self._ends = np.empty(_IDS + 1, np.intp)  # a frame's symbol ids, then _IDS
        self._places = np.zeros((0, 2, span), np.intp)  # each level's place in `sizes`
        self._planes = np.zeros(0, np.intp)  # by plane (row * 2 + plane): its first place
        self._one_depth = True  # no row was loaded at a depth but `max_depth`

    def _grow(self) -> None:
        """Twice the rows (rows are made as books come)."""
        old = len(self.sym)
        new = max(16, 2 * old)
        more = new - old
        self.sizes = np.concatenate((self.sizes, np.zeros((more, 2, self.span), np.int64)))
        text = np.zeros((more, 2, self.span, 2 * self.words), np.uint32)
        self.text = np.concatenate((self.text, text))
        self._size_text = self._sizes_words()
        self.base = np.concatenate((self.base, np.zeros((more, 2), np.int64)))
        self.signed_base = np.concatenate((self.signed_base, np.zeros((more, 2), np.int64)))
        pad = np.zeros(more, np.int64)
        self.sym = np.concatenate((self.sym, pad.astype(np.intp)))
        self.depth = np.concatenate((self.depth, pad))
        self.seq, self.ts = np.concatenate((self.seq, pad)), np.concatenate((self.ts, pad))
        self._free.extend(range(new - 1, old - 1, -1))
        self._last = np.full(self.sizes.size, -1, np.int64)
        self._places = np.arange(self.sizes.size).reshape(self.sizes.shape)
        self._planes = np.arange(0, self.sizes.size, self.span)

    def _sizes_words(self) -> NDArray[np.uint64] | None:
        """Each level's size text as one u64 (a view of `text`), while it is two words."""
        return self.text.reshape(-1, 4).view(np.uint64)[:, 1] if self.words == 2 else None

    def held(self, sym: int) -> bool:
        return bool(self.slot[sym] >= 0)

    def count(self) -> int:
        """Books held here."""
        return len(self.sym) - len(self._free)

    def _widen(self, value: int) -> None:
        """Enough words in every level's text for `value` (each number keeps its digits
        right-aligned in its part, NUL before them)."""
        if value < self._limit:
            return
        old = self.words
        while self.words < WORDS and value >= LIMITS[self.words]:
            self.words += 1
        self._limit, w = LIMITS[self.words], self.words
        text = np.zeros((*self.text.shape[:3], 2 * w), np.uint32)
        text[..., w - old : w] = self.text[..., :old]
        text[..., 2 * w - old :] = self.text[..., old:]
        self.text = text
        self._size_text = self._sizes_words()

    def load(self, sym: int, levels: b.Levels, depth: int) -> bool:
        """Hold `levels` for symbol `sym`, each side's best `margin` ticks into its plane;
        False if it does not fit (a side wider than its plane, off the tick grid, a size over
        2^63 - 1): then it is not held here."""
        self.drop(sym)
        tu = int(self.tick_units[sym])
        sides = (levels.asks, levels.bids)
        if depth > self.max_depth:
            return False
        if tu != levels.tick_units or any(u % tu or u < 0 for side in sides for u in side):
            return False
        if any(size >= 1 << 63 for side in sides for size in side.values()):
            return False
        ticks = [np.array(list(side), np.int64) // tu for side in sides]
        ask = int(ticks[0].min()) if len(ticks[0]) else None
        bid = int(ticks[1].max()) if len(ticks[1]) else None
        ask = ask if ask is not None else (bid + 1 if bid is not None else 0)
        bid = bid if bid is not None else ask - 1
        base = np.array([ask - self.margin, bid + self.margin], np.int64)
        self._widen(max((ask - self.margin + self.width) * tu, *levels.asks.values(), 0))
        self._widen(max(levels.bids.values(), default=0))
        at = [(t - base[p]) * _SIGN[p] for p, t in enumerate(ticks)]
        if any(len(a) and int(a.max()) >= self.width for a in at):
            return False
        if not self._free:
            self._grow()
        row = self._free.pop()
        self.slot[sym], self.sym[row] = row, sym
        self.sizes[row] = 0
        for p, side in enumerate(sides):
            self.sizes[row, p, at[p]] = np.array(list(side.values()), np.int64)
        self.base[row], self.signed_base[row] = base, base * _SIGN
        self.depth[row] = depth
        self._one_depth &= depth == self.max_depth
        self.seq[row], self.ts[row] = levels.seq, levels.ts
        # every tick's price once (none below 0 holds a level), the sizes held
        units = np.maximum(base[:, None] + _SIGN[:, None] * self._ticks, 0) * tu
        text = self.text[row]
        w = self.words
        text[..., :w] = number_words(units.reshape(-1), w).reshape(2, self.span, w)
        text[..., w:] = number_words(self.sizes[row].reshape(-1), w).reshape(2, self.span, w)
        text[1, -1] = 0
        text[1, -1, 0] = END_WORD
        return True

    def drop(self, sym: int) -> None:
        row = int(self.slot[sym])
        if row >= 0:
            self.slot[sym] = -1
            self._free.append(row)

    def clear(self) -> None:
        for sym in np.flatnonzero(self.slot >= 0).tolist():
            self.drop(sym)

    def apply(self, records: NDArray[np.void], checks: NDArray[np.void]) -> Applied:
        """A binary `book` frame's records and checksum entries, for the symbols held here;
        the refused ones are dropped."""
        applied = self._fast(records, checks)
        if applied is None:
            applied = self._careful(records, checks)
        for sym in applied.bad:
            self.drop(sym)
        return applied

    def _counting(self, n: int) -> NDArray[np.intp]:
        """0, 1, ..., n - 1 (a view of one kept array)."""
        if len(self._count) < n:
            self._count = np.arange(max(n, 2 * len(self._count)))
        return self._count[:n]

    def _fast(self, records: NDArray[np.void], checks: NDArray[np.void]) -> Applied | None:
        """The usual frame in fewer steps, or None (nothing changed) unless it is one: every
        symbol held here, a checksum entry per symbol with records and none without, in symbol
        order, each symbol's seqs running on from its book's, every change inside its plane.
        (Each numpy call costs about a microsecond whatever its size here: few of them.)"""
        n, k = len(records), len(checks)
        if not n or not k:
            return None
        ids = checks["sym"]
        rows = self.slot.take(ids)
        recs = records.take(records["sym"].argsort(kind="stable"))  # by symbol, each in order
        sym = recs["sym"]
        ends = self._ends[: k + 1]
        ends[:k] = ids
        ends[k] = _IDS
        bounds = sym.searchsorted(ends)  # where each id's records start, then n
        lo, ends = bounds[:-1], bounds[1:]
        count = ends - lo
        if lo[0] or np.count_nonzero(count) < k or np.count_nonzero(rows < 0):
            return None  # a record before the first id, an id without records, or not held
        try:
            group = self._counting(k).repeat(count)  # each record's place in `ids`
        except ValueError:  # a negative count: the ids are not in order
            return None
        # the records are all `ids`' and each symbol's seqs run on from its book's, one by one
        seq = recs["seq"].view(np.int64)  # over 2^63 - 1: negative, no match
        start = self.seq.take(rows)
        start -= lo
        wrong = seq - start.take(group) != self._counting(n + 1)[1:]
        if np.count_nonzero(wrong) or np.count_nonzero(sym.searchsorted(ids, "right") != ends):
            return None  # (each id's records end where the next id's start: none between)
        side = recs["side"]
        scale = self._side_scale.take(side)
        if self._scale is None:
            scale *= self.scale.take(sym)
        price = recs["price"] * scale
        ticks = np.rint(price, out=price).astype(np.int64)  # _SIGN * units: bids negative
        size = recs["size"].view(np.int64)
        most = int(size.view(np.uint64).max())
        if most >= self._limit:  # over 2^63 - 1, or longer text
            return None  # (prices: every tick of a plane has its text)
        if not self._unit_ticks:
            tu = self.tick_units.take(sym)
            if np.count_nonzero(ticks % tu):
                return None
            ticks //= tu
        plane = (rows * 2).take(group)
        plane += _SIDE_PLANE.take(side)
        ticks -= self.signed_base.reshape(-1).take(plane)  # the tick's place in its plane
        if ticks.view(np.uint64).max() >= self.width:
            return None
        ticks += self._planes.take(plane)
        self._write(ticks, size, most)
        start += ends  # each book's seq now: its last record's
        self.seq[rows] = start
        self.ts[rows] = recs["ts"].take(ends - 1)
        crcs = self._crcs(rows)
        if crcs == checks["crc"].tolist():
            return Applied(ids.tolist(), [], [])
        good = np.array(crcs) == checks["crc"]
        return Applied(ids[good].tolist(), ids[~good].tolist(), [])

    def _careful(self, records: NDArray[np.void], checks: NDArray[np.void]) -> Applied:
        """Any frame: each symbol checked apart, those held here applied, the rest reported."""
        ids = checks["sym"].astype(np.intp)
        rows = self.slot[ids]
        crc = checks["crc"]
        if not (rows >= 0).all():
            mine = rows >= 0
            ids, rows, crc = ids[mine], rows[mine], crc[mine]
        if not len(ids):
            return Applied([], [], [])
        if not len(records):
            return Applied([], ids.tolist(), [])
        n = len(records)
        order = records["sym"].argsort(kind="stable")  # by symbol, each in order
        sym = records["sym"][order].astype(np.intp)
        lo, hi = sym.searchsorted(ids), sym.searchsorted(ids + 1)
        seq = records["seq"][order].view(np.int64)
        # a symbol's changes must run on from its book's seq, one by one
        runs = np.zeros(n, np.int64)
        np.cumsum(seq[1:] != seq[:-1] + 1, out=runs[1:])
        first, last = np.minimum(lo, n - 1), np.maximum(hi - 1, 0)
        ok = (hi > lo) & (seq[first] == self.seq[rows] + 1) & (runs[last] == runs[first])
        units = np.rint(records["price"][order] * self.scale[sym]).astype(np.int64)
        size = records["size"][order].view(np.int64)
        tu = self.tick_units[sym]
        rec_row = self.slot[sym]  # -1 where not held: junk places, never applied
        bids = records["side"][order] == 0  # the wire's side: 0 bid, 1 ask
        at = rec_row * 2 + bids
        ticks = units // tu
        np.negative(ticks, out=ticks, where=bids)
        ticks -= self.signed_base.reshape(-1)[at]
        fits = (units % tu == 0) & (ticks >= 0) & (ticks < self.width)
        self._widen(int(np.maximum(units, size).max()))  # (over 2^63 - 1: below 0 here)
        fits &= (units | size).view(np.uint64) < self._limit
        slow = np.zeros(len(ids), bool)
        if not fits.all():
            unfit = np.zeros(n + 1, np.int64)
            np.cumsum(~fits, out=unfit[1:])
            slow = ok & (unfit[hi] > unfit[lo])
        go = ok & ~slow
        bad, slow_ids = ids[~ok].tolist(), ids[slow].tolist()
        if not go.any():
            return Applied([], bad, slow_ids)
        if not go.all():
            ids, rows, crc, hi = ids[go], rows[go], crc[go], hi[go]
        mine = np.zeros(len(self.sym) + 1, bool)  # by row, and -1 (not held) last
        mine[rows] = True
        pick = np.flatnonzero(mine[rec_row])  # the records of the symbols applied
        self._write(at[pick] * self.span + ticks[pick], size[pick])
        self.seq[rows] = seq[hi - 1]
        self.ts[rows] = records["ts"][order[hi - 1]]
        good = np.array(self._crcs(rows)) == crc
        if not good.all():  # a row twice in the frame is good only if both are
            good &= ~np.isin(rows, rows[~good])
        return Applied(ids[good].tolist(), [*bad, *ids[~good].tolist()], slow_ids)

    def _write(self, at: NDArray[np.intp], size: NDArray[np.int64], most: int = -1) -> None:
        """Set each level `at` (a place in `sizes`) to its `size`, in order (a level's last
        change wins), and its text (looked up when every size is `most` or less, known)."""
        n = len(at)
        if self._stamp + n > len(self._marks):  # marks run out: start again
            self._last.fill(-1)
            self._stamp = 0
            self._marks = np.arange(max(n, len(self._marks)))
        mark = self._marks[self._stamp : self._stamp + n]  # above every mark in `_last`
        self._stamp += n
        np.maximum.at(self._last, at, mark)  # each level's last change in this frame
        won = self._last.take(at) == mark
        if np.count_nonzero(won) < n:
            at, size = at[won], size[won]
        self.sizes.reshape(-1)[at] = size
        w = self.words
        if self._size_text is not None and 0 <= most < SMALL:
            self._size_text[at] = small_words().view(np.uint64).take(size)
        else:
            self.text.reshape(-1, 2 * w)[at, w:] = number_words(size, w)

    def _crcs(self, rows: NDArray[np.intp]) -> list[int]:
        """Cut `rows` to each one's depth from its best, per side, and their checksums: the
        CRC32 of the text of the top 10 asks then bids of each."""
        held = self.sizes.take(rows, axis=0) > 0
        depth = self.max_depth if self._one_depth else self.depth.take(rows)[:, None]
        rank = held.cumsum(axis=2, dtype=np.int32)  # levels of the side up to each tick
        best = held.argmax(axis=2)  # (row, plane); an empty side: 0, nothing to cut
        last = rank.argmax(axis=2)  # the side's last level (its rank is the side's most)
        last -= best
        if np.count_nonzero(last >= depth):  # a level `depth` ticks or more from its best
            keep = self._ticks < (best + depth)[:, :, None]
            now = self.sizes.take(rows, axis=0)
            now *= keep
            self.sizes[rows] = now
            held &= keep
            rank = held.cumsum(axis=2, dtype=np.int32)
        top = rank <= b.CHECKSUM_LEVELS
        top &= held
        top[:, 1, -1] = True  # each row's text ends with its bids plane's last tick, "|"
        at = self._places.take(rows, axis=0)[top]  # by row, asks then bids, each best first
        text = self.text.reshape(-1, 2 * self.words).take(at, axis=0).tobytes()
        parts = text.translate(None, b"\0").split(END)
        parts.pop()  # after the last "|"
        return list(map(zlib.crc32, parts))
