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

from tickwire.simulators.ticks import TICK_DTYPE, TickFlag

from ._events import (
    AuthError,
    Batch,
    ConnectError,
    ConnectionLost,
    Event,
    Gap,
    ProtocolError,
    Status,
    TickwireError,
)
from .client import DEFAULT_URL, Feed, connect

__all__ = [
    "DEFAULT_URL",
    "TICK_DTYPE",
    "AuthError",
    "Batch",
    "ConnectError",
    "ConnectionLost",
    "Event",
    "Feed",
    "Gap",
    "ProtocolError",
    "Status",
    "TickFlag",
    "TickwireError",
    "connect",
]
