"""The client library: `async with connect(url) as feed`, requests, and `async for event in feed`.

One background task per feed reads every server message: replies resolve the request that waits
for them (by `id`), market data becomes `Batch` events, and a dropped connection is reopened with
exponential backoff and jitter, the subscription and throttle restored, and a `Gap` event says
what was missed. The dashboard and `tickwire tail` use this module like any user's code.
"""

from __future__ import annotations

import math
import random
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from tickwire.feed import protocol as p
from tickwire.feed.backoff import Backoff
from tickwire.feed.client.dial import HANDSHAKE_TIMEOUT_S, close_text, open_connection, parse_url
from tickwire.feed.client.events import (
    AuthError,
    Batch,
    ConnectError,
    ConnectionLost,
    Event,
    Gap,
    ProtocolError,
    Status,
    unwrap_group,
)
from tickwire.feed.client.lookups import Lookups
from tickwire.feed.client.queue import EventQueue
from tickwire.feed.client.replies import Replies
from tickwire.feed.client.stream import StreamState, resolve_symbols, symbol_list
from tickwire.feed.urls import redact

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

DEFAULT_URL = "ws://127.0.0.1:8765/v1"
_MAX_SERVER_MESSAGE = 64 * 1024 * 1024  # a snapshot of 10,000 symbols in JSON is ~2.5 MB
_CLOSE_TIMEOUT_S = 2.0  # a server that does not answer our close frame within this is dropped


