"""What a `Feed` looks up on the server: its universe, its counters, the round trip, the books.

`Feed` inherits this. The order books themselves are `book.ClientBooks`, in the feed's stream
state; here they are restored after a reconnect, and a broken one is fetched again.
A resync goes out from the reader task as a plain request without an `id` (its ack is not
waited for: the reader must keep reading, and the snapshot that follows is the answer); so
does the resume after a connection-seq jump (`resync.py`: its ack makes the `Gap`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import trio
from trio_websocket import WebSocketConnection

from tickwire.feed.client.events import Event
from tickwire.feed.client.replies import Replies
from tickwire.feed.client.stream import StreamState

if TYPE_CHECKING:
    from tickwire.feed.client.book import Book


class Lookups:
    """Mixed into `Feed`."""

    _stream: StreamState
    _subscription: list[str]
    _ws: WebSocketConnection | None
    _replies: Replies

    async def _request(self, op: str, **fields: Any) -> dict[str, Any]:
        raise NotImplementedError  # Feed's

    async def symbols(self) -> list[dict[str, Any]]:
        """The server's universe: symbol, id, name, sector, price, tick_size, lot_size..."""
        reply = await self._request("symbols")
        return list(reply["symbols"])

    async def stats(self) -> dict[str, Any]:
        """This connection's counters and the server's (see the protocol reference)."""
        return await self._request("stats")

    async def ping(self) -> float:
        """Round-trip time to the server in seconds."""
        t0 = trio.current_time()
        await self._request("ping")
        return trio.current_time() - t0

    def keep_book_levels(self) -> None:
        """From now on each `BookUpdate` of the binary encoding carries the level records it
        applied (`levels`): every change, or each whole book (e.g. to record the books)."""
        self._stream.book_levels = True

    @property
    def scenarios(self) -> tuple[str, ...]:
        """The market scenarios the server plays now, oldest first (`ScenarioChange` events
        say when one starts or ends)."""
        return self._stream.scenarios

    @property
    def scenario(self) -> str | None:
        """The scenario started last of those playing now, or None."""
        return self._stream.scenarios[-1] if self._stream.scenarios else None

    def book(self, symbol: str) -> Book | None:
        """The order book of `symbol` as held now (None until its snapshot came, or while it is
        fetched again after a failed check). Subscribe with `book=` to get books."""
        books = self._stream.held_books  # not made (nor imported) for a feed without books
        return None if books is None else books.book(symbol)

    @property
    def book_resyncs(self) -> int:
        """Books fetched again after a sequence or checksum mismatch (each a `Gap("book")`)."""
        books = self._stream.held_books
        return 0 if books is None else books.resyncs

    async def _restore_books(self) -> None:
        """After a reconnect: ask for the books again (their snapshots follow)."""
        by_depth: dict[int | bool, list[str]] = {}
        books = self._stream.held_books
        for symbol, depth in (books.wanted if books is not None else {}).items():
            by_depth.setdefault(depth, []).append(symbol)
        for depth, symbols in by_depth.items():
            await self._request("subscribe", symbols=symbols, book=depth, snapshot=False)

    async def _resync_books(self, ws: WebSocketConnection) -> None:
        for depth, symbols in self._stream.books.take_resync().items():
            request = {"op": "subscribe", "symbols": symbols, "book": depth, "snapshot": False}
            await ws.send_message(orjson.dumps(request).decode())

    async def _resync(self, events: list[Event]) -> None:
        """After a seq jump, ask for a resume (its ack makes the `Gap`); when nothing is
        subscribed to resume, report the gap at once, before `events`. While a request of ours
        waits for its reply (it may change the subscription, e.g. an unsubscribe that a resume
        must not undo) the resume waits for a later message."""
        stream, ws = self._stream, self._ws
        if not stream.resync.wanted:
            return
        if not self._subscription or ws is None:
            events.insert(0, stream.resync.cancel())
            return
        if self._replies:
            return
        request = stream.resync.request(self._subscription, stream.epoch, stream.offset)
        await ws.send_message(orjson.dumps(request).decode())
