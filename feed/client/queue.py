"""The feed's events between its reader task and the user's `async for`, bounded by `max_queue`.

Owns the back-pressure of the client library: a full queue stops the reader (so the server
conflates for a slow consumer), except while a request waits for its reply; once the feed is
closing, events nobody will read are dropped. Errors that end the iteration skip the bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio

from tickwire.feed.client.events import Event


class EventQueue:
    """Events for one feed; `keep_reading()` True means a reply is awaited: never block then."""

    def __init__(self, max_queue: int, keep_reading: Callable[[], bool]) -> None:
        self._max_queue = max_queue
        self._keep_reading = keep_reading
        # Unbounded channel: the bound is `max_queue`, applied in `put` (errors skip it).
        self._send, self._recv = trio.open_memory_channel[Event | BaseException](math.inf)
        self._space = trio.Event()
        self.closing = False  # set by the feed's aclose(): drop events from now on

    def queued(self) -> int:
        """Events (and errors) waiting for the consumer."""
        return self._send.statistics().current_buffer_used

    def wake(self) -> None:
        """Let a reader waiting for space go on (and re-check `closing` and `keep_reading`)."""
        self._space.set()

    async def put(self, event: Event) -> None:
        if self.closing:
            return  # nobody reads them any more
        while self.queued() >= self._max_queue and not self._keep_reading():
            self._space = trio.Event()
            await self._space.wait()
            if self.closing:
                return
        await self._send.send(event)

    async def fail(self, exc: BaseException) -> None:
        """Queue an error for the consumer to raise (not bounded: it ends the iteration)."""
        await self._send.send(exc)

    def close(self) -> None:
        """End the iteration after what is queued."""
        self._send.close()

    async def get(self) -> Event:
        try:
            item = await self._recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None
        self._space.set()
        if isinstance(item, BaseException):
            raise item
        return item
