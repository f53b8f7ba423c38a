"""The one tick record type of the whole system, and its flags.

`TICK_DTYPE` is a packed, explicitly little-endian numpy structured dtype of 64 bytes. The
simulator emits it, the hub stores it, the binary subprotocol sends its bytes as they are and the
client decodes them with `np.frombuffer(payload, TICK_DTYPE)`. Changing it is a protocol change
(bump `TICK_FORMAT_VERSION`).

Prices travel as float64 already rounded to the symbol's tick size (the same numbers in JSON and
binary); sizes and volume are integers. Imports numpy only.
"""

from __future__ import annotations

from enum import IntFlag

import numpy as np
from numpy.typing import NDArray

TICK_FORMAT_VERSION = 1

TICK_DTYPE = np.dtype(
    [
        ("ts", "<i8"),  # event time, ns since the Unix epoch
        ("seq", "<u8"),  # per-symbol update counter, +1 for every update the simulator makes
        ("bid", "<f8"),
        ("ask", "<f8"),
        ("last", "<f8"),  # last trade price
        ("volume", "<u8"),  # shares traded, cumulative since the market started
        ("sym", "<u2"),  # symbol id: index in the universe
        ("flags", "<u2"),  # TickFlag bits
        ("bid_size", "<u4"),
        ("ask_size", "<u4"),
        ("last_size", "<u4"),
    ]
)
assert TICK_DTYPE.itemsize == 64

MAX_SYMBOLS = int(np.iinfo(np.uint16).max) + 1


class TickFlag(IntFlag):
    """What an update is. A quote update has no TRADE bit; a trade has TRADE and one side bit."""

    TRADE = 1  # this update is a trade print (last/last_size/volume changed)
    BUY = 2  # trade was buyer-initiated (printed at the ask)
    SELL = 4  # trade was seller-initiated (printed at the bid)
    OPEN = 8  # first update of a trading session


TickBatch = NDArray[np.void]
"""A 1-d array of TICK_DTYPE records in event-time order."""


def empty_batch(n: int = 0) -> TickBatch:
    return np.zeros(n, dtype=TICK_DTYPE)
