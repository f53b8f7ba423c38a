"""cryptofeed's Binance feed with L2_BOOK and TRADES against a tickwire server, in a process of
its own: `python cryptofeed_book.py BASE UPDATES` (BASE: https://host:port) prints, as one JSON
line, the books it built (sequence number, best 20 bids and asks) and the server's partial books
by lastUpdateId (`depth20@100ms`, read beside it). A process, because cryptofeed's REST snapshot
goes through aiohttp, whose default TLS context is made at import: the throwaway CA must be in
SSL_CERT_FILE before that (the test sets it in this process's environment).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from typing import Any, ClassVar

from cryptofeed import FeedHandler
from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint
from cryptofeed.defines import L2_BOOK, TRADES
from cryptofeed.exchanges import Binance
from websockets.asyncio.client import connect


def _floats(side: Any) -> list[list[float]]:
    return [[float(p), float(q)] for p, q in side]


async def main(base: str, updates: int) -> dict[str, Any]:
    wss = base.replace("https://", "wss://")
    ctx = ssl.create_default_context()  # trusts SSL_CERT_FILE

    class Tickwire(Binance):  # the same feed; only where it connects
        websocket_endpoints: ClassVar[list[Any]] = [
            WebsocketEndpoint(wss + "/binance", options={"ssl": ctx})
        ]
        rest_endpoints: ClassVar[list[Any]] = [
            RestEndpoint(
                base + "/binance",
                routes=Routes("/api/v3/exchangeInfo", l2book="/api/v3/depth?symbol={}&limit={}"),
            )
        ]

    seen: list[tuple[int, Any, Any]] = []
    truth: dict[int, Any] = {}
    trades: list[Any] = []
    done = asyncio.Event()

    async def record() -> None:
        streams = "btcusd@depth20@100ms"
        async with connect(f"{wss}/binance/stream?streams={streams}", ssl=ctx) as ws:
            while True:
                data = json.loads(await ws.recv())["data"]
                truth[data["lastUpdateId"]] = (_floats(data["bids"]), _floats(data["asks"]))

    async def on_book(book: Any, receipt: float) -> None:
        bids = sorted(book.book.bids.to_dict().items(), reverse=True)[:20]
        asks = sorted(book.book.asks.to_dict().items())[:20]
        seen.append((book.sequence_number, _floats(bids), _floats(asks)))
        if len(seen) >= updates and trades:
            done.set()

    async def on_trade(trade: Any, receipt: float) -> None:
        trades.append(str(trade.amount))

    recorder = asyncio.create_task(record())
    handler = FeedHandler(config={"log": {"disabled": True}, "uvloop": False})
    callbacks = {L2_BOOK: on_book, TRADES: on_trade}
    handler.add_feed(Tickwire(symbols=["BTC-USD"], channels=[L2_BOOK, TRADES], callbacks=callbacks))
    handler.run(start_loop=False, install_signal_handlers=False)  # its tasks on this loop
    try:
        await asyncio.wait_for(done.wait(), 45)
    finally:
        await handler.stop_async()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
    assert recorder.done()
    return {"seen": seen, "truth": list(truth.items()), "trades": trades}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2])))))
