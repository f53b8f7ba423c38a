"""A real tickwire feed server in a background thread (its own `trio.run`, a free port on
127.0.0.1), for `tickwire demo`, the dashboard's bench and tests; trio and the server load on use.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

DEMO_BOOK_DEPTH = 20
"""`tickwire demo` serves order books this deep, so the detail screen shows its depth ladder."""


def demo_server(seed: int = 0, activity: float = 1.0) -> AbstractContextManager[str]:
    """The server as `tickwire demo` runs it (books on), in a thread; yields its URL."""
    return server_thread(seed=seed, activity=activity, book_depth=DEMO_BOOK_DEPTH)


@contextmanager
def server_thread(**config: Any) -> Iterator[str]:
    """Run the server (`server.serve`) on 127.0.0.1, a free port, in a thread; yield its URL."""
    import trio

    from tickwire.feed.server.server import Server, ServerConfig

    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            box["token"] = trio.lowlevel.current_trio_token()
            box["stop"] = stop.set
            server = Server(ServerConfig(**{"host": "127.0.0.1", "port": 0, **config}))
            box["url"] = await nursery.start(server.run)
            ready.set()
            await stop.wait()
            await server.shutdown()  # as `serve` on Ctrl+C: 1001 to whoever is left
            nursery.cancel_scope.cancel()

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="tickwire-demo-server", daemon=True)
    thread.start()
    ready.wait()
    if "error" in box:
        raise box["error"]
    try:
        yield box["url"]
    finally:
        with suppress(trio.RunFinishedError):  # the server thread may have ended already
            box["token"].run_sync_soon(box["stop"])
        thread.join(timeout=5)
