"""`FeedBridge`: the client library running as a trio guest on Textual's asyncio loop.

One guest run (`trio.lowlevel.start_guest_run`) under one nursery holds the feed task: connect
(retrying with backoff while the server is down), subscribe, then read events into the plain
`Sink` methods, which only write state. The UI sends commands with `send()`, which hands them to
trio with `run_sync_soon` and `send_nowait` (no trio call ever runs outside trio's own ticks).
`stop()` asks the feed task to leave `connect()` normally, so the server sees a 1000 close, and
waits for the guest run to finish before the asyncio loop closes.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, suppress
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from tickwire.feed import (
    AuthError,
    Batch,
    BookUpdate,
    ConnectError,
    ConnectionLost,
    Gap,
    ProtocolError,
    Status,
    TickwireError,
    TradingStatus,
)
from tickwire.feed.backoff import Backoff

log = logging.getLogger("tickwire.dashboard")

PING_EVERY_S = 2.0
FIRST_ATTEMPTS = 3
"""Tries for the first connection before the dashboard gives up with the error (as `tail` does
at once); a server that goes away later is retried for as long as the dashboard runs."""
_COMMAND_BUFFER = 64  # keystrokes, not data: a human cannot queue more than this between ticks


@dataclass(frozen=True, slots=True)
class Subscribe:
    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Throttle:
    """The user's throttle (0: none) over the screen's own pace; the server gets the larger."""

    interval_ms: int
    pace_ms: int = 0  # the frame pace: a symbol's latest state at most this often
    announce: bool = True  # the user asked: say what changed (a pace change is silent)


@dataclass(frozen=True, slots=True)
class BookOn:
    """Keep `symbol`'s order book (the server's depth) beside its ticks."""

    symbol: str


@dataclass(frozen=True, slots=True)
class BookOff:
    """Stop `symbol`'s book, keep its ticks: /v1 drops a book only with its symbol, so this is
    an unsubscribe and a resubscribe (with a tick snapshot) of that one symbol."""

    symbol: str


Command = Subscribe | Unsubscribe | Throttle | BookOn | BookOff


class Sink(Protocol):
    """What the bridge tells the app. Called on the asyncio thread, inside trio's ticks."""

    def feed_connecting(
        self, url: str, error: str | None, retry_in_s: float | None, attempt: int, of: int
    ) -> None: ...
    def feed_connected(self, feed: Any, refs: list[dict[str, Any]]) -> list[str]: ...
    def feed_batch(self, batch: Batch) -> None: ...
    def feed_book(self, update: BookUpdate) -> None: ...
    def feed_trading(self, status: TradingStatus) -> None: ...
    def watched(self) -> list[str]: ...
    def wants_book(self, symbol: str) -> bool: ...
    def feed_gap(self, gap: Gap) -> None: ...
    def feed_status(self, status: Status) -> None: ...
    def feed_rtt(self, rtt_s: float) -> None: ...
    def feed_reply(self, command: Command, result: Any, error: str | None) -> None: ...
    def feed_fatal(self, message: str) -> None: ...


