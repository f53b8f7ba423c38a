"""A `/v1` connection's order books, sans-IO: the `book` field of subscribe and the book messages.

`BookOps` is the part of `core.FeedCore` that answers for books: it checks a subscription's
`book` depth against the server's (`--book-depth`), turns it into a `state.SetBooks` action, and
frames what the hub side's `Books` owes the connection (`book_snapshot` after the ack and tick
snapshot of a newly booked symbol; `book` messages ahead of the ticks of the same flush), each
stamped with the connection `seq` like every data message. Never imports trio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from tickwire.feed import protocol as p
from tickwire.feed.hub import bookwire
from tickwire.feed.hub.books import BookReader, Books, BookTake
from tickwire.feed.hub.hub import Subscriber
from tickwire.feed.protocol import book as b
from tickwire.feed.v1 import state as st
from tickwire.feed.ws.frames import OP_BINARY, OP_TEXT, frame

if TYPE_CHECKING:
    from tickwire.feed.v1.context import FeedContext


class BookOps:
    """Mixed into `FeedCore`: its book requests and book data."""

    __slots__ = ()
    ctx: FeedContext
    book: BookReader | None  # attached at the first book subscription
    sub: Subscriber
    binary: bool

    if TYPE_CHECKING:  # WebSocketCore's, which comes after this class in FeedCore's bases

        def _queue(self, data: bytes, now: float, *, message: bool = True) -> None: ...

    def next_seq(self) -> int:
        raise NotImplementedError  # FeedCore's: only the connection core stamps `seq`

    def book_actions(self, req: p.Subscribe | p.Unsubscribe) -> list[st.Action]:
        """The books a subscribe asks for, or an unsubscribe drops. Raises BadRequest (before
        anything changed) if books are off or the depth is more than the server's."""
        books = self.ctx.books
        if isinstance(req, p.Subscribe):
            if req.book is None:
                return []
            if books is None:
                raise p.BadRequest(
                    "this server serves no order books (tickwire serve --book-depth N turns"
                    " them on); subscribe without 'book'",
                    id=req.id,
                )
            depth = books.depth if req.book is True else int(req.book)
            if depth > books.depth:
                raise p.BadRequest(
                    f"book must be true or a depth from 1 to {books.depth} (this server's"
                    f" --book-depth), got {depth}",
                    id=req.id,
                )
            return [st.SetBooks(self._book_ids(req.symbols), depth)]
        if books is None:
            return []
        return [st.SetBooks(self._book_ids(req.symbols), 0)]

    def _book_ids(self, symbols: tuple[str, ...]) -> NDArray[np.intp]:
        index = self.ctx.index
        if p.WILDCARD in symbols:
            return np.arange(len(index), dtype=np.intp)
        # an unknown symbol fails the subscription itself (`state`), which drops these actions
        return np.array(sorted(i for s in symbols if (i := index.get(s)) is not None), np.intp)

    def _set_books(self, action: st.SetBooks, now: float) -> None:
        books, reader = self.ctx.books, self.book
        if books is None or (reader is None and not action.depth):
            return
        if reader is None:  # the first book asked for: a connection without one costs none
            reader = books.attach(self.sub.wake)
            self.book = reader  # type: ignore[misc]  # a slot of FeedCore, which mixes this in
            books.set_latest(reader, self.sub.latest)
        if not action.depth:
            books.drop(reader, action.ids)
            return
        for data in self._book_frames(books, reader, books.book(reader, action.ids, action.depth)):
            self._queue(data, now)
            self.ctx.counters.messages_sent += 1

    def _book_frames(self, books: Books, reader: BookReader, taken: BookTake) -> list[bytes]:
        """What `taken` holds as framed messages, each stamped with the connection `seq`."""
        if self.binary:
            payloads = bookwire.binary_frames(books, reader, taken, self.next_seq)
            return [frame(data, OP_BINARY) for data in payloads]
        snaps, changes = bookwire.json_entries(books, reader, taken)
        out = []
        if snaps:
            out.append(frame(b.book_text("book_snapshot", self.next_seq(), snaps), OP_TEXT))
        if changes:
            out.append(frame(b.book_text("book", self.next_seq(), changes), OP_TEXT))
        return out

    def book_news(self) -> bool:
        books = self.ctx.books
        return books is not None and self.book is not None and books.has_news(self.book)

    def take_books(self) -> tuple[bytes, int]:
        """The book messages owed (snapshots after a resync, then changes), and how many."""
        books, reader = self.ctx.books, self.book
        if books is None or reader is None or not books.has_news(reader):
            return b"", 0
        frames = self._book_frames(books, reader, books.take(reader))
        return b"".join(frames), len(frames)

    def leave_books(self) -> None:
        if self.ctx.books is not None and self.book is not None:
            self.ctx.books.detach(self.book)

    def set_books_latest(self, latest: bool) -> None:
        if self.ctx.books is not None and self.book is not None:
            self.ctx.books.set_latest(self.book, latest)

    def book_statistics(self) -> dict[str, Any]:
        reader = self.book
        return {} if reader is None else {"books": int(np.count_nonzero(reader.depth))}
