"""A gateway's order books: the producer's, mirrored from the level updates the bus carries and
mended by the whole books it sends when asked. Sans-IO: never imports trio.

`GatewayBooks` holds the server's `Books` (what `/v1` readers and the venues' depth streams take)
and a `BookMirror` of every symbol's book (what a newly booked symbol starts from). A gateway
mirrors only while some client holds a book, or a REST answer read one, and for `GRACE_S` after
(`mirroring`): until then the producer writes no level updates for it, and its `Books` are not
current (`Books.ready`), so a booking waits for them. When it starts, the reader asks for every
book whole; level updates go to both as the producer made them, unless the books are stale
(`want_books` on the reader: updates before are lost or left out); whole books then mend them:
what differs goes out as changes, each book's ending at its seq, so a client that sees a jump
resyncs and one that holds the book takes them, and bookings made meanwhile get their snapshots.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.hub.books import Books
from tickwire.simulators import Universe
from tickwire.simulators.bookmirror import BookMirror

# A gateway keeps mirroring this long after its last book client left (or a REST answer last
# read a book): a client that resubscribes, or polls REST depth, finds the books current.
GRACE_S = 10.0


class Mirrored(Protocol):
    """A gateway's bus reader, as far as mirroring books goes (`reader.BusReader`)."""

    mirror: bool

    def set_mirror(self, on: bool) -> None: ...


class GatewayBooks:
    """The producer's books on a gateway, `depth` ticks a side (see the module docstring)."""

    def __init__(self, universe: Universe, depth: int, keep_ns: int) -> None:
        self.mirror = BookMirror(universe.tick_size, depth)
        names = np.array(universe.symbols, dtype=object)
        self.books = Books(names, universe.tick_size, depth, self._ladders, keep_ns)
        self.books.ready = False  # nothing mirrored yet
        self._read = False  # a book was read from the mirror since `mirroring` last looked
        self._wanted_s: float | None = None  # when a book was last wanted (None: never)

    def _ladders(self) -> NDArray[np.void]:
        """Every book now, for a symbol booked anew or a REST answer: a reader of books."""
        self._read = True
        return self.mirror.snapshot()

    def mirroring(self, now_s: float) -> bool:
        """Whether the gateway should mirror books at time `now_s`: some client holds one, or
        wanted one within `GRACE_S`."""
        if self._read or self.books.count.any():
            self._read, self._wanted_s = False, now_s
        return self._wanted_s is not None and now_s - self._wanted_s <= GRACE_S

    def follow(self, reader: Mirrored, now_s: float) -> None:
        """Start or stop `reader` mirroring books as `mirroring` says; stopped, the books are
        not current until the next whole ones."""
        on = self.mirroring(now_s)
        if on != reader.mirror:
            reader.set_mirror(on)
            self.books.ready = self.books.ready and on

    def levels(self, records: NDArray[np.void], stale: bool) -> None:
        """Level updates as the producer made them; none while the books are `stale`."""
        if not stale:
            self.mirror.apply(records)
            self.books.publish(records)

    def whole(self, ladders: NDArray[np.void]) -> None:
        """Every book whole (`ladder_dtype` records): the changes it makes, if any; the books
        are current from here."""
        self.books.publish(self.mirror.ladders(ladders))
        self.books.set_ready()
