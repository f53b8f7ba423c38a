"""The client's books as dense numpy ladders: a whole binary `book` frame applied at once.

Owns the fast path of `book.ClientBooks`: every book it holds from binary frames is a row of
sizes by price, one plane a side, each best first (asks up from the plane's `base` tick, bids
down from it) and `width` ticks wide, so a frame's level updates of every symbol apply with a
handful of array operations instead of a Python step per update, and each symbol's CRC32
(`protocol.book.checksum`: the top 10 asks then bids, "{units}{size}" each) is formatted by
table and checked once per frame, at the symbol's last change, as the protocol gives it. Same
rules as `protocol.book.Levels.apply`: every change in order, then levels beyond the depth from
each side's best dropped, then the checksum; a symbol whose seq does not follow or whose
checksum does not match is put back as it was and reported. A change outside a row's window
(or off the tick grid) is not guessed at: the caller takes the symbol to `Levels` for that
frame and may load it again, re-centred. No trio, no sockets.
"""

from __future__ import annotations

import itertools
import zlib
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.protocol import book as b

_IDS = 1 << 16  # symbol ids are u2 on the wire
_SIGN = np.array([1, -1])  # plane 0 asks (up from the base), plane 1 bids (down from it)
_MAX_SIZE = (1 << 63) - 1  # a size a row holds (u8 on the wire: larger ones take `Levels`)
_POW10 = 10 ** np.arange(1, 19, dtype=np.int64)  # 10 .. 10^18: digits past the first
# "0000" .. "9999" as the 4 bytes of a word each, to gather 4 digits at a time
_WORDS = np.frombuffer("".join(f"{i:04d}" for i in range(10_000)).encode(), np.uint32)
# by digit count: which of 4q zero-padded digits to keep, for q = 1 .. 5 words
_KEEP = [np.arange(4 * q) >= 4 * q - np.arange(4 * q + 1)[:, None] for q in range(1, 6)]


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
    keep = _KEEP[quads - 1][count]  # no leading zeros
    return words.view(np.uint8)[keep], count


