"""The client's books as dense numpy ladders: a whole binary `book` frame applied at once.

Owns the fast path of `book.ClientBooks`: every book it holds from binary frames is a row of
sizes by price (ticks from the row's `base`, one plane a side, `width` ticks wide), so a frame's
level updates of every symbol apply with a handful of array operations instead of a Python
step per update, and each symbol's CRC32 (`protocol.book.checksum`: the top 10 asks then bids,
"{units}{size}" each) is formatted by table and checked once per frame, at the symbol's last
change, as the protocol gives it. Same rules as `protocol.book.Levels.apply`: every change in
order, then levels beyond the depth from each side's best dropped, then the checksum; a symbol
whose seq does not follow or whose checksum does not match is put back as it was and reported.
A change outside a row's window (or off the tick grid) is not guessed at: the caller takes the
symbol to `Levels` for that frame and may load it again, centred. No trio, no sockets.
"""

from __future__ import annotations

import itertools
import zlib
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.protocol import book as b

_IDS = 1 << 16  # symbol ids are u2 on the wire
_MAX_SIZE = (1 << 63) - 1  # a size a row holds (u8 on the wire: larger ones take `Levels`)
_POW10 = 10 ** np.arange(1, 19, dtype=np.int64)  # 10 .. 10^18: digits past the first
# "0000" .. "9999" as the 4 bytes of a word each, to gather 4 digits at a time
_WORDS = np.frombuffer("".join(f"{i:04d}" for i in range(10_000)).encode(), np.uint32)


class Applied(NamedTuple):
    """A frame's outcome by symbol id: applied and checked, refused, or to take slowly."""

    good: list[int]
    bad: list[int]
    slow: list[int]


