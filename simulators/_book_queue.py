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
from .book import LEVEL_DTYPE, Book, LevelBatch, ladders


class BookQueue:
    """One chunk's level updates, released by a cursor."""

    def __init__(self) -> None:
        self.pending: LevelBatch = np.empty(0, LEVEL_DTYPE)
        self.units = self.scale = np.ones(0)  # price = ticks * units / scale, per symbol
        self.ts = np.empty(0, np.int64)  # contiguous, for searchsorted
        self.cursor = 0
        self.start: tuple[NDArray[np.int64], ...] = ()  # the books before the chunk, if held
        self.seq: NDArray[np.int64] | None = None  # each book's seq at the chunk's end, if held
        self._work = Scratch()  # ts lives here: new memory costs page faults
        self._search = self.ts.searchsorted

    def hold(
        self,
        levels: LevelBatch,
        units: NDArray[Any],
        scale: NDArray[Any],
        start: tuple[NDArray[np.int64], ...] = (),
        seq: NDArray[np.int64] | None = None,
    ) -> None:
        """A new chunk's updates (prices as prices: ticks * units / scale, as ticks make theirs);
        `start`, the books before it (sizes, bid, ask) and `seq`, their seq after it: copies,
        for the book moves on as the next chunk is made (`_ahead`)."""
        self.ts = self._work("ts", len(levels))
        self.ts[...] = levels["ts"]
        self.pending, self.cursor, self.start, self.seq = levels, 0, start, seq
        self.units, self.scale = units, scale
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
        """The books the released updates lead to, prices in ticks, seq set.

        `quote_now`: the latest released quotes; `quote_before`: the quotes before any chunk
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
        return out
