"""Requests waiting for their replies, matched by `id`: the client library's request path.

Owns the request ids of one feed, sending a request and waiting for the reply the reader hands
over, and turning an `error` reply into ProtocolError and a lost connection into ConnectionLost.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from tickwire.feed.client.events import ConnectionLost, ProtocolError


class Replies:
    """The requests of one feed in flight; truthy while any waits for its reply."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._waiters: dict[int, tuple[trio.Event, list[dict[str, Any]]]] = {}

    def __bool__(self) -> bool:
        return bool(self._waiters)

    async def request(
        self,
        ws: WebSocketConnection,
        op: str,
        fields: Mapping[str, Any],
        *,
        where: str,
        waiting: Callable[[], None],
    ) -> dict[str, Any]:
        """Send `op` and wait for its reply; `waiting()` is called once the reply is expected."""
        rid = next(self._ids)
        done = trio.Event()
        slot: list[dict[str, Any]] = []
        self._waiters[rid] = (done, slot)
        waiting()
        try:
            try:
                await ws.send_message(orjson.dumps({"op": op, "id": rid, **fields}).decode())
            except ConnectionClosed:
                raise ConnectionLost(f"connection to {where} lost during {op}") from None
            await done.wait()
        finally:
            del self._waiters[rid]
        if not slot:
            raise ConnectionLost(f"connection to {where} lost before the reply to {op}")
        reply = slot[0]
        if reply.get("type") == "error":
            raise ProtocolError(reply["code"], reply.get("message", ""), reply.get("symbols", ()))
        return reply

    def expects(self, reply: Mapping[str, Any]) -> bool:
        """Whether a request waits for `reply` (by its `id`)."""
        return reply.get("id", 0) in self._waiters

    def deliver(self, reply: dict[str, Any]) -> None:
        """Hand `reply` to the request waiting for it."""
        done, slot = self._waiters[reply["id"]]
        slot.append(reply)
        done.set()

    def drop_all(self) -> None:
        """The connection is gone: every request waiting raises ConnectionLost."""
        for done, _ in self._waiters.values():
            done.set()  # their slot stays empty