class FeedBridge:
    def __init__(
        self,
        connect: Callable[[], AbstractAsyncContextManager[Any]],
        sink: Sink,
        *,
        url: str = "",
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 5.0,
        latest: bool = True,
    ) -> None:
        self._connect = connect
        self._mode: Any = "latest" if latest else None  # None: the server's default, every update
        self._sink = sink
        self._url = url
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._token: trio.lowlevel.TrioToken | None = None
        self._root: trio.CancelScope | None = None
        self._session: trio.CancelScope | None = None
        self._done: asyncio.Future[None] | None = None
        self._pending: list[Command] = []
        self._commands: trio.MemorySendChannel[Command] | None = None
        self.feed: Any = None
        self._stopping = False

    # ------------------------------------------------------------------ asyncio side

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()

        def done(outcome: Any) -> None:
            if self._done is not None and not self._done.done():
                self._done.set_result(None)
            try:
                outcome.unwrap()
            except BaseException:  # the feed task's own boundary logged anything real
                log.debug("trio guest run ended with an error", exc_info=True)

        trio.lowlevel.start_guest_run(
            self._main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            run_sync_soon_not_threadsafe=loop.call_soon,
            done_callback=done,
            host_uses_signal_set_wakeup_fd=False,
        )

    @property
    def finished(self) -> bool:
        """Whether the trio guest run (the feed's task) has ended."""
        return self._done is not None and self._done.done()

    def send(self, command: Command) -> None:
        """Queue a request for the feed (from UI code); its result comes back in feed_reply."""
        if self._token is None or self._commands is None:
            self._pending.append(command)
            return
        channel = self._commands

        def put() -> None:
            try:
                channel.send_nowait(command)
            except (trio.WouldBlock, trio.ClosedResourceError):
                self._sink.feed_reply(command, None, "too many requests in flight; try again")

        self._token.run_sync_soon(put)

    async def stop(self, timeout_s: float = 3.0) -> None:
        """Close the feed normally and wait for the guest run to end."""
        if self._done is None:
            return
        if not self._done.done() and self._token is not None:
            with suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._request_stop)
            try:
                await asyncio.wait_for(asyncio.shield(self._done), timeout_s)
            except TimeoutError:  # our close frame is sent; the server's reply is late
                log.debug("the feed did not close within %.1f s; cancelling it", timeout_s)
                self._token.run_sync_soon(self._cancel_all)
                await asyncio.wait_for(asyncio.shield(self._done), 2.0)
        await self._done

    # ------------------------------------------------------------------ trio side

    def _request_stop(self) -> None:
        self._stopping = True
        if self._session is not None:  # connected: leave `connect()` by the front door
            self._session.cancel()
        else:  # connecting or waiting to retry: nothing to close
            self._cancel_all()

    def _cancel_all(self) -> None:
        if self._root is not None:
            self._root.cancel()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        send, recv = trio.open_memory_channel[Command](_COMMAND_BUFFER)
        self._commands = send
        for command in self._pending:
            send.send_nowait(command)
        self._pending.clear()
        with trio.CancelScope() as self._root:
            try:
                await self._feed_task(recv)
            except Exception as exc:
                # The dashboard's feed boundary: log the bug, tell the user, keep the UI alive.
                log.exception("dashboard feed task failed")
                self._sink.feed_fatal(f"internal error in the feed task: {exc!r}")

    async def _feed_task(self, commands: trio.MemoryReceiveChannel[Command]) -> None:
        attempt = 0
        connected = False
        while not self._stopping:
            try:
                async with self._connect() as feed:
                    attempt = 0
                    connected = True
                    await self._session_run(feed, commands)
                if self._stopping:
                    return
                error = "connection closed"
            except Exception as exc:
                leaf = _leaf(exc)
                if isinstance(leaf, AuthError):
                    self._sink.feed_fatal(str(leaf))
                    return
                if not isinstance(leaf, ConnectError | ConnectionLost):
                    raise
                error = str(leaf)
            attempt += 1
            of = 0 if connected else FIRST_ATTEMPTS
            if of and attempt >= of:
                self._sink.feed_fatal(error)
                return
            delay = self._backoff.delay(attempt)
            self._sink.feed_connecting(self._url, error, delay, attempt, of)
            await trio.sleep(delay)
            self._sink.feed_connecting(self._url, error, None, attempt, of)

    async def _session_run(self, feed: Any, commands: trio.MemoryReceiveChannel[Command]) -> None:
        self.feed = feed
        try:
            with trio.CancelScope() as self._session:
                if self._stopping:
                    return
                refs = await feed.symbols()
                wanted = self._sink.feed_connected(feed, refs)
                if wanted:
                    await self._run_command(feed, Subscribe(tuple(wanted)))
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._command_loop, feed, commands)
                    nursery.start_soon(self._pinger, feed)
                    async for event in feed:
                        if isinstance(event, Batch):
                            self._sink.feed_batch(event)
                        elif isinstance(event, BookUpdate):
                            self._sink.feed_book(event)
                        elif isinstance(event, TradingStatus):
                            self._sink.feed_trading(event)
                        elif isinstance(event, Gap):
                            self._sink.feed_gap(event)
                        elif isinstance(event, Status):
                            self._sink.feed_status(event)
                    nursery.cancel_scope.cancel()
        finally:
            self._session = None

    async def _command_loop(self, feed: Any, commands: trio.MemoryReceiveChannel[Command]) -> None:
        async with trio.open_nursery() as nursery:
            async for command in commands:
                # Each request in its own task: data keeps flowing while one waits for its ack.
                nursery.start_soon(self._run_command, feed, command)

    async def _run_command(self, feed: Any, command: Command) -> None:
        try:
            if isinstance(command, Subscribe):
                # A screen shows the latest state at its frame rate: every update would only queue
                # up behind the frames (the server conflates per symbol instead).
                result: Any = await feed.subscribe(
                    list(command.symbols), snapshot=True, mode=self._mode
                )
            elif isinstance(command, Unsubscribe):
                result = await feed.unsubscribe(list(command.symbols))
            elif isinstance(command, BookOn):
                result = await feed.subscribe(
                    [command.symbol], book=True, snapshot=False, mode=self._mode
                )
            elif isinstance(command, BookOff):
                result = await feed.unsubscribe([command.symbol])
                if command.symbol in self._sink.watched():  # still on the watchlist: ticks back
                    # and its book too if its screen opened again meanwhile (that BookOn's
                    # subscribe may have run before this unsubscribe)
                    again = True if self._sink.wants_book(command.symbol) else None
                    result = await feed.subscribe(
                        [command.symbol], snapshot=True, mode=self._mode, book=again
                    )
            else:
                await feed.throttle(max(command.interval_ms, command.pace_ms))
                result = command.interval_ms
        except ProtocolError as exc:
            self._sink.feed_reply(command, exc, exc.message or str(exc))
        except TickwireError as exc:
            self._sink.feed_reply(command, None, str(exc))
        else:
            self._sink.feed_reply(command, result, None)

    async def _pinger(self, feed: Any) -> None:
        while True:
            if feed.state == "live":
                try:
                    with trio.move_on_after(PING_EVERY_S * 2):
                        self._sink.feed_rtt(await feed.ping())
                except TickwireError:
                    self._sink.feed_rtt(math.nan)
            await trio.sleep(PING_EVERY_S)


def _leaf(exc: BaseException) -> BaseException:
    """The one exception inside (nested) groups of one, else the group itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