class DenseBooks:
    """Books by symbol id; row `slot[sym]` (-1: not held here) holds `sizes[row, plane, i]`, the
    size at tick `base[row, plane] + _SIGN[plane] * i` (plane 0 asks, 1 bids); `depth`, `seq`
    and `ts` by row as a `Levels` has them. A side's best starts `margin` ticks into its plane."""

    def __init__(self, decimals: list[int], tick_units: list[int], depth: int) -> None:
        self.margin = max(16, depth // 2)  # ticks a best may move either way before re-centring
        self.width = depth + 2 * self.margin
        # a plane is `width` ticks and then `depth` always empty: a window of `depth` from any
        # best stays inside it (a row's depth is at most the server's)
        self.span = span = self.width + max(depth, 1)
        self._unit_ticks = bool((np.array(tick_units) <= 1).all())  # units are ticks
        self.decimals = np.array(decimals, np.int64)
        self.tick_units = np.maximum(np.array(tick_units, np.int64), 1)
        self.scale = 10.0**self.decimals
        self.slot = np.full(_IDS, -1, np.intp)
        self.sym = np.zeros(0, np.intp)  # by row: its symbol id
        self.sizes = np.zeros((0, 2, span), np.int64)
        self.base = np.zeros((0, 2), np.int64)
        self.depth = np.zeros(0, np.int64)
        self.seq = np.zeros(0, np.int64)
        self.ts = np.zeros(0, np.int64)
        self._free: list[int] = []

    def _grow(self) -> None:
        """Twice the rows (rows are made as books come)."""
        old = len(self.sym)
        new = max(16, 2 * old)
        self.sizes = np.concatenate((self.sizes, np.zeros((new - old, 2, self.span), np.int64)))
        self.base = np.concatenate((self.base, np.zeros((new - old, 2), np.int64)))
        pad = np.zeros(new - old, np.int64)
        self.sym = np.concatenate((self.sym, pad.astype(np.intp)))
        self.depth = np.concatenate((self.depth, pad))
        self.seq, self.ts = np.concatenate((self.seq, pad)), np.concatenate((self.ts, pad))
        self._free.extend(range(new - 1, old - 1, -1))

    def held(self, sym: int) -> bool:
        return bool(self.slot[sym] >= 0)

    def count(self) -> int:
        """Books held here."""
        return len(self.sym) - len(self._free)

    def load(self, sym: int, levels: b.Levels, depth: int) -> bool:
        """Hold `levels` for symbol `sym`, each side's best `margin` ticks into its plane;
        False if it does not fit (a side wider than its plane, off the tick grid, a size over
        2^63 - 1): then it is not held here."""
        self.drop(sym)
        tu = int(self.tick_units[sym])
        sides = (levels.asks, levels.bids)
        if depth > self.span - self.width:
            return False
        if tu != levels.tick_units or any(u % tu or u < 0 for side in sides for u in side):
            return False
        if any(size > _MAX_SIZE for side in sides for size in side.values()):
            return False
        ticks = [np.array(list(side), np.int64) // tu for side in sides]
        ask = int(ticks[0].min()) if len(ticks[0]) else None
        bid = int(ticks[1].max()) if len(ticks[1]) else None
        ask = ask if ask is not None else (bid + 1 if bid is not None else 0)
        bid = bid if bid is not None else ask - 1
        base = np.array([ask - self.margin, bid + self.margin], np.int64)
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

    def _side(self, sym: int, plane: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """A side's levels best first: (units, sizes)."""
        row = int(self.slot[sym])
        at = np.flatnonzero(self.sizes[row, plane])
        ticks = self.base[row, plane] + _SIGN[plane] * at
        return ticks * self.tick_units[sym], self.sizes[row, plane, at]

    def levels(self, sym: int) -> b.Levels:
        """Symbol `sym`'s book as a `Levels` (to take a change the rows cannot)."""
        row = int(self.slot[sym])
        tu = int(self.tick_units[sym])
        out = b.Levels(int(self.decimals[sym]), tu, int(self.seq[row]), int(self.ts[row]))
        for plane, book in enumerate((out.asks, out.bids)):
            units, sizes = self._side(sym, plane)
            book.update(zip(units.tolist(), sizes.tolist(), strict=True))
        return out

    def rows(self, sym: int) -> tuple[NDArray[np.void], NDArray[np.void]]:
        """Bids and asks as `protocol.book.LEVEL_ROW` arrays, best first."""
        out = []
        for plane in (1, 0):
            units, sizes = self._side(sym, plane)
            arr = np.empty(len(units), b.LEVEL_ROW)
            arr["price"] = units.astype(np.float64) / 10 ** int(self.decimals[sym])
            arr["size"] = sizes
            out.append(arr)
        return out[0], out[1]

    def apply(self, records: NDArray[np.void], checks: NDArray[np.void]) -> Applied:
        """A binary `book` frame's records and checksum entries, for the symbols held here."""
        fast = self._fast(records, checks)
        return fast if fast is not None else self._careful(records, checks)

    def _fast(self, records: NDArray[np.void], checks: NDArray[np.void]) -> Applied | None:
        """The usual frame in fewer steps, or None (nothing changed) unless it is one: every
        symbol held here, a checksum entry per symbol with records and none without, in symbol
        order, each symbol's seqs running on from its book's, every change inside its plane."""
        n, k = len(records), len(checks)
        if not n or not k:
            return None
        ids = checks["sym"].astype(np.intp)
        rows = self.slot[ids]
        recs = records[np.argsort(records["sym"], kind="stable")]  # by symbol, each in order
        sym = recs["sym"].astype(np.intp)
        new = np.empty(n, bool)
        new[0] = True
        np.not_equal(sym[1:], sym[:-1], out=new[1:])
        lo = np.flatnonzero(new)
        if len(lo) != k or rows.min() < 0 or not np.array_equal(sym[lo], ids):
            return None
        count = np.empty(k, np.intp)
        count[:-1] = lo[1:]
        count[-1] = n
        count -= lo
        local = np.repeat(np.arange(k), count)  # each record's place in `rows`
        seq = recs["seq"].astype(np.int64)
        # seq - the book's seq must be 1, 2, ... within each symbol
        run = seq - self.seq[rows[local]]
        run += lo[local]
        if not np.array_equal(run, np.arange(1, n + 1)):
            return None
        units = np.rint(recs["price"] * self.scale[sym]).astype(np.int64)
        if not self._unit_ticks:
            tu = self.tick_units[sym]
            if (units % tu).any():
                return None
            units //= tu
        plane = 1 - recs["side"].astype(np.intp)  # the wire's side: 0 bid, 1 ask
        at = local * 2
        at += plane
        units -= self.base[rows].reshape(-1)[at]
        units *= _SIGN[plane]
        size = recs["size"].astype(np.int64)  # over 2^63 - 1: negative here
        if units.min() < 0 or units.max() >= self.width or size.min() < 0:
            return None
        at *= self.span
        at += units
        order = np.argsort(at, kind="stable")  # by level, in order: the last change wins
        at = at[order]
        final = np.ones(n, bool)
        np.not_equal(at[1:], at[:-1], out=final[:-1])
        now = self.sizes[rows]
        now.reshape(-1)[at[final]] = size[order[final]]
        good = self._check(rows, now, checks["crc"].astype(np.int64))
        last = lo + count - 1
        if not good.all():
            rows, now, last = rows[good], now[good], last[good]
        self.sizes[rows] = now
        self.seq[rows] = seq[last]
        self.ts[rows] = recs["ts"][last]
        return Applied(ids[good].tolist(), ids[~good].tolist(), [])

    def _careful(self, records: NDArray[np.void], checks: NDArray[np.void]) -> Applied:
        """Any frame: each symbol checked apart, those held here applied, the rest reported."""
        ids = checks["sym"].astype(np.intp)
        rows = self.slot[ids]
        crc = checks["crc"].astype(np.int64)
        if not (rows >= 0).all():
            mine = rows >= 0
            ids, rows, crc = ids[mine], rows[mine], crc[mine]
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
        plane = 1 - recs["side"].astype(np.intp)  # the wire's side: 0 bid, 1 ask
        at = units // tu - self.base.reshape(-1)[rec_row * 2 + plane]  # junk where not held
        at *= _SIGN[plane]
        fits = (units >= 0) & (units % tu == 0) & (at >= 0) & (at < self.width)
        fits &= recs["size"] <= _MAX_SIZE
        slow = np.zeros(len(ids), bool)
        if not fits.all():
            unfit = np.zeros(len(seq) + 1, np.int64)
            np.cumsum(~fits, out=unfit[1:])
            slow = ok & (unfit[hi] > unfit[lo])
        go = ok & ~slow
        bad, slow_ids = ids[~ok].tolist(), ids[slow].tolist()
        if not go.any():
            return Applied([], bad, slow_ids)
        if not go.all():
            ids, rows, crc, hi = ids[go], rows[go], crc[go], hi[go]
        local = np.full(len(self.sym) + 1, -1, np.intp)  # row -> its place in `rows`
        local[rows] = np.arange(len(rows))
        where = local[rec_row]  # -1 (the extra last entry) for rows not applied here
        pick = np.flatnonzero(where >= 0)
        flat = (where[pick] * 2 + plane[pick]) * self.span + at[pick]
        order = np.argsort(flat, kind="stable")  # by level, in order: the last change wins
        flat = flat[order]
        final = np.ones(len(flat), bool)
        np.not_equal(flat[1:], flat[:-1], out=final[:-1])
        now = self.sizes[rows]
        now.reshape(-1)[flat[final]] = recs["size"][pick[order[final]]]
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
        k, span = len(rows), self.span
        depth = self.depth[rows][:, None]
        best = np.argmax(now > 0, axis=2)  # (row, plane); an empty side: 0, nothing to cut
        now *= np.arange(span) < (best + depth)[:, :, None]
        # each side's first `depth` ticks from its best (asks, then bids), inside the plane
        at = best[:, :, None] + np.arange(int(depth.max()))
        at += (np.arange(2 * k) * span).reshape(k, 2, 1)
        size = now.reshape(-1)[at]
        at -= (np.arange(2 * k) * span).reshape(k, 2, 1)
        # the first 10 levels of each side that hold something
        held = size > 0
        rank = np.cumsum(held.reshape(-1), dtype=np.intp).reshape(held.shape)
        rank -= (rank[:, :, 0] - held[:, :, 0])[:, :, None]
        held &= rank <= b.CHECKSUM_LEVELS
        values = np.empty((*held.shape, 2), np.int64)
        values[..., 0] = self.base[rows][:, :, None] + _SIGN[None, :, None] * at
        values[..., 0] *= self.tick_units[self.sym[rows]][:, None, None]
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