def digits_text(values: NDArray[np.int64]) -> tuple[NDArray[np.uint8], NDArray[np.intp]]:
    """The decimal digits of every value (0 to 2^63 - 1), back to back in ASCII, and each
    value's digit count."""
    count = np.searchsorted(_POW10, values, "right")
    count += 1
    quads = -(-int(count.max(initial=1)) // 4)
    words = np.empty((len(values), quads), np.uint32)  # four digits a word, zero-padded
    rest = values
    for q in range(quads - 1, 0, -1):
        rest, low = np.divmod(rest, 10_000)
        words[:, q] = _WORDS[low]
    words[:, 0] = _WORDS[rest]
    width = 4 * quads
    keep = np.arange(width) >= (width - count)[:, None]  # no leading zeros
    return words.view(np.uint8)[keep], count


class DenseBooks:
    """Books by symbol id; row `slot[sym]` (-1: not held here) holds `sizes[row, side, i]`, the
    size at tick `base[row] + i`; `depth`, `seq` and `ts` by row as a `Levels` has them."""

    def __init__(self, decimals: list[int], tick_units: list[int], width: int) -> None:
        self.width = width
        self.decimals = np.array(decimals, np.int64)
        self.tick_units = np.maximum(np.array(tick_units, np.int64), 1)
        self.scale = 10.0**self.decimals
        self.slot = np.full(_IDS, -1, np.intp)
        self.sym = np.zeros(0, np.intp)  # by row: its symbol id
        self.sizes = np.zeros((0, 2, width), np.int64)
        self.base = np.zeros(0, np.int64)
        self.depth = np.zeros(0, np.int64)
        self.seq = np.zeros(0, np.int64)
        self.ts = np.zeros(0, np.int64)
        self._free: list[int] = []

    def _grow(self) -> None:
        """Twice the rows (rows are made as books come: a deep book's row is large)."""
        old = len(self.sym)
        new = max(16, 2 * old)
        self.sizes = np.concatenate((self.sizes, np.zeros((new - old, 2, self.width), np.int64)))
        pad = np.zeros(new - old, np.int64)
        self.sym = np.concatenate((self.sym, pad.astype(np.intp)))
        self.base, self.depth = np.concatenate((self.base, pad)), np.concatenate((self.depth, pad))
        self.seq, self.ts = np.concatenate((self.seq, pad)), np.concatenate((self.ts, pad))
        self._free.extend(range(new - 1, old - 1, -1))

    def held(self, sym: int) -> bool:
        return bool(self.slot[sym] >= 0)

    def load(self, sym: int, levels: b.Levels, depth: int) -> bool:
        """Hold `levels` (cut to `depth`) for symbol `sym`, centred; False if it does not fit
        (a side wider than the row, or off the tick grid): then it is not held here."""
        self.drop(sym)
        tu = int(self.tick_units[sym])
        ticks = [[u // tu for u in side] for side in (levels.bids, levels.asks)]
        every = ticks[0] + ticks[1]
        sides = (levels.bids, levels.asks)
        if tu != levels.tick_units or any(u % tu or u < 0 for side in sides for u in side):
            return False
        if any(size > _MAX_SIZE for side in sides for size in side.values()):
            return False
        if every:
            low, high = min(every), max(every)
            if high - low >= self.width - 2:
                return False
            base = (low + high) // 2 - self.width // 2
        else:
            base = 0
        if not self._free:
            self._grow()
        row = self._free.pop()
        self.slot[sym], self.sym[row] = row, sym
        self.sizes[row] = 0
        for side, book in enumerate((levels.bids, levels.asks)):
            if book:
                at = np.array(ticks[side], np.int64) - base
                self.sizes[row, side, at] = np.array(list(book.values()), np.int64)
        self.base[row], self.depth[row] = base, depth
        self.seq[row], self.ts[row] = levels.seq, levels.ts
        return True

    def drop(self, sym: int) -> None:
        row = int(self.slot[sym])
        if row >= 0:
            self.slot[sym] = -1
            self._free.append(row)

    def clear(self) -> None:
        for sym in np.flatnonzero(self.slot >= 0).tolist():
            self.drop(sym)

    def levels(self, sym: int) -> b.Levels:
        """Symbol `sym`'s book as a `Levels` (to take a change the rows cannot)."""
        row = int(self.slot[sym])
        tu = int(self.tick_units[sym])
        out = b.Levels(int(self.decimals[sym]), tu, int(self.seq[row]), int(self.ts[row]))
        for side, book in enumerate((out.bids, out.asks)):
            at = np.flatnonzero(self.sizes[row, side])
            units = ((at + self.base[row]) * tu).tolist()
            book.update(zip(units, self.sizes[row, side, at].tolist(), strict=True))
        return out

    def rows(self, sym: int) -> tuple[NDArray[np.void], NDArray[np.void]]:
        """Bids and asks as `protocol.book.LEVEL_ROW` arrays, best first."""
        row = int(self.slot[sym])
        out = []
        for side in (0, 1):
            at = np.flatnonzero(self.sizes[row, side])
            if side == 0:
                at = at[::-1]
            arr = np.empty(len(at), b.LEVEL_ROW)
            units = (at + self.base[row]) * self.tick_units[sym]
            arr["price"] = units.astype(np.float64) / 10 ** int(self.decimals[sym])
            arr["size"] = self.sizes[row, side, at]
            out.append(arr)
        return out[0], out[1]

    def apply(self, records: NDArray[np.void], checks: NDArray[np.void]) -> Applied:
        """A binary `book` frame's records and checksum entries, for the symbols held here."""
        ids = checks["sym"].astype(np.intp)
        rows = self.slot[ids]
        mine = rows >= 0
        ids, rows, crc = ids[mine], rows[mine], checks["crc"][mine].astype(np.int64)
        if not len(ids):
            return Applied([], [], [])
        if not len(records):
            return Applied([], ids.tolist(), [])
        recs = records[np.argsort(records["sym"], kind="stable")]  # by symbol, each in order
        sym = recs["sym"].astype(np.intp)
        lo, hi = sym.searchsorted(ids), sym.searchsorted(ids + 1)
        seq = recs["seq"].astype(np.int64)
        # a symbol's changes must run on from its book's seq, one by one
        runs = np.zeros(len(seq), np.int64)
        np.cumsum(seq[1:] != seq[:-1] + 1, out=runs[1:])
        first, last = np.minimum(lo, len(sym) - 1), np.maximum(hi - 1, 0)
        ok = (hi > lo) & (seq[first] == self.seq[rows] + 1) & (runs[last] == runs[first])
        units = np.rint(recs["price"] * self.scale[sym]).astype(np.int64)
        tu = self.tick_units[sym]
        rec_row = self.slot[sym]
        at = units // tu - self.base[rec_row]  # junk for symbols not held: never used
        fits = (units >= 0) & (units % tu == 0) & (at >= 0) & (at < self.width)
        fits &= recs["size"] <= _MAX_SIZE
        unfit = np.zeros(len(seq) + 1, np.int64)
        np.cumsum(~fits, out=unfit[1:])
        slow = ok & (unfit[hi] > unfit[lo])
        go = ok & ~slow
        bad, slow_ids = ids[~ok].tolist(), ids[slow].tolist()
        if not go.any():
            return Applied([], bad, slow_ids)
        ids, rows, crc, hi = ids[go], rows[go], crc[go], hi[go]
        local = np.full(len(self.sym) + 1, -1, np.intp)  # row -> its place in `rows`
        local[rows] = np.arange(len(rows))
        where = local[rec_row]  # -1 (the extra last entry) for rows not applied here
        pick = np.flatnonzero(where >= 0)
        flat = (where[pick] * 2 + recs["side"][pick]) * self.width + at[pick]
        keys, back = np.unique(flat[::-1], return_index=True)  # the last change of a level wins
        now = self.sizes[rows]
        now.reshape(-1)[keys] = recs["size"][pick][len(pick) - 1 - back]
        good = self._check(rows, now, crc)
        if not good.all():  # a row twice in the frame is good only if both are
            good &= ~np.isin(rows, rows[~good])
        ok_rows = rows[good]
        self.sizes[ok_rows] = now[good]
        self.seq[ok_rows] = seq[hi[good] - 1]
        self.ts[ok_rows] = recs["ts"][hi[good] - 1]
        return Applied(ids[good].tolist(), [*bad, *ids[~good].tolist()], slow_ids)

    def _check(
        self, rows: NDArray[np.intp], now: NDArray[np.int64], crc: NDArray[np.int64]
    ) -> NDArray[np.bool_]:
        """Cut `now` (the new `sizes` of `rows`) to each row's depth from its best, per side,
        and whether its checksum ("{units}{size}" of the top 10 asks then bids) is `crc`."""
        k, width = len(rows), self.width
        col = np.arange(width)
        best_bid = width - 1 - np.argmax(now[:, 0, ::-1] > 0, axis=1)  # an empty side: no cut
        best_ask = np.argmax(now[:, 1] > 0, axis=1)
        depth = self.depth[rows]
        now[:, 0] *= col > (best_bid - depth)[:, None]
        now[:, 1] *= col < (best_ask + depth)[:, None]
        # each side's first `depth` ticks from its best, asks first: (row, side, j)
        span = int(depth.max())
        j = np.arange(span)
        at = np.empty((k, 2, span), np.intp)
        at[:, 0] = best_ask[:, None] + j
        at[:, 1] = best_bid[:, None] - j
        inside = (at >= 0) & (at < width)
        np.maximum(at, 0, out=at)
        np.minimum(at, width - 1, out=at)
        at[:, 0] += width
        at += (np.arange(k) * 2 * width)[:, None, None]
        size = now.reshape(-1)[at]
        size *= inside
        # the first 10 levels of each side that hold something
        held = size > 0
        rank = np.cumsum(held.reshape(-1), dtype=np.intp).reshape(held.shape)
        rank -= (rank[:, :, 0] - held[:, :, 0])[:, :, None]
        held &= rank <= b.CHECKSUM_LEVELS
        tick = at - (np.arange(k) * 2 * width)[:, None, None]
        tick[:, 0] -= width
        tick += self.base[rows][:, None, None]
        values = np.empty((*held.shape, 2), np.int64)
        values[..., 0] = tick * self.tick_units[self.sym[rows]][:, None, None]
        values[..., 1] = size
        text, count = digits_text(values[held].reshape(-1))
        ends = np.zeros(k + 1, np.int64)
        np.cumsum(held.reshape(k, -1).sum(1) * 2, out=ends[1:])
        chars = np.zeros(len(count) + 1, np.int64)
        np.cumsum(count, out=chars[1:])
        data = memoryview(text.tobytes())
        cut = chars[ends].tolist()
        crcs = [zlib.crc32(data[a:z]) for a, z in itertools.pairwise(cut)]
        good: NDArray[np.bool_] = np.array(crcs, np.int64) == crc
        return good
