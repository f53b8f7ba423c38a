"""How the CLI's trio commands run: `trio.run` with plain errors, and stopping on a signal.

Imports trio and the client's error unwrapping only, so a command that needs no server (`tail`,
`record`) starts without loading one.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable

import trio

from .client import _single


def run_trio(main: Callable[[], Awaitable[None]]) -> None:
    """trio.run, with a group of one exception unwrapped so the CLI can report it plainly."""
    try:
        trio.run(main)
    except BaseExceptionGroup as group:
        raise _single(group) from None


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
