"""cryptofeed, unmodified, against tickwire's Binance dialect: its `Binance` feed with TRADES and
TICKER callbacks, only its endpoints (public class attributes) pointed at the real server.

cryptofeed only opens `wss://` streams, so the server runs with a certificate from a throwaway
CA (trustme) that the feed's connection options and `requests` (its REST calls, through
`REQUESTS_CA_BUNDLE`) trust. It builds its symbol table from `exchangeInfo` at construction,
then streams `<s>@aggTrade` and `<s>@bookTicker` on one combined connection: no depth is
needed for these channels (its L2_BOOK needs the diff-depth stream, which comes with the order
book on the wire). The feed runs its own asyncio loop in a worker thread.
"""

from __future__ import annotations

import asyncio
import ssl
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trio

from tickwire.feed.server.server import ServerConfig
from tickwire.simulators.universe import Universe

from .conftest import CADENCE_MS, start

DEADLINE_S = 30


def _run_feed(base: str, ctx: ssl.SSLContext, got: dict[str, list[Any]], want: int) -> None:
    """cryptofeed's FeedHandler on BTC-USD until `want` trades and a ticker arrived."""
    from cryptofeed import FeedHandler
    from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint
    from cryptofeed.defines import TICKER, TRADES
    from cryptofeed.exchanges import Binance

    class Tickwire(Binance):  # the same feed; only where it connects
        websocket_endpoints: ClassVar[list[Any]] = [
            WebsocketEndpoint(base.replace("https://", "wss://") + "/binance", options={"ssl": ctx})
        ]
        rest_endpoints: ClassVar[list[Any]] = [
            RestEndpoint(base + "/binance", routes=Routes("/api/v3/exchangeInfo"))
        ]

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    done = asyncio.Event()

    async def on_trade(trade: Any, receipt: float) -> None:
        got["trades"].append(trade)
        if len(got["trades"]) >= want and got["tickers"]:
            done.set()

    async def on_ticker(ticker: Any, receipt: float) -> None:
        got["tickers"].append(ticker)

    handler = FeedHandler(config={"log": {"disabled": True}, "uvloop": False})
    callbacks = {TRADES: on_trade, TICKER: on_ticker}
    handler.add_feed(Tickwire(symbols=["BTC-USD"], channels=[TRADES, TICKER], callbacks=callbacks))

    async def until_done() -> None:
        try:
            await asyncio.wait_for(done.wait(), DEADLINE_S)
        finally:
            await handler.stop_async()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

    try:
        handler.run(start_loop=False, install_signal_handlers=False)  # its tasks on this loop
        loop.run_until_complete(until_done())
    finally:
        loop.close()


async def test_cryptofeed_binance_trades_and_ticker(
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("cryptofeed", reason="cryptofeed is not installed")
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    pem, ca_pem = tmp_path / "server.pem", tmp_path / "ca.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_pem))  # cryptofeed's REST: requests
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    universe = Universe.crypto_pairs()
    config = ServerConfig(
        port=0, cadence_ms=CADENCE_MS, universe=universe, session="24h", certfile=str(pem)
    )
    venue = await start(nursery, caplog, config)
    base = venue.url("").replace("wss://", "https://", 1)
    got: dict[str, list[Any]] = {"trades": [], "tickers": []}
    with trio.fail_after(DEADLINE_S + 10):
        await trio.to_thread.run_sync(_run_feed, base, ctx, got, 5, abandon_on_cancel=True)
    trades, ticker = got["trades"], got["tickers"][0]
    assert all(t.symbol == "BTC-USD" and t.exchange == "BINANCE" for t in trades)
    assert all(Decimal(0) < t.amount < Decimal(10) for t in trades)  # BTC, not lots
    assert all(t.side in ("buy", "sell") and t.price > 1000 for t in trades)
    ids = [int(t.id) for t in trades]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert ticker.symbol == "BTC-USD" and 0 < ticker.bid < ticker.ask
    assert any(path.startswith("/binance/stream") for path in venue.handshakes)