class Feed(Lookups):
    """A live connection to a tickwire server. Build it with `connect()`."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        encoding: Literal["json", "binary"],
        reconnect: bool,
        backoff_initial_s: float,
        backoff_max_s: float,
        max_queue: int,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
    ) -> None:
        if encoding not in ("json", "binary"):
            raise ValueError(f"encoding must be 'json' or 'binary', got {encoding!r}")
        self.url = url
        self.encoding = encoding
        self.state: Literal["connecting", "live", "reconnecting", "closed"] = "connecting"
        self.welcome: dict[str, Any] = {}
        self.last_message_s = -math.inf  # trio.current_time() of the last message received
        self.reconnects = 0
        self.ticks_received = 0
        self.messages_received = 0
        self.conflated = 0
        self.lost = 0
        self._target = parse_url(url)
        self._token = token
        self._ssl_context = ssl_context
        self._handshake_timeout_s = handshake_timeout_s
        self._subprotocol = p.SUBPROTOCOL_BINARY if encoding == "binary" else p.SUBPROTOCOL_JSON
        self._reconnect = reconnect
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._ws: WebSocketConnection | None = None
        self._replies = Replies()
        self._events = EventQueue(max_queue, keep_reading=lambda: bool(self._replies))
        self._subscription: list[str] = []
        self._throttle_ms = 0
        self._mode: str | None = None
        self._stream = StreamState()
        self.out_of_order = self._stream.out_of_order  # data messages: {"late": n, "duplicate": n}
        self._closed = trio.Event()  # set once aclose() is done with the connection

    # ------------------------------------------------------------------ public requests

    @property
    def subscription(self) -> list[str]:
        """What this feed holds (and restores after a reconnect): symbols, or ['*']."""
        return list(self._subscription)

    async def subscribe(
        self,
        symbols: Sequence[str] | str,
        *,
        snapshot: bool = True,
        mode: Literal["all", "latest"] | None = None,
        book: int | bool | None = None,
    ) -> list[str]:
        """Add symbols (or '*'); returns the whole subscription. ProtocolError if refused.

        `mode` "all" (the server's default) delivers every update; "latest" only the latest
        state of each symbol per message, e.g. for a screen. It applies to the whole feed.
        `book`: also keep these symbols' order books, `depth` ticks a side (True: the server's
        depth); `feed.book(symbol)` has each, `BookUpdate` events say when they change.
        """
        extra: dict[str, Any] = {} if mode is None else {"mode": mode}
        if book is not None:
            extra["book"] = book
        reply = await self._request(
            "subscribe", symbols=symbol_list(symbols), snapshot=snapshot, resume=True, **extra
        )
        self._subscription = list(reply["symbols"])
        self._mode = reply.get("mode", self._mode)
        if book is not None:
            self._stream.books.want(symbol_list(symbols), book)
        return self.subscription

    async def unsubscribe(self, symbols: Sequence[str] | str) -> list[str]:
        """Remove symbols (or '*' for all); returns the whole subscription."""
        names = symbol_list(symbols)
        reply = await self._request("unsubscribe", symbols=names)
        self._subscription = list(reply["symbols"])
        self._stream.forget(names)
        return self.subscription

    async def throttle(self, interval_ms: int) -> None:
        """At most one update per symbol per `interval_ms` (0: every update), latest state."""
        await self._request("throttle", interval_ms=interval_ms)
        self._throttle_ms = interval_ms

    def resolve(self, symbols: Sequence[str] | str) -> list[str]:
        """The server's spelling of `symbols`, matched case-insensitively ('*' passes).

        Raises ProtocolError('unknown_symbol') naming the closest symbols, before any request.
        """
        return resolve_symbols(symbol_list(symbols), self._stream.names.tolist())

    @property
    def queued(self) -> int:
        """Events received and not read yet: past `max_queue`, the feed stops reading."""
        return self._events.queued()

    @property
    def offset(self) -> int | None:
        """The stream position after the last data message (where a reconnect resumes)."""
        return self._stream.offset

    def symbol_names(self) -> NDArray[np.object_]:
        """Symbol names indexed by id (the `sym` field of tick records)."""
        return self._stream.names

    # ------------------------------------------------------------------ iteration

    def __aiter__(self) -> Feed:
        return self

    async def __anext__(self) -> Event:
        return await self._events.get()

    async def aclose(self) -> None:
        """Close the connection normally (1000) and end the iteration.

        Takes one round trip: our close frame out, the server's answer back. The connection's
        tasks stay up until then (tearing them down early would lose the answer and leave us
        waiting for nothing), and events nobody will read are dropped meanwhile.
        """
        if self._events.closing:
            return
        self._events.closing = True
        self.state = "closed"
        self._events.wake()  # a reader waiting for queue space: it drops events from now on
        ws = self._ws
        try:
            if ws is not None:
                with trio.move_on_after(_CLOSE_TIMEOUT_S):
                    await ws.aclose()
        finally:
            self._closed.set()
            self._events.close()

    # ------------------------------------------------------------------ requests, connection

    async def _request(self, op: str, **fields: Any) -> dict[str, Any]:
        ws, where = self._ws, redact(self.url)
        if ws is None or self.state != "live":
            raise ConnectionLost(f"not connected to {where} ({self.state}); try again")
        # The reader must keep reading while someone waits for a reply: wake it.
        return await self._replies.request(ws, op, fields, where=where, waiting=self._events.wake)

    async def _run(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Hold one connection after another until closed; the first failure is connect()'s."""
        attempt = 0
        down_since = 0.0
        started = False
        error = ""

        def ready() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        while True:
            if attempt:
                delay = self._backoff.delay(attempt) * random.uniform(0.5, 1.0)
                await self._events.put(Status("reconnecting", round(delay, 3), error, attempt))
                await trio.sleep(delay)
            try:
                async with open_connection(
                    self._target,
                    token=self._token,
                    subprotocol=self._subprotocol,
                    ssl_context=self._ssl_context,
                    timeout_s=self._handshake_timeout_s,
                    max_message_size=_MAX_SERVER_MESSAGE,
                ) as (ws, welcome):
                    self.welcome = welcome
                    restarted = self._stream.welcomed(welcome)
                    await self._session(
                        ws,
                        attempt=attempt,
                        downtime_s=trio.current_time() - down_since,
                        restarted=restarted,
                        ready=ready,
                    )
                    if self._events.closing:  # keep the tasks until the close is answered
                        await self._closed.wait()
                    attempt = 0
                    error = close_text(ws)
            except ConnectError as exc:
                if not started:
                    raise
                if isinstance(exc, AuthError) or not self._reconnect:
                    self.state = "closed"
                    await self._events.fail(exc)
                    self._events.close()
                    return
                error = str(exc)
                attempt += 1
                continue
            finally:
                self._ws = None
                self._replies.drop_all()
            if self._events.closing:
                return
            if not self._reconnect:
                self.state = "closed"
                await self._events.fail(ConnectionLost(f"connection to {redact(self.url)} closed"))
                self._events.close()
                return
            self.state = "reconnecting"
            down_since = trio.current_time()
            attempt = 1

    async def _session(
        self,
        ws: WebSocketConnection,
        *,
        attempt: int,
        downtime_s: float,
        restarted: bool,
        ready: Callable[[], None],
    ) -> None:
        """Serve one open connection until it drops: read, restore, report the gap."""
        self._ws, self._stream.seq, self._stream.missing = ws, 0, set()
        self._stream.resync.reset()
        async with trio.open_nursery() as conn_nursery:
            conn_nursery.start_soon(self._reader, ws, conn_nursery.cancel_scope)
            if attempt:
                self.reconnects += 1
                if (gap := self._stream.reconnected(restarted, downtime_s)) is not None:
                    await self._events.put(gap)
                await self._events.put(Status("live", attempt=attempt))
            try:
                await self._setup(ws, restoring=attempt > 0, restarted=restarted)
            except (ProtocolError, ConnectionLost) as exc:
                if not self._events.closing:  # aclose() ended the iteration already
                    await self._events.fail(exc)
                conn_nursery.cancel_scope.cancel()
                ready()
                return
            # Nothing to restore: no snapshot comes to report the gap.
            if attempt and not self._subscription and (gap := self._stream.pending_gap()):
                await self._events.put(gap)
            if not attempt:
                await self._events.put(Status("live"))
            ready()

    async def _setup(
        self, ws: WebSocketConnection, *, restoring: bool, restarted: bool = False
    ) -> None:
        """Learn the universe; after a reconnect, restore the subscription and throttle."""
        self.state = "live"
        self._stream.learn((await self._request("symbols"))["symbols"])
        if restoring:
            if self._throttle_ms:
                await self._request("throttle", interval_ms=self._throttle_ms)
            if self._subscription:
                resume = self._stream.resume_from(restarted)
                extra = {} if self._mode is None else {"mode": self._mode}
                await self._request(
                    "subscribe", symbols=self._subscription, snapshot=True, resume=resume, **extra
                )
                await self._restore_books()

    async def _reader(self, ws: WebSocketConnection, scope: trio.CancelScope) -> None:
        try:
            while True:
                await self._dispatch(await ws.get_message())
        except ConnectionClosed:
            scope.cancel()

    async def _dispatch(self, message: str | bytes) -> None:
        self.last_message_s = trio.current_time()
        self.messages_received += 1
        events, reply = self._stream.receive(message)
        await self._resync(events)  # after a seq jump: resume from the last data applied
        for event in events:
            if isinstance(event, Batch):
                self.ticks_received += len(event.ticks)
                self.conflated += event.conflated
            elif isinstance(event, Gap) and event.lost:
                self.lost += event.lost
            await self._events.put(event)
        if self._stream.books_to_fetch() and self._ws is not None:
            await self._resync_books(self._ws)  # a book failed its check: fetch it again
        if reply is not None and self._replies.expects(reply):
            if (gap := self._stream.recovered(reply)) is not None:
                await self._events.put(gap)  # here, in the reader, so that it precedes the replay
            self._replies.deliver(reply)


