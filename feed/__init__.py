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

if TYPE_CHECKING:
    from tickwire.feed.client.book import Book
    from tickwire.feed.client.feed import DEFAULT_URL, Feed, connect
    from tickwire.simulators.ticks import TICK_DTYPE, TickFlag

# Where each lazily loaded name lives: importing `tickwire.feed` (every `tickwire` command does)
# costs no numpy, no trio and no order book code until a name that needs them is used.
_LAZY = {
    "DEFAULT_URL": "tickwire.feed.client.feed",
    "Feed": "tickwire.feed.client.feed",
    "connect": "tickwire.feed.client.feed",
    "Book": "tickwire.feed.client.book",
    "TICK_DTYPE": "tickwire.simulators.ticks",
    "TickFlag": "tickwire.simulators.ticks",
}


def __getattr__(name: str) -> Any:
    """The client (trio, trio_websocket), the books and the tick type load on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
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
