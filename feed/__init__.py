"""tickwire's feed: the WebSocket server, the wire protocol, and the client library.

Use the client library like this::

    import trio
    from tickwire.feed import Batch, connect

    async def main():
        async with connect("ws://127.0.0.1:8765/v1") as feed:
            await feed.subscribe(["AAPL", "MSFT"])
            async for event in feed:
                if isinstance(event, Batch):
                    print(event.symbols, event.ticks["bid"], event.ticks["ask"])

    trio.run(main)
"""

from typing import TYPE_CHECKING, Any

from tickwire.feed.client.book import Book
from tickwire.feed.client.events import (
    AuthError,
    Batch,
    BookUpdate,
    ConnectError,
    ConnectionLost,
    Event,
    Gap,
    ProtocolError,
    ScenarioChange,
    Status,
    TickwireError,
    TradingStatus,
)
from tickwire.simulators.ticks import TICK_DTYPE, TickFlag

if TYPE_CHECKING:
    from tickwire.feed.client.feed import DEFAULT_URL, Feed, connect

_CLIENT_NAMES = ("DEFAULT_URL", "Feed", "connect")


def __getattr__(name: str) -> Any:
    """The client (trio, trio_websocket) loads on first use, so the sans-IO core imports alone."""
    if name in _CLIENT_NAMES:
        from tickwire.feed.client import feed as client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_URL",
    "TICK_DTYPE",
    "AuthError",
    "Batch",
    "Book",
    "BookUpdate",
    "ConnectError",
    "ConnectionLost",
    "Event",
    "Feed",
    "Gap",
    "ProtocolError",
    "ScenarioChange",
    "Status",
    "TickFlag",
    "TickwireError",
    "TradingStatus",
    "connect",
]
