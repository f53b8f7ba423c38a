"""The market's level updates between generation and release, and the books they start from.

`Market` makes a chunk of level updates ahead, as it does ticks, and releases them by time with
a cursor; `BookQueue` holds them, and builds the ladders the released ones lead to. Imports
numpy, `book` and `_book_kernels` only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._book_kernels import Scratch
from .book import LEVEL_DTYPE, Book, LevelBatch, ladder_dtype


class BookQueue:
    """One chunk's level updates, released by a cursor."""

    def __init__(self, units: NDArray[Any], scale: NDArray[Any]) -> None:
        """`units`, `scale`: per symbol, price = ticks * units / scale (as ticks make theirs)."""
        self.units, self.scale = units, scale
        self.pending: LevelBatch = np.empty(0, LEVEL_DTYPE)
        self.ts = np.empty(0, np.int64)  # contiguous, for searchsorted
        self.cursor = 0
        self.start: tuple[NDArray[np.int64], ...] = ()  # the books before the chunk, if held
        self.seq: NDArray[np.int64] | None = None  # each book's seq at the chunk's end, if held
        self._work = Scratch()  # ts lives here: new memory costs page faults
        self._search = self.ts.searchsorted

    def hold(
        self,
        levels: LevelBatch,
        start: tuple[NDArray[np.int64], ...] = (),
        seq: NDArray[np.int64] | None = None,
    ) -> None:
        """A new chunk's updates (prices as prices); `start`, the books before it (sizes, bid,
        ask) and `seq`, their seq after it: copies, for the book moves on as the next chunk is
        made (`_ahead`)."""
        self.ts = self._work("ts", len(levels))
        self.ts[...] = levels["ts"]
        self.pending, self.cursor, self.start, self.seq = levels, 0, start, seq
        self._search = self.ts.searchsorted

    def release(self, until_ns: int | None, parts: list[LevelBatch] | None) -> None:
        """Release the updates up to `until_ns` (None: all), appended to `parts` if wanted."""
        cut = len(self.pending) if until_ns is None else int(self._search(until_ns, "right"))
        if cut > self.cursor:
            if parts is not None:
                parts.append(self.pending[self.cursor : cut])
            self.cursor = cut

    def ladders(
        self,
        book: Book,
        quote_now: tuple[NDArray[np.int64], NDArray[np.int64]],
        quote_before: tuple[NDArray[np.int64], NDArray[np.int64]],
    ) -> NDArray[np.void]:
        """The books the released updates lead to, seq set.

        `quote_now`: the latest released quotes (ticks); `quote_before`: the quotes before any chunk
        (then `book.sizes` and `book.seq` are still the start).
        """
        c = self.cursor
        start = self.start or (book.sizes, *quote_before)
        done = self.pending[:c]
        sym = done["sym"].astype(np.intp)  # prices back to ticks, as `Market` does for quotes
        ticks = np.round(done["price"] * self.scale[sym] / self.units[sym]).astype(np.int64)
        out = ladders(start, done, ticks, quote_now)
        seq = book.seq if self.seq is None else self.seq
        out["seq"] = seq - np.bincount(self.pending["sym"][c:], minlength=len(seq))
        units, scale = self.units[:, None], self.scale[:, None]  # as ticks and updates do
        out["bid_price"] = out["bid_price"] * units / scale
        out["ask_price"] = out["ask_price"] * units / scale
        return out


def ladders(
    start: tuple[NDArray[np.int64], ...],
    done: LevelBatch,
    done_ticks: NDArray[np.int64],
    best: tuple[NDArray[np.int64], NDArray[np.int64]],
) -> NDArray[np.void]:
    """Ladders (prices in ticks) of the books `start` leads to after the updates `done`.

    `start`: (sizes (n, 2, depth), bid, ask) as `Book.sizes` hangs from its quotes; `best`: the
    quotes now. The last update of each level wins; levels outside the window are left out.
    """
    sizes0, b0, a0 = start
    n, _, depth = sizes0.shape
    d = np.arange(depth)
    start_px = np.stack((b0[:, None] - d, a0[:, None] + d), 1)  # (n, 2, depth)
    side = np.broadcast_to(np.array([0, 1])[None, :, None], start_px.shape)
    sym = np.broadcast_to(np.arange(n)[:, None, None], start_px.shape)
    k_px = np.concatenate((start_px.ravel(), done_ticks))
    k_side = np.concatenate((side.ravel(), done["side"].astype(np.int64)))
    k_sym = np.concatenate((sym.ravel(), done["sym"].astype(np.int64)))
    size = np.concatenate((sizes0.ravel(), done["size"].astype(np.int64)))
    span = int(max(k_px.max(), best[1].max(), 1)) + depth + 2
    key = (k_sym * 2 + k_side) * span + np.maximum(k_px, 0)
    keys, rev = np.unique(key[::-1], return_index=True)  # the last update wins
    last = size[len(size) - 1 - rev]
    now_px = np.stack((best[0][:, None] - d, best[1][:, None] + d), 1)
    want = (np.arange(n)[:, None, None] * 2 + side) * span + np.maximum(now_px, 0)
    at = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    found = np.where((keys[at] == want) & (now_px > 0), last[at], 0)
    out = np.zeros(n, ladder_dtype(depth))
    out["sym"] = np.arange(n)
    out["bid_price"], out["ask_price"] = now_px[:, 0], now_px[:, 1]
    out["bid_size"], out["ask_size"] = found[:, 0], found[:, 1]
    return out
