"""Random book streams for the client-book property tests (JSON levels and binary rows/levels).

Owns the shape every such stream shares: a true book of 15 levels a side (bids on 100..114 and
asks on 116..130 ticks from an offset: never crossed, all within the depth, and five levels a side
beyond the checksum's top 10, where only the book seq tells a loss), the strategy of transport
faults, and injecting those faults into a stream after its snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hypothesis import strategies as st

from tickwire.feed.protocol import book as b

T = TypeVar("T")
DEPTH = 20
BIDS, ASKS = range(100, 115), range(116, 131)

# A change: side, level index into BIDS or ASKS, size (0 removes the level).
CHANGE = (st.integers(0, 1), st.integers(0, 14), st.integers(0, 5))
change_st = st.tuples(*CHANGE)
fault_st = st.lists(
    st.tuples(st.sampled_from(["drop", "dup", "swap", "corrupt"]), st.integers(0, 200)),
    max_size=6,
)


def true_book(offset: int = 0) -> b.Levels:
    """The starting book, every level of size 1, `offset` ticks up."""
    lv = b.Levels(2, 1)
    for u in BIDS:
        lv.set(0, u + offset, 1)
    for u in ASKS:
        lv.set(1, u + offset, 1)
    return lv


def with_faults(
    stream: list[T], faults: list[tuple[str, int]], corrupt: Callable[[T], T]
) -> list[T]:
    """`stream` (its snapshot first) with `faults` injected anywhere after the snapshot: a
    message dropped, duplicated, swapped with the next, or `corrupt`ed (a book the checksum
    refutes)."""
    stream = list(stream)
    for fault, at in faults:
        if len(stream) < 2:
            break
        i = 1 + at % (len(stream) - 1)
        if fault == "drop":
            del stream[i]
        elif fault == "dup":
            stream.insert(i, stream[i])
        elif fault == "swap" and i + 1 < len(stream):
            stream[i], stream[i + 1] = stream[i + 1], stream[i]
        elif fault == "corrupt":
            stream[i] = corrupt(stream[i])
    return stream