@asynccontextmanager
async def connect(
    url: str = DEFAULT_URL,
    *,
    token: str | None = None,
    encoding: Literal["json", "binary"] = "json",
    reconnect: bool = True,
    backoff_initial_s: float = 0.1,
    backoff_max_s: float = 10.0,
    max_queue: int = 1024,
    ssl_context: ssl.SSLContext | None = None,
    handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
) -> AsyncIterator[Feed]:
    """Connect to a tickwire server; the feed closes normally when the block exits.

    Args:
        url: the server, e.g. ws://127.0.0.1:8765/v1 (wss:// for TLS).
        token: sent as `Authorization: Bearer TOKEN` when the server requires one.
        encoding: 'json' or 'binary' (numpy records straight off the wire; fastest).
        reconnect: reopen a dropped connection with exponential backoff and jitter
            (`backoff_initial_s` doubling up to `backoff_max_s`), restoring the subscription.
        max_queue: events buffered for a slow consumer before the feed stops reading (the
            server then conflates for you: you get the latest state, not a backlog).
        ssl_context: for wss:// with a private CA (default: the system's trust store), e.g.
            `ssl.create_default_context(cafile="ca.pem")`.
        handshake_timeout_s: TCP connect, TLS, the WebSocket upgrade and the server's
            `welcome` must be done within this, on every (re)connect; a wss:// URL on a plain
            server, or ws:// on a TLS one, fails with a ConnectError after it.

    Raises:
        ConnectError: the server cannot be reached, refused the upgrade (HTTP 404: not the
            feed's path), or the handshake timed out; AuthError for HTTP 401 (missing or wrong
            token). The message says what to do. With `reconnect=True` only the first
            connection raises; later failures are retried and reported as `Status` events,
            except AuthError, which ends the iteration.
    """
    feed = Feed(
        url,
        token=token,
        encoding=encoding,
        reconnect=reconnect,
        backoff_initial_s=backoff_initial_s,
        backoff_max_s=backoff_max_s,
        max_queue=max_queue,
        ssl_context=ssl_context,
        handshake_timeout_s=handshake_timeout_s,
    )
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(feed._run)
            try:
                yield feed
            finally:
                await feed.aclose()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise unwrap_group(group) from None
