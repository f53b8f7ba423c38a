"""How tickwire's trio programs run (the CLI's commands, the worker supervisor): `trio.run` with
plain errors, and stopping (or draining a server) on a signal.

Imports trio and the client's error unwrapping only, so a command that needs no server (`tail`,
`record`) starts without loading one.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from tickwire.feed.client.events import unwrap_group

log = logging.getLogger("tickwire")


def run_trio(main: Callable[[], Awaitable[None]]) -> None:
    """trio.run, with a group of one exception unwrapped so the CLI can report it plainly."""
    try:
        trio.run(main)
    except BaseExceptionGroup as group:
        raise unwrap_group(group) from None


async def until_signal() -> int:
    """Wait for SIGINT or SIGTERM; returns which came."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            return int(signum)
    raise AssertionError("a signal receiver never ends")  # pragma: no cover


async def cancel_on_signal(scope: trio.CancelScope, got: list[int] | None = None) -> None:
    """Cancel `scope` at SIGINT or SIGTERM; the signal is appended to `got`, if given."""
    signum = await until_signal()
    if got is not None:
        got.append(signum)
    scope.cancel()


class Drains(Protocol):
    """What `until_stopped` stops (`server.Server` is one): no import of the server here."""

    async def drain(self, drain_s: float, min_s: float = 0.0) -> None:
        """Close every client gracefully over `drain_s`, then stop."""


async def until_stopped(server: Drains, drain_s: float, drain_min_s: float) -> None:
    """SIGINT: return at once. SIGTERM: drain, returning when done or at the next signal."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        first = await signals.__anext__()
        if first != signal.SIGTERM:
            return
        async with trio.open_nursery() as nursery:

            async def second_signal() -> None:
                await signals.__anext__()
                log.info("second signal: stopping now")
                nursery.cancel_scope.cancel()

            nursery.start_soon(second_signal)
            await server.drain(drain_s, drain_min_s)
            nursery.cancel_scope.cancel()
