"""A venue's order books: which symbols its connections book at which depth, one hub `BookReader`
per venue and depth shared by all of them, and each take encoded once for the venue. Sans-IO:
never imports trio.

How a venue plugs in (Binance does; Coinbase, Kraken and Alpaca plug in the same way):

- Its **session** asks for books in a `Reply`: `Reply.books` is the connection's whole new set,
  `{symbol id: depth}` (`{}`: none; None: unchanged). A depth is 1 to `Services.book_depth`,
  the server's `--book-depth` in ticks a side; 0 there means the server keeps no books, and the
  session answers a book request with its own error shape saying "start tickwire serve with
  --book-depth N" (`BOOKS_OFF`) instead of asking.
- Its **encoder** supplies two functions (`BookCodec`), the only venue-specific parts:
  `book_snapshot(sym, depth, books, now_ns) -> list[Frame]`: what a connection is sent when it
  books `sym` (Coinbase's and Kraken's snapshot; Binance sends none: clients fetch REST depth);
  `encode_books(news, now_ns) -> Shared`: the venue's messages for one take of a depth's reader
  (`BookNews`: its `BookTake`, every change in order or conflated, and the symbols booked). The
  entries' channels are the venue's (Binance: `depth@100ms`, `depth5`, ...), and sessions pick
  theirs in `deliver`, as they pick ticks: the bytes are shared by every connection.

`VenueBooks.set` (called by the connection core with `Reply.books`) books and drops symbols in
the shared readers and returns the connection's snapshot frames; `take` and `encode` give the
stream the chunks of book news to deliver before the ticks of the same flush (the market
publishes a flush's level updates before its ticks). A connection that books a symbol already
booked at that depth joins the shared stream of changes; its snapshot is taken at the point in
the stream where it joins (the stream delivers everything before first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.hub.books import BookReader, Books, BookTake
from tickwire.feed.venues._common import Frame, Shared
from tickwire.simulators.book import LEVEL_DTYPE

BOOKS_OFF = "this server keeps no order books: start tickwire serve with --book-depth N"


def too_deep(depth: int, server_depth: int) -> str:
    """The message for a book deeper than the server keeps."""
    return (
        f"a book of {depth} levels needs a deeper server book: start tickwire serve with"
        f" --book-depth {depth} or more (this server keeps {server_depth})"
    )


@dataclass(frozen=True, slots=True)
class BookNews:
    """One take of a venue's shared reader at `depth`: what changed, and what is booked."""

    depth: int
    take: BookTake
    booked: NDArray[np.intp]  # symbol ids booked at this depth by some connection
    books: Books  # the server's books: `levels`, `view(sym, depth)` for the current state


class BookCodec(Protocol):
    """What a venue's encoder supplies to serve books."""

    def book_snapshot(self, sym: int, depth: int, books: Books, now_ns: int) -> list[Frame]: ...

    def encode_books(self, news: BookNews, now_ns: int) -> Shared: ...


def codec_of(encoder: object) -> BookCodec | None:
    """The encoder as a `BookCodec` if it serves books, else None."""
    if hasattr(encoder, "encode_books") and hasattr(encoder, "book_snapshot"):
        return encoder
    return None


class VenueBooks:
    """One venue's books: a shared `BookReader` per depth, and each connection's set."""

    __slots__ = ("books", "codec", "counts", "readers", "wake", "wanted")

    def __init__(self, codec: BookCodec, books: Books, wake: Callable[[], None]) -> None:
        self.codec = codec
        self.books = books
        self.wake = wake  # the stream's advance: book news to take
        self.readers: dict[int, BookReader] = {}  # depth -> the venue's reader at that depth
        self.counts: dict[int, NDArray[np.int64]] = {}  # depth -> connections per symbol
        self.wanted: dict[object, dict[int, int]] = {}  # connection -> {symbol id: depth}

    def set(self, conn: object, wanted: Mapping[int, int], now_ns: int) -> list[Frame]:
        """`conn` books `wanted` (symbol id -> depth) from now on, in place of what it had;
        returns its snapshot frames of the symbols newly booked (or at a new depth)."""
        old = self.wanted.pop(conn, {})
        for sym, depth in old.items():
            if wanted.get(sym) != depth:
                self._unref(depth, sym)
        frames: list[Frame] = []
        for sym, depth in wanted.items():
            if not 1 <= depth <= self.books.depth:
                raise ValueError(f"book depth must be 1 to {self.books.depth}, got {depth}")
            if old.get(sym) != depth:
                self._ref(depth, sym)
                frames += self.codec.book_snapshot(sym, depth, self.books, now_ns)
        if wanted:
            self.wanted[conn] = dict(wanted)
        return frames

    def leave(self, conn: object) -> None:
        self.set(conn, {}, 0)

    def _ref(self, depth: int, sym: int) -> None:
        reader = self.readers.get(depth)
        if reader is None:
            reader = self.readers[depth] = self.books.attach(self.wake)
            self.counts[depth] = np.zeros(len(self.books.names), np.int64)
        counts = self.counts[depth]
        counts[sym] += 1
        if counts[sym] == 1:
            # its snapshot for the shared reader is where the changes it takes start from
            self.books.book(reader, np.array([sym], np.intp), depth)

    def _unref(self, depth: int, sym: int) -> None:
        counts, reader = self.counts[depth], self.readers[depth]
        counts[sym] -= 1
        if counts[sym]:
            return
        self.books.drop(reader, np.array([sym], np.intp))
        if not counts.any():
            self.books.detach(reader)
            del self.readers[depth], self.counts[depth]

    def take(self) -> list[tuple[int, BookTake]]:
        """Every shared reader's news since its last take (depth order)."""
        books = self.books
        return [(d, books.take(r)) for d, r in sorted(self.readers.items()) if books.has_news(r)]

    def encode(self, taken: list[tuple[int, BookTake]], now_ns: int) -> list[Shared]:
        """The venue's messages for `taken` (from `take`), once per depth; an encoder that
        speaks on a clock (Binance's 100 ms and 1 s books) is asked at every advance, even
        with no news, so it can speak when its time comes."""
        news = dict(taken)
        out = []
        for depth, reader in sorted(self.readers.items()):
            take = news.get(depth)
            if take is None:
                take = _EMPTY
            shared = self.codec.encode_books(
                BookNews(depth, take, reader.booked, self.books), now_ns
            )
            if len(shared):
                out.append(shared)
        return out


def newest_ns(taken: list[tuple[int, BookTake]]) -> int:
    """The newest event time of the level updates taken (0: none)."""
    newest = 0
    for _, take in taken:
        if len(take.records):
            newest = max(newest, int(take.records["ts"][-1]))
    return newest


_EMPTY = BookTake([], np.empty(0, LEVEL_DTYPE), np.empty(0, np.int64), [])

__all__ = [
    "BOOKS_OFF",
    "BookCodec",
    "BookNews",
    "VenueBooks",
    "codec_of",
    "newest_ns",
    "too_deep",
]
