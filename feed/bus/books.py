"""A gateway's order books: the producer's, mirrored from the level updates the bus carries and
mended by the whole books it sends when asked. Sans-IO: never imports trio.

`GatewayBooks` holds the server's `Books` (what `/v1` readers take) and a `BookMirror` of every
symbol's book (what a newly booked symbol starts from). Level updates go to both as the producer
made them, unless a gap made the books stale (`want_books` on the reader: the updates in between
are lost); whole books then mend them: what differs goes out as changes, each book's ending at
its seq, so a client that sees a jump resyncs and one that holds the book takes them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.hub.books import Books
from tickwire.simulators import Universe
from tickwire.simulators.bookmirror import BookMirror


class GatewayBooks:
    """The producer's books on a gateway, `depth` ticks a side (see the module docstring)."""

    def __init__(self, universe: Universe, depth: int, keep_ns: int) -> None:
        self.mirror = BookMirror(universe.tick_size, depth)
        names = np.array(universe.symbols, dtype=object)
        self.books = Books(names, universe.tick_size, depth, self.mirror.snapshot, keep_ns)

    def levels(self, records: NDArray[np.void], stale: bool) -> None:
        """Level updates as the producer made them; none while the books are `stale`."""
        if not stale:
            self.mirror.apply(records)
            self.books.publish(records)

    def whole(self, ladders: NDArray[np.void]) -> None:
        """Every book whole (`ladder_dtype` records): the changes it makes, if any."""
        self.books.publish(self.mirror.ladders(ladders))
