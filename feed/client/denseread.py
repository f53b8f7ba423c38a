"""A book of `dense.DenseBooks` read out: as a `protocol.book.Levels`, or as numpy rows.

Owns turning a row's planes (sizes by tick from each plane's base) back into prices and sizes
best first, for `ClientBooks.book()` and for a book that leaves the rows. No trio, no sockets.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.client.dense import DenseBooks
from tickwire.feed.protocol import book as b

_SIGN = (1, -1)  # plane 0 asks (up from the base), plane 1 bids (down from it)


def side(dense: DenseBooks, sym: int, plane: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """A side's levels best first: (units, sizes)."""
    row = int(dense.slot[sym])
    at = np.flatnonzero(dense.sizes[row, plane])
    ticks = dense.base[row, plane] + _SIGN[plane] * at
    return ticks * dense.tick_units[sym], dense.sizes[row, plane, at]


def levels(dense: DenseBooks, sym: int) -> b.Levels:
    """Symbol `sym`'s book as a `Levels` (to take a change the rows cannot)."""
    row = int(dense.slot[sym])
    tu = int(dense.tick_units[sym])
    out = b.Levels(int(dense.decimals[sym]), tu, int(dense.seq[row]), int(dense.ts[row]))
    for plane, book in enumerate((out.asks, out.bids)):
        units, sizes = side(dense, sym, plane)
        book.update(zip(units.tolist(), sizes.tolist(), strict=True))
    return out


def rows(dense: DenseBooks, sym: int) -> tuple[NDArray[np.void], NDArray[np.void]]:
    """Bids and asks as `protocol.book.LEVEL_ROW` arrays, best first."""
    out = []
    for plane in (1, 0):
        units, sizes = side(dense, sym, plane)
        arr = np.empty(len(units), b.LEVEL_ROW)
        arr["price"] = units.astype(np.float64) / 10 ** int(dense.decimals[sym])
        arr["size"] = sizes
        out.append(arr)
    return out[0], out[1]
